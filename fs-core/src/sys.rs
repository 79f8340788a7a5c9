//! Every system call the overlay makes, as safe functions over paths and descriptors.
//!
//! Each function returns the OS error unchanged, so the errno a program sees through the mount is
//! the one the real filesystem gave.

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A path the kernel accepts for `path`: `path` itself when it is shorter than PATH_MAX, else
/// `/proc/self/fd/N/NAME`, where N is `path`'s parent directory opened by walking `path` in pieces
/// shorter than PATH_MAX. A target's real path can be longer than the path a program used in the
/// mount (up to PATH_MAX - 1 bytes), so the overlay must not hand the kernel the full real path.
struct KernelPath {
    c: CString,
    /// Keeps N open while `c` is used.
    _dir: Option<OwnedFd>,
}

impl KernelPath {
    fn as_ptr(&self) -> *const libc::c_char {
        self.c.as_ptr()
    }

    fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.c.as_bytes()))
    }
}

fn nul_free(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cstr(path: &Path) -> io::Result<KernelPath> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() < libc::PATH_MAX as usize {
        return Ok(KernelPath {
            c: nul_free(bytes)?,
            _dir: None,
        });
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    };
    let dir = open_dir_walking(parent)?;
    let mut short = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    short.extend_from_slice(name.as_bytes());
    Ok(KernelPath {
        c: nul_free(&short)?,
        _dir: Some(dir),
    })
}

/// Opens the directory `dir` (O_PATH) by openat(2) steps of fewer than PATH_MAX bytes each.
fn open_dir_walking(dir: &Path) -> io::Result<OwnedFd> {
    let limit = libc::PATH_MAX as usize - 1;
    let mut cur: Option<OwnedFd> = None;
    let mut piece: Vec<u8> = if dir.is_absolute() {
        b"/".to_vec()
    } else {
        Vec::new()
    };
    let mut comps = dir
        .components()
        .filter_map(|c| match c {
            std::path::Component::RootDir | std::path::Component::CurDir => None,
            c => Some(c.as_os_str().as_bytes().to_vec()),
        })
        .peekable();
    while let Some(c) = comps.next() {
        if c.len() >= limit {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        if !piece.is_empty() && !piece.ends_with(b"/") {
            piece.push(b'/');
        }
        piece.extend_from_slice(&c);
        let next_fits = comps
            .peek()
            .is_some_and(|n| piece.len() + 1 + n.len() < limit);
        if !next_fits {
            let p = nul_free(&piece)?;
            let at = cur.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd());
            // SAFETY: p is a valid C string; `at` is AT_FDCWD or a descriptor we own.
            let fd = unsafe {
                libc::openat(
                    at,
                    p.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a freshly opened descriptor that nothing else owns.
            cur = Some(unsafe { OwnedFd::from_raw_fd(fd) });
            piece.clear();
        }
    }
    cur.ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// Runs `f` (a std::fs function) on a path the kernel accepts for `path` (a `/proc/self/fd` form when it is too long).
///
/// # Errors
/// The OS error of opening the parent of a long path, or `f`'s.
pub fn at_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    let k = cstr(path)?;
    f(k.as_path())
}

fn cvt(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Sets the process umask (the overlay applies the caller's umask itself).
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask has no memory effects.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// The effective user id of this process.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The effective group id of this process.
pub fn getegid() -> u32 {
    // SAFETY: getegid cannot fail and touches no memory.
    unsafe { libc::getegid() }
}

/// open(2) with `flags` and `mode`; close-on-exec always.
///
/// # Errors
/// The OS error.
pub fn open(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let p = cstr(path)?;
    // SAFETY: p is a valid NUL-terminated string for the duration of the call.
    let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly opened descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// mkdir(2).
///
/// # Errors
/// The OS error.
pub fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::mkdir(p.as_ptr(), mode as libc::mode_t) })
}

/// mknod(2).
///
/// # Errors
/// The OS error.
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::mknod(p.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) })
}

/// symlink(2): creates `link` holding `text`.
///
/// # Errors
/// The OS error.
pub fn symlink(text: &OsStr, link: &Path) -> io::Result<()> {
    let t =
        CString::new(text.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let l = cstr(link)?;
    // SAFETY: both are valid C strings.
    cvt(unsafe { libc::symlink(t.as_ptr(), l.as_ptr()) })
}

/// link(2), never following a symlink source.
///
/// # Errors
/// The OS error.
pub fn link(old: &Path, new: &Path) -> io::Result<()> {
    let o = cstr(old)?;
    let n = cstr(new)?;
    // SAFETY: both are valid C strings.
    cvt(unsafe { libc::linkat(libc::AT_FDCWD, o.as_ptr(), libc::AT_FDCWD, n.as_ptr(), 0) })
}

/// unlink(2).
///
/// # Errors
/// The OS error.
pub fn unlink(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::unlink(p.as_ptr()) })
}

/// rmdir(2).
///
/// # Errors
/// The OS error.
pub fn rmdir(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::rmdir(p.as_ptr()) })
}

