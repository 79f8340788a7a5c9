//! What a path is in the overlay and what may be done to it, decided without Windows.
//!
//! The rules are fs-core's decision layer ([`fs_core::place`]), the same for Unix and Windows;
//! this module adds what only Windows has: [`WinHost`] (Windows name rules, targets probed
//! through reparse points), [`plan_link`] (how a link entry shows: symlink or junction reparse
//! data) and the `check_*` adapters that take WinFsp's whole paths. The Windows layer asks them,
//! then calls the operating system or answers. Declared entries are changed in the declaration,
//! never through the mount: deleting, renaming or replacing one is refused before anything
//! reaches the target.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use fs_core::place::{self, Creation, Found, Host, RenameFlags, StdHost};
pub use fs_core::place::{Place, Real, RenamePlan};
use fs_core::table::Dir;
use fs_core::{Entry, Error, Presentation, Table};

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

/// The host as Windows sees it: `std::fs::metadata` follows symlinks and junctions (so a target
/// that is a dangling link is absent, as on Unix), and names follow Windows' rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct WinHost;

/// Whether `name` may name a new object on Windows (see [`check_component`]).
pub fn windows_name(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok_and(|s| check_component(s).is_ok())
}

impl Host for WinHost {
    fn probe(&self, path: &Path, follow: bool) -> Option<Found> {
        StdHost::with_names(windows_name).probe(path, follow)
    }

    fn valid_name(&self, name: &[u8]) -> bool {
        windows_name(name)
    }
}

/// Classifies the path `comps` (names as Windows gave them, any case): fs-core's decision layer.
pub fn classify<'t>(table: &'t Table, host: &dyn Host, comps: &[String]) -> Place<'t> {
    place::classify(table, host, comps)
}

/// Whether the object at `comps` may be deleted (set for delete-on-close); the directory it is
/// deleted from when it may.
///
/// # Errors
/// [`Error::ReadOnly`] for the root; the errors of [`place::removal`].
pub fn check_delete<'t>(
    table: &'t Table,
    host: &dyn Host,
    comps: &[String],
) -> Result<Real<'t>, Error> {
    match comps.split_last() {
        None => Err(Error::ReadOnly),
        Some((name, parent)) => place::removal(table, host, parent, name.as_bytes(), "delete"),
    }
}

/// Whether an object may be created at `comps`; the directory it is created in when it may.
/// Its path beneath the tree's root is `dir.rel(comps)`.
///
/// # Errors
/// [`Error::Exists`] for declared names; the errors of [`place::creation`].
pub fn check_create<'t>(
    table: &'t Table,
    host: &dyn Host,
    comps: &[String],
) -> Result<Real<'t>, Error> {
    let Some((name, parent)) = comps.split_last() else {
        return Err(Error::Exists);
    };
    match place::creation(table, host, parent, name.as_bytes())? {
        Creation::In(dir) => Ok(dir),
        Creation::Declared => Err(Error::Exists),
    }
}

