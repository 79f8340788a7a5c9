//! Where daemons keep their control sockets and logs.
//!
//! The control channel is a unix socket per mount in a directory only its owner can enter
//! (`$XDG_RUNTIME_DIR/redirfs`, `/run/redirfs` for root, else `/tmp/redirfs-UID`, mode 0700), so
//! no user can see or change another user's mount. The daemon also checks the peer's uid.
//!
//! A daemon often runs as root, so nothing here follows a symlink or trusts a directory it did
//! not check: the runtime directory must be a real directory owned by this user that no group or
//! other user may write in (it is never chmod'ed into shape), every directory above it must be owned
//! by root or this user and not writable by others unless sticky, and the log is opened with
//! `O_NOFOLLOW` and checked to be this user's own regular file with one link.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The longest socket file name we use: `sockaddr_un` holds 108 bytes with the directory.
const MAX_NAME: usize = 64;

/// The runtime directory of this user.
///
/// `XDG_RUNTIME_DIR` counts only when it is a directory this user owns (so `sudo -E` does not
/// make root's daemon keep its files in a user's directory).
pub fn dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = set("REDIRFS_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    let me = fs_core::sys::geteuid();
    if let Some(d) = set("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir() && m.uid() == me) {
            return d.join("redirfs");
        }
    }
    if me == 0 {
        PathBuf::from("/run/redirfs")
    } else {
        std::env::temp_dir().join(format!("redirfs-{me}"))
    }
}

fn unsafe_dir(d: &Path, why: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "{}: {why}; redirfs keeps its sockets and logs in a directory only you can change: \
             set REDIRFS_RUNTIME_DIR to a new path (it is created mode 0700)",
            d.display()
        ),
    )
}

/// Creates the runtime directory, private to this user, or refuses one that is not.
///
/// # Errors
/// The I/O error, or `PermissionDenied` saying what is wrong with the directory.
pub fn ensure_dir() -> std::io::Result<PathBuf> {
    ensure_private(&dir())
}

/// Creates the log directory ([`log_dir`]) as [`ensure_dir`] does the runtime directory.
///
/// # Errors
/// As [`ensure_dir`].
pub fn ensure_log_dir() -> std::io::Result<PathBuf> {
    ensure_private(&log_dir())
}

/// Where background daemons log: `REDIRFS_LOG_DIR`; else the runtime directory when
/// `REDIRFS_RUNTIME_DIR` chooses it; else `/var/log/redirfs` for root (kept across reboots,
/// unlike `/run`); else the runtime directory.
pub fn log_dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = set("REDIRFS_LOG_DIR") {
        return PathBuf::from(d);
    }
    if set("REDIRFS_RUNTIME_DIR").is_none() && fs_core::sys::geteuid() == 0 {
        return PathBuf::from("/var/log/redirfs");
    }
    dir()
}

fn ensure_private(d: &Path) -> std::io::Result<PathBuf> {
    let d = d.to_path_buf();
    let me = fs_core::sys::geteuid();
    // Every directory above must be one no other user can rename entries in.
    let abs = std::path::absolute(&d)?;
    for up in abs.ancestors().skip(1) {
        let m = std::fs::metadata(up)?;
        // Group-writable is accepted above (Ubuntu's /var/log is root:syslog 0775).
        let open = m.mode() & 0o002 != 0 && m.mode() & 0o1000 == 0;
        if (m.uid() != 0 && m.uid() != me) || open {
            return Err(unsafe_dir(
                &d,
                format!(
                    "{} (owner uid {}, mode {:o}) lets another user replace what is in it",
                    up.display(),
                    m.uid(),
                    m.mode() & 0o7777
                ),
            ));
        }
    }
    match std::fs::DirBuilder::new().mode(0o700).create(&abs) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Missing parents (a fresh REDIRFS_RUNTIME_DIR): create them private too.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&abs)?;
        }
        Err(e) => return Err(e),
    }
    // lstat: mkdir does not follow a symlink planted at the name, and neither does this.
    let m = std::fs::symlink_metadata(&abs)?;
    if !m.is_dir() {
        return Err(unsafe_dir(&d, "is not a directory (a symlink?)".into()));
    }
    if m.uid() != me {
        return Err(unsafe_dir(
            &d,
            format!("belongs to uid {}, not to you (uid {me})", m.uid()),
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(unsafe_dir(
            &d,
            format!(
                "is open to other users (mode {:o}: others may write in it; make it 700)",
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(abs)
}

/// Opens (creating, mode 0600) a file in the runtime directory for appending, without following
/// a symlink, and only if it is this user's own regular file with a single link.
///
/// # Errors
/// The I/O error, or `PermissionDenied` for a file that is not this user's.
pub fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() || m.uid() != fs_core::sys::geteuid() || m.nlink() != 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private log file of yours (a regular file you own, one link): remove it",
                path.display()
            ),
        ));
    }
    Ok(f)
}

/// A file-name-safe id for a mountpoint, one to one: letters, digits, `-` and `.` stay, `/`
/// becomes `_`, and any other byte `%XX`, so `/a/c_d` (`a_c%5Fd`) and `/a/c/d` (`a_c_d`)
/// differ. A name too long for a socket address keeps its start and ends in a hash of the whole.
pub fn id(mountpoint: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = mountpoint.as_os_str().as_bytes();
    let trimmed = bytes.strip_prefix(b"/").unwrap_or(bytes);
    let mut name = String::new();
    for &b in trimmed {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' => name.push(char::from(b)),
            b'/' => name.push('_'),
            _ => name.push_str(&format!("%{b:02X}")),
        }
    }
    if name.len() > MAX_NAME {
        // FNV-1a: stable across builds, unlike std's hasher.
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let mut cut = MAX_NAME - 17;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = format!("{}~{hash:016x}", &name[..cut]);
    }
    name
}

/// The mountpoint an [`id`] names, when it is not a hashed one.
pub fn mountpoint_of(id: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    if id.contains('~') {
        return None;
    }
    let mut out = vec![b'/'];
    let mut bytes = id.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'_' => out.push(b'/'),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let s = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(s, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// The control socket of the mount at `mountpoint`.
pub fn socket(mountpoint: &Path) -> PathBuf {
    dir().join(format!("{}.sock", id(mountpoint)))
}

/// The log of a background daemon for `mountpoint`.
pub fn log(mountpoint: &Path) -> PathBuf {
    log_dir().join(format!("{}.log", id(mountpoint)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_to_one_and_decode() {
        assert_ne!(id(Path::new("/a/c_d")), id(Path::new("/a/c/d")));
        assert_eq!(id(Path::new("/opt/ledger")), "opt_ledger");
        for p in ["/a/c_d", "/a/c/d", "/x y/%z", "/opt/l.e-d"] {
            assert_eq!(mountpoint_of(&id(Path::new(p))), Some(PathBuf::from(p)));
        }
        let long = format!("/{}", "d".repeat(300));
        assert!(id(Path::new(&long)).len() <= MAX_NAME);
        assert_eq!(mountpoint_of(&id(Path::new(&long))), None);
    }
}
