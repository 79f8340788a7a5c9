//! Mounting and unmounting through `fusermount3`, the setuid helper of fuse3 that mounts FUSE
//! filesystems for users without CAP_SYS_ADMIN.
//!
//! The protocol (libfuse's `fuse_mount_fusermount`): create a unix socket pair, run
//! `fusermount3 -o OPTIONS -- MOUNTPOINT` with one end's number in `_FUSE_COMMFD`; fusermount3
//! opens `/dev/fuse`, mounts it and sends the descriptor back as SCM_RIGHTS, then exits. If it
//! sends nothing, it refused, and says why on its stderr. Note that fusermount3 opens `/dev/fuse`
//! with the *caller's* file permissions (it drops to the user's fsuid first), so it cannot help
//! a user who may not open `/dev/fuse`; it only lends the right to call mount(2).
//!
//! This is the only module of the crate with `unsafe` code: the socket's ancillary data, the
//! descriptor handed to the helper, and one poll.

#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// The helper's name, looked up on PATH.
pub(crate) const PROGRAM: &str = "fusermount3";

/// Why fusermount3 did not mount.
#[derive(Debug)]
pub(crate) enum HelperError {
    /// It could not be run (not installed: `ErrorKind::NotFound`).
    Spawn(io::Error),
    /// Talking to it failed.
    Io(io::Error),
    /// It ran and refused; its stderr says why.
    Refused { status: ExitStatus, stderr: String },
}

/// Runs `fusermount3 -o options -- mountpoint` and returns the `/dev/fuse` descriptor it mounted.
/// The descriptor is close-on-exec.
///
/// # Errors
/// [`HelperError`]: not installed, refused (with its stderr), or a socket error.
pub(crate) fn mount(mountpoint: &Path, options: &OsStr) -> Result<OwnedFd, HelperError> {
    let (ours, theirs) = UnixStream::pair().map_err(HelperError::Io)?;
    let theirs_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(PROGRAM);
    cmd.arg("-o")
        .arg(options)
        .arg("--")
        .arg(mountpoint)
        .env("_FUSE_COMMFD", theirs_fd.to_string())
        // Its messages are matched below and in MountError's hints: keep them untranslated.
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        // A daemon's stdout is the pipe its parent reads "ready" from: keep the helper off it.
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it makes one fcntl(2) call on a descriptor number and allocates nothing.
    // `theirs` stays open in the parent until after the spawn, so the number is valid in the child.
    unsafe {
        cmd.pre_exec(move || inheritable(theirs_fd));
    }
    let child = cmd.spawn().map_err(HelperError::Spawn)?;
    // Our copy of the helper's end must go, or we would never see EOF if it exits silently.
    drop(theirs);
    let received = receive_fd(&ours);
    drop(ours);
    let out = child.wait_with_output().map_err(HelperError::Io)?;
    let stderr = said(&out.stderr);
    match received {
        Ok(Some(fd)) => {
            if !stderr.is_empty() {
                log::warn!("{PROGRAM}: {stderr}");
            }
            Ok(fd)
        }
        Ok(None) => Err(HelperError::Refused {
            status: out.status,
            stderr,
        }),
        Err(e) => {
            log::debug!("{PROGRAM} ({}): {stderr}", out.status);
            Err(HelperError::Io(e))
        }
    }
}

/// Runs `fusermount3 -u [-z] -- mountpoint`. Its refusals come back as the errno a root
/// umount2(2) would have given where it says one (EBUSY when busy, EINVAL when nothing of this
/// user's is mounted there, EPERM when something else is mounted there); otherwise its own words.
///
/// # Errors
/// As above, or the error running it (not installed: `ErrorKind::NotFound`, said in the message).
pub(crate) fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    let mut cmd = Command::new(PROGRAM);
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd
        .arg("--")
        .arg(mountpoint)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {PROGRAM} ({e}): install fuse3 (`apt-get install fuse3`)"),
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = said(&out.stderr);
    log::debug!("{PROGRAM} -u: {stderr}");
    let errno = if stderr.contains("Device or resource busy") {
        Some(libc::EBUSY)
    } else if stderr.contains("not found in") {
        // fusermount3 found no FUSE mount of this user's there: another's, or none.
        Some(
            if crate::mount::mounted_types_at(&absolute(mountpoint)).is_empty() {
                libc::EINVAL
            } else {
                libc::EPERM
            },
        )
    } else {
        None
    };
    Err(match errno {
        Some(n) => io::Error::from_raw_os_error(n),
        None if stderr.is_empty() => io::Error::other(format!("{PROGRAM} failed ({})", out.status)),
        None => io::Error::other(format!("{PROGRAM}: {stderr}")),
    })
}

/// `path` made absolute as mountinfo shows it: its parent resolved, its last component kept (a
/// FUSE mountpoint of another user cannot be resolved: stat on it is denied).
fn absolute(path: &Path) -> std::path::PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(abs),
        _ => abs,
    }
}

