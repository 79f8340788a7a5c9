//! The decision layer, table-driven: the same (declaration, path, operation) cases run through
//! fs-core's `place` module as the Unix overlay calls it (POSIX names, a case-sensitive table,
//! parent + name) and as the Windows backend calls it (Windows names, a case-insensitive table,
//! whole paths through `winfsp_backend::policy`), against a real layout on disk. Then one mount
//! shows the Linux side of the four drifts the layer removed, through the kernel.

// Real layouts with Unix symlinks, and a mount through the Linux harness.
#![cfg(target_os = "linux")]

use std::os::unix::fs::symlink;
use std::path::Path;

use fs_core::place::{self, Creation, Host, Place, RenameFlags, RenamePlan, StdHost};
use fs_core::{Error, NameCase, Table};
use winfsp_backend::policy::{self, WinHost};

/// The declaration every case runs against (paths relative to the declaration's directory).
const DECL: &str = "\
version: 1
mountpoint: mnt
base: base
redirections:
  - path: data
    target: t/data
  - path: etc/app
    target: t/app
  - path: docs
    target: t/docs
    as: transparent
  - path: docs/archive
    target: t/archive
  - path: conf/app.conf
    target: t/conf/app.conf
    as: transparent
  - path: gone
    target: t/gone
    as: transparent
  - path: later
    target: t/dangling
    on_missing: hide
  - path: ro
    target: t/ro
    as: transparent
    read_only: true
";

