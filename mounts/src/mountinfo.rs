//! What the kernel says is mounted where, from `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

/// The filesystem type of a redirfs mount.
pub const FSTYPE: &str = "fuse.redirfs";

/// One line of mountinfo.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// Its type, e.g. `ext4` or `fuse.redirfs`.
    pub fstype: String,
    /// Its source; for redirfs `redirfs:DECLARATION`.
    pub source: String,
}

impl Mount {
    /// Whether this is a redirfs mount.
    pub fn is_redirfs(&self) -> bool {
        self.fstype == FSTYPE
    }

    /// The declaration a redirfs mount serves.
    pub fn declaration(&self) -> Option<PathBuf> {
        self.source.strip_prefix("redirfs:").map(PathBuf::from)
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape(s: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Every mount this process sees, in mount order (the last at a path is the one on top).
pub fn all() -> Vec<Mount> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mountpoint = unescape(left.split(' ').nth(4)?);
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = unescape(r.next()?).to_string_lossy().into_owned();
            Some(Mount {
                mountpoint,
                fstype,
                source,
            })
        })
        .collect()
}

/// The mount on top at exactly `mp`.
pub fn at(mp: &Path) -> Option<Mount> {
    all().into_iter().rev().find(|m| m.mountpoint == mp)
}

/// Whether the mount at `mp` is one whose daemon died ("transport endpoint is not connected").
pub fn is_dead(mp: &Path) -> bool {
    std::fs::symlink_metadata(mp).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
}
