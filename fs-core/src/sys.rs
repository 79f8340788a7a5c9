//! Every system call the overlay makes, as safe functions over paths and descriptors.
//!
//! Each function returns the OS error unchanged, so the errno a program sees through the mount is
//! the one the real filesystem gave.
//!
//! Most calls go through rustix (raw system calls on Linux, no libc in between, no allocation
//! for a path: a `KernelPath` is already a C string). The few rustix does not offer
//! (truncate(2) by path, copy_file_range(2) with flags, malloc_trim) call libc directly.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, CWD};

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

    /// The C string, which rustix takes as a path without copying it.
    fn c(&self) -> &CStr {
        &self.c
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
            let at = cur.as_ref().map_or(CWD, |f| f.as_fd());
            let flags = rustix::fs::OFlags::PATH
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC;
            cur = Some(rustix::fs::openat(at, p.as_c_str(), flags, Mode::empty())?);
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
    rustix::process::umask(Mode::from_bits_retain(mask)).bits()
}

/// The effective user id of this process.
pub fn geteuid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The effective group id of this process.
pub fn getegid() -> u32 {
    rustix::process::getegid().as_raw()
}

/// open(2) with `flags` and `mode`; close-on-exec always.
///
/// # Errors
/// The OS error.
pub fn open(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
    let p = cstr(path)?;
    // The caller's flags go to the kernel as given (from_bits_retain keeps any rustix does not
    // name).
    let flags = rustix::fs::OFlags::from_bits_retain(flags as u32) | rustix::fs::OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(
        p.c(),
        flags,
        Mode::from_bits_retain(mode),
    )?))
}

/// mkdir(2).
///
/// # Errors
/// The OS error.
pub fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(path)?;
    Ok(rustix::fs::mkdir(p.c(), Mode::from_bits_retain(mode))?)
}

/// mknod(2).
///
/// # Errors
/// The OS error.
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let p = cstr(path)?;
    // The kernel gets `mode`'s type and permission bits as given. No type bits mean a regular
    // file to mknod(2); rustix would send an unknown type as S_IFMT, so that case is spelled out.
    let kind = if mode & libc::S_IFMT == 0 {
        rustix::fs::FileType::RegularFile
    } else {
        rustix::fs::FileType::from_raw_mode(mode)
    };
    let perm = Mode::from_bits_retain(mode & !libc::S_IFMT);
    Ok(rustix::fs::mknodat(CWD, p.c(), kind, perm, rdev)?)
}

/// symlink(2): creates `link` holding `text`.
///
/// # Errors
/// The OS error.
pub fn symlink(text: &OsStr, link: &Path) -> io::Result<()> {
    let t =
        CString::new(text.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let l = cstr(link)?;
    Ok(rustix::fs::symlink(t.as_c_str(), l.c())?)
}

/// link(2), never following a symlink source.
///
/// # Errors
/// The OS error.
pub fn link(old: &Path, new: &Path) -> io::Result<()> {
    let o = cstr(old)?;
    let n = cstr(new)?;
    Ok(rustix::fs::linkat(
        CWD,
        o.c(),
        CWD,
        n.c(),
        AtFlags::empty(),
    )?)
}

/// unlink(2).
///
/// # Errors
/// The OS error.
pub fn unlink(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    Ok(rustix::fs::unlink(p.c())?)
}

/// rmdir(2).
///
/// # Errors
/// The OS error.
pub fn rmdir(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    Ok(rustix::fs::rmdir(p.c())?)
}

/// renameat2(2) with `flags` (RENAME_NOREPLACE, RENAME_EXCHANGE).
///
/// # Errors
/// The OS error.
pub fn rename(old: &Path, new: &Path, flags: u32) -> io::Result<()> {
    let o = cstr(old)?;
    let n = cstr(new)?;
    let flags = rustix::fs::RenameFlags::from_bits_retain(flags);
    Ok(rustix::fs::renameat_with(CWD, o.c(), CWD, n.c(), flags)?)
}

/// chmod(2) (follows symlinks, as chmod does; symlinks have no mode of their own on Linux).
///
/// # Errors
/// The OS error.
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(path)?;
    Ok(rustix::fs::chmod(p.c(), Mode::from_bits_retain(mode))?)
}

