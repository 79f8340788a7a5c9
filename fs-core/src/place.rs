//! The decision layer: what a virtual path is, and what each operation may do to it.
//!
//! Every reader of the redirection table asks here: the Unix overlay, the Windows backend and
//! `explain`. [`classify`] says what a path stands for ([`Place`]); the functions after it say
//! whether an operation is allowed and, when it is, where it acts ([`removal`], [`creation`],
//! [`writable`], [`rename`], [`hard_link`]). Backends keep only execution: descriptors and system
//! calls on Unix, handle-relative `NtCreateFile` on Windows. What a decision needs of the real
//! world (does a target exist, is it a directory, may this name exist) it asks a [`Host`], so the
//! rules are the same on every platform and are tested without touching a disk.
//!
//! The rules, in one place:
//! - A `symlink` or `junction` entry is a link to its target. A `transparent` entry is its target;
//!   when the target is absent it shows as a link to where the target should be (`on_missing:
//!   dangling` or `error`), or not at all (`hide`). "Absent" follows links: a target that is a
//!   dangling symlink is absent.
//! - A directory that entries are declared beneath, and that neither the base nor a target
//!   holds, is synthesized, read-only ([`Place::Synthetic`]).
//! - Declared names (entries, and the directories they are nested in) cannot be removed, renamed
//!   or replaced through the mount ([`Error::DeclaredEntry`], logged with the declaration's line):
//!   removing a redirection never touches its target's data. The one exception is an editor's
//!   atomic save: renaming a file onto a `transparent` file entry replaces the target's file and
//!   keeps the redirection ([`RenamePlan::ReplaceTarget`]).
//! - Renames and hard links stay inside one tree (the base, or one transparent entry):
//!   [`Error::CrossDevice`] otherwise, so programs copy.
//! - Read-only mounts and entries refuse every change ([`Error::ReadOnly`]), and so do synthetic
//!   directories.

use std::path::{Path, PathBuf};

use crate::decl::{Entry, OnMissing};
use crate::error::Error;
use crate::table::{Dir, Resolved, Table};

/// One component of a virtual path, as a backend holds it.
pub trait Name {
    /// Its bytes (UTF-8 on Windows).
    fn bytes(&self) -> &[u8];
}

impl Name for [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Name for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Name for str {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Name for String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(unix)]
impl Name for std::ffi::OsStr {
    fn bytes(&self) -> &[u8] {
        std::os::unix::ffi::OsStrExt::as_bytes(self)
    }
}

#[cfg(unix)]
impl Name for std::ffi::OsString {
    fn bytes(&self) -> &[u8] {
        std::os::unix::ffi::OsStrExt::as_bytes(self.as_os_str())
    }
}

impl<T: Name + ?Sized> Name for &T {
    fn bytes(&self) -> &[u8] {
        (**self).bytes()
    }
}

/// What a real path is, as far as decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A directory.
    Dir,
    /// Anything else: a file, a device, a socket, or (when not following) a symlink.
    Other,
}

/// The facts of the real world a decision needs, supplied by each backend.
pub trait Host {
    /// What `path` is now; `None` when it does not exist. With `follow`, symlinks (and on Windows
    /// reparse points) are followed, so a dangling link is absent.
    fn probe(&self, path: &Path, follow: bool) -> Option<Found>;

    /// Whether `name` may be given to a new object on this platform.
    fn valid_name(&self, name: &[u8]) -> bool;
}

/// POSIX name rules: one non-empty component, not `.` or `..`, without `/` or NUL.
pub fn posix_name(name: &[u8]) -> bool {
    !(name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0))
}