/// Whether `from` may be renamed to `to` (`MoveFileEx`, with `replace_if_exists` for
/// `MOVEFILE_REPLACE_EXISTING`), and how.
///
/// # Errors
/// [`Error::ReadOnly`] for the root; the errors of [`place::rename`].
pub fn check_rename<'t>(
    table: &'t Table,
    host: &dyn Host,
    from: &[String],
    to: &[String],
    replace_if_exists: bool,
) -> Result<RenamePlan<'t>, Error> {
    let (Some((from_name, from_parent)), Some((to_name, to_parent))) =
        (from.split_last(), to.split_last())
    else {
        return Err(Error::ReadOnly);
    };
    place::rename(
        table,
        host,
        (from_parent, from_name.as_bytes()),
        (to_parent, to_name.as_bytes()),
        RenameFlags {
            noreplace: !replace_if_exists,
            ..RenameFlags::default()
        },
    )
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

    /// Every target and real directory exists, or none does; Windows name rules.
    struct World(bool);

    impl Host for World {
        fn probe(&self, _: &Path, _: bool) -> Option<Found> {
            self.0.then_some(Found::Dir)
        }

        fn valid_name(&self, name: &[u8]) -> bool {
            windows_name(name)
        }
    }

    const PRESENT: World = World(true);
    const ABSENT: World = World(false);

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
            matches!(classify(&t, &PRESENT, &c("DATA")), Place::Link(e) if e.path.to_string() == "Data")
        );
        assert!(matches!(
            classify(&t, &PRESENT, &c("Apps/tool")),
            Place::Link(_)
        ));
        assert!(matches!(
            classify(&t, &PRESENT, &c("data/x.txt")),
            Place::BeneathLink { .. }
        ));
        assert!(matches!(
            classify(&t, &PRESENT, &c("APPS")),
            Place::Real(r) if r.declared.is_some() && !r.tree_root
        ));
        let p = c("docs/Sub/f.txt");
        match classify(&t, &PRESENT, &p) {
            Place::Real(at) => {
                assert!(!at.tree_root);
                assert_eq!(at.root, Path::new("E:/docs"));
                assert_eq!(at.rel(&p), c("Sub/f.txt"));
                assert_eq!(at.via.map(|e| e.path.to_string()), Some("Docs".to_string()));
            }
            other => panic!("unexpected {other:?}"),
        }
        match classify(&t, &PRESENT, &c("DOCS")) {
            Place::Real(at) => {
                assert!(at.tree_root);
                assert!(at.rel(&c("DOCS")).is_empty());
                assert!(at.declared.is_some(), "Docs/Archive is declared inside");
            }
            other => panic!("unexpected {other:?}"),
        }
        match classify(&t, &PRESENT, &c("plain.txt")) {
            Place::Real(at) => {
                assert_eq!(at.root, base.path());
                assert_eq!(at.via, None);
                assert_eq!(at.rel(&c("plain.txt")), c("plain.txt"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn hidden_entries_are_absent_until_their_target_appears() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        assert_eq!(classify(&t, &ABSENT, &c("later")), Place::Absent);
        assert!(matches!(
            classify(&t, &PRESENT, &c("later")),
            Place::Link(_)
        ));
        // `dangling` entries show whether or not the target is there.
        assert!(matches!(classify(&t, &ABSENT, &c("Data")), Place::Link(_)));
    }

    #[test]
    fn without_a_base_only_declarations_exist() {
        let text =
            "version: 1\nmountpoint: \"L:\"\nredirections:\n  - path: a/b\n    target: D:\\b\n";
        let t = insensitive_table(text);
        assert!(matches!(
            classify(&t, &PRESENT, &[]),
            Place::Synthetic { .. }
        ));
        assert!(matches!(
            classify(&t, &PRESENT, &c("A")),
            Place::Synthetic { .. }
        ));
        assert_eq!(classify(&t, &PRESENT, &c("other")), Place::Absent);
        assert_eq!(classify(&t, &PRESENT, &c("a/other")), Place::Absent);
        assert!(matches!(
            check_create(&t, &PRESENT, &c("a/new.txt")),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_create(&t, &PRESENT, &c("x/new.txt")),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            check_delete(&t, &PRESENT, &c("a")),
            Err(Error::DeclaredEntry)
        ));
    }

    #[test]
    fn entries_cannot_be_deleted_through_the_mount() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        for path in ["Data", "data", "apps/TOOL", "Docs", "apps", "docs/archive"] {
            let place = check_delete(&t, &PRESENT, &c(path));
            assert!(
                matches!(place, Err(Error::DeclaredEntry)),
                "{path}: {place:?}"
            );
        }
        assert!(matches!(
            check_delete(&t, &PRESENT, &[]),
            Err(Error::ReadOnly)
        ));
        assert!(check_delete(&t, &PRESENT, &c("docs/old.txt")).is_ok());
        assert!(check_delete(&t, &PRESENT, &c("plain.txt")).is_ok());
        assert!(matches!(
            check_delete(&t, &PRESENT, &c("ro/file")),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_delete(&t, &PRESENT, &c("data/inside")),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn entries_cannot_be_renamed_or_replaced() {
        let base = tempfile::tempdir().expect("tempdir");
        let t = table(base.path());
        let r = |a: &str, b: &str| check_rename(&t, &PRESENT, &c(a), &c(b), true).map(|_| ());
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
        let cr = |p: &str| check_create(&t, &PRESENT, &c(p)).map(|at| at.rel(&c(p)).to_vec());
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
        assert!(place::writable(&classify(&t, &PRESENT, &c("plain.txt"))).is_ok());
        assert!(place::writable(&classify(&t, &PRESENT, &c("docs/x"))).is_ok());
        assert!(matches!(
            place::writable(&classify(&t, &PRESENT, &c("ro/x"))),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            place::writable(&classify(&t, &PRESENT, &c("data"))),
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
            place::writable(&classify(&t, &PRESENT, &c("plain.txt"))),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_create(&t, &PRESENT, &c("new")),
            Err(Error::ReadOnly)
        ));
        assert!(matches!(
            check_rename(&t, &PRESENT, &c("a"), &c("b"), true),
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
