//! Declarations: the YAML file a user writes, validated into a [`Declaration`].
//!
//! Data flow: text -> [`crate::yaml`] nodes (with positions) -> this module's checks, which collect
//! every problem at once -> a [`Declaration`] holding normalized, absolute values.
//!
//! This file is the model (what a declaration is, and loading one); `schema` reads the YAML
//! nodes against the format's keys and types, `relations` relates entries to each other
//! (duplicates, nesting, loops back into the mount) and `targets` gathers the facts about
//! targets on disk.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::hash::Hash;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Invalid, Severity};
use crate::names::{fold_case, is_normal_absolute, NameCase};
use crate::vpath::{VPath, VPathError};
use crate::yaml::{self, is_null, Loc, Node, Value};
use rustc_hash::FxHashMap;

mod relations;
mod schema;
mod targets;

use relations::*;
use schema::*;
use targets::*;
// Re-exported where they used to live, for the crates that name them through `decl`.
pub use crate::names::{drive_letter, is_windows_absolute, normalize_lexically};

/// The only declaration format version this build reads.
pub const FORMAT_VERSION: u64 = 1;

/// How a redirection shows in the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presentation {
    /// A native symbolic link whose text is the absolute target: the kernel follows it.
    Symlink,
    /// The entry is the target itself: everything beneath passes through to it.
    Transparent,
    /// A directory link: an NTFS junction on Windows, a directory symlink elsewhere.
    Junction,
}

impl Presentation {
    /// The spelling in a declaration.
    pub fn as_str(self) -> &'static str {
        match self {
            Presentation::Symlink => "symlink",
            Presentation::Transparent => "transparent",
            Presentation::Junction => "junction",
        }
    }

    /// Whether the kernel leaves the mount at this entry (so nothing can be nested beneath it).
    pub fn is_link(self) -> bool {
        matches!(self, Presentation::Symlink | Presentation::Junction)
    }
}

impl fmt::Display for Presentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entry does when its target is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnMissing {
    /// Show the entry anyway, as a link to the absent target (like a dangling symlink).
    Dangling,
    /// Leave the entry out of the mount until the target appears.
    Hide,
    /// Refuse to load the declaration.
    Error,
}

impl OnMissing {
    /// The spelling in a declaration.
    pub fn as_str(self) -> &'static str {
        match self {
            OnMissing::Dangling => "dangling",
            OnMissing::Hide => "hide",
            OnMissing::Error => "error",
        }
    }
}

impl fmt::Display for OnMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the overlay appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mountpoint {
    /// A directory (absolute).
    Dir(PathBuf),
    /// A Windows drive letter (`L:`), upper case.
    Drive(char),
}

impl fmt::Display for Mountpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mountpoint::Dir(p) => write!(f, "{}", p.display()),
            Mountpoint::Drive(c) => write!(f, "{c}:"),
        }
    }
}

/// Mount-wide options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Refuse every write through the mount.
    pub read_only: bool,
    /// Let users other than the one who mounted use the mount (permissions still apply).
    pub allow_other: bool,
}

/// One validated redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalized virtual path inside the mount.
    pub path: VPath,
    /// The absolute target, lexically normalized (symlinks in it are left for the kernel).
    pub target: PathBuf,
    /// How the entry shows.
    pub presentation: Presentation,
    /// What happens when the target is absent.
    pub on_missing: OnMissing,
    /// Refuse writes beneath this entry.
    pub read_only: bool,
    /// Where the entry starts in the file (its first key).
    pub loc: Loc,
}

/// A validated declaration.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// The declaration file, absolute.
    pub file: PathBuf,
    /// Where the overlay appears.
    pub mountpoint: Mountpoint,
    /// The directory whose own contents show through, if any.
    pub base: Option<PathBuf>,
    /// Mount-wide options.
    pub options: Options,
    /// The redirections, in file order.
    pub entries: Vec<Entry>,
    /// How the mount it was checked for compares names: with [`NameCase::Insensitive`], paths
    /// that differ only in case were refused as duplicates. Build its [`crate::Table`] with the
    /// same rule.
    pub case: NameCase,
    /// Warnings and notes found while validating.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a declaration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file was read and is invalid.
    Invalid(Invalid),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { file, source } => {
                write!(f, "cannot read {}: {source}", file.display())
            }
            LoadError::Invalid(inv) => inv.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Invalid(inv) => Some(inv),
        }
    }
}

