//! Property tests.
//!
//! (a) `parse_str` never panics, on arbitrary text and on YAML-ish text assembled from the
//!     declaration's own keys and values, and what it returns is consistent (errors iff `Err`,
//!     positions inside the file, diagnostics in file order).
//! (b) `Table::resolve` agrees with a naive reference model — a linear scan for the longest
//!     declared prefix — for random declarations and random paths, case-sensitive and
//!     case-insensitive; and the declaration checker refuses exactly the entries the model
//!     assumes away (duplicates and entries beneath links, names compared as the mount does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fs_core::decl::{
    parse_str, parse_str_for, Declaration, Entry, Mountpoint, OnMissing, Options, Presentation,
};
use fs_core::yaml::Loc;
use fs_core::{Diagnostic, NameCase, Resolved, Severity, Table, VPath};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// (a) parse_str never panics

/// A scratch directory for relative paths and real targets, shared by all cases.
fn scratch() -> &'static Path {
    use std::sync::OnceLock;
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        for sub in ["decl", "mnt", "tgt", "base/data"] {
            std::fs::create_dir_all(d.path().join(sub)).expect("mkdir");
        }
        std::fs::write(d.path().join("file.txt"), "x").expect("write");
        d
    })
    .path()
}

/// Checks what `parse_str` returned for `text`: the invariants every result must keep.
fn check_result(text: &str) -> Result<(), TestCaseError> {
    let file = scratch().join("decl/app.yaml");
    let result = parse_str(Path::new("app.yaml"), &file, text);
    let lines = text.lines().count().max(1);
    let diags: &[Diagnostic] = match &result {
        Ok(d) => {
            prop_assert!(d.diagnostics.iter().all(|x| x.severity != Severity::Error));
            // A valid declaration compiles and each entry resolves to itself.
            let table = Table::new(d, NameCase::Sensitive);
            for e in &d.entries {
                match table.resolve_vpath(&e.path) {
                    Resolved::Link(r) => prop_assert_eq!(&r.path, &e.path),
                    Resolved::Real { via: Some(r), .. } => prop_assert_eq!(&r.path, &e.path),
                    other => prop_assert!(false, "{} resolved to {:?}", e.path, other),
                }
            }
            &d.diagnostics
        }
        Err(inv) => {
            prop_assert!(inv.error_count() >= 1);
            let shown = inv.to_string();
            prop_assert!(shown.contains(": error: "));
            &inv.diagnostics
        }
    };
    let mut prev = Loc { line: 0, col: 0 };
    for d in diags {
        prop_assert!(d.loc.line >= 1 && d.loc.col >= 1, "{:?}", d.loc);
        // A syntax error may stand just past the last line (the end of the stream).
        prop_assert!(
            d.loc.line <= lines + 1,
            "{:?} beyond {} lines",
            d.loc,
            lines
        );
        prop_assert!(d.loc >= prev, "diagnostics out of order");
        prop_assert_eq!(d.file.as_path(), Path::new("app.yaml"));
        prop_assert!(!d.message.is_empty());
        prev = d.loc;
        let _ = d.to_string();
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "version",
    "mountpoint",
    "base",
    "options",
    "redirections",
    "path",
    "target",
    "as",
    "on_missing",
    "read_only",
    "allow_other",
    "versoin",
    "bogus",
    "\"path\"",
    "? path",
    "[a]",
];

const VALUES: &[&str] = &[
    "",
    "1",
    "2",
    "\"1\"",
    "1.0",
    "~",
    "null",
    "true",
    "false",
    "yes",
    "data",
    "a/b",
    "./a//b/",
    "/abs",
    "a/../b",
    "..",
    "/",
    "'a\\b'",
    "\"a\\0b\"",
    "\"\"",
    "../tgt",
    "../mnt",
    "../mnt/x",
    "..",
    "../file.txt",
    "../base",
    "/nonexistent/target",
    "'C:\\data'",
    "\"L:\"",
    "symlink",
    "transparent",
    "junction",
    "symlnk",
    "dangling",
    "hide",
    "error",
    "[a, b]",
    "{a: b}",
    "{path: x, target: ../tgt}",
    "&anchor 1",
    "*anchor",
    "[",
    "'unterminated",
    "\"é\"",
    "|",
    ">-",
    "- x",
    "#comment",
];

/// One line of YAML-ish text: indentation, maybe a list dash, a key, a value.
fn yamlish_line() -> impl Strategy<Value = String> {
    (
        select(vec![0usize, 1, 2, 3, 4, 6]),
        any::<bool>(),
        select(KEYS.to_vec()),
        select(VALUES.to_vec()),
        prop_oneof![
            8 => Just(""),
            1 => Just("---"),
            1 => Just("\t"),
            1 => Just(" # trailing"),
        ],
    )
        .prop_map(|(indent, dash, key, value, extra)| {
            let dash = if dash { "- " } else { "" };
            if extra == "---" {
                return "---".to_string();
            }
            format!("{}{dash}{key}: {value}{extra}", " ".repeat(indent))
        })
}

/// A declaration-shaped document, with random lines spliced in.
fn yamlish_document() -> impl Strategy<Value = String> {
    // Mostly sensible values, so that a good share of documents is valid and reaches the later
    // checks (nesting, duplicates, targets); sometimes anything.
    let value = |good: &'static [&'static str]| {
        prop_oneof![
            4 => select(good.to_vec()),
            1 => select(VALUES.to_vec()),
        ]
    };
    let entry = (
        value(&["data", "a/b", "./a//b/", "a", "c/d/e", "É"]),
        value(&["../tgt", "/nonexistent/target", "../tgt/sub", "../base"]),
        proptest::option::of(value(&["symlink", "transparent", "junction"])),
        proptest::option::of(value(&["dangling", "hide", "error"])),
        proptest::option::of(value(&["true", "false"])),
    )
        .prop_map(|(path, target, presentation, on_missing, read_only)| {
            let mut s = format!("  - path: {path}\n    target: {target}\n");
            if let Some(v) = presentation {
                s += &format!("    as: {v}\n");
            }
            if let Some(v) = on_missing {
                s += &format!("    on_missing: {v}\n");
            }
            if let Some(v) = read_only {
                s += &format!("    read_only: {v}\n");
            }
            s
        });
    (
        value(&["1", "1", "1", "2"]),
        value(&["../mnt", "../mnt", "\"M:\"", "../tgt"]),
        proptest::option::of(value(&["../base", "../mnt", "../file.txt", "nope"])),
        proptest::collection::vec(entry, 0..6),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => proptest::collection::vec((0usize..40, yamlish_line()), 1..4),
        ],
    )
        .prop_map(|(version, mountpoint, base, entries, noise)| {
            let mut lines: Vec<String> = vec![
                format!("version: {version}"),
                format!("mountpoint: {mountpoint}"),
            ];
            if let Some(b) = base {
                lines.push(format!("base: {b}"));
            }
            lines.push("redirections:".to_string());
            for e in entries {
                lines.extend(e.lines().map(str::to_owned));
            }
            for (at, line) in noise {
                let at = at.min(lines.len());
                lines.insert(at, line);
            }
            lines.join("\n") + "\n"
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn parse_str_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_result(&text)?;
    }

    #[test]
    fn parse_str_never_panics_on_yaml_symbols(text in "[-:{}\\[\\],&*!|>'\"#%@` \t\na-c1.~?/\\\\]{0,80}") {
        check_result(&text)?;
    }

    #[test]
    fn parse_str_never_panics_on_yamlish_lines(lines in proptest::collection::vec(yamlish_line(), 0..16)) {
        check_result(&(lines.join("\n") + "\n"))?;
    }

    #[test]
    fn parse_str_never_panics_on_declaration_shaped_text(text in yamlish_document()) {
        check_result(&text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Table::resolve agrees with a reference model

/// Names chosen to collide: case variants, non-ASCII case variants, and a shared prefix.
const NAMES: &[&str] = &["a", "A", "b", "B", "ab", "é", "É", "Straße", "STRASSE"];

fn fold(name: &str, case: NameCase) -> String {
    match case {
        NameCase::Sensitive => name.to_string(),
        NameCase::Insensitive => name.to_lowercase(),
    }
}

fn folded(comps: &[String], case: NameCase) -> Vec<String> {
    comps.iter().map(|c| fold(c, case)).collect()
}

/// Whether `prefix` is a (component-wise, folded) prefix of `path`.
fn is_prefix(prefix: &[String], path: &[String], case: NameCase) -> bool {
    prefix.len() <= path.len() && folded(prefix, case) == folded(&path[..prefix.len()], case)
}

/// What the model expects; entries by index, directories by their declared names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Link(usize),
    BeneathLink(usize, PathBuf),
    Real {
        real: PathBuf,
        via: Option<usize>,
        dir: Option<BTreeMap<String, String>>,
    },
    Synthetic(BTreeMap<String, String>),
    Absent,
}

/// The names declared directly beneath `path`: folded name -> the spelling of the first entry
/// (in file order) that passes through it.
fn declared_children(
    entries: &[Entry],
    path: &[String],
    case: NameCase,
) -> Option<BTreeMap<String, String>> {
    let mut names = BTreeMap::new();
    for e in entries {
        let comps = e.path.components();
        if comps.len() > path.len() && is_prefix(path, comps, case) {
            let name = &comps[path.len()];
            names
                .entry(fold(name, case))
                .or_insert_with(|| name.clone());
        }
    }
    (!names.is_empty()).then_some(names)
}

fn join(mut base: PathBuf, rest: &[String]) -> PathBuf {
    for c in rest {
        base.push(c);
    }
    base
}

/// The reference: scan every entry for the longest declared prefix of `path`.
fn model(decl: &Declaration, case: NameCase, path: &[String]) -> Expect {
    let mut best: Option<usize> = None;
    for (i, e) in decl.entries.iter().enumerate() {
        let comps = e.path.components();
        if is_prefix(comps, path, case)
            && best.is_none_or(|b| comps.len() > decl.entries[b].path.components().len())
        {
            best = Some(i);
        }
    }
    let dir = declared_children(&decl.entries, path, case);
    match best {
        Some(i) => {
            let e = &decl.entries[i];
            let rest = &path[e.path.components().len()..];
            match e.presentation {
                Presentation::Symlink | Presentation::Junction if rest.is_empty() => {
                    Expect::Link(i)
                }
                Presentation::Symlink | Presentation::Junction => {
                    Expect::BeneathLink(i, join(e.target.clone(), rest))
                }
                Presentation::Transparent => Expect::Real {
                    real: join(e.target.clone(), rest),
                    via: Some(i),
                    dir,
                },
            }
        }
        None => match (&decl.base, dir) {
            (Some(base), dir) => Expect::Real {
                real: join(base.clone(), path),
                via: None,
                dir,
            },
            (None, Some(names)) => Expect::Synthetic(names),
            (None, None) if path.is_empty() => Expect::Synthetic(BTreeMap::new()),
            (None, None) => Expect::Absent,
        },
    }
}

/// What the table answered, in the model's terms.
fn observe(table: &Table, r: Resolved<'_>, case: NameCase) -> Expect {
    let index = |e: &Entry| {
        table
            .rules()
            .iter()
            .position(|r| std::ptr::eq(r, e))
            .expect("a resolved entry is one of the table's rules")
    };
    let names = |d: fs_core::table::Dir<'_>| {
        let m: BTreeMap<String, String> = d
            .names()
            .map(|n| {
                let n = String::from_utf8(n.to_vec()).expect("utf-8 name");
                (fold(&n, case), n)
            })
            .collect();
        assert_eq!(m.len(), d.len(), "names are distinct after folding");
        assert!(!d.is_empty());
        for (f, n) in &m {
            assert!(d.contains(n.as_bytes()));
            if case == NameCase::Insensitive {
                assert!(d.contains(f.as_bytes()));
                let upper = n.to_uppercase();
                // `ß` upper-cases to `SS`, which folds to another name.
                if fold(&upper, case) == *f {
                    assert!(d.contains(upper.as_bytes()));
                }
            }
        }
        m
    };
    match r {
        Resolved::Link(e) => Expect::Link(index(e)),
        Resolved::BeneathLink { entry, real } => Expect::BeneathLink(index(entry), real),
        Resolved::Real { real, via, dir } => Expect::Real {
            real,
            via: via.map(index),
            dir: dir.map(names),
        },
        Resolved::Synthetic(d) if d.is_empty() => Expect::Synthetic(BTreeMap::new()),
        Resolved::Synthetic(d) => Expect::Synthetic(names(d)),
        Resolved::Absent => Expect::Absent,
    }
}

type RawEntry = (Vec<&'static str>, Presentation);

/// Keeps what a valid declaration may hold: one entry per (folded) path, and none beneath a
/// link. The declaration checker refuses the rest.
fn valid_entries(raw: Vec<RawEntry>, case: NameCase) -> Vec<Entry> {
    let mut kept: Vec<Entry> = Vec::new();
    for (i, (comps, presentation)) in raw.into_iter().enumerate() {
        let comps: Vec<String> = comps.into_iter().map(str::to_owned).collect();
        if kept
            .iter()
            .any(|k| folded(k.path.components(), case) == folded(&comps, case))
        {
            continue;
        }
        kept.push(Entry {
            path: VPath::from_components(comps),
            target: PathBuf::from(format!("/targets/t{i}")),
            presentation,
            on_missing: OnMissing::Dangling,
            read_only: false,
            loc: Loc {
                line: i + 1,
                col: 1,
            },
        });
    }
    let links: Vec<Vec<String>> = kept
        .iter()
        .filter(|e| e.presentation.is_link())
        .map(|e| e.path.components().to_vec())
        .collect();
    kept.retain(|e| {
        let comps = e.path.components();
        !links
            .iter()
            .any(|l| l.len() < comps.len() && is_prefix(l, comps, case))
    });
    kept
}

fn declaration(entries: Vec<Entry>, base: bool) -> Declaration {
    Declaration {
        file: PathBuf::from("/decl/app.yaml"),
        mountpoint: Mountpoint::Dir(PathBuf::from("/mnt")),
        base: base.then(|| PathBuf::from("/base")),
        options: Options::default(),
        entries,
        case: NameCase::Sensitive,
        diagnostics: Vec::new(),
    }
}

fn raw_entries() -> impl Strategy<Value = Vec<RawEntry>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(select(NAMES.to_vec()), 1..4),
            prop_oneof![
                2 => Just(Presentation::Symlink),
                3 => Just(Presentation::Transparent),
                1 => Just(Presentation::Junction),
            ],
        ),
        0..14,
    )
}