/// A real object, in the base or in a transparent entry's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real<'t> {
    /// Its real path.
    pub real: PathBuf,
    /// The root of its tree: the base, or the transparent entry's target.
    pub root: &'t Path,
    /// The transparent entry whose tree it is in, or `None` for the base.
    pub via: Option<&'t Entry>,
    /// How many virtual components name the tree's root (0 for the base).
    pub depth: usize,
    /// Whether the path is the tree's root itself: the base's root or exactly a transparent entry.
    pub tree_root: bool,
    /// Declared names laid over it, when it is a directory entries are nested in.
    pub declared: Option<Dir<'t>>,
    /// Whether changes are refused: the mount or the transparent entry is read-only.
    pub read_only: bool,
}

impl<'t> Real<'t> {
    /// The transparent entry that is exactly this object, if any.
    pub fn entry(&self) -> Option<&'t Entry> {
        self.via.filter(|_| self.tree_root)
    }

    /// Whether two objects lie in the same tree, which renames and hard links may not leave.
    pub fn same_tree(&self, other: &Real<'_>) -> bool {
        match (self.via, other.via) {
            (None, None) => true,
            (Some(a), Some(b)) => a.path == b.path,
            _ => false,
        }
    }

    /// Whether `name` is declared in this directory (compared as the table compares names).
    pub fn declares(&self, name: &[u8]) -> bool {
        self.declared.is_some_and(|d| d.contains(name))
    }

    /// The components beneath the tree's root, given the path's components.
    pub fn rel<'c, C>(&self, comps: &'c [C]) -> &'c [C] {
        comps.get(self.depth..).unwrap_or_default()
    }
}

/// What a virtual path stands for right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place<'t> {
    /// Shown as a link to `entry.target`: a `symlink` or `junction` entry, or a `transparent`
    /// entry whose target is absent (`on_missing: dangling` or `error`).
    Link(&'t Entry),
    /// Beneath a link entry: the kernel follows the link, so the overlay never serves it.
    BeneathLink {
        /// The link entry.
        entry: &'t Entry,
        /// The target joined with the rest of the path.
        real: PathBuf,
    },
    /// A real object.
    Real(Real<'t>),
    /// A read-only directory made from the declaration: entries are declared beneath it and no
    /// base or target holds it.
    Synthetic {
        /// The names declared in it.
        dir: Dir<'t>,
        /// Whether it stands in for a directory its tree lacks (the base, or a transparent
        /// target, could gain it at any time), rather than existing only in the declaration.
        standin: bool,
    },
    /// Nothing: no declaration covers it and there is no base, or a hidden entry.
    Absent,
}

impl<'t> Place<'t> {
    /// The names declared in this directory, when it is one that entries are nested in.
    pub fn declared(&self) -> Option<Dir<'t>> {
        match self {
            Place::Real(r) => r.declared,
            Place::Synthetic { dir, .. } => Some(*dir),
            Place::Link(_) | Place::BeneathLink { .. } | Place::Absent => None,
        }
    }

    /// The declared entry this path is exactly, if any.
    pub fn entry(&self) -> Option<&'t Entry> {
        match self {
            Place::Link(e) => Some(e),
            Place::Real(r) => r.entry(),
            Place::BeneathLink { .. } | Place::Synthetic { .. } | Place::Absent => None,
        }
    }
}