/// fchmod(2).
///
/// # Errors
/// The OS error.
pub fn fchmod(file: &File, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(file, Mode::from_bits_retain(mode))?)
}

/// lchown(2); `None` leaves that id unchanged.
///
/// # Errors
/// The OS error.
pub fn lchown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let p = cstr(path)?;
    let (u, g) = ids(uid, gid);
    Ok(rustix::fs::chownat(
        CWD,
        p.c(),
        u,
        g,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// fchown(2); `None` leaves that id unchanged.
///
/// # Errors
/// The OS error.
pub fn fchown(file: &File, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let (u, g) = ids(uid, gid);
    Ok(rustix::fs::fchown(file, u, g)?)
}

/// chown's ids: `None` (and -1, which the kernel reads the same way) leaves one unchanged.
fn ids(uid: Option<u32>, gid: Option<u32>) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    (
        uid.filter(|&u| u != u32::MAX)
            .map(rustix::fs::Uid::from_raw),
        gid.filter(|&g| g != u32::MAX)
            .map(rustix::fs::Gid::from_raw),
    )
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

fn timespec(t: SetTime) -> rustix::fs::Timespec {
    match t {
        SetTime::Omit => rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        SetTime::Now => rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        SetTime::At(s, ns) => rustix::fs::Timespec {
            tv_sec: s,
            tv_nsec: ns as _,
        },
    }
}

fn timestamps(atime: SetTime, mtime: SetTime) -> rustix::fs::Timestamps {
    rustix::fs::Timestamps {
        last_access: timespec(atime),
        last_modification: timespec(mtime),
    }
}

/// utimensat(2) without following a symlink.
///
/// # Errors
/// The OS error.
pub fn utimens(path: &Path, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    let p = cstr(path)?;
    let times = timestamps(atime, mtime);
    Ok(rustix::fs::utimensat(
        CWD,
        p.c(),
        &times,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// futimens(2).
///
/// # Errors
/// The OS error.
pub fn futimens(file: &File, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    Ok(rustix::fs::futimens(file, &timestamps(atime, mtime))?)
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
    let s = rustix::fs::statvfs(p.c())?;
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
    let mask = rustix::fs::Access::from_bits_retain(mask as _);
    Ok(rustix::fs::accessat(CWD, p.c(), mask, AtFlags::EACCESS)?)
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
    sized(
        size,
        || rustix::fs::lgetxattr_query(p.c(), n.as_c_str()),
        |buf| rustix::fs::lgetxattr(p.c(), n.as_c_str(), buf),
    )
}

/// An xattr call with a buffer of `size` bytes: what `fill` wrote, or for `size` 0 (a question
/// about the size, which rustix asks through a separate `_query` call) that many zero bytes.
fn sized(
    size: usize,
    query: impl FnOnce() -> rustix::io::Result<usize>,
    fill: impl FnOnce(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<u8>> {
    if size == 0 {
        return Ok(vec![0u8; query()?]);
    }
    let mut buf = vec![0u8; size];
    let r = fill(&mut buf)?;
    buf.truncate(r);
    Ok(buf)
}

/// llistxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn listxattr(path: &Path, size: usize) -> io::Result<Vec<u8>> {
    let p = cstr(path)?;
    sized(
        size,
        || rustix::fs::llistxattr_query(p.c()),
        |buf| rustix::fs::llistxattr(p.c(), buf),
    )
}

/// lsetxattr(2).
///
/// # Errors
/// The OS error.
pub fn setxattr(path: &Path, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
    let p = cstr(path)?;
    let n = xname(name)?;
    Ok(rustix::fs::lsetxattr(
        p.c(),
        n.as_c_str(),
        value,
        xattr_flags(flags),
    )?)
}

/// lremovexattr(2).
///
/// # Errors
/// The OS error.
pub fn removexattr(path: &Path, name: &OsStr) -> io::Result<()> {
    let p = cstr(path)?;
    let n = xname(name)?;
    Ok(rustix::fs::lremovexattr(p.c(), n.as_c_str())?)
}

/// fgetxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn fgetxattr(file: &File, name: &OsStr, size: usize) -> io::Result<Vec<u8>> {
    let n = xname(name)?;
    sized(
        size,
        || rustix::fs::fgetxattr_query(file, n.as_c_str()),
        |buf| rustix::fs::fgetxattr(file, n.as_c_str(), buf),
    )
}

/// flistxattr(2) into a buffer of `size` bytes (0 asks for the size).
///
/// # Errors
/// The OS error.
pub fn flistxattr(file: &File, size: usize) -> io::Result<Vec<u8>> {
    sized(
        size,
        || rustix::fs::flistxattr_query(file),
        |buf| rustix::fs::flistxattr(file, buf),
    )
}

/// fsetxattr(2).
///
/// # Errors
/// The OS error.
pub fn fsetxattr(file: &File, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
    let n = xname(name)?;
    Ok(rustix::fs::fsetxattr(
        file,
        n.as_c_str(),
        value,
        xattr_flags(flags),
    )?)
}

/// setxattr's flags (XATTR_CREATE, XATTR_REPLACE) as given, unknown bits included: the kernel
/// judges them.
fn xattr_flags(flags: i32) -> rustix::fs::XattrFlags {
    rustix::fs::XattrFlags::from_bits_retain(flags as _)
}

/// fremovexattr(2).
///
/// # Errors
/// The OS error.
pub fn fremovexattr(file: &File, name: &OsStr) -> io::Result<()> {
    let n = xname(name)?;
    Ok(rustix::fs::fremovexattr(file, n.as_c_str())?)
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
    let mode = rustix::fs::FallocateFlags::from_bits_retain(mode as _);
    Ok(rustix::fs::fallocate(file, mode, offset, len)?)
}

/// lseek(2), for SEEK_DATA and SEEK_HOLE among others.
///
/// # Errors
/// The OS error.
pub fn lseek(file: &File, offset: i64, whence: i32) -> io::Result<i64> {
    use rustix::fs::SeekFrom;
    // A negative offset reaches the kernel unchanged (the cast keeps its bits), which refuses it
    // as lseek(2) would.
    let pos = match whence {
        libc::SEEK_SET => SeekFrom::Start(offset as u64),
        libc::SEEK_CUR => SeekFrom::Current(offset),
        libc::SEEK_END => SeekFrom::End(offset),
        libc::SEEK_DATA => SeekFrom::Data(offset as u64),
        libc::SEEK_HOLE => SeekFrom::Hole(offset as u64),
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    Ok(rustix::fs::seek(file, pos)? as i64)
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
    let flags = if lazy {
        rustix::mount::UnmountFlags::DETACH
    } else {
        rustix::mount::UnmountFlags::empty()
    };
    Ok(rustix::mount::unmount(p.c(), flags)?)
}

/// The uid of the process at the other end of a unix socket (SO_PEERCRED).
///
/// # Errors
/// The OS error.
pub fn peer_uid(sock: &impl AsFd) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(sock)?.uid.as_raw())
}

/// kill(2): sends `signal` to process `pid`.
///
/// # Errors
/// The OS error (ESRCH when there is no such process); EINVAL for pid 0 (which would signal
/// this process group), a pid beyond `pid_t` or a signal Linux does not name.
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let einval = || io::Error::from_raw_os_error(libc::EINVAL);
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(einval)?;
    let signal = rustix::process::Signal::from_named_raw(signal).ok_or_else(einval)?;
    Ok(rustix::process::kill_process(pid, signal)?)
}

/// Returns freed heap memory to the system (glibc's malloc_trim); a no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
