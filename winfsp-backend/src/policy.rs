//! What a path is in the overlay and what may be done to it, decided without Windows.
//!
//! The Windows layer asks [`classify`] what a WinFsp file name stands for, [`plan_link`] how a
//! link entry shows, and the `check_*` functions whether a change is allowed; then it calls the
//! operating system or answers. Declared entries are changed in the declaration, never through
//! the mount: deleting, renaming or replacing one is refused before anything reaches the target.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use fs_core::table::Dir;
use fs_core::{Entry, Error, OnMissing, Presentation, Resolved, Table};

use crate::names::{check_component, TargetError, WinTarget};
use crate::reparse::ReparsePoint;

/// How `junction` entries show.
///
/// WinFsp's reparse resolver long mishandled mount points (winfsp issue 269: walking beneath a
/// junction looped back to its parent). WinFsp 2.x resolves them, but an older driver or a
/// program that handles `IO_REPARSE_TAG_MOUNT_POINT` poorly can still trip. The modes trade
/// fidelity for robustness; whatever is not shown as asked is logged once at mount with the
/// reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JunctionMode {
    /// A mount-point reparse point everywhere: listings (`dir` shows `<JUNCTION>`),
    /// `FSCTL_GET_REPARSE_POINT` and path resolution.
    #[default]
    Native,
    /// Listings and `FSCTL_GET_REPARSE_POINT` show a junction; WinFsp's resolver is handed the
    /// equivalent directory symlink, the workaround named in winfsp issue 269.
    ResolveAsSymlink,
    /// Junction entries are directory symlinks throughout.
    Symlink,
}

impl JunctionMode {
    /// The spelling on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            JunctionMode::Native => "native",
            JunctionMode::ResolveAsSymlink => "resolve-as-symlink",
            JunctionMode::Symlink => "symlink",
        }
    }
}

impl fmt::Display for JunctionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JunctionMode {
    type Err = String;

    fn from_str(s: &str) -> Result<JunctionMode, String> {
        match s {
            "native" => Ok(JunctionMode::Native),
            "resolve-as-symlink" => Ok(JunctionMode::ResolveAsSymlink),
            "symlink" => Ok(JunctionMode::Symlink),
            _ => Err(format!(
                "unknown junction mode `{s}`: use native, resolve-as-symlink or symlink"
            )),
        }
    }
}

/// Why a link entry is not shown exactly as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// A junction cannot point to a network share; it shows as a directory symlink.
    UncTarget,
    /// `JunctionMode::Symlink` was asked for.
    ModeSymlink,
    /// The target exists and is a file, which a junction cannot point to.
    TargetNotADirectory,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fallback::UncTarget => {
                "a junction cannot point to a network share: shown as a directory symlink (following it needs local-to-remote symlink evaluation, on by default; see docs/windows.md)"
            }
            Fallback::ModeSymlink => "junction mode `symlink`: shown as a directory symlink",
            Fallback::TargetNotADirectory => {
                "the target is a file, which a junction cannot point to: shown as a file symlink"
            }
        })
    }
}

/// How one link entry shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    /// What listings, `GetFileAttributes` and `FSCTL_GET_REPARSE_POINT` see.
    pub shown: ReparsePoint,
    /// What WinFsp's reparse resolver is handed (`GetReparsePointByName`).
    pub resolved: ReparsePoint,
    /// Whether the link stands for a directory (`FILE_ATTRIBUTE_DIRECTORY`).
    pub is_dir: bool,
    /// Why it differs from the declaration, if it does.
    pub fallback: Option<Fallback>,
}