/// Classifies the path `comps` (names as the backend gave them; the table compares them as its
/// [`crate::NameCase`] says).
pub fn classify<'t, C: Name>(table: &'t Table, host: &dyn Host, comps: &[C]) -> Place<'t> {
    let absent = |e: &Entry| host.probe(&e.target, true).is_none();
    match table.resolve(comps.iter().map(|c| c.bytes())) {
        Resolved::Link(e) if e.on_missing == OnMissing::Hide && absent(e) => Place::Absent,
        Resolved::Link(e) => Place::Link(e),
        Resolved::BeneathLink { entry, real } => Place::BeneathLink { entry, real },
        Resolved::Synthetic(dir) => Place::Synthetic {
            dir,
            standin: false,
        },
        Resolved::Absent => Place::Absent,
        Resolved::Real { real, via, dir } => {
            let depth = via.map_or(0, |e| e.path.components().len());
            let tree_root = depth == comps.len();
            if let Some(e) = via.filter(|_| tree_root) {
                if absent(e) {
                    return match e.on_missing {
                        OnMissing::Hide => Place::Absent,
                        OnMissing::Dangling | OnMissing::Error => Place::Link(e),
                    };
                }
            }
            let root = match via {
                Some(e) => e.target.as_path(),
                None => match table.base() {
                    Some(b) => b,
                    None => return Place::Absent,
                },
            };
            if let Some(d) = dir {
                // Not following a symlink there: the tree's own object shows, whatever it is,
                // and a link planted into this mount must not make the daemon ask itself.
                if !tree_root && host.probe(&real, false).is_none() {
                    return Place::Synthetic {
                        dir: d,
                        standin: true,
                    };
                }
            }
            Place::Real(Real {
                real,
                root,
                via,
                depth,
                tree_root,
                declared: dir,
                read_only: table.options().read_only || via.is_some_and(|e| e.read_only),
            })
        }
    }
}

/// Logs why a declared name is refused, naming its line in the declaration, and returns the error.
fn refuse<C: Name>(table: &Table, host: &dyn Host, path: &[C], what: &str) -> Error {
    let shown = path
        .iter()
        .map(|c| String::from_utf8_lossy(c.bytes()).into_owned())
        .collect::<Vec<_>>()
        .join("/");
    match classify(table, host, path).entry() {
        Some(e) => log::warn!(
            "refused to {what} `{shown}`: it is a redirection declared in {}:{}; change the declaration instead",
            table.file().display(),
            e.loc.line
        ),
        None => log::warn!(
            "refused to {what} `{shown}`: redirections are declared beneath it in {}",
            table.file().display()
        ),
    }
    Error::DeclaredEntry
}

fn joined<C: Name>(parent: &[C], name: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = parent.iter().map(|c| c.bytes().to_vec()).collect();
    v.push(name.to_vec());
    v
}

/// The directory of a real tree that `name` is removed from (unlink, rmdir, delete-on-close), or
/// renamed out of. `what` names the operation for the log ("delete", "remove", "rename").
///
/// # Errors
/// [`Error::DeclaredEntry`] when `name` is declared in `parent` (an entry, or a directory entries
/// are nested in); [`Error::ReadOnly`] in read-only places; [`Error::NotFound`] in synthetic or
/// absent directories and beneath a link (which the overlay never serves).
pub fn removal<'t, C: Name>(
    table: &'t Table,
    host: &dyn Host,
    parent: &[C],
    name: &[u8],
    what: &str,
) -> Result<Real<'t>, Error> {
    let dir = removal_dir(table, host, parent, name, what)?;
    if dir.read_only {
        return Err(Error::ReadOnly);
    }
    Ok(dir)
}

/// [`removal`] without the read-only check, which a rename makes after the cross-tree one.
fn removal_dir<'t, C: Name>(
    table: &'t Table,
    host: &dyn Host,
    parent: &[C],
    name: &[u8],
    what: &str,
) -> Result<Real<'t>, Error> {
    if !posix_name(name) {
        return Err(Error::InvalidName);
    }
    let dir = classify(table, host, parent);
    if dir.declared().is_some_and(|d| d.contains(name)) {
        return Err(refuse(table, host, &joined(parent, name), what));
    }
    match dir {
        Place::Real(r) => Ok(r),
        Place::Synthetic { .. } | Place::Absent | Place::Link(_) | Place::BeneathLink { .. } => {
            Err(Error::NotFound)
        }
    }
}

/// Where a new name would be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation<'t> {
    /// In this real directory.
    In(Real<'t>),
    /// The name is declared there already: creating it exclusively fails with `EEXIST`; an open
    /// with `O_CREAT` alone opens what it is.
    Declared,
}

