//! Where daemons keep their control sockets and logs.
//!
//! The control channel is a unix socket per mount in a directory only its owner can enter
//! (`$XDG_RUNTIME_DIR/redirfs`, `/run/redirfs` for root, else `/tmp/redirfs-UID`, mode 0700), so
//! no user can see or change another user's mount. The daemon also checks the peer's uid.

use std::path::{Path, PathBuf};

/// The runtime directory of this user.
pub fn dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = set("REDIRFS_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = set("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("redirfs");
    }
    if fs_core::sys::geteuid() == 0 {
        PathBuf::from("/run/redirfs")
    } else {
        std::env::temp_dir().join(format!("redirfs-{}", fs_core::sys::geteuid()))
    }
}

/// Creates the runtime directory, private to this user.
///
/// # Errors
/// The I/O error.
pub fn ensure_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let d = dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)?;
    let meta = std::fs::metadata(&d)?;
    if meta.uid() != fs_core::sys::geteuid() {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user; set REDIRFS_RUNTIME_DIR",
            d.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(d)
}

/// A file-name-safe id for a mountpoint.
pub fn id(mountpoint: &Path) -> String {
    let name: String = mountpoint
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.trim_start_matches('_').to_string()
}

/// The control socket of the mount at `mountpoint`.
pub fn socket(mountpoint: &Path) -> PathBuf {
    dir().join(format!("{}.sock", id(mountpoint)))
}

/// The log of a background daemon for `mountpoint`.
pub fn log(mountpoint: &Path) -> PathBuf {
    dir().join(format!("{}.log", id(mountpoint)))
}
