//! Acting as the caller: a root daemon that serves other users (`allow_other`) runs each request
//! that creates, changes or opens an object with the caller's filesystem user and group ids and
//! supplementary groups on the worker thread, so the real filesystem makes every permission
//! decision (sticky and set-group-ID directories, a rename onto an entry's target, a file swapped
//! for a symlink to one the caller may not touch) and new objects are born the caller's, with no
//! window between creating and chowning.
//!
//! The switch is per thread: raw `setfsuid`, `setfsgid` and `setgroups` system calls, not the C
//! library's, which would change every thread of the process. Changing the filesystem user id
//! from 0 clears the filesystem capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN, CAP_MKNOD,
//! ...) from the thread's effective set, and changing it back restores them.
//!
//! Supplementary groups cost a read of `/proc/PID/status`, so a request first runs with none: only
//! when that fails with EACCES or EPERM (and so did nothing) is it run again with the caller's
//! groups. A daemon that is not root acts as its own user and switches nothing.

#![allow(unsafe_code)]

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Who a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process (thread) id, for its supplementary groups.
    pub pid: u32,
}

/// Whether this process switches to callers' credentials: it runs as root.
pub fn switching() -> bool {
    if cfg!(not(target_os = "linux")) {
        return false;
    }
    static ROOT: OnceLock<bool> = OnceLock::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() } == 0)
}

/// The supplementary groups of `pid`, from `/proc/PID/status`; empty when it cannot be read (the
/// process is gone: what it asked no longer matters).
pub fn groups_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
use linux::{own_groups, set_fsgid, set_fsuid, set_groups};

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::OnceLock;

    pub(super) fn set_fsuid(uid: u32) {
        // SAFETY: setfsuid takes a plain integer and only changes this thread's credentials.
        unsafe { libc::syscall(libc::SYS_setfsuid, uid as libc::c_long) };
    }

    pub(super) fn set_fsgid(gid: u32) {
        // SAFETY: setfsgid takes a plain integer and only changes this thread's credentials.
        unsafe { libc::syscall(libc::SYS_setfsgid, gid as libc::c_long) };
    }

    /// The daemon's own supplementary groups, given back after each switch.
    pub(super) fn own_groups() -> &'static [u32] {
        static OWN: OnceLock<Vec<u32>> = OnceLock::new();
        OWN.get_or_init(|| {
            let mut groups = vec![0 as libc::gid_t; 256];
            // SAFETY: the buffer holds `groups.len()` gid_t values, which getgroups fills.
            let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
            groups.truncate(usize::try_from(n).unwrap_or(0));
            groups
        })
    }

    pub(super) fn set_groups(groups: &[u32]) -> std::io::Result<()> {
        // SAFETY: the pointer and length describe `groups`, a valid slice of gid_t-sized integers,
        // which the kernel only reads; the raw system call changes this thread only.
        let r = unsafe {
            libc::syscall(
                libc::SYS_setgroups,
                groups.len() as libc::c_long,
                groups.as_ptr() as libc::c_long,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Elsewhere (macOS) the daemon acts as itself: these do nothing, and [`switching`] is false.
#[cfg(not(target_os = "linux"))]
mod other {
    pub(super) fn own_groups() -> &'static [u32] {
        &[]
    }
    pub(super) fn set_fsuid(_: u32) {}
    pub(super) fn set_fsgid(_: u32) {}
    pub(super) fn set_groups(_: &[u32]) -> std::io::Result<()> {
        Ok(())
    }
}
#[cfg(not(target_os = "linux"))]
use other::{own_groups, set_fsgid, set_fsuid, set_groups};

thread_local! {
    /// Whom this thread acts as now, if not itself.
    static ACTING: std::cell::RefCell<Option<(Caller, Vec<u32>)>> = const { std::cell::RefCell::new(None) };
}

/// The thread runs as `caller` (filesystem ids and `groups`) until this is dropped, which gives
/// the thread back its own root credentials, also when the request panics.
#[derive(Debug)]
struct As;

impl As {
    fn switch(caller: Caller, groups: &[u32]) -> Result<As> {
        own_groups();
        become_(caller, groups)?;
        ACTING.with(|a| *a.borrow_mut() = Some((caller, groups.to_vec())));
        Ok(As)
    }
}

fn become_(caller: Caller, groups: &[u32]) -> Result<()> {
    // Groups and group id first: once the user id is not 0, the thread may no longer set them.
    set_groups(groups).map_err(Error::Os)?;
    set_fsgid(caller.gid);
    set_fsuid(caller.uid);
    Ok(())
}

fn back_to_self() {
    set_fsuid(0);
    set_fsgid(0);
    if let Err(e) = set_groups(own_groups()) {
        log::error!("cannot give a worker thread its own groups back: {e}");
    }
}

impl Drop for As {
    fn drop(&mut self) {
        back_to_self();
        ACTING.with(|a| *a.borrow_mut() = None);
    }
}

/// The user this thread acts as now, inside [`as_caller`]; `None` when it acts as itself (the
/// caller is root, or the daemon is not).
pub fn acting_uid() -> Option<u32> {
    ACTING.with(|a| a.borrow().as_ref().map(|(c, _)| c.uid))
}

/// Runs `op` as the daemon itself, inside a request that acts as its caller: for what the kernel
/// does with its own privilege on a local filesystem (dropping set-user-ID and set-group-ID after
/// a write or truncate by someone who may not change the file's mode).
pub fn as_daemon<T>(op: impl FnOnce() -> T) -> T {
    let acting = ACTING.with(|a| a.borrow().clone());
    let Some((caller, groups)) = acting else {
        return op();
    };
    back_to_self();
    let out = op();
    if let Err(e) = become_(caller, &groups) {
        log::error!("cannot act as uid {} again: {e}", caller.uid);
    }
    out
}

fn denied(r: &Result<impl Sized>) -> bool {
    matches!(r, Err(Error::Os(e)) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)))
}