/// Whether `name` may be created in `parent` (create, mknod, mkdir, symlink, the new name of a
/// hard link), and where.
///
/// # Errors
/// [`Error::InvalidName`] for names the host refuses; [`Error::ReadOnly`] in synthetic
/// directories and read-only places; [`Error::NotFound`] when the parent is absent or beneath a
/// link.
pub fn creation<'t, C: Name>(
    table: &'t Table,
    host: &dyn Host,
    parent: &[C],
    name: &[u8],
) -> Result<Creation<'t>, Error> {
    if !host.valid_name(name) {
        return Err(Error::InvalidName);
    }
    let dir = classify(table, host, parent);
    if dir.declared().is_some_and(|d| d.contains(name)) {
        return Ok(Creation::Declared);
    }
    match dir {
        Place::Real(r) if r.read_only => Err(Error::ReadOnly),
        Place::Real(r) => Ok(Creation::In(r)),
        Place::Synthetic { .. } => Err(Error::ReadOnly),
        Place::Absent | Place::Link(_) | Place::BeneathLink { .. } => Err(Error::NotFound),
    }
}

/// Whether the object at `place` may be changed (data, size, mode, owner, times, extended
/// attributes, security); the real object when it may.
///
/// # Errors
/// [`Error::ReadOnly`] for links, synthetic directories and read-only places;
/// [`Error::NotFound`] for absent places.
pub fn writable<'p, 't>(place: &'p Place<'t>) -> Result<&'p Real<'t>, Error> {
    match place {
        Place::Real(r) if r.read_only => Err(Error::ReadOnly),
        Place::Real(r) => Ok(r),
        Place::Link(_) | Place::Synthetic { .. } => Err(Error::ReadOnly),
        Place::BeneathLink { .. } | Place::Absent => Err(Error::NotFound),
    }
}

/// How a rename is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenamePlan<'t> {
    /// Within one tree: from `from` (the source's directory) to `to` (the destination's).
    Within {
        /// The source's directory.
        from: Real<'t>,
        /// The destination's directory.
        to: Real<'t>,
    },
    /// An editor's atomic save onto a `transparent` file entry: the source file (in `from`)
    /// replaces the entry's target file, and the redirection stays. Across filesystems the
    /// backend copies beside the target first, so the replacement is still atomic there.
    ReplaceTarget {
        /// The source's directory.
        from: Real<'t>,
        /// The entry whose target is replaced.
        entry: &'t Entry,
    },
}

/// The flags of a rename that decisions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenameFlags {
    /// Fail rather than replace the destination (`RENAME_NOREPLACE`).
    pub noreplace: bool,
    /// Swap source and destination (`RENAME_EXCHANGE`).
    pub exchange: bool,
    /// Leave a whiteout at the source (Linux's `RENAME_WHITEOUT`).
    pub whiteout: bool,
}