/// Plans how `entry` shows. `target_is_dir` is what the target is now (`None` when absent).
///
/// A symlink is a directory symlink when its target is a directory; an absent target makes a file
/// symlink. A junction is a mount point unless [`Fallback`] says otherwise. Transparent entries
/// are not links; asked anyway, they plan as symlinks.
///
/// # Errors
/// The target is not an absolute Windows path.
pub fn plan_link(
    entry: &Entry,
    target_is_dir: Option<bool>,
    mode: JunctionMode,
) -> Result<LinkPlan, TargetError> {
    let target = WinTarget::from_path(&entry.target)?;
    let symlink = |is_dir: bool, fallback: Option<Fallback>| {
        let rp = ReparsePoint::symlink_to(&target);
        LinkPlan {
            shown: rp.clone(),
            resolved: rp,
            is_dir,
            fallback,
        }
    };
    Ok(match entry.presentation {
        Presentation::Symlink | Presentation::Transparent => {
            symlink(target_is_dir.unwrap_or(false), None)
        }
        Presentation::Junction => {
            if target_is_dir == Some(false) {
                symlink(false, Some(Fallback::TargetNotADirectory))
            } else if target.is_unc() {
                symlink(true, Some(Fallback::UncTarget))
            } else {
                match mode {
                    JunctionMode::Symlink => symlink(true, Some(Fallback::ModeSymlink)),
                    JunctionMode::Native => {
                        let rp = ReparsePoint::mount_point_to(&target);
                        LinkPlan {
                            shown: rp.clone(),
                            resolved: rp,
                            is_dir: true,
                            fallback: None,
                        }
                    }
                    JunctionMode::ResolveAsSymlink => LinkPlan {
                        shown: ReparsePoint::mount_point_to(&target),
                        resolved: ReparsePoint::symlink_to(&target),
                        is_dir: true,
                        fallback: None,
                    },
                }
            }
        }
    })
}

/// A real object: where it lives and which root it is reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealAt<'t> {
    /// The directory it is opened relative to: the base, or a transparent entry's target.
    pub root: &'t Path,
    /// The transparent entry it lies in, or `None` for the base.
    pub via: Option<&'t Entry>,
    /// The components beneath `root` (empty for the root itself).
    pub rel: Vec<String>,
    /// The full real path.
    pub real: PathBuf,
}

impl RealAt<'_> {
    /// Whether writes are refused here: the mount or the transparent entry is read-only.
    pub fn read_only(&self, table: &Table) -> bool {
        table.options().read_only || self.via.is_some_and(|e| e.read_only)
    }

    /// Whether two objects are reached through the same root (a rename stays inside it).
    pub fn same_root(&self, other: &RealAt<'_>) -> bool {
        self.root == other.root
    }
}

/// What a path in the mount stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place<'t> {
    /// Exactly a `symlink` or `junction` entry.
    Link(&'t Entry),
    /// Beneath a link entry: the kernel follows the link, so the overlay never serves it.
    BeneathLink(&'t Entry),
    /// A real object in the base or a transparent target.
    Real {
        /// Where it is.
        at: RealAt<'t>,
        /// Declared names laid over it, when it is a directory entries are nested in.
        declared: Option<Dir<'t>>,
        /// Whether the path is exactly a transparent entry.
        entry_root: bool,
    },
    /// A directory that exists only because entries are declared beneath it.
    Synthetic(Dir<'t>),
    /// Nothing here.
    Absent,
}

/// Classifies the path `comps` (names as Windows gave them, any case). `exists` says whether a
/// target is present, for `on_missing: hide` entries, which are absent until it is.
pub fn classify<'t>(
    table: &'t Table,
    comps: &[String],
    exists: impl Fn(&Path) -> bool,
) -> Place<'t> {
    let hidden = |e: &Entry| e.on_missing == OnMissing::Hide && !exists(&e.target);
    match table.resolve(comps.iter().map(|c| c.as_bytes())) {
        Resolved::Link(e) if hidden(e) => Place::Absent,
        Resolved::Link(e) => Place::Link(e),
        Resolved::BeneathLink { entry, .. } => Place::BeneathLink(entry),
        Resolved::Real { real, via, dir } => {
            let depth = via.map_or(0, |e| e.path.components().len());
            let entry_root = via.is_some() && depth == comps.len();
            if entry_root && via.is_some_and(hidden) {
                return Place::Absent;
            }
            let root = match via {
                Some(e) => e.target.as_path(),
                None => match table.base() {
                    Some(b) => b,
                    None => return Place::Absent,
                },
            };
            Place::Real {
                at: RealAt {
                    root,
                    via,
                    rel: comps.get(depth..).unwrap_or_default().to_vec(),
                    real,
                },
                declared: dir,
                entry_root,
            }
        }
        Resolved::Synthetic(dir) => Place::Synthetic(dir),
        Resolved::Absent => Place::Absent,
    }
}