/// Runs `op` with the credentials of `caller` when this daemon is root and the caller is not.
///
/// `op` may run twice: first without supplementary groups, then, when that was refused with
/// EACCES or EPERM and the caller has supplementary groups, with them. A refused system call
/// changes nothing, so `op` must be one whose refusal leaves nothing behind (or cleans up).
///
/// # Errors
/// What `op` returns, or the OS error of switching.
pub fn as_caller<T>(caller: Caller, op: impl Fn() -> Result<T>) -> Result<T> {
    if !switching() || caller.uid == 0 {
        return op();
    }
    let first = {
        let _as = As::switch(caller, &[])?;
        op()
    };
    if !denied(&first) {
        return first;
    }
    let groups = groups_of(caller.pid);
    if groups.iter().all(|&g| g == caller.gid) {
        return first;
    }
    let _as = As::switch(caller, &groups)?;
    op()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_groups_of_this_process() {
        let mine = groups_of(std::process::id());
        // SAFETY: getgroups with a zero size only counts.
        let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        assert_eq!(mine.len(), n as usize);
        assert!(groups_of(u32::MAX).is_empty());
    }

    #[test]
    fn acts_as_the_caller_and_comes_back() {
        if !switching() {
            eprintln!("SKIPPED: acts_as_the_caller_and_comes_back needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let caller = Caller {
            uid: 4321,
            gid: 4321,
            pid: std::process::id(),
        };
        // As uid 4321, a root 0755 directory refuses a new file...
        let refused = as_caller(caller, || {
            std::fs::write(dir.path().join("x"), "x").map_err(Error::Os)
        });
        assert!(
            matches!(&refused, Err(Error::Os(e)) if e.raw_os_error() == Some(libc::EACCES)),
            "{refused:?}"
        );
        // ...a 1777 one takes it, owned by the caller with no chown...
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .expect("chmod");
        as_caller(caller, || {
            std::fs::write(open.join("mine"), "x").map_err(Error::Os)
        })
        .expect("create as the caller");
        let meta = std::fs::metadata(open.join("mine")).expect("stat");
        assert_eq!(
            (
                std::os::unix::fs::MetadataExt::uid(&meta),
                std::os::unix::fs::MetadataExt::gid(&meta)
            ),
            (4321, 4321)
        );
        // ...and the thread is root again afterwards.
        std::fs::write(dir.path().join("root"), "x").expect("root again");
        let meta = std::fs::metadata(dir.path().join("root")).expect("stat");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    }
}
