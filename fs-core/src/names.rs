//! Names and path text, the rules every layer shares and that need nothing else of fs-core: how
//! names compare ([`NameCase`], [`fold_case`]), a name as a path component, and the lexical
//! rules for path text (Windows drive letters and absolute forms, `.` and `..` removed without
//! touching the filesystem).
//!
//! This module imports nothing from the rest of the crate, so `decl`, `table` and the overlay can
//! all depend on it without depending on each other.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

/// How names compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameCase {
    /// Byte for byte (Linux, macOS).
    #[default]
    Sensitive,
    /// Case-insensitive, case-preserving (Windows).
    Insensitive,
}

impl NameCase {
    /// How this platform's mounts compare names: WinFsp's case-insensitively, FUSE's byte for
    /// byte (on macOS too, whatever the volume beneath does).
    pub const fn host() -> NameCase {
        if cfg!(windows) {
            NameCase::Insensitive
        } else {
            NameCase::Sensitive
        }
    }
}

/// Case folding for case-insensitive names: ASCII fast path, Unicode lower case otherwise.
pub fn fold_case(name: &[u8]) -> Cow<'_, [u8]> {
    if name.is_ascii() {
        if name.iter().any(u8::is_ascii_uppercase) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        }
    } else {
        match std::str::from_utf8(name) {
            Ok(s) => Cow::Owned(s.to_lowercase().into_bytes()),
            Err(_) => Cow::Borrowed(name),
        }
    }
}

/// A name as a path component.
#[cfg(unix)]
pub fn component_path(name: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(name))
}

/// A name as a path component (names reach Windows as UTF-8).
#[cfg(not(unix))]
pub fn component_path(name: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(name).into_owned())
}

/// `L:` or `L:\` or `L:/`: a drive letter mountpoint.
pub fn drive_letter(text: &str) -> Option<char> {
    let mut chars = text.chars();
    let c = chars.next()?;
    if !c.is_ascii_alphabetic() || chars.next() != Some(':') {
        return None;
    }
    match chars.as_str() {
        "" | "\\" | "/" => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// `C:\...`, `C:/...` or `\\server\share`: absolute on Windows.
pub fn is_windows_absolute(text: &str) -> bool {
    let b = text.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || text.starts_with("\\\\")
}

/// Whether `text` is an absolute path that [`normalize_lexically`] leaves as it is: names after
/// single `/`s, none of them `.` or `..`. (Most targets are; they skip building a path twice.)
pub(crate) fn is_normal_absolute(text: &str) -> bool {
    cfg!(unix)
        && text.len() > 1
        && text.starts_with('/')
        && text
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Removes `.` and resolves `..` without touching the filesystem.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}