/// Whether the object at `comps` may be deleted (set for delete-on-close).
///
/// # Errors
/// [`Error::DeclaredEntry`] for entries, synthetic directories and real directories entries are
/// nested in; [`Error::ReadOnly`] for the root and read-only places; [`Error::NotFound`].
pub fn check_delete(table: &Table, place: &Place<'_>) -> Result<(), Error> {
    match place {
        // The mount's root.
        Place::Real { at, .. } if at.via.is_none() && at.rel.is_empty() => Err(Error::ReadOnly),
        Place::Synthetic(dir) if *dir == table.root() => Err(Error::ReadOnly),
        Place::Link(_) | Place::Synthetic(_) => Err(Error::DeclaredEntry),
        Place::Real {
            entry_root: true, ..
        }
        | Place::Real {
            declared: Some(_), ..
        } => Err(Error::DeclaredEntry),
        Place::Real { at, .. } if at.read_only(table) => Err(Error::ReadOnly),
        Place::Real { .. } => Ok(()),
        Place::BeneathLink(_) | Place::Absent => Err(Error::NotFound),
    }
}

/// Whether the object at `place` may be written (data, size, attributes, times, security).
///
/// # Errors
/// [`Error::ReadOnly`] for synthetic directories, links and read-only places;
/// [`Error::NotFound`].
pub fn check_write(table: &Table, place: &Place<'_>) -> Result<(), Error> {
    match place {
        Place::Real { at, .. } if at.read_only(table) => Err(Error::ReadOnly),
        Place::Real { .. } => Ok(()),
        Place::Link(_) | Place::Synthetic(_) => Err(Error::ReadOnly),
        Place::BeneathLink(_) | Place::Absent => Err(Error::NotFound),
    }
}

/// Whether a file or directory may be created at `comps`; where it would be.
///
/// # Errors
/// [`Error::Exists`] for declared names (entries and the directories they nest in),
/// [`Error::InvalidName`], [`Error::ReadOnly`] in synthetic directories and read-only places,
/// [`Error::NotFound`] when the parent is absent.
pub fn check_create<'t>(
    table: &'t Table,
    comps: &[String],
    exists: impl Fn(&Path) -> bool,
) -> Result<RealAt<'t>, Error> {
    let Some((name, parent)) = comps.split_last() else {
        return Err(Error::Exists);
    };
    check_component(name).map_err(|_| Error::InvalidName)?;
    match classify(table, comps, &exists) {
        Place::Link(_)
        | Place::Synthetic(_)
        | Place::Real {
            entry_root: true, ..
        }
        | Place::Real {
            declared: Some(_), ..
        } => Err(Error::Exists),
        Place::Real { at, .. } if at.read_only(table) => Err(Error::ReadOnly),
        Place::Real { at, .. } => Ok(at),
        Place::BeneathLink(_) => Err(Error::NotFound),
        Place::Absent => match classify(table, parent, &exists) {
            Place::Synthetic(_) => Err(Error::ReadOnly),
            _ => Err(Error::NotFound),
        },
    }
}

/// Whether `from` may be renamed to `to`; both places when it may.
///
/// # Errors
/// [`Error::DeclaredEntry`] when either side is a declared name; [`Error::CrossDevice`] when the
/// two lie under different roots (another transparent entry, the base, or beyond a link), which
/// makes `MoveFileEx` copy; [`Error::ReadOnly`]; [`Error::InvalidName`]; [`Error::NotFound`].
pub fn check_rename<'t>(
    table: &'t Table,
    from: &[String],
    to: &[String],
    exists: impl Fn(&Path) -> bool,
) -> Result<(RealAt<'t>, RealAt<'t>), Error> {
    let src = match classify(table, from, &exists) {
        Place::Link(_)
        | Place::Synthetic(_)
        | Place::Real {
            entry_root: true, ..
        }
        | Place::Real {
            declared: Some(_), ..
        } => return Err(Error::DeclaredEntry),
        Place::Real { at, .. } if at.rel.is_empty() => return Err(Error::ReadOnly),
        Place::Real { at, .. } => at,
        Place::BeneathLink(_) | Place::Absent => return Err(Error::NotFound),
    };
    if let Some(name) = to.last() {
        check_component(name).map_err(|_| Error::InvalidName)?;
    }
    let dst = match classify(table, to, &exists) {
        Place::Link(_)
        | Place::Synthetic(_)
        | Place::Real {
            entry_root: true, ..
        }
        | Place::Real {
            declared: Some(_), ..
        } => return Err(Error::DeclaredEntry),
        Place::Real { at, .. } if at.rel.is_empty() => return Err(Error::DeclaredEntry),
        Place::Real { at, .. } => at,
        Place::BeneathLink(_) => return Err(Error::CrossDevice),
        Place::Absent => {
            let parent = to.split_last().map_or(&[][..], |(_, p)| p);
            return match classify(table, parent, &exists) {
                Place::Synthetic(_) => Err(Error::ReadOnly),
                _ => Err(Error::NotFound),
            };
        }
    };
    if !src.same_root(&dst) {
        return Err(Error::CrossDevice);
    }
    if src.read_only(table) || dst.read_only(table) {
        return Err(Error::ReadOnly);
    }
    Ok((src, dst))
}