/// renameat2(2) with `flags` (RENAME_NOREPLACE, RENAME_EXCHANGE).
///
/// # Errors
/// The OS error.
pub fn rename(old: &Path, new: &Path, flags: u32) -> io::Result<()> {
    let o = cstr(old)?;
    let n = cstr(new)?;
    // SAFETY: both are valid C strings; renameat2 reads them only.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            o.as_ptr(),
            libc::AT_FDCWD,
            n.as_ptr(),
            flags,
        )
    })
}

/// chmod(2) (follows symlinks, as chmod does; symlinks have no mode of their own on Linux).
///
/// # Errors
/// The OS error.
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::chmod(p.as_ptr(), mode as libc::mode_t) })
}

/// fchmod(2).
///
/// # Errors
/// The OS error.
pub fn fchmod(file: &File, mode: u32) -> io::Result<()> {
    // SAFETY: the descriptor is valid while `file` is borrowed.
    cvt(unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) })
}

/// lchown(2); `None` leaves that id unchanged.
///
/// # Errors
/// The OS error.
pub fn lchown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let p = cstr(path)?;
    let u = uid.unwrap_or(u32::MAX);
    let g = gid.unwrap_or(u32::MAX);
    // SAFETY: p is a valid C string; -1 (u32::MAX) means "unchanged".
    cvt(unsafe { libc::lchown(p.as_ptr(), u, g) })
}

/// fchown(2); `None` leaves that id unchanged.
///
/// # Errors
/// The OS error.
pub fn fchown(file: &File, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    // SAFETY: the descriptor is valid while `file` is borrowed.
    cvt(unsafe {
        libc::fchown(
            file.as_raw_fd(),
            uid.unwrap_or(u32::MAX),
            gid.unwrap_or(u32::MAX),
        )
    })
}

/// truncate(2).
///
/// # Errors
/// The OS error.
pub fn truncate(path: &Path, size: u64) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::truncate(p.as_ptr(), size as libc::off_t) })
}

/// A time to set: a value, now, or leave as is.
#[derive(Debug, Clone, Copy)]
pub enum SetTime {
    /// Leave unchanged (UTIME_OMIT).
    Omit,
    /// The current time (UTIME_NOW).
    Now,
    /// Seconds and nanoseconds since the epoch.
    At(i64, i64),
}

fn timespec(t: SetTime) -> libc::timespec {
    match t {
        SetTime::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        SetTime::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        SetTime::At(s, ns) => libc::timespec {
            tv_sec: s as libc::time_t,
            tv_nsec: ns as _,
        },
    }
}

/// utimensat(2) without following a symlink.
///
/// # Errors
/// The OS error.
pub fn utimens(path: &Path, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    let p = cstr(path)?;
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: p is a valid C string and `times` has the two entries utimensat reads.
    cvt(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// futimens(2).
///
/// # Errors
/// The OS error.
pub fn futimens(file: &File, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: the descriptor is valid while borrowed; `times` has two entries.
    cvt(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) })
}

/// File system statistics.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatFs {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Maximum name length.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}

/// statvfs(3).
///
/// # Errors
/// The OS error.
pub fn statvfs(path: &Path) -> io::Result<StatFs> {
    let p = cstr(path)?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: p is a valid C string; s points to writable memory of the right type.
    cvt(unsafe { libc::statvfs(p.as_ptr(), s.as_mut_ptr()) })?;
    // SAFETY: statvfs succeeded, so it initialized s.
    let s = unsafe { s.assume_init() };
    Ok(StatFs {
        blocks: s.f_blocks,
        bfree: s.f_bfree,
        bavail: s.f_bavail,
        files: s.f_files,
        ffree: s.f_ffree,
        bsize: s.f_bsize as u32,
        namelen: s.f_namemax as u32,
        frsize: s.f_frsize as u32,
    })
}

/// access(2) with the effective ids.
///
/// # Errors
/// The OS error.
pub fn access(path: &Path, mask: i32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::faccessat(libc::AT_FDCWD, p.as_ptr(), mask, libc::AT_EACCESS) })
}

fn xname(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// lgetxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn getxattr(path: &Path, name: &OsStr, size: usize) -> io::Result<Vec<u8>> {
    let p = cstr(path)?;
    let n = xname(name)?;
    // SAFETY: `sized` passes a buffer with `len` writable bytes; p and n are valid C strings.
    sized(size, |buf, len| unsafe {
        libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf, len)
    })
}

/// An xattr call that fills a buffer of `size` bytes, given to `call` with its length: what it
/// wrote, or for `size` 0 (a question about the size) that many zero bytes.
fn sized(
    size: usize,
    call: impl FnOnce(*mut libc::c_void, usize) -> libc::ssize_t,
) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size];
    let r = cvt_size(call(buf.as_mut_ptr().cast(), size))?;
    if size == 0 {
        return Ok(vec![0u8; r]);
    }
    buf.truncate(r);
    Ok(buf)
}

/// llistxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn listxattr(path: &Path, size: usize) -> io::Result<Vec<u8>> {
    let p = cstr(path)?;
    // SAFETY: `sized` passes a buffer with `len` writable bytes; p is a valid C string.
    sized(size, |buf, len| unsafe {
        libc::llistxattr(p.as_ptr(), buf.cast(), len)
    })
}

/// lsetxattr(2).
///
/// # Errors
/// The OS error.
pub fn setxattr(path: &Path, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
    let p = cstr(path)?;
    let n = xname(name)?;
    // SAFETY: value is readable for its length; p and n are valid C strings.
    cvt(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
}

/// lremovexattr(2).
///
/// # Errors
/// The OS error.
pub fn removexattr(path: &Path, name: &OsStr) -> io::Result<()> {
    let p = cstr(path)?;
    let n = xname(name)?;
    // SAFETY: p and n are valid C strings.
    cvt(unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) })
}

/// fgetxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn fgetxattr(file: &File, name: &OsStr, size: usize) -> io::Result<Vec<u8>> {
    let n = xname(name)?;
    // SAFETY: `sized` passes a buffer with `len` writable bytes; n is a valid C string; the
    // descriptor is valid while `file` is borrowed.
    sized(size, |buf, len| unsafe {
        libc::fgetxattr(file.as_raw_fd(), n.as_ptr(), buf, len)
    })
}

/// flistxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn flistxattr(file: &File, size: usize) -> io::Result<Vec<u8>> {
    // SAFETY: `sized` passes a buffer with `len` writable bytes; the descriptor is valid while
    // borrowed.
    sized(size, |buf, len| unsafe {
        libc::flistxattr(file.as_raw_fd(), buf.cast(), len)
    })
}

/// fsetxattr(2).
///
/// # Errors
/// The OS error.
pub fn fsetxattr(file: &File, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
    let n = xname(name)?;
    // SAFETY: value is readable for its length; n is a valid C string; the descriptor is valid
    // while borrowed.
    cvt(unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
}

/// fremovexattr(2).
///
/// # Errors
/// The OS error.
pub fn fremovexattr(file: &File, name: &OsStr) -> io::Result<()> {
    let n = xname(name)?;
    // SAFETY: n is a valid C string; the descriptor is valid while borrowed.
    cvt(unsafe { libc::fremovexattr(file.as_raw_fd(), n.as_ptr()) })
}

/// Whether process `pid` has `gid` among its supplementary groups (from /proc/PID/status);
/// false when that cannot be read.
pub fn process_in_group(pid: u32, gid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .is_some_and(|groups| {
            groups
                .split_whitespace()
                .any(|g| g.parse::<u32>() == Ok(gid))
        })
}

/// fallocate(2).
///
/// # Errors
/// The OS error.
pub fn fallocate(file: &File, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: the descriptor is valid while borrowed.
    cvt(unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            mode,
            offset as libc::off_t,
            len as libc::off_t,
        )
    })
}

/// lseek(2), for SEEK_DATA and SEEK_HOLE among others.
///
/// # Errors
/// The OS error.
pub fn lseek(file: &File, offset: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: the descriptor is valid while borrowed.
    let r = unsafe { libc::lseek(file.as_raw_fd(), offset as libc::off_t, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i64)
    }
}

/// copy_file_range(2) between two descriptors at explicit offsets.
///
/// # Errors
/// The OS error.
pub fn copy_file_range(
    fd_in: &File,
    off_in: u64,
    fd_out: &File,
    off_out: u64,
    len: u64,
    flags: u32,
) -> io::Result<usize> {
    let mut oi = off_in as libc::loff_t;
    let mut oo = off_out as libc::loff_t;
    // SAFETY: both descriptors are valid while borrowed; the offsets are local variables.
    cvt_size(unsafe {
        libc::copy_file_range(
            fd_in.as_raw_fd(),
            &mut oi,
            fd_out.as_raw_fd(),
            &mut oo,
            len as usize,
            flags,
        )
    })
}

/// fsync(2) or fdatasync(2).
///
/// # Errors
/// The OS error.
pub fn fsync(file: &File, datasync: bool) -> io::Result<()> {
    if datasync {
        file.sync_data()
    } else {
        file.sync_all()
    }
}

/// umount2(2); `lazy` detaches now (MNT_DETACH).
///
/// # Errors
/// The OS error.
pub fn umount(path: &Path, lazy: bool) -> io::Result<()> {
    let p = cstr(path)?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: p is a valid C string.
    cvt(unsafe { libc::umount2(p.as_ptr(), flags) })
}

/// The uid of the process at the other end of a unix socket (SO_PEERCRED).
///
/// # Errors
/// The OS error.
pub fn peer_uid(sock: &impl AsRawFd) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    cvt(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(cred.uid)
}

/// kill(2): sends `signal` to process `pid`.
///
/// # Errors
/// The OS error (ESRCH when there is no such process).
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: kill touches no memory of ours.
    cvt(unsafe { libc::kill(pid, signal) })
}

/// Returns freed heap memory to the system (glibc's malloc_trim); a no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