fn query() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            6 => select(NAMES.to_vec()).prop_map(str::to_owned),
            1 => Just("zz".to_string()),
            1 => Just("a.txt".to_string()),
        ],
        0..6,
    )
}

fn check_against_model(
    raw: Vec<RawEntry>,
    base: bool,
    queries: Vec<Vec<String>>,
    case: NameCase,
) -> Result<(), TestCaseError> {
    let decl = declaration(valid_entries(raw, case), base);
    let table = Table::new(&decl, case);
    prop_assert_eq!(table.rules(), &decl.entries[..]);
    // Every declared path, every prefix of one, and the random queries.
    let mut paths: Vec<Vec<String>> = queries;
    for e in &decl.entries {
        let c = e.path.components();
        for n in 0..=c.len() {
            paths.push(c[..n].to_vec());
        }
        let mut deeper = c.to_vec();
        deeper.push("deeper".to_string());
        paths.push(deeper);
    }
    for path in paths {
        let expected = model(&decl, case, &path);
        let got = observe(
            &table,
            table.resolve(path.iter().map(|c| c.as_bytes())),
            case,
        );
        prop_assert_eq!(&got, &expected, "path {:?}", path);
        let vpath = VPath::from_components(path.iter().cloned());
        let via_vpath = observe(&table, table.resolve_vpath(&vpath), case);
        prop_assert_eq!(&via_vpath, &expected);
        if case == NameCase::Insensitive {
            let upper: Vec<String> = path.iter().map(|c| c.to_uppercase()).collect();
            if folded(&upper, case) == folded(&path, case) {
                let got_upper = observe(
                    &table,
                    table.resolve(upper.iter().map(|c| c.as_bytes())),
                    case,
                );
                // The same rule, the same declared names; real paths keep the caller's spelling.
                let expected_upper = model(&decl, case, &upper);
                prop_assert_eq!(&got_upper, &expected_upper, "path {:?}", upper);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn resolve_agrees_with_the_model_case_sensitive(
        raw in raw_entries(),
        base in any::<bool>(),
        queries in proptest::collection::vec(query(), 0..12),
    ) {
        check_against_model(raw, base, queries, NameCase::Sensitive)?;
    }

    #[test]
    fn resolve_agrees_with_the_model_case_insensitive(
        raw in raw_entries(),
        base in any::<bool>(),
        queries in proptest::collection::vec(query(), 0..12),
    ) {
        check_against_model(raw, base, queries, NameCase::Insensitive)?;
    }

    /// The same declarations, written as YAML and read back through the checker, give the same
    /// entries and the same answers: the checker keeps exactly what the model assumes valid.
    #[test]
    fn declarations_read_from_yaml_resolve_like_the_model(
        raw in raw_entries(),
        base in any::<bool>(),
        queries in proptest::collection::vec(query(), 0..8),
    ) {
        let case = NameCase::Sensitive;
        let entries = valid_entries(raw, case);
        let root = scratch();
        let mut text = format!("version: 1\nmountpoint: {}\n", root.join("mnt").display());
        if base {
            text += &format!("base: {}\n", root.join("base").display());
        }
        text += "redirections:\n";
        for e in &entries {
            text += &format!(
                "  - path: \"{}\"\n    target: \"{}\"\n    as: {}\n",
                e.path,
                root.join("tgt").join(e.target.file_name().expect("name")).display(),
                e.presentation
            );
        }
        let decl = parse_str(Path::new("app.yaml"), &root.join("decl/app.yaml"), &text)
            .map_err(|inv| TestCaseError::fail(format!("{inv}\n{text}")))?;
        let paths: Vec<_> = decl.entries.iter().map(|e| e.path.clone()).collect();
        let expected: Vec<_> = entries.iter().map(|e| e.path.clone()).collect();
        prop_assert_eq!(paths, expected);
        check_against_model_for(&decl, queries, case)?;
    }
}

/// A declaration of `raw`, all entries as written, targets absent from `scratch()`.
fn yaml_of(raw: &[RawEntry], base: bool) -> String {
    let root = scratch();
    let mut text = format!("version: 1\nmountpoint: {}\n", root.join("mnt").display());
    if base {
        text += &format!("base: {}\n", root.join("base").display());
    }
    text += "redirections:\n";
    for (i, (comps, presentation)) in raw.iter().enumerate() {
        text += &format!(
            "  - path: \"{}\"\n    target: \"{}\"\n    as: {}\n",
            comps.join("/"),
            root.join("tgt").join(format!("t{i}")).display(),
            presentation
        );
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The checker refuses exactly the entries the model drops, one error each: a path declared
    /// before (by the mount's comparison of names), or one beneath a link entry.
    #[test]
    fn the_checker_refuses_what_the_model_drops(
        raw in raw_entries(),
        base in any::<bool>(),
        insensitive in any::<bool>(),
    ) {
        let case = if insensitive { NameCase::Insensitive } else { NameCase::Sensitive };
        let kept = valid_entries(raw.clone(), case);
        let text = yaml_of(&raw, base);
        let result = parse_str_for(Path::new("app.yaml"), &scratch().join("decl/app.yaml"), &text, case);
        match result {
            Ok(decl) => {
                prop_assert_eq!(kept.len(), raw.len(), "accepted:\n{}", text);
                prop_assert_eq!(decl.case, case);
                let paths: Vec<_> = decl.entries.iter().map(|e| e.path.clone()).collect();
                let expected: Vec<_> = kept.iter().map(|e| e.path.clone()).collect();
                prop_assert_eq!(paths, expected);
            }
            Err(inv) => {
                prop_assert_eq!(inv.error_count(), raw.len() - kept.len(), "{}\n{}", inv, text);
                for d in inv.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
                    prop_assert!(
                        d.message.contains("is declared twice") || d.message.contains("lies beneath"),
                        "{}", d
                    );
                }
            }
        }
    }
}

fn check_against_model_for(
    decl: &Declaration,
    queries: Vec<Vec<String>>,
    case: NameCase,
) -> Result<(), TestCaseError> {
    let table = Table::new(decl, case);
    for path in queries {
        let expected = model(decl, case, &path);
        let got = observe(
            &table,
            table.resolve(path.iter().map(|c| c.as_bytes())),
            case,
        );
        prop_assert_eq!(&got, &expected, "path {:?}", path);
    }
    Ok(())
}

#[test]
fn the_model_itself_distinguishes_the_cases() {
    // Guards the reference: a model that answered `Absent` everywhere would agree with nothing.
    let raw: Vec<RawEntry> = vec![
        (vec!["a"], Presentation::Transparent),
        (vec!["a", "b"], Presentation::Symlink),
        (vec!["É", "x"], Presentation::Junction),
    ];
    let decl = declaration(valid_entries(raw, NameCase::Insensitive), false);
    let p = |s: &[&str]| s.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let ci = NameCase::Insensitive;
    assert_eq!(model(&decl, ci, &p(&["A", "B"])), Expect::Link(1));
    assert_eq!(
        model(&decl, ci, &p(&["a", "b", "c"])),
        Expect::BeneathLink(1, PathBuf::from("/targets/t1/c"))
    );
    assert_eq!(
        model(&decl, ci, &p(&["a", "q"])),
        Expect::Real {
            real: PathBuf::from("/targets/t0/q"),
            via: Some(0),
            dir: None
        }
    );
    assert_eq!(
        model(&decl, ci, &p(&["é"])),
        Expect::Synthetic(BTreeMap::from([("x".to_string(), "x".to_string())]))
    );
    assert_eq!(model(&decl, ci, &p(&["zz"])), Expect::Absent);
    assert_eq!(
        model(&decl, NameCase::Sensitive, &p(&["A"])),
        Expect::Absent
    );
    let table = Table::new(&decl, ci);
    assert_eq!(
        observe(&table, table.resolve([&b"E\xcc\x81"[..]]), ci),
        Expect::Absent,
        "no Unicode normalization: a decomposed `É` is another name"
    );
}
