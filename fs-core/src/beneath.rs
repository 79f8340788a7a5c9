//! Opening real objects beneath a held directory, never by a full path string.
//!
//! The daemon serves users who may change the trees behind the mount at any moment: swap a
//! directory for a symlink, or a file for a link to one they may not read. Every real object is
//! therefore reached from a descriptor of its tree's root, opened when the table is installed,
//! by `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`: the walk
//! cannot leave the tree, follow a symlink (one planted into this mount would make the daemon
//! wait on itself) or jump through `/proc`. Where openat2 is missing (Linux before 5.6, some
//! sandboxes) the same walk is made one `openat(O_NOFOLLOW)` at a time.
//!
//! Mount points inside a tree are crossed, as a native path walk crosses them: a base may well
//! hold mounted volumes. A FUSE volume mounted there by another user refuses the daemon (FUSE
//! serves only its owner without `allow_other`), so it cannot stall a worker.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The path through which the kernel reaches `fd`'s object without looking up any name.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens a tree's root by its declared path, following symlinks (a declared target is the
/// administrator's word), as an `O_PATH` descriptor.
///
/// # Errors
/// The OS error of the open.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    crate::sys::at_path(path, |p| {
        let c = c_string(p.as_os_str().as_bytes())?;
        // SAFETY: `c` is a valid C string for the duration of the call.
        owned(unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })
    })
}

/// `struct open_how` of openat2(2) (the libc crate's cannot be built outside it).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Whether openat2(2) was found missing: then walks go one name at a time.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `rel` (normal components only) beneath `dir` with `flags`, following no symlink on
/// the way or at the end: a symlink met anywhere is ELOOP, except that `O_PATH | O_NOFOLLOW`
/// opens a final symlink itself. An empty `rel` opens `dir` itself again.
///
/// # Errors
/// EINVAL for a component that is not a plain name; ELOOP for a symlink on the way; EXDEV when
/// the walk would leave `dir`; the OS error of the walk otherwise.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n.as_bytes()),
            Component::CurDir => {}
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
    let Some((last, within)) = names.split_last() else {
        // SAFETY: "." is a valid C string; `dir` is a live descriptor.
        return owned(unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), flags) });
    };
    // Pieces of fewer than PATH_MAX bytes: a real path may be longer than any the kernel takes.
    let limit = libc::PATH_MAX as usize - 1;
    let mut held: Option<OwnedFd> = None;
    let mut piece: Vec<u8> = Vec::new();
    for name in within {
        if !piece.is_empty() && piece.len() + 1 + name.len() >= limit {
            let at = held.as_ref().map_or(dir, |f| f.as_fd());
            held = Some(walk(at, &piece, libc::O_PATH | libc::O_DIRECTORY)?);
            piece.clear();
        }
        if !piece.is_empty() {
            piece.push(b'/');
        }
        piece.extend_from_slice(name);
    }
    if !piece.is_empty() && piece.len() + 1 + last.len() >= limit {
        let at = held.as_ref().map_or(dir, |f| f.as_fd());
        held = Some(walk(at, &piece, libc::O_PATH | libc::O_DIRECTORY)?);
        piece.clear();
    }
    if !piece.is_empty() {
        piece.push(b'/');
    }
    piece.extend_from_slice(last);
    let at = held.as_ref().map_or(dir, |f| f.as_fd());
    walk(at, &piece, flags)
}

/// One walk of `path` (relative, shorter than PATH_MAX) beneath `dir`.
fn walk(dir: BorrowedFd<'_>, path: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let c = c_string(path)?;
        let how = OpenHow {
            flags: flags as u64,
            mode: 0,
            resolve: libc::RESOLVE_BENEATH
                | libc::RESOLVE_NO_SYMLINKS
                | libc::RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: `c` is a valid C string and `how` a valid open_how of the size passed, both
        // alive for the call; the kernel only reads them.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                std::ptr::from_ref(&how),
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            return owned(fd as libc::c_int);
        }
        let e = io::Error::last_os_error();
        // EPERM: a seccomp filter that refuses what it does not know.
        if !matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
            return Err(e);
        }
        if e.raw_os_error() == Some(libc::EPERM) && probe_openat2_works() {
            return Err(e);
        }
        NO_OPENAT2.store(true, Ordering::Relaxed);
    }
    // One name at a time, no symlink followed, never `..` (the components are plain names).
    let mut cur: Option<OwnedFd> = None;
    let names: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|n| !n.is_empty())
        .collect();
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let f = if last {
            flags
        } else {
            libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW
        };
        let c = c_string(name)?;
        let at = cur.as_ref().map_or(dir.as_raw_fd(), AsRawFd::as_raw_fd);
        // SAFETY: `c` is a valid C string; `at` is a live descriptor.
        let next = owned(unsafe { libc::openat(at, c.as_ptr(), f) })?;
        if !last {
            // As openat2 answers: ELOOP for a symlink on the way, ENOTDIR for another file.
            match kind(&next)? {
                libc::S_IFDIR => {}
                libc::S_IFLNK => return Err(io::Error::from_raw_os_error(libc::ELOOP)),
                _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            }
        }
        cur = Some(next);
    }
    cur.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Whether openat2 works at all (an EPERM from it is then the object's answer, not a filter's).