/// The real layout: the base lacks `etc` (drift 1), `t/gone` is absent (drift 2), `conf/app.conf`
/// is a transparent file entry (drift 3), `t/dangling` is a dangling symlink (drift 4).
fn layout(root: &Path) {
    for d in [
        "mnt",
        "base/conf",
        "base/sub",
        "t/data",
        "t/app",
        "t/docs",
        "t/archive",
        "t/conf",
        "t/ro",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    for f in [
        "base/plain.txt",
        "base/conf/tmp.swp",
        "base/sub/f.txt",
        "t/docs/a.txt",
        "t/conf/app.conf",
        "t/ro/x",
    ] {
        std::fs::write(root.join(f), f).expect("write");
    }
    symlink(root.join("t/nowhere"), root.join("t/dangling")).expect("symlink");
}

fn table(root: &Path, case: NameCase) -> Table {
    let file = root.join("decl.yaml");
    std::fs::write(&file, DECL).expect("write declaration");
    let decl = fs_core::decl::load_file_for(&file, case)
        .unwrap_or_else(|e| panic!("test declaration is invalid:\n{e}"));
    Table::new(&decl, case)
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// What the path is.
    Classify,
    /// unlink / rmdir / delete-on-close.
    Delete,
    /// create / mkdir / mknod / symlink.
    Create,
    /// setattr, writes, xattrs.
    Write,
    /// rename onto the given path (plain: replacing allowed).
    Rename(&'static str),
    /// hard link at the given path (Unix only: the Windows drive has no hard links).
    Link(&'static str),
}

/// (path, operation, outcome on Unix, outcome on Windows). Outcomes: what `classify` says
/// (`link`, `beneath`, `synthetic`, `absent`, `real:TREE` with TREE `base` or the entry's path),
/// `ok`, `within`, `replace`, or the errno a program sees.
const CASES: &[(&str, Op, &str, &str)] = &[
    // What paths are.
    ("", Op::Classify, "real:base", "real:base"),
    ("data", Op::Classify, "link", "link"),
    ("DATA", Op::Classify, "real:base", "link"),
    ("data/x", Op::Classify, "beneath", "beneath"),
    ("etc", Op::Classify, "synthetic", "synthetic"),
    ("etc/app", Op::Classify, "link", "link"),
    ("docs", Op::Classify, "real:docs", "real:docs"),
    ("docs/a.txt", Op::Classify, "real:docs", "real:docs"),
    ("docs/archive", Op::Classify, "link", "link"),
    ("conf", Op::Classify, "real:base", "real:base"),
    (
        "conf/app.conf",
        Op::Classify,
        "real:conf/app.conf",
        "real:conf/app.conf",
    ),
    ("gone", Op::Classify, "link", "link"),
    ("later", Op::Classify, "absent", "absent"),
    ("plain.txt", Op::Classify, "real:base", "real:base"),
    // Declared names are never removed through the mount.
    ("data", Op::Delete, "EPERM", "EPERM"),
    ("etc", Op::Delete, "EPERM", "EPERM"),
    ("etc/app", Op::Delete, "EPERM", "EPERM"),
    ("docs", Op::Delete, "EPERM", "EPERM"),
    ("docs/archive", Op::Delete, "EPERM", "EPERM"),
    ("conf", Op::Delete, "EPERM", "EPERM"),
    ("conf/app.conf", Op::Delete, "EPERM", "EPERM"),
    ("gone", Op::Delete, "EPERM", "EPERM"),
    ("plain.txt", Op::Delete, "ok", "ok"),
    ("docs/a.txt", Op::Delete, "ok", "ok"),
    ("ro/x", Op::Delete, "EROFS", "EROFS"),
    ("data/x", Op::Delete, "ENOENT", "ENOENT"),
    ("etc/other", Op::Delete, "ENOENT", "ENOENT"),
    // Creation.
    ("new.txt", Op::Create, "ok", "ok"),
    ("docs/new", Op::Create, "ok", "ok"),
    ("etc/new", Op::Create, "EROFS", "EROFS"),
    ("data", Op::Create, "EEXIST", "EEXIST"),
    ("etc", Op::Create, "EEXIST", "EEXIST"),
    ("ro/new", Op::Create, "EROFS", "EROFS"),
    ("data/new", Op::Create, "ENOENT", "ENOENT"),
    ("con", Op::Create, "ok", "EINVAL"),
    ("a|b", Op::Create, "ok", "EINVAL"),
    // Changes to objects.
    ("plain.txt", Op::Write, "ok", "ok"),
    ("docs/a.txt", Op::Write, "ok", "ok"),
    ("conf/app.conf", Op::Write, "ok", "ok"),
    ("ro/x", Op::Write, "EROFS", "EROFS"),
    ("data", Op::Write, "EROFS", "EROFS"),
    ("etc", Op::Write, "EROFS", "EROFS"),
    ("gone", Op::Write, "EROFS", "EROFS"),
    ("later", Op::Write, "ENOENT", "ENOENT"),
    // Renames.
    ("plain.txt", Op::Rename("other.txt"), "within", "within"),
    ("docs/a.txt", Op::Rename("docs/b.txt"), "within", "within"),
    (
        "conf/tmp.swp",
        Op::Rename("conf/app.conf"),
        "replace",
        "replace",
    ),
    ("sub", Op::Rename("conf/app.conf"), "EISDIR", "EISDIR"),
    ("plain.txt", Op::Rename("docs/a.txt"), "EXDEV", "EXDEV"),
    ("docs/a.txt", Op::Rename("ro/a"), "EXDEV", "EXDEV"),
    ("plain.txt", Op::Rename("data/x"), "EXDEV", "EXDEV"),
    ("ro/x", Op::Rename("ro/y"), "EROFS", "EROFS"),
    ("plain.txt", Op::Rename("etc/x"), "EROFS", "EROFS"),
    ("data", Op::Rename("data2"), "EPERM", "EPERM"),
    ("conf", Op::Rename("conf2"), "EPERM", "EPERM"),
    ("plain.txt", Op::Rename("data"), "EPERM", "EPERM"),
    ("plain.txt", Op::Rename("docs"), "EPERM", "EPERM"),
    ("plain.txt", Op::Rename("gone"), "EPERM", "EPERM"),
    ("plain.txt", Op::Rename("a|b"), "within", "EINVAL"),
    ("data/x", Op::Rename("y"), "ENOENT", "ENOENT"),
    // Hard links (Unix).
    ("plain.txt", Op::Link("sub/hard"), "ok", "-"),
    ("docs/a.txt", Op::Link("x"), "EXDEV", "-"),
    ("docs", Op::Link("x"), "EPERM", "-"),
    ("etc", Op::Link("x"), "EPERM", "-"),
    ("data", Op::Link("x"), "EPERM", "-"),
    ("plain.txt", Op::Link("data"), "EEXIST", "-"),
    ("ro/x", Op::Link("ro/y"), "EROFS", "-"),
];

fn errno(e: &Error) -> &'static str {
    match e {
        Error::NotFound => "ENOENT",
        Error::NotADirectory => "ENOTDIR",
        Error::IsADirectory => "EISDIR",
        Error::Exists => "EEXIST",
        Error::NotEmpty => "ENOTEMPTY",
        Error::ReadOnly => "EROFS",
        Error::DeclaredEntry | Error::NotPermitted => "EPERM",
        Error::CrossDevice => "EXDEV",
        Error::InvalidName | Error::InvalidArgument => "EINVAL",
        Error::Unsupported => "ENOTSUP",
        Error::Os(_) => "EOS",
    }
}

fn outcome<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => errno(&e).to_string(),
    }
}