/// fusermount3's stderr as one line: its lines joined with "; ", each without the
/// `fusermount3: ` it starts with.
fn said(stderr: &[u8]) -> String {
    let prefix = format!("{PROGRAM}: ");
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether the FUSE connection behind `fd` is still up: false once it was unmounted (or aborted),
/// when the kernel reports POLLERR on the device.
pub(crate) fn connected(fd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid, writable pollfd and nfds is 1; a zero timeout never blocks.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r >= 0 {
            return r == 0 || p.revents & libc::POLLERR == 0;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // Cannot tell: say connected, so that an unmount is attempted rather than skipped.
            return true;
        }
    }
}

/// Clears FD_CLOEXEC on `fd` (in the helper's child, before exec).
fn inheritable(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with F_SETFD takes an integer argument and touches no memory of ours.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets FD_CLOEXEC on `fd`.
fn close_on_exec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl with F_SETFD takes an integer argument and touches no memory of ours.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Received descriptors are close-on-exec from the start where the OS allows.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
const RECV_FLAGS: libc::c_int = 0;

/// Receives one descriptor sent with SCM_RIGHTS on `sock`; `None` when the peer closed without
/// sending one. The descriptor is close-on-exec; any beyond the first are closed.
fn receive_fd(sock: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // Room for a few descriptors' control message, aligned for cmsghdr (u64 covers its size_t).
    let mut control = [0u64; 8];
    let control_len = std::mem::size_of_val(&control);
    // SAFETY: msghdr is plain data for which all zeroes is a valid value (null pointers, zero
    // lengths); some targets have private padding fields, so it cannot be built field by field.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control_len as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (one writable byte) and `control` (control_len writable
        // bytes), all of which outlive the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, RECV_FLAGS) };
        if n >= 0 {
            break n;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    // SAFETY: after a successful recvmsg, msg_control/msg_controllen describe control messages the
    // kernel wrote into `control`; CMSG_FIRSTHDR/CMSG_NXTHDR stay within msg_controllen and
    // return null at the end. For SCM_RIGHTS the data holds (cmsg_len - CMSG_LEN(0)) / 4 ints,
    // each a descriptor now open in this process that nobody else owns; they are read unaligned
    // because CMSG_DATA promises no alignment for int.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                let bytes = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..bytes / std::mem::size_of::<libc::c_int>() {
                    let fd = data.add(i).read_unaligned();
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{PROGRAM} sent more control data than expected"),
        ));
    }
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    let mut fds = fds.into_iter();
    match fds.next() {
        Some(fd) => {
            if RECV_FLAGS == 0 {
                close_on_exec(&fd)?;
            }
            Ok(Some(fd))
        }
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{PROGRAM} answered without a /dev/fuse descriptor"),
        )),
    }
}

/// `fusermount3 -o` syntax for one option value: `\` and `,` escaped (fusermount3 unescapes
/// them in `fsname=` and `subtype=`).
pub(crate) fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || c == ',' {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Joins options with commas for `-o`.
pub(crate) fn join(options: &[String]) -> OsString {
    OsString::from(options.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn escape_protects_commas_and_backslashes() {
        assert_eq!(escape("redirfs:/a,b\\c.yaml"), "redirfs:/a\\,b\\\\c.yaml");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn receive_fd_takes_a_descriptor_passed_with_scm_rights() {
        // Sent the way fusermount3 sends it: one byte, one int of SCM_RIGHTS.
        let (a, b) = UnixStream::pair().expect("pair");
        let (mut inner_a, inner_b) = UnixStream::pair().expect("pair");
        send_fd(&b, inner_b.as_fd());
        drop(inner_b);
        let got = receive_fd(&a).expect("recvmsg").expect("a descriptor");
        let mut passed = UnixStream::from(got);
        passed
            .write_all(b"x")
            .expect("write through the received descriptor");
        let mut buf = [0u8; 1];
        inner_a.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"x");
    }

    #[test]
    fn receive_fd_is_none_when_the_peer_closes() {
        let (a, b) = UnixStream::pair().expect("pair");
        drop(b);
        assert!(receive_fd(&a).expect("recvmsg").is_none());
    }

    fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>) {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 8];
        // SAFETY: as in receive_fd; the header written lies within `control`, which
        // CMSG_SPACE(4) <= 64 bytes fits.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            libc::CMSG_DATA(c)
                .cast::<libc::c_int>()
                .write_unaligned(fd.as_raw_fd());
            assert_eq!(libc::sendmsg(sock.as_raw_fd(), &msg, 0), 1);
        }
    }

    #[test]
    fn said_is_one_line_without_the_program_name() {
        assert_eq!(
            said(b"fusermount3: unsafe option dev ignored\nfusermount3: mount failed: Operation not permitted\n"),
            "unsafe option dev ignored; mount failed: Operation not permitted"
        );
    }

    #[test]
    fn connected_is_true_for_an_idle_descriptor() {
        let (a, _b) = UnixStream::pair().expect("pair");
        assert!(connected(a.as_fd()));
    }
}