/// Whether `from_parent/from_name` may be renamed to `to_parent/to_name`, and how.
///
/// # Errors
/// [`Error::DeclaredEntry`] when a declared name would move or vanish; [`Error::CrossDevice`]
/// between trees or beyond a link; [`Error::ReadOnly`] in read-only places and synthetic directories;
/// [`Error::IsADirectory`] for a directory saved onto a file entry; [`Error::InvalidName`];
/// [`Error::NotFound`].
pub fn rename<'t, C: Name>(
    table: &'t Table,
    host: &dyn Host,
    (from_parent, from_name): (&[C], &[u8]),
    (to_parent, to_name): (&[C], &[u8]),
    flags: RenameFlags,
) -> Result<RenamePlan<'t>, Error> {
    let from = removal_dir(table, host, from_parent, from_name, "rename")?;
    if !host.valid_name(to_name) {
        return Err(Error::InvalidName);
    }
    let dir = classify(table, host, to_parent);
    if dir.declared().is_some_and(|d| d.contains(to_name)) {
        let dst = joined(to_parent, to_name);
        let place = classify(table, host, &dst);
        let entry = match &place {
            Place::Real(r) if flags == RenameFlags::default() => r.entry(),
            _ => None,
        };
        let Some(entry) = entry else {
            return Err(refuse(table, host, &dst, "replace"));
        };
        if host.probe(&entry.target, true) == Some(Found::Dir) {
            return Err(refuse(table, host, &dst, "replace"));
        }
        if from.read_only || writable(&place).is_err() {
            return Err(Error::ReadOnly);
        }
        if host.probe(
            &from.real.join(crate::names::component_path(from_name)),
            false,
        ) == Some(Found::Dir)
        {
            return Err(Error::IsADirectory);
        }
        return Ok(RenamePlan::ReplaceTarget { from, entry });
    }
    let to = match dir {
        Place::Real(r) => r,
        Place::Synthetic { .. } => return Err(Error::ReadOnly),
        Place::Absent => return Err(Error::NotFound),
        // Beyond a link: outside every tree of the mount, so programs copy.
        Place::Link(_) | Place::BeneathLink { .. } => return Err(Error::CrossDevice),
    };
    // As natively: crossing filesystems is refused before writing is.
    if !from.same_tree(&to) {
        return Err(Error::CrossDevice);
    }
    if from.read_only || to.read_only {
        return Err(Error::ReadOnly);
    }
    Ok(RenamePlan::Within { from, to })
}

/// Whether the object at `src` may get the new name `to_parent/to_name` (a hard link); the source
/// and the destination directory when it may.
///
/// # Errors
/// [`Error::DeclaredEntry`] for declared entries; [`Error::NotPermitted`] for synthetic
/// directories; [`Error::CrossDevice`] between trees; [`Error::ReadOnly`]; [`Error::Exists`]
/// when the new name is declared; the errors of [`creation`].
pub fn hard_link<'s, 't, C: Name>(
    table: &'t Table,
    host: &dyn Host,
    src: &'s Place<'t>,
    to_parent: &[C],
    to_name: &[u8],
) -> Result<(&'s Real<'t>, Real<'t>), Error> {
    let src = match src {
        Place::Real(r) if r.entry().is_none() => r,
        Place::Real(_) | Place::Link(_) => return Err(Error::DeclaredEntry),
        Place::Synthetic { .. } => return Err(Error::NotPermitted),
        Place::BeneathLink { .. } | Place::Absent => return Err(Error::NotFound),
    };
    let dir = match creation(table, host, to_parent, to_name)? {
        Creation::In(dir) => dir,
        Creation::Declared => return Err(Error::Exists),
    };
    if src.read_only {
        return Err(Error::ReadOnly);
    }
    if !src.same_tree(&dir) {
        return Err(Error::CrossDevice);
    }
    Ok((src, dir))
}

/// Whether a link entry stands for a directory, for platforms whose links carry that (Windows
/// directory symlinks and junctions): what the target is now, or `None` when it is absent.
pub fn link_is_dir(host: &dyn Host, entry: &Entry) -> Option<bool> {
    host.probe(&entry.target, true).map(|f| f == Found::Dir)
}

/// The real host: the local filesystems through `std::fs`, with the given name rules.
#[derive(Debug, Clone, Copy)]
pub struct StdHost {
    valid: fn(&[u8]) -> bool,
}

impl StdHost {
    /// The local filesystems, with POSIX names.
    pub fn posix() -> StdHost {
        StdHost { valid: posix_name }
    }

    /// The local filesystems, with the platform's name rules given.
    pub fn with_names(valid: fn(&[u8]) -> bool) -> StdHost {
        StdHost { valid }
    }
}

impl Host for StdHost {
    fn probe(&self, path: &Path, follow: bool) -> Option<Found> {
        let m = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        };
        m.ok()
            .map(|m| if m.is_dir() { Found::Dir } else { Found::Other })
    }

    fn valid_name(&self, name: &[u8]) -> bool {
        (self.valid)(name)
    }
}