/// Whether a FUSE filesystem is mounted exactly at `dir` now (Linux; elsewhere `false`).
fn fuse_mounted_at(dir: &Path) -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy().replace(' ', "\\040");
    text.lines().any(|l| {
        l.split_once(" - ").is_some_and(|(left, right)| {
            left.split(' ').nth(4) == Some(want.as_str()) && right.starts_with("fuse")
        })
    })
}

/// The largest declaration file read, in bytes: far above any real one (a million entries is
/// about 60 MiB of YAML), and a bound on what a wrong path such as
/// `/dev/zero` can make a daemon read.
pub const MAX_DECLARATION_BYTES: u64 = 64 << 20;

/// Reads a declaration file: a regular file of at most [`MAX_DECLARATION_BYTES`]. A FIFO, a
/// device or a directory is refused without blocking on it (it is opened non-blocking).
///
/// # Errors
/// The I/O error; `InvalidInput` for a file that is not regular or is too large.
pub fn read_declaration(file: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK);
    }
    let f = open.open(file)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}: a declaration must be a regular YAML file"),
        ));
    }
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is larger than {} MiB, the most a declaration may be",
                MAX_DECLARATION_BYTES >> 20
            ),
        )
    };
    if meta.len() > MAX_DECLARATION_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(MAX_DECLARATION_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_DECLARATION_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Reads and validates a declaration file for a mount of this platform ([`NameCase::host`]).
///
/// # Errors
/// [`LoadError::Io`] when the file cannot be read, [`LoadError::Invalid`] with every problem found.
pub fn load_file(file: &Path) -> Result<Declaration, LoadError> {
    load_file_for(file, NameCase::host())
}

/// Reads and validates a declaration file for a mount that compares names by `case`: a
/// declaration meant for Windows is checked with [`NameCase::Insensitive`] on any OS.
///
/// # Errors
/// [`LoadError::Io`] when the file cannot be read, [`LoadError::Invalid`] with every problem found.
pub fn load_file_for(file: &Path, case: NameCase) -> Result<Declaration, LoadError> {
    let abs = absolute(file).map_err(|source| LoadError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let bytes = read_declaration(&abs).map_err(|source| LoadError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() + 1;
            let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let mut d = Diagnostics::new(file, "");
            d.error(
                Loc { line, col },
                "the file is not valid UTF-8",
                "save the declaration as UTF-8 text",
            );
            return Err(LoadError::Invalid(Invalid {
                diagnostics: d.into_vec(),
            }));
        }
    };
    parse_str_for(file, &abs, &text, case).map_err(LoadError::Invalid)
}

/// Validates declaration `text` for a mount of this platform ([`NameCase::host`]). `shown` is the
/// file name used in messages; `file` its absolute path, against whose directory relative paths
/// resolve.
///
/// # Errors
/// Every problem found, when any is an error.
pub fn parse_str(shown: &Path, file: &Path, text: &str) -> Result<Declaration, Invalid> {
    parse_str_for(shown, file, text, NameCase::host())
}

/// [`parse_str`] for a mount that compares names by `case`.
///
/// # Errors
/// Every problem found, when any is an error.
pub fn parse_str_for(
    shown: &Path,
    file: &Path,
    text: &str,
    case: NameCase,
) -> Result<Declaration, Invalid> {
    let mut d = Diagnostics::new(shown, text);
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let decl = Checker {
        d: &mut d,
        dir,
        case,
    }
    .check(text, file);
    let has_errors = d.has_errors();
    let diagnostics = d.into_vec();
    match decl {
        Some(mut decl) if !has_errors => {
            decl.diagnostics = diagnostics;
            Ok(decl)
        }
        _ => Err(Invalid { diagnostics }),
    }
}

impl Declaration {
    /// Warnings among the diagnostics.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}