fn probe_openat2_works() -> bool {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: 0,
    };
    // SAFETY: as in `walk`, with a static string.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            std::ptr::from_ref(&how),
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        drop(owned(fd as libc::c_int));
        return true;
    }
    false
}

/// A kernel file handle (`struct file_handle`: its size, its type, then its bytes) and the id
/// of the mount it belongs to: the identity of an inode that outlives any name and needs no
/// descriptor, reopened with [`open_by_handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    raw: Box<[u8]>,
    /// The mount id name_to_handle_at(2) gave.
    pub mount: i32,
}

/// MAX_HANDLE_SZ of the kernel.
const MAX_HANDLE: usize = 128;

/// The handle of `name` in `dir` (of `dir` itself when `name` is empty), not following a final
/// symlink.
///
/// # Errors
/// EOPNOTSUPP where the filesystem has no handles; the OS error otherwise.
pub fn name_to_handle(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Handle> {
    let c = c_string(name)?;
    let mut raw = vec![0u8; 8 + MAX_HANDLE];
    raw[..4].copy_from_slice(&(MAX_HANDLE as u32).to_ne_bytes());
    let mut mount: libc::c_int = 0;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `raw` is a struct file_handle with room for MAX_HANDLE bytes, as its first field
    // says; `c` and `mount` are valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            dir.as_raw_fd(),
            c.as_ptr(),
            raw.as_mut_ptr(),
            std::ptr::from_mut(&mut mount),
            flags,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    raw.truncate(8 + len.min(MAX_HANDLE));
    Ok(Handle {
        raw: raw.into_boxed_slice(),
        mount,
    })
}

/// Opens the inode `h` names with `flags` (never following a symlink), from any descriptor
/// `mount` on its mount (a real open, not `O_PATH`). Needs CAP_DAC_READ_SEARCH.
///
/// # Errors
/// ESTALE when the inode is gone; EPERM without the capability; the OS error otherwise.
pub fn open_by_handle(mount: BorrowedFd<'_>, h: &Handle, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: `h.raw` is a struct file_handle filled by the kernel; it only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            h.raw.as_ptr(),
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    owned(fd as libc::c_int)
}

/// How many descriptors this process may hold: the soft limit, raised to the hard one first
/// (a daemon's descriptors are its working set; the soft limit's default is for shells).
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill and setrlimit to read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

fn fstat(fd: &impl AsRawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a buffer of the size fstat writes; `fd` is a live descriptor.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded and filled `st`.
    Ok(unsafe { st.assume_init() })
}

fn kind(fd: &impl AsRawFd) -> io::Result<libc::mode_t> {
    Ok(fstat(fd)?.st_mode & libc::S_IFMT)
}

/// fstatat(2) of `name` in `dir` (of `dir` itself when `name` is empty), following a final
/// symlink only with `follow`.
///
/// # Errors
/// The OS error.
pub fn stat_at(dir: BorrowedFd<'_>, name: &[u8], follow: bool) -> io::Result<libc::stat> {
    let c = c_string(name)?;
    let mut flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `c` is a valid C string, `st` a buffer of the size fstatat writes, `dir` live.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded and filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// openat(2) of the one name `name` in `dir` (close-on-exec always).
///
/// # Errors
/// The OS error.
pub fn open_at(dir: BorrowedFd<'_>, name: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let c = c_string(name)?;
    // SAFETY: `c` is a valid C string; `dir` is a live descriptor.
    owned(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })
}

/// unlinkat(2) of the one name `name` in `dir` (`AT_REMOVEDIR` with `dir_too`).
///
/// # Errors
/// The OS error.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &[u8], dir_too: bool) -> io::Result<()> {
    let c = c_string(name)?;
    let flags = if dir_too { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `c` is a valid C string; `dir` is a live descriptor.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The (device, inode) of the object `fd` is open on.
///
/// # Errors
/// The OS error of fstat.
pub fn identity(fd: &impl AsRawFd) -> io::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_beneath_and_refuses_symlinks_and_escapes() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(t.path().join("a/b")).expect("mkdir");
        std::fs::write(t.path().join("a/b/f"), "x").expect("write");
        std::os::unix::fs::symlink("b", t.path().join("a/l")).expect("symlink");
        std::os::unix::fs::symlink("/etc", t.path().join("a/abs")).expect("symlink");
        let root = open_root(t.path()).expect("root");
        let f = open_beneath(root.as_fd(), Path::new("a/b/f"), libc::O_RDONLY).expect("file");
        assert_eq!(std::fs::read(fd_path(&f)).expect("read"), b"x");
        for (rel, errno) in [
            ("a/l/f", libc::ELOOP),
            ("a/abs/passwd", libc::ELOOP),
            ("../x", libc::EINVAL),
            ("/etc", libc::EINVAL),
        ] {
            let e = open_beneath(root.as_fd(), Path::new(rel), libc::O_RDONLY).expect_err(rel);
            assert_eq!(e.raw_os_error(), Some(errno), "{rel}: {e}");
        }
        // A final symlink opens as itself with O_PATH, and is refused otherwise.
        let l = open_beneath(root.as_fd(), Path::new("a/l"), libc::O_PATH).expect("link");
        let m = std::fs::symlink_metadata(t.path().join("a/l")).expect("lstat");
        assert_eq!(
            identity(&l).expect("fstat"),
            (
                std::os::unix::fs::MetadataExt::dev(&m),
                std::os::unix::fs::MetadataExt::ino(&m)
            )
        );
        let e = open_beneath(root.as_fd(), Path::new("a/l"), libc::O_RDONLY).expect_err("l");
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        // The same walk one name at a time.
        NO_OPENAT2.store(true, Ordering::Relaxed);
        let f = open_beneath(root.as_fd(), Path::new("a/b/f"), libc::O_RDONLY);
        let e = open_beneath(root.as_fd(), Path::new("a/l/f"), libc::O_RDONLY);
        NO_OPENAT2.store(false, Ordering::Relaxed);
        assert!(f.is_ok());
        assert_eq!(e.expect_err("fallback").raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn handles_reopen_the_inode_after_its_name_is_gone() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("f"), "first").expect("write");
        let dir = open_root(t.path()).expect("dir");
        let h = match name_to_handle(dir.as_fd(), b"f") {
            Ok(h) => h,
            Err(e) => {
                eprintln!("SKIPPED: handles: {e} on this filesystem");
                return;
            }
        };
        let f = open_beneath(dir.as_fd(), Path::new("f"), libc::O_RDONLY).expect("keep");
        std::fs::rename(t.path().join("f"), t.path().join("g")).expect("rename");
        std::fs::write(t.path().join("f"), "second").expect("write");
        // A real descriptor on the mount (open_by_handle_at refuses O_PATH ones).
        let mount = std::fs::File::open(t.path()).expect("open dir");
        match open_by_handle(mount.as_fd(), &h, libc::O_RDONLY) {
            Ok(again) => {
                assert_eq!(identity(&again).expect("a"), identity(&f).expect("b"));
                assert_eq!(std::fs::read(fd_path(&again)).expect("read"), b"first");
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("SKIPPED: open_by_handle: needs CAP_DAC_READ_SEARCH");
            }
            Err(e) => panic!("open_by_handle: {e}"),
        }
    }

    #[test]
    fn walks_paths_longer_than_path_max() {
        let t = tempfile::tempdir().expect("tempdir");
        let name = "d".repeat(200);
        let mut rel = PathBuf::new();
        for _ in 0..25 {
            rel.push(&name);
        }
        let root = open_root(t.path()).expect("root");
        let mut cur = root.try_clone().expect("dup");
        for _ in 0..25 {
            let c = c_string(name.as_bytes()).expect("name");
            // SAFETY: valid C string, live descriptor.
            assert_eq!(
                unsafe { libc::mkdirat(cur.as_raw_fd(), c.as_ptr(), 0o755) },
                0
            );
            cur = open_beneath(cur.as_fd(), Path::new(&name), libc::O_PATH).expect("step");
        }
        assert!(rel.as_os_str().len() > libc::PATH_MAX as usize);
        let deep =
            open_beneath(root.as_fd(), &rel, libc::O_PATH | libc::O_DIRECTORY).expect("long walk");
        assert_eq!(identity(&deep).expect("a"), identity(&cur).expect("b"));
    }
}