fn shown(p: &Place<'_>) -> String {
    match p {
        Place::Link(_) => "link".into(),
        Place::BeneathLink { .. } => "beneath".into(),
        Place::Synthetic { .. } => "synthetic".into(),
        Place::Absent => "absent".into(),
        Place::Real(r) => match r.via {
            None => "real:base".into(),
            Some(e) => format!("real:{}", e.path),
        },
    }
}

fn plan(p: RenamePlan<'_>) -> String {
    match p {
        RenamePlan::Within { .. } => "within".into(),
        RenamePlan::ReplaceTarget { .. } => "replace".into(),
    }
}

fn comps(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

fn split(path: &str) -> (Vec<String>, String) {
    let mut c = comps(path);
    let name = c.pop().unwrap_or_default();
    (c, name)
}

/// As the Unix overlay asks: parent components and one name.
fn unix(t: &Table, path: &str, op: Op) -> String {
    let host = StdHost::posix();
    let (parent, name) = split(path);
    match op {
        Op::Classify => shown(&place::classify(t, &host, &comps(path))),
        Op::Delete => outcome(
            place::removal(t, &host, &parent, name.as_bytes(), "delete"),
            |_| "ok".into(),
        ),
        Op::Create => outcome(
            place::creation(t, &host, &parent, name.as_bytes()).and_then(|c| match c {
                Creation::In(_) => Ok(()),
                Creation::Declared => Err(Error::Exists),
            }),
            |_| "ok".into(),
        ),
        Op::Write => outcome(
            place::writable(&place::classify(t, &host, &comps(path))).map(|_| ()),
            |_| "ok".into(),
        ),
        Op::Rename(to) => {
            let (to_parent, to_name) = split(to);
            outcome(
                place::rename(
                    t,
                    &host,
                    (&parent, name.as_bytes()),
                    (&to_parent, to_name.as_bytes()),
                    RenameFlags::default(),
                ),
                plan,
            )
        }
        Op::Link(to) => {
            let (to_parent, to_name) = split(to);
            let src = place::classify(t, &host, &comps(path));
            outcome(
                place::hard_link(t, &host, &src, &to_parent, to_name.as_bytes()).map(|_| ()),
                |_| "ok".into(),
            )
        }
    }
}

/// As the Windows backend asks: whole paths through `policy`.
fn windows(t: &Table, path: &str, op: Op) -> String {
    let host: &dyn Host = &WinHost;
    let c = comps(path);
    match op {
        Op::Classify => shown(&policy::classify(t, host, &c)),
        Op::Delete => outcome(policy::check_delete(t, host, &c), |_| "ok".into()),
        Op::Create => outcome(policy::check_create(t, host, &c), |_| "ok".into()),
        Op::Write => outcome(place::writable(&policy::classify(t, host, &c)), |_| {
            "ok".into()
        }),
        Op::Rename(to) => outcome(policy::check_rename(t, host, &c, &comps(to), true), plan),
        Op::Link(_) => "-".into(),
    }
}

#[test]
fn every_backend_decides_every_case_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    layout(dir.path());
    let posix = table(dir.path(), NameCase::Sensitive);
    let win = table(dir.path(), NameCase::Insensitive);
    let mut wrong = Vec::new();
    for &(path, op, want_unix, want_windows) in CASES {
        let got = unix(&posix, path, op);
        if got != want_unix {
            wrong.push(format!("unix    {op:?} `{path}`: {got}, want {want_unix}"));
        }
        let got = windows(&win, path, op);
        if got != want_windows {
            wrong.push(format!(
                "windows {op:?} `{path}`: {got}, want {want_windows}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases decided wrongly:\n{}",
        wrong.len(),
        CASES.len() * 2,
        wrong.join("\n")
    );
}

/// A directory the base lacks appears once the base gains it: the synthetic stand-in gives way.
#[test]
fn a_synthetic_stand_in_becomes_the_real_directory_when_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    layout(dir.path());
    let t = table(dir.path(), NameCase::Sensitive);
    let host = StdHost::posix();
    assert!(matches!(
        place::classify(&t, &host, &comps("etc")),
        Place::Synthetic { standin: true, .. }
    ));
    std::fs::create_dir(dir.path().join("base/etc")).expect("mkdir");
    assert_eq!(
        shown(&place::classify(&t, &host, &comps("etc"))),
        "real:base"
    );
    assert!(matches!(
        place::creation(&t, &host, &comps("etc"), b"new"),
        Ok(Creation::In(_))
    ));
}

/// The Linux side of the four drifts, through the kernel.
#[test]
fn the_four_drifts_behave_as_documented_through_a_mount() {
    tests::require_fuse!();
    let sb = tests::Sandbox::new();
    layout(sb.root());
    let body = DECL
        .strip_prefix("version: 1\nmountpoint: mnt\n")
        .expect("declaration header");
    let m = sb.mount(body);

    // 1. `etc` exists only through `etc/app`: listed, a read-only directory, and `etc/app` is
    //    reachable.
    let root: Vec<String> = std::fs::read_dir(m.mnt())
        .expect("read root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(root.contains(&"etc".to_string()), "root lists {root:?}");
    let etc = std::fs::metadata(m.at("etc")).expect("stat etc");
    assert!(etc.is_dir());
    assert_eq!(
        std::fs::read_link(m.at("etc/app")).expect("readlink etc/app"),
        sb_real(&m, "t/app")
    );
    let created = std::fs::write(m.at("etc/new"), "x");
    assert_eq!(tests::errno(&created), Some(libc::EROFS));

    // 2. A transparent entry whose target is absent is a dangling symlink to where it should be.
    assert_eq!(
        std::fs::read_link(m.at("gone")).expect("readlink gone"),
        sb_real(&m, "t/gone")
    );

    // 3. An editor's atomic save onto the transparent file entry lands in the target.
    std::fs::write(m.at("conf/tmp.swp"), "saved").expect("write temp");
    std::fs::rename(m.at("conf/tmp.swp"), m.at("conf/app.conf")).expect("atomic save");
    assert_eq!(
        std::fs::read_to_string(m.real("t/conf/app.conf")).expect("read target"),
        "saved"
    );
    assert!(!m.real("base/conf/tmp.swp").exists());

    // 4. A hidden entry whose target is a dangling symlink is absent: existence follows links.
    let later = std::fs::symlink_metadata(m.at("later"));
    assert_eq!(tests::errno(&later), Some(libc::ENOENT));
}

fn sb_real(m: &tests::Mount, rel: &str) -> std::path::PathBuf {
    m.real(rel).canonicalize().unwrap_or_else(|_| m.real(rel))
}