/// The real names a directory listing keeps: those no declared name masks (compared the way the
/// table compares names, so without case on Windows).
pub fn visible_real_names<'a, I>(
    real: I,
    declared: Option<Dir<'a>>,
) -> impl Iterator<Item = String> + 'a
where
    I: IntoIterator<Item = String>,
    I::IntoIter: 'a,
{
    real.into_iter()
        .filter(move |n| !declared.is_some_and(|d| d.contains(n.as_bytes())))
}

/// The declared names of a directory, as declared, sorted.
pub fn declared_names(dir: Dir<'_>) -> Vec<String> {
    let mut names: Vec<String> = dir
        .names()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs_core::NameCase;

    const DECL: &str = r#"version: 1
mountpoint: "L:"
base: BASE
redirections:
  - path: Data
    target: D:\data
  - path: apps/Tool
    target: D:\tools\tool
    as: junction
  - path: share
    target: \\server\share\dir
    as: junction
  - path: Docs
    target: E:/docs
    as: transparent
  - path: Docs/Archive
    target: F:\archive
  - path: ro
    target: G:\ro
    as: transparent
    read_only: true
  - path: later
    target: H:\absent
    on_missing: hide
"#;

    /// The case-insensitive table of a declaration text, as a Windows mount loads it.
    fn insensitive_table(text: &str) -> Table {
        let decl = fs_core::decl::parse_str_for(
            Path::new("t.yaml"),
            Path::new("/t.yaml"),
            text,
            NameCase::Insensitive,
        )
        .expect("valid declaration");
        Table::new(&decl, NameCase::Insensitive)
    }

    fn table(base: &Path) -> Table {
        insensitive_table(&DECL.replace("BASE", &base.display().to_string()))
    }

    fn c(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn present(_: &Path) -> bool {
        true
    }

    fn absent(_: &Path) -> bool {
        false
    }

    fn entry<'t>(t: &'t Table, path: &str) -> &'t Entry {
        t.rules()
            .iter()
            .find(|e| e.path.to_string() == path)
            .expect("declared")
    }

    #[test]
    fn symlink_plans() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        let data = entry(&t, "Data");
        let plan = plan_link(data, Some(true), JunctionMode::Native).expect("plans");
        assert_eq!(
            plan.shown,
            ReparsePoint::Symlink {
                substitute: "\\??\\D:\\data".into(),
                print: "D:\\data".into(),
                relative: false
            }
        );
        assert_eq!(plan.resolved, plan.shown);
        assert!(plan.is_dir);
        assert_eq!(plan.fallback, None);
        let file = plan_link(data, Some(false), JunctionMode::Native).expect("plans");
        assert!(!file.is_dir);
        let dangling = plan_link(data, None, JunctionMode::Native).expect("plans");
        assert!(!dangling.is_dir, "an absent target makes a file symlink");
    }

    #[test]
    fn junction_plans_and_fallbacks() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        let tool = entry(&t, "apps/Tool");
        let native = plan_link(tool, Some(true), JunctionMode::Native).expect("plans");
        assert_eq!(
            native.shown.tag(),
            crate::reparse::IO_REPARSE_TAG_MOUNT_POINT
        );
        assert_eq!(native.resolved, native.shown);
        assert_eq!(native.shown.substitute(), "\\??\\D:\\tools\\tool");
        assert!(native.is_dir);

        let hybrid = plan_link(tool, None, JunctionMode::ResolveAsSymlink).expect("plans");
        assert_eq!(
            hybrid.shown.tag(),
            crate::reparse::IO_REPARSE_TAG_MOUNT_POINT
        );
        assert_eq!(
            hybrid.resolved.tag(),
            crate::reparse::IO_REPARSE_TAG_SYMLINK
        );
        assert_eq!(hybrid.resolved.substitute(), hybrid.shown.substitute());
        assert_eq!(hybrid.fallback, None);

        let sym = plan_link(tool, Some(true), JunctionMode::Symlink).expect("plans");
        assert_eq!(sym.shown.tag(), crate::reparse::IO_REPARSE_TAG_SYMLINK);
        assert_eq!(sym.fallback, Some(Fallback::ModeSymlink));
        assert!(sym.is_dir);

        let unc = plan_link(entry(&t, "share"), Some(true), JunctionMode::Native).expect("plans");
        assert_eq!(unc.shown.tag(), crate::reparse::IO_REPARSE_TAG_SYMLINK);
        assert_eq!(unc.shown.substitute(), "\\??\\UNC\\server\\share\\dir");
        assert_eq!(unc.fallback, Some(Fallback::UncTarget));

        let file = plan_link(tool, Some(false), JunctionMode::Native).expect("plans");
        assert_eq!(file.fallback, Some(Fallback::TargetNotADirectory));
        assert!(!file.is_dir);
        assert!(!file
            .fallback
            .map(|f| f.to_string())
            .unwrap_or_default()
            .is_empty());
    }

    #[test]
    fn junction_mode_spellings() {
        for m in [
            JunctionMode::Native,
            JunctionMode::ResolveAsSymlink,
            JunctionMode::Symlink,
        ] {
            assert_eq!(m.as_str().parse::<JunctionMode>(), Ok(m));
        }
        assert!("junction".parse::<JunctionMode>().is_err());
    }

    #[test]
    fn classifies_without_case() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        assert!(
            matches!(classify(&t, &c("DATA"), present), Place::Link(e) if e.path.to_string() == "Data")
        );
        assert!(matches!(
            classify(&t, &c("Apps/tool"), present),
            Place::Link(_)
        ));
        assert!(matches!(
            classify(&t, &c("data/x.txt"), present),
            Place::BeneathLink(_)
        ));
        assert!(matches!(
            classify(&t, &c("APPS"), present),
            Place::Real {
                declared: Some(_),
                entry_root: false,
                ..
            }
        ));
        match classify(&t, &c("docs/Sub/f.txt"), present) {
            Place::Real { at, entry_root, .. } => {
                assert!(!entry_root);
                assert_eq!(at.root, Path::new("E:/docs"));
                assert_eq!(at.rel, c("Sub/f.txt"));
                assert_eq!(at.via.map(|e| e.path.to_string()), Some("Docs".to_string()));
            }
            other => panic!("unexpected {other:?}"),
        }
        match classify(&t, &c("DOCS"), present) {
            Place::Real {
                at,
                entry_root,
                declared,
            } => {
                assert!(entry_root);
                assert!(at.rel.is_empty());
                assert!(declared.is_some(), "Docs/Archive is declared inside");
            }
            other => panic!("unexpected {other:?}"),
        }
        match classify(&t, &c("plain.txt"), present) {
            Place::Real { at, .. } => {
                assert_eq!(at.root, base.path());
                assert_eq!(at.via, None);
                assert_eq!(at.rel, c("plain.txt"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn hidden_entries_are_absent_until_their_target_appears() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        assert_eq!(classify(&t, &c("later"), absent), Place::Absent);
        assert!(matches!(classify(&t, &c("later"), present), Place::Link(_)));
        // `dangling` entries show whether or not the target is there.
        assert!(matches!(classify(&t, &c("Data"), absent), Place::Link(_)));
    }

    #[test]
    fn without_a_base_only_declarations_exist() {
        let text =
            "version: 1\nmountpoint: \"L:\"\nredirections:\n  - path: a/b\n    target: D:\\b\n";
        let t = insensitive_table(text);
        assert!(matches!(classify(&t, &[], present), Place::Synthetic(_)));
        assert!(matches!(
            classify(&t, &c("A"), present),
            Place::Synthetic(_)
        ));
        assert_eq!(classify(&t, &c("other"), present), Place::Absent);
        assert_eq!(classify(&t, &c("a/other"), present), Place::Absent);
        assert!(matches!(
            check_create(&t, &c("a/new.txt"), present),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_create(&t, &c("x/new.txt"), present),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            check_delete(&t, &classify(&t, &c("a"), present)),
            Err(Error::DeclaredEntry)
        ));
    }

    #[test]
    fn entries_cannot_be_deleted_through_the_mount() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        for path in ["Data", "data", "apps/TOOL", "Docs", "apps", "docs/archive"] {
            let place = classify(&t, &c(path), present);
            assert!(
                matches!(check_delete(&t, &place), Err(Error::DeclaredEntry)),
                "{path}: {place:?}"
            );
        }
        assert!(matches!(
            check_delete(&t, &classify(&t, &[], present)),
            Err(Error::ReadOnly)
        ));
        assert!(check_delete(&t, &classify(&t, &c("docs/old.txt"), present)).is_ok());
        assert!(check_delete(&t, &classify(&t, &c("plain.txt"), present)).is_ok());
        assert!(matches!(
            check_delete(&t, &classify(&t, &c("ro/file"), present)),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_delete(&t, &classify(&t, &c("data/inside"), present)),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn entries_cannot_be_renamed_or_replaced() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        let r = |a: &str, b: &str| check_rename(&t, &c(a), &c(b), present).map(|_| ());
        assert!(matches!(r("Data", "Data2"), Err(Error::DeclaredEntry)));
        assert!(matches!(r("Docs", "Docs2"), Err(Error::DeclaredEntry)));
        assert!(matches!(r("apps", "apps2"), Err(Error::DeclaredEntry)));
        assert!(
            matches!(r("plain.txt", "DATA"), Err(Error::DeclaredEntry)),
            "replacing an entry"
        );
        assert!(matches!(r("plain.txt", "docs"), Err(Error::DeclaredEntry)));
        assert!(matches!(
            r("docs/a.txt", "docs/Archive"),
            Err(Error::DeclaredEntry)
        ));
        assert!(r("plain.txt", "other.txt").is_ok());
        assert!(r("docs/a.txt", "DOCS/sub/b.txt").is_ok());
        assert!(matches!(
            r("plain.txt", "docs/a.txt"),
            Err(Error::CrossDevice)
        ));
        assert!(matches!(
            r("docs/a.txt", "ro/a.txt"),
            Err(Error::CrossDevice)
        ));
        assert!(matches!(
            r("plain.txt", "data/a.txt"),
            Err(Error::CrossDevice)
        ));
        assert!(matches!(r("ro/a", "ro/b"), Err(Error::ReadOnly)));
        assert!(matches!(
            r("plain.txt", "bad|name"),
            Err(Error::InvalidName)
        ));
        assert!(matches!(r("data/x", "y"), Err(Error::NotFound)));
    }

    #[test]
    fn creation_rules() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        let cr = |p: &str| check_create(&t, &c(p), present).map(|at| at.rel);
        assert_eq!(cr("new.txt").ok(), Some(c("new.txt")));
        assert_eq!(cr("docs/new.txt").ok(), Some(c("new.txt")));
        assert!(matches!(cr("DATA"), Err(Error::Exists)));
        assert!(matches!(cr("apps"), Err(Error::Exists)));
        assert!(matches!(cr("docs"), Err(Error::Exists)));
        assert!(matches!(cr("ro/new"), Err(Error::ReadOnly)));
        assert!(matches!(cr("con"), Err(Error::InvalidName)));
        assert!(matches!(cr("a<b"), Err(Error::InvalidName)));
        assert!(matches!(cr("data/new"), Err(Error::NotFound)));
    }

    #[test]
    fn writes() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        assert!(check_write(&t, &classify(&t, &c("plain.txt"), present)).is_ok());
        assert!(check_write(&t, &classify(&t, &c("docs/x"), present)).is_ok());
        assert!(matches!(
            check_write(&t, &classify(&t, &c("ro/x"), present)),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_write(&t, &classify(&t, &c("data"), present)),
            Err(Error::ReadOnly)
        ));
    }

    #[test]
    fn read_only_mounts_refuse_every_change() {
        let base = tempfile::tempdir().expect("tempdir");
        let text = DECL.replace("BASE", &base.path().display().to_string())
            + "options:\n  read_only: true\n";
        let t = insensitive_table(&text);
        assert!(matches!(
            check_write(&t, &classify(&t, &c("plain.txt"), present)),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_create(&t, &c("new"), present),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_rename(&t, &c("a"), &c("b"), present),
            Err(Error::ReadOnly)
        ));
    }

    #[test]
    fn listings_mask_real_names_without_case() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        let real = ["data", "Readme.txt", "DOCS", "apps", "Other"].map(String::from);
        let kept: Vec<String> = visible_real_names(real, Some(t.root())).collect();
        assert_eq!(kept, ["Readme.txt", "Other"]);
        assert_eq!(
            declared_names(t.root()),
            ["Data", "Docs", "apps", "later", "ro", "share"]
        );
        let all: Vec<String> = visible_real_names(["x".to_string()], None).collect();
        assert_eq!(all, ["x"]);
    }
}
