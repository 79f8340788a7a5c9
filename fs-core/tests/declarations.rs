//! One test (at least) per validation rule of `fs_core::decl`: each asserts the exact diagnostics —
//! severity, line, column, message and help — that a declaration produces.
//!
//! Real targets and bases live in a temporary directory; `{T}` in a declaration text stands for it.

use std::path::{Path, PathBuf};

use fs_core::decl::{load_file, load_file_for, parse_str, parse_str_for, Declaration, LoadError};
use fs_core::{Diagnostic, Invalid, Mountpoint, NameCase, OnMissing, Presentation, Severity};
use tempfile::TempDir;

/// The file name diagnostics show.
const SHOWN: &str = "app.yaml";

const HELP_SYNTAX: &str =
    "fix the YAML syntax here (indentation, a missing `:` or an unclosed quote or bracket)";
const HELP_MAPPING: &str = "write one `key: value` per line (see redirfs.yaml(5))";
const HELP_ALIAS: &str = "write the value out in full";
const HELP_TWICE: &str = "keep one of the two";
const HELP_MOUNTPOINT: &str =
    "write the directory where the overlay appears, e.g. `mountpoint: /opt/legacy-app`";
const HELP_PATH: &str = "write the virtual path inside the mount, e.g. `path: data`";
const HELP_TARGET: &str =
    "write where the data lives: an absolute path, or one relative to this file";
const HELP_NO_REDIRECTIONS: &str =
    "add `redirections:` with a list of `- path: ... target: ...` entries";
const MSG_NO_REDIRECTIONS: &str = "no `redirections`: the mount only shows the base";
const TOP_KEYS: &str = "version, mountpoint, base, options, redirections";
const ENTRY_KEYS: &str = "path, target, as, on_missing, read_only";
const HELP_DANGLING: &str = "the entry shows as a dangling link until the target appears";
const HELP_HIDE: &str = "the entry stays hidden until the target appears";
const HELP_MISSING_ERROR: &str =
    "create the target or fix the path; `on_missing: dangling` or `hide` accept an absent target";
const HELP_INSIDE_MOUNTPOINT: &str = "point the redirection at data outside the mount (use the base's own path for data in the base)";
const HELP_CONTAINS_MOUNTPOINT: &str =
    "point the redirection at a directory that does not contain the mountpoint";
const HELP_READ_ONLY_LINK: &str = "the kernel follows the link out of the mount, so the target's own permissions apply; use `as: transparent` to enforce read-only";
const HELP_EMPTY_PATH: &str = "name a file or folder inside the mount; the root itself is `base`";

/// A diagnostic reduced to what a test compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct D {
    severity: Severity,
    line: usize,
    col: usize,
    message: String,
    help: Option<String>,
}

fn err(line: usize, col: usize, message: impl Into<String>, help: impl Into<String>) -> D {
    D {
        severity: Severity::Error,
        line,
        col,
        message: message.into(),
        help: Some(help.into()),
    }
}

fn warn(line: usize, col: usize, message: impl Into<String>, help: impl Into<String>) -> D {
    D {
        severity: Severity::Warning,
        line,
        col,
        message: message.into(),
        help: Some(help.into()),
    }
}

fn note(line: usize, col: usize, message: impl Into<String>) -> D {
    D {
        severity: Severity::Note,
        line,
        col,
        message: message.into(),
        help: None,
    }
}

fn simplify(diags: &[Diagnostic]) -> Vec<D> {
    for d in diags {
        assert_eq!(d.file, Path::new(SHOWN), "diagnostic names the shown file");
    }
    diags
        .iter()
        .map(|d| D {
            severity: d.severity,
            line: d.loc.line,
            col: d.loc.col,
            message: d.message.clone(),
            help: d.help.clone(),
        })
        .collect()
}

/// A scratch tree: `mnt/` (the mountpoint), `tgt/` (a target), `base/` with `data/`, `sub/x`
/// and `readme.txt`, `file.txt` (a plain file) and `decl/` (where the declaration file lives).
struct Fx {
    tmp: TempDir,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().expect("tempdir");
        for d in ["mnt", "tgt", "base/data", "base/sub/x", "decl", "archive"] {
            std::fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
        }
        std::fs::write(tmp.path().join("file.txt"), "x").expect("write");
        std::fs::write(tmp.path().join("base/readme.txt"), "x").expect("write");
        Fx { tmp }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// An absolute path in the scratch tree, as text.
    fn p(&self, rel: &str) -> String {
        self.root().join(rel).display().to_string()
    }

    /// The declaration file's absolute path (its directory is `decl/`).
    fn file(&self) -> PathBuf {
        self.root().join("decl").join(SHOWN)
    }

    fn parse(&self, text: &str) -> Result<Declaration, Invalid> {
        let text = text.replace("{T}", &self.root().display().to_string());
        parse_str(Path::new(SHOWN), &self.file(), &text)
    }

    /// [`Fx::parse`] for a mount that compares names by `case`.
    fn parse_for(&self, text: &str, case: NameCase) -> Result<Declaration, Invalid> {
        let text = text.replace("{T}", &self.root().display().to_string());
        parse_str_for(Path::new(SHOWN), &self.file(), &text, case)
    }

    /// Parses `text`, which must be invalid; its diagnostics.
    fn invalid(&self, text: &str) -> Vec<D> {
        self.invalid_for(text, NameCase::host())
    }

    /// [`Fx::invalid`] for a mount that compares names by `case`.
    fn invalid_for(&self, text: &str, case: NameCase) -> Vec<D> {
        match self.parse_for(text, case) {
            Ok(d) => panic!("expected an invalid declaration, got {d:#?}"),
            Err(inv) => {
                assert!(inv.error_count() >= 1, "Invalid holds at least one error");
                simplify(&inv.diagnostics)
            }
        }
    }

    /// Parses `text`, which must be valid; the declaration and its diagnostics.
    fn valid(&self, text: &str) -> (Declaration, Vec<D>) {
        self.valid_for(text, NameCase::host())
    }

    /// [`Fx::valid`] for a mount that compares names by `case`.
    fn valid_for(&self, text: &str, case: NameCase) -> (Declaration, Vec<D>) {
        match self.parse_for(text, case) {
            Ok(d) => {
                let diags = simplify(&d.diagnostics);
                assert!(diags.iter().all(|d| d.severity != Severity::Error));
                (d, diags)
            }
            Err(inv) => panic!("expected a valid declaration, got:\n{inv}"),
        }
    }
}

/// `version: 1` and a mountpoint in the scratch tree: lines 1 and 2 of most tests.
const HEAD: &str = "version: 1\nmountpoint: {T}/mnt\n";

// ---------------------------------------------------------------------------------------------
// The document as a whole

#[test]
fn syntax_errors_are_reported_where_the_parser_stops() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid("version: 1\nmountpoint: /x: y\n"),
        vec![err(
            2,
            15,
            "invalid YAML: mapping values are not allowed in this context",
            HELP_SYNTAX
        )]
    );
    assert_eq!(
        fx.invalid("version: 1\nmountpoint: \"/x\n"),
        vec![err(
            2,
            13,
            "invalid YAML: while scanning a quoted scalar, found unexpected end of stream",
            HELP_SYNTAX
        )]
    );
    // An unclosed bracket: the parser notices at the end of the file.
    assert_eq!(
        fx.invalid("version: 1\nmountpoint: [a\n"),
        vec![err(
            3,
            1,
            "invalid YAML: while parsing a flow sequence, expected ',' or ']'",
            HELP_SYNTAX
        )]
    );
    // A tab where indentation is expected.
    assert_eq!(
        fx.invalid("version: 1\n\tmountpoint: /x\n"),
        vec![err(
            1,
            10,
            "invalid YAML: while scanning a plain scalar, found a tab",
            HELP_SYNTAX
        )]
    );
}

#[test]
fn an_empty_file_is_an_error() {
    let fx = Fx::new();
    let expected = vec![err(
        1,
        1,
        "the declaration is empty",
        "start the file with `version: 1`, then `mountpoint:` and `redirections:` (see redirfs.yaml(5))",
    )];
    assert_eq!(fx.invalid(""), expected);
    assert_eq!(fx.invalid("   \n\n"), expected);
    assert_eq!(fx.invalid("# only a comment\n"), expected);
}

#[test]
fn a_bare_document_marker_is_not_a_mapping() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid("---\n"),
        vec![err(
            2,
            1,
            "the declaration must be a mapping of `key: value` lines, found nothing",
            HELP_MAPPING
        )]
    );
}

#[test]
fn a_second_document_is_an_error() {
    let fx = Fx::new();
    let text = format!("{HEAD}redirections: []\n---\nversion: 1\n---\nversion: 2\n");
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                5,
                1,
                "a second YAML document in the declaration",
                "keep one declaration per file: remove the `---` and what follows, or move it to its own file"
            ),
            err(
                7,
                1,
                "a second YAML document in the declaration",
                "keep one declaration per file: remove the `---` and what follows, or move it to its own file"
            ),
        ]
    );
}

#[test]
fn the_root_must_be_a_mapping() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid("- version: 1\n- mountpoint: /x\n"),
        vec![err(
            1,
            1,
            "the declaration must be a mapping of `key: value` lines, found a list",
            HELP_MAPPING
        )]
    );
    assert_eq!(
        fx.invalid("just text\n"),
        vec![err(
            1,
            1,
            "the declaration must be a mapping of `key: value` lines, found a string `just text`",
            HELP_MAPPING
        )]
    );
    assert_eq!(
        fx.invalid("42\n"),
        vec![err(
            1,
            1,
            "the declaration must be a mapping of `key: value` lines, found a number `42`",
            HELP_MAPPING
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Keys

#[test]
fn unknown_top_level_keys_suggest_the_nearest() {
    let fx = Fx::new();
    let text = format!("{HEAD}redirection: []\ncolour: red\n");
    assert_eq!(
        fx.invalid(&text),
        vec![
            warn(1, 1, MSG_NO_REDIRECTIONS, HELP_NO_REDIRECTIONS),
            err(
                3,
                1,
                "unknown key `redirection` at the top level",
                format!("did you mean `redirections`? Valid keys at the top level: {TOP_KEYS}")
            ),
            err(
                4,
                1,
                "unknown key `colour` at the top level",
                format!("valid keys at the top level: {TOP_KEYS}")
            ),
        ]
    );
}

#[test]
fn misspelled_required_keys_are_unknown_and_missing() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid("versoin: 1\nmountpiont: /x\nredirections: []\n"),
        vec![
            err(
                1,
                1,
                "unknown key `versoin` at the top level",
                format!("did you mean `version`? Valid keys at the top level: {TOP_KEYS}")
            ),
            err(1, 1, "missing `version`", "add `version: 1` as the first line"),
            err(
                1,
                1,
                "missing `mountpoint`",
                "add `mountpoint: /path/where/the/overlay/appears` (on Windows: `mountpoint: \"L:\"`)"
            ),
            err(
                2,
                1,
                "unknown key `mountpiont` at the top level",
                format!("did you mean `mountpoint`? Valid keys at the top level: {TOP_KEYS}")
            ),
        ]
    );
}

#[test]
fn unknown_option_keys_suggest_the_nearest() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}options:\n  readonly: true\n  allow-other: true\n  x: 1\nredirections: []\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                4,
                3,
                "unknown key `readonly` in `options`",
                "did you mean `read_only`? Valid keys in `options`: read_only, allow_other"
            ),
            err(
                5,
                3,
                "unknown key `allow-other` in `options`",
                "did you mean `allow_other`? Valid keys in `options`: read_only, allow_other"
            ),
            err(
                6,
                3,
                "unknown key `x` in `options`",
                "valid keys in `options`: read_only, allow_other"
            ),
        ]
    );
}

#[test]
fn unknown_entry_keys_suggest_the_nearest() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/tgt\n    as_: symlink\n    onmissing: hide\n    readonly: true\n    comment: hi\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                6,
                5,
                "unknown key `as_` in a redirection",
                format!("did you mean `as`? Valid keys in a redirection: {ENTRY_KEYS}")
            ),
            err(
                7,
                5,
                "unknown key `onmissing` in a redirection",
                format!("did you mean `on_missing`? Valid keys in a redirection: {ENTRY_KEYS}")
            ),
            err(
                8,
                5,
                "unknown key `readonly` in a redirection",
                format!("did you mean `read_only`? Valid keys in a redirection: {ENTRY_KEYS}")
            ),
            err(
                9,
                5,
                "unknown key `comment` in a redirection",
                format!("valid keys in a redirection: {ENTRY_KEYS}")
            ),
        ]
    );
}

#[test]
fn keys_must_be_plain_names() {
    let fx = Fx::new();
    let text = format!("{HEAD}redirections: []\n[a, b]: 1\n7: x\n");
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                4,
                1,
                "a key must be a plain name, found a list",
                format!("use one of: {TOP_KEYS}")
            ),
            err(
                5,
                1,
                "unknown key `7` at the top level",
                format!("valid keys at the top level: {TOP_KEYS}")
            ),
        ]
    );
}

#[test]
fn duplicate_keys_are_errors_at_every_level() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}options:\n  read_only: true\n  read_only: false\nredirections:\n  - path: a\n    target: {{T}}/tgt\n    path: b\nversion: 1\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                5,
                3,
                "key `read_only` appears twice (first at line 4)",
                HELP_TWICE
            ),
            err(
                9,
                5,
                "key `path` appears twice (first at line 7)",
                HELP_TWICE
            ),
            err(
                10,
                1,
                "key `version` appears twice (first at line 1)",
                HELP_TWICE
            ),
        ]
    );
}

#[test]
fn aliases_are_refused_once_each_and_the_key_still_counts() {
    let fx = Fx::new();
    // The anchor on `version` is harmless; each alias is one error, and no key it stands for is
    // reported missing besides.
    let text = "version: &v 1\nmountpoint: *v\noptions:\n  read_only: *v\nredirections:\n  - &e\n    path: a\n    target: {T}/tgt\n  - *e\n  - path: *v\n    target: {T}/tgt\n    as: *v\n";
    let a = |line, col| {
        err(
            line,
            col,
            "YAML aliases (`*name`) are not supported in declarations",
            HELP_ALIAS,
        )
    };
    assert_eq!(
        fx.invalid(text),
        vec![a(2, 13), a(4, 14), a(9, 5), a(10, 11), a(12, 9)]
    );
    let text = format!("{HEAD}options: &o {{read_only: true}}\nredirections: *o\n");
    assert_eq!(fx.invalid(&text), vec![a(4, 15)]);
}

// ---------------------------------------------------------------------------------------------
// version

#[test]
fn version_is_required() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid("mountpoint: {T}/mnt\nredirections: []\n"),
        vec![err(
            1,
            1,
            "missing `version`",
            "add `version: 1` as the first line"
        )]
    );
}

#[test]
fn version_must_be_the_number_1() {
    let fx = Fx::new();
    let cases = [
        ("\"1\"", 10, "a string `1`"),
        ("one", 10, "a string `one`"),
        ("1.0", 10, "a number `1.0`"),
        ("true", 10, "a boolean `true`"),
        ("[1]", 10, "a list"),
        ("{v: 1}", 10, "a mapping"),
        // An empty value is reported at its key.
        ("", 1, "nothing"),
        ("~", 10, "null `~`"),
    ];
    for (value, col, found) in cases {
        let text = format!("version: {value}\nmountpoint: {{T}}/mnt\nredirections: []\n");
        assert_eq!(
            fx.invalid(&text),
            vec![err(
                1,
                col,
                format!("`version` must be the number 1, found {found}"),
                "write `version: 1`"
            )],
            "version: {value}"
        );
    }
}

#[test]
fn other_version_numbers_are_unsupported() {
    let fx = Fx::new();
    for v in ["2", "0", "100"] {
        let text = format!("version: {v}\nmountpoint: {{T}}/mnt\nredirections: []\n");
        assert_eq!(
            fx.invalid(&text),
            vec![err(
                1,
                10,
                format!("unsupported declaration version `{v}`"),
                "this redirfs reads `version: 1`; upgrade redirfs or write the declaration in version 1"
            )]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// mountpoint

#[test]
fn mountpoint_is_required() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid("version: 1\nredirections: []\n"),
        vec![err(
            1,
            1,
            "missing `mountpoint`",
            "add `mountpoint: /path/where/the/overlay/appears` (on Windows: `mountpoint: \"L:\"`)"
        )]
    );
}

#[test]
fn mountpoint_must_be_a_string() {
    let fx = Fx::new();
    let cases = [
        ("[a]", 2, 13, "`mountpoint` must be a string, found a list"),
        (
            "{a: b}",
            2,
            13,
            "`mountpoint` must be a string, found a mapping",
        ),
        ("", 2, 1, "`mountpoint` must be a string, found nothing"),
        (
            "null",
            2,
            13,
            "`mountpoint` must be a string, found null `null`",
        ),
        ("\"\"", 2, 13, "`mountpoint` is empty"),
    ];
    for (value, line, col, message) in cases {
        let text = format!("version: 1\nmountpoint: {value}\nredirections: []\n");
        assert_eq!(
            fx.invalid(&text),
            vec![err(line, col, message, HELP_MOUNTPOINT)],
            "mountpoint: {value}"
        );
    }
    assert_eq!(
        fx.invalid("version: 1\nmountpoint: \"/a\\0b\"\nredirections: []\n"),
        vec![err(
            2,
            13,
            "`mountpoint` contains a NUL character",
            "remove the `\\0` from the path"
        )]
    );
}

#[test]
fn mountpoint_may_be_a_drive_letter() {
    let fx = Fx::new();
    for (value, letter) in [
        ("\"L:\"", 'L'),
        ("\"l:\"", 'L'),
        ("'x:\\'", 'X'),
        ("\"R:/\"", 'R'),
    ] {
        let text = format!("version: 1\nmountpoint: {value}\nredirections: []\n");
        let (d, diags) = fx.valid(&text);
        assert_eq!(d.mountpoint, Mountpoint::Drive(letter), "{value}");
        assert_eq!(diags, vec![]);
    }
    // More than one letter, or anything after the separator, is a directory name.
    let (d, _) = fx.valid("version: 1\nmountpoint: \"LL:\"\nredirections: []\n");
    assert_eq!(d.mountpoint, Mountpoint::Dir(fx.root().join("decl/LL:")));
    // An unquoted `L:` at the end of a line is YAML for a mapping key.
    assert_eq!(
        fx.invalid("version: 1\nmountpoint: L:\nredirections: []\n"),
        vec![err(
            2,
            14,
            "invalid YAML: mapping values are not allowed in this context",
            HELP_SYNTAX
        )]
    );
}

#[test]
fn a_relative_mountpoint_resolves_against_the_file() {
    let fx = Fx::new();
    let (d, _) = fx.valid("version: 1\nmountpoint: ../mnt/./\nredirections: []\n");
    assert_eq!(d.mountpoint, Mountpoint::Dir(fx.root().join("mnt")));
    assert_eq!(d.file, fx.file());
}

// ---------------------------------------------------------------------------------------------
// base

#[test]
fn base_must_exist() {
    let fx = Fx::new();
    let text = format!("{HEAD}base: {{T}}/nope\nredirections: []\n");
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            3,
            7,
            format!("base `{}` cannot be used: it does not exist", fx.p("nope")),
            "create the directory, fix the path, or remove `base` for a mount of redirections only"
        )]
    );
}

#[test]
fn base_must_be_a_directory() {
    let fx = Fx::new();
    let text = format!("{HEAD}base: {{T}}/file.txt\nredirections: []\n");
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            3,
            7,
            format!("base `{}` is not a directory", fx.p("file.txt")),
            "point `base` at a directory"
        )]
    );
}

#[test]
fn base_must_be_a_string() {
    let fx = Fx::new();
    let text = format!("{HEAD}base: [a]\nredirections: []\n");
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            3,
            7,
            "`base` must be a string, found a list",
            "write the directory whose contents show through, or remove `base`"
        )]
    );
}

#[test]
fn base_inside_the_mountpoint_is_an_error() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root().join("mnt/inner")).expect("mkdir");
    let text = format!("{HEAD}base: {{T}}/mnt/inner\nredirections: []\n");
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            3,
            7,
            format!(
                "base `{}` lies inside the mountpoint `{}`: the mount would show itself",
                fx.p("mnt/inner"),
                fx.p("mnt")
            ),
            "move the base out of the mountpoint, or set `base` equal to `mountpoint` for an in-place overlay"
        )]
    );
}

#[test]
fn a_mountpoint_inside_the_base_is_an_error() {
    let fx = Fx::new();
    let text = "version: 1\nmountpoint: {T}/mnt\nbase: {T}\nredirections: []\n";
    assert_eq!(
        fx.invalid(text),
        vec![err(
            3,
            7,
            format!(
                "the mountpoint `{}` lies inside base `{}`: the base would show the mount inside itself",
                fx.p("mnt"),
                fx.root().display()
            ),
            "mount outside the base, or set `base` equal to `mountpoint` for an in-place overlay"
        )]
    );
}

#[test]
fn base_equal_to_the_mountpoint_is_an_in_place_overlay() {
    let fx = Fx::new();
    for base in ["{T}/mnt", "{T}/mnt/", "{T}/./mnt//", "../mnt"] {
        let text = format!("{HEAD}base: {base}\nredirections: []\n");
        let (d, diags) = fx.valid(&text);
        assert_eq!(
            d.base.as_deref(),
            Some(fx.root().join("mnt").as_path()),
            "{base}"
        );
        assert_eq!(d.mountpoint, Mountpoint::Dir(fx.root().join("mnt")));
        assert_eq!(diags, vec![]);
    }
}

#[test]
fn a_relative_base_resolves_against_the_file() {
    let fx = Fx::new();
    let (d, _) = fx.valid(&format!("{HEAD}base: ../base\nredirections: []\n"));
    assert_eq!(d.base, Some(fx.root().join("base")));
}

#[test]
fn without_redirections_the_mount_shows_the_base() {
    let fx = Fx::new();
    let (d, diags) = fx.valid(&format!("{HEAD}base: {{T}}/base\n"));
    assert!(d.entries.is_empty());
    assert_eq!(
        diags,
        vec![warn(1, 1, MSG_NO_REDIRECTIONS, HELP_NO_REDIRECTIONS)]
    );
    // An empty list or an empty value is deliberate: no warning.
    for r in ["redirections: []", "redirections:"] {
        let (d, diags) = fx.valid(&format!("{HEAD}base: {{T}}/base\n{r}\n"));
        assert!(d.entries.is_empty());
        assert_eq!(diags, vec![], "{r}");
    }
}

// ---------------------------------------------------------------------------------------------
// options

#[test]
fn options_are_read() {
    let fx = Fx::new();
    let (d, _) = fx.valid(&format!(
        "{HEAD}options:\n  read_only: true\n  allow_other: true\nredirections: []\n"
    ));
    assert!(d.options.read_only);
    assert!(d.options.allow_other);
    let (d, _) = fx.valid(&format!(
        "{HEAD}options: {{read_only: false}}\nredirections: []\n"
    ));
    assert!(!d.options.read_only);
    assert!(!d.options.allow_other);
    let (d, _) = fx.valid(&format!("{HEAD}redirections: []\n"));
    assert_eq!(d.options, Default::default());
}

#[test]
fn options_must_be_booleans() {
    let fx = Fx::new();
    let text =
        format!("{HEAD}options:\n  read_only: yes\n  allow_other: \"true\"\nredirections: []\n");
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                4,
                14,
                "`read_only` must be true or false, found a string `yes`",
                "write `read_only: true` or `read_only: false`"
            ),
            err(
                5,
                16,
                "`allow_other` must be true or false, found a string `true`",
                "write `allow_other: true` or `allow_other: false`"
            ),
        ]
    );
    let text = format!("{HEAD}options:\n  allow_other: 1\nredirections: []\n");
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            4,
            16,
            "`allow_other` must be true or false, found a number `1`",
            "write `allow_other: true` or `allow_other: false`"
        )]
    );
}

#[test]
fn options_must_be_a_mapping() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid(&format!("{HEAD}options: [read_only]\nredirections: []\n")),
        vec![err(
            3,
            10,
            "`options` must be a mapping of `key: value` lines, found a list",
            HELP_MAPPING
        )]
    );
    assert_eq!(
        fx.invalid(&format!("{HEAD}options:\nredirections: []\n")),
        vec![err(
            3,
            1,
            "`options` must be a mapping of `key: value` lines, found nothing",
            HELP_MAPPING
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// redirections

#[test]
fn redirections_must_be_a_list() {
    let fx = Fx::new();
    let help =
        "write each redirection as a list item: `- path: data` with `target: /elsewhere` under it";
    assert_eq!(
        fx.invalid(&format!("{HEAD}redirections: a\n")),
        vec![err(
            3,
            15,
            "`redirections` must be a list, found a string `a`",
            help
        )]
    );
    assert_eq!(
        fx.invalid(&format!("{HEAD}redirections:\n  path: a\n  target: /x\n")),
        vec![err(
            4,
            3,
            "`redirections` must be a list, found a mapping",
            help
        )]
    );
}

#[test]
fn each_redirection_must_be_a_mapping() {
    let fx = Fx::new();
    assert_eq!(
        fx.invalid(&format!("{HEAD}redirections:\n  - just a string\n  - [a, b]\n")),
        vec![
            err(
                4,
                5,
                "a redirection must be a mapping of `key: value` lines, found a string `just a string`",
                HELP_MAPPING
            ),
            err(
                5,
                5,
                "a redirection must be a mapping of `key: value` lines, found a list",
                HELP_MAPPING
            ),
        ]
    );
}

#[test]
fn an_entry_needs_path_and_target() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - target: {{T}}/tgt\n  - path: a\n  - as: symlink\n    read_only: false\n"
    );
    let no_path = |line| {
        err(
            line,
            5,
            "redirection without `path`",
            "add `path: NAME`, the virtual path inside the mount",
        )
    };
    let no_target = |line| {
        err(
            line,
            5,
            "redirection without `target`",
            "add `target: /where/the/data/lives`",
        )
    };
    assert_eq!(
        fx.invalid(&text),
        vec![no_path(4), no_target(5), no_path(6), no_target(6)]
    );
}

#[test]
fn path_and_target_must_be_strings() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: [x]\n    target: {{a: b}}\n  - path:\n    target:\n  - path: \"\"\n    target: \"\"\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(4, 11, "`path` must be a string, found a list", HELP_PATH),
            err(
                5,
                13,
                "`target` must be a string, found a mapping",
                HELP_TARGET
            ),
            err(6, 5, "`path` must be a string, found nothing", HELP_PATH),
            err(
                7,
                5,
                "`target` must be a string, found nothing",
                HELP_TARGET
            ),
            err(8, 11, "`path` is empty", HELP_PATH),
            err(9, 13, "`target` is empty", HELP_TARGET),
        ]
    );
}

#[test]
fn scalars_that_look_like_numbers_are_names() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root().join("2020")).expect("mkdir");
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: 2020\n    target: ../2020\n"
    ));
    assert_eq!(diags, vec![]);
    assert_eq!(d.entries[0].path.to_string(), "2020");
    assert_eq!(d.entries[0].target, fx.root().join("2020"));
}

// ---------------------------------------------------------------------------------------------
// Virtual paths

#[test]
fn virtual_path_errors() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: /abs/x\n    target: {{T}}/tgt\n  - path: a/../b\n    target: {{T}}/tgt\n  - path: ./\n    target: {{T}}/tgt\n  - path: /\n    target: {{T}}/tgt\n  - path: \"a\\0b\"\n    target: {{T}}/tgt\n  - path: a\\b\\c\n    target: {{T}}/tgt\n  - path: ..\n    target: {{T}}/tgt\n"
    );
    let climbs = "a virtual path cannot climb out of the mount: remove the `..`";
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                4,
                11,
                "path `/abs/x` is absolute",
                "write it relative to the mount's root: `abs/x`"
            ),
            err(6, 11, "path `a/../b` climbs with `..`", climbs),
            err(8, 11, "path `./` is empty", HELP_EMPTY_PATH),
            err(10, 11, "path `/` is empty", HELP_EMPTY_PATH),
            err(
                12,
                11,
                "`path` contains a NUL character",
                "remove the `\\0` from the path"
            ),
            err(
                14,
                11,
                "path `a\\b\\c` contains a backslash",
                "separate components with `/` on every OS: `a/b/c`"
            ),
            err(16, 11, "path `..` climbs with `..`", climbs),
        ]
    );
}

#[test]
fn virtual_paths_are_normalized() {
    let fx = Fx::new();
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: ./a//b/./c/\n    target: {{T}}/tgt\n  - path: d/\n    target: {{T}}/tgt\n"
    ));
    assert_eq!(diags, vec![]);
    let paths: Vec<String> = d.entries.iter().map(|e| e.path.to_string()).collect();
    assert_eq!(paths, ["a/b/c", "d"]);
}

#[test]
fn duplicates_after_normalization_are_errors() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: a/b\n    target: {{T}}/tgt\n  - path: ./a//b/\n    target: {{T}}/archive\n  - path: A/b\n    target: {{T}}/tgt\n  - path: a/b/.\n    target: {{T}}/tgt\n"
    );
    let twice = |line| {
        err(
            line,
            11,
            "path `a/b` is declared twice (first at line 4)",
            "keep one of the two entries, or give this one another path",
        )
    };
    // `A/b` differs in case: a different name on a case-sensitive mount.
    assert_eq!(fx.invalid(&text), vec![twice(6), twice(10)]);
}

// ---------------------------------------------------------------------------------------------
// Nesting

fn beneath(path: &str, link: &str, kind: &str, line: usize) -> (String, String) {
    (
        format!("`{path}` lies beneath `{link}`, a {kind} entry (line {line}): the kernel leaves the mount at the link, so this entry can never be reached"),
        format!("make `{link}` a `transparent` entry, or move this entry out from beneath it"),
    )
}

#[test]
fn entries_beneath_a_symlink_are_unreachable() {
    let fx = Fx::new();
    // The nested entry comes first and lies two levels down; the order does not matter.
    let text = format!(
        "{HEAD}redirections:\n  - path: l/x/y\n    target: {{T}}/tgt\n  - path: l\n    target: {{T}}/archive\n  - path: l/z\n    target: {{T}}/tgt\n    as: transparent\n"
    );
    let (m1, h1) = beneath("l/x/y", "l", "symlink", 6);
    let (m2, h2) = beneath("l/z", "l", "symlink", 6);
    assert_eq!(
        fx.invalid(&text),
        vec![err(4, 11, m1, h1), err(8, 11, m2, h2)]
    );
}

#[test]
fn entries_beneath_a_junction_are_unreachable() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - as: junction\n    path: j\n    target: {{T}}/archive\n  - path: j/x\n    target: {{T}}/tgt\n"
    );
    // The junction's line is where its entry starts (its first key), not its `path`.
    let (m, h) = beneath("j/x", "j", "junction", 4);
    assert_eq!(fx.invalid(&text), vec![err(7, 11, m, h)]);
}

#[test]
fn the_innermost_link_is_not_blamed_twice() {
    let fx = Fx::new();
    // `a/b/c` lies beneath two links; one error names the nearest.
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/tgt\n  - path: a/b\n    target: {{T}}/tgt\n  - path: a/b/c\n    target: {{T}}/tgt\n"
    );
    let (m1, h1) = beneath("a/b", "a", "symlink", 4);
    let (m2, h2) = beneath("a/b/c", "a/b", "symlink", 6);
    assert_eq!(
        fx.invalid(&text),
        vec![err(6, 11, m1, h1), err(8, 11, m2, h2)]
    );
}

#[test]
fn entries_beneath_a_transparent_entry_are_allowed() {
    let fx = Fx::new();
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: t\n    target: {{T}}/tgt\n    as: transparent\n  - path: t/x\n    target: {{T}}/archive\n  - path: t/y/z\n    target: {{T}}/archive\n    as: junction\n"
    ));
    assert_eq!(diags, vec![]);
    let kinds: Vec<(String, Presentation)> = d
        .entries
        .iter()
        .map(|e| (e.path.to_string(), e.presentation))
        .collect();
    assert_eq!(
        kinds,
        [
            ("t".to_string(), Presentation::Transparent),
            ("t/x".to_string(), Presentation::Symlink),
            ("t/y/z".to_string(), Presentation::Junction),
        ]
    );
}

#[test]
fn siblings_sharing_a_prefix_are_not_nested() {
    let fx = Fx::new();
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: data\n    target: {{T}}/tgt\n  - path: data2/x\n    target: {{T}}/tgt\n  - path: dat\n    target: {{T}}/tgt\n"
    ));
    assert_eq!(diags, vec![]);
    assert_eq!(d.entries.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Names on a case-insensitive mount (Windows)

const HELP_CASE_TWICE: &str =
    "keep one of the two entries, or give this one a path that differs in more than case";

fn twice_in_case(path: &str, line: usize, first: &str) -> String {
    format!("path `{path}` is declared twice (first at line {line}, as `{first}`): names that differ only in case are one name on a case-insensitive mount")
}

#[test]
fn paths_that_differ_only_in_case_are_duplicates_on_a_case_insensitive_mount() {
    let fx = Fx::new();
    // Folding is the table's: lower case, character by character (`ß` is not `SS`).
    let text = format!(
        "{HEAD}redirections:\n  - path: Data\n    target: {{T}}/tgt\n  - path: data\n    target: {{T}}/archive\n  - path: A/b\n    target: {{T}}/tgt\n  - path: ./a//B/\n    target: {{T}}/tgt\n  - path: É/x\n    target: {{T}}/tgt\n  - path: é/X\n    target: {{T}}/tgt\n  - path: Straße\n    target: {{T}}/tgt\n  - path: STRASSE\n    target: {{T}}/tgt\n"
    );
    assert_eq!(
        fx.invalid_for(&text, NameCase::Insensitive),
        vec![
            err(6, 11, twice_in_case("data", 4, "Data"), HELP_CASE_TWICE),
            err(10, 11, twice_in_case("a/B", 8, "A/b"), HELP_CASE_TWICE),
            err(14, 11, twice_in_case("é/X", 12, "É/x"), HELP_CASE_TWICE),
        ]
    );
    // A case-sensitive mount shows them all.
    let (d, diags) = fx.valid_for(&text, NameCase::Sensitive);
    assert_eq!(diags, vec![]);
    assert_eq!(d.entries.len(), 8);
    assert_eq!(d.case, NameCase::Sensitive);
}

#[test]
fn the_same_spelling_twice_keeps_its_message_on_a_case_insensitive_mount() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: Data\n    target: {{T}}/tgt\n  - path: DATA\n    target: {{T}}/tgt\n  - path: Data/\n    target: {{T}}/tgt\n"
    );
    assert_eq!(
        fx.invalid_for(&text, NameCase::Insensitive),
        vec![
            err(6, 11, twice_in_case("DATA", 4, "Data"), HELP_CASE_TWICE),
            err(
                8,
                11,
                "path `Data` is declared twice (first at line 4)",
                "keep one of the two entries, or give this one another path"
            ),
        ]
    );
}

#[test]
fn entries_beneath_a_link_are_found_whatever_the_case_on_a_case_insensitive_mount() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: Data\n    target: {{T}}/tgt\n  - path: data/2019\n    target: {{T}}/archive\n  - path: Docs\n    target: {{T}}/tgt\n    as: transparent\n  - path: DOCS/x\n    target: {{T}}/tgt\n"
    );
    let (m, h) = beneath("data/2019", "Data", "symlink", 4);
    assert_eq!(
        fx.invalid_for(&text, NameCase::Insensitive),
        vec![err(6, 11, m, h)]
    );
    // On a case-sensitive mount `data` is another directory than the link `Data`.
    let (d, diags) = fx.valid_for(&text, NameCase::Sensitive);
    assert_eq!(diags, vec![]);
    assert_eq!(d.entries.len(), 4);
}

#[test]
fn a_declaration_remembers_how_it_was_checked() {
    let fx = Fx::new();
    let text = format!("{HEAD}redirections:\n  - path: a\n    target: {{T}}/tgt\n");
    let (d, _) = fx.valid(&text);
    assert_eq!(d.case, NameCase::host());
    let (d, _) = fx.valid_for(&text, NameCase::Insensitive);
    assert_eq!(d.case, NameCase::Insensitive);
    let file = fx.root().join("decl/case.yaml");
    std::fs::write(
        &file,
        "version: 1\nmountpoint: ../mnt\nredirections:\n  - path: a\n    target: ../tgt\n  - path: A\n    target: ../tgt\n",
    )
    .expect("write");
    match load_file_for(&file, NameCase::Insensitive) {
        Err(LoadError::Invalid(inv)) => {
            assert_eq!(inv.error_count(), 1);
            assert_eq!(inv.diagnostics[0].message, twice_in_case("A", 4, "a"));
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let d = load_file_for(&file, NameCase::Sensitive).expect("valid");
    assert_eq!((d.entries.len(), d.case), (2, NameCase::Sensitive));
}

// ---------------------------------------------------------------------------------------------
// Targets

fn inside_mountpoint(target: &str, mp: &str) -> String {
    format!("target `{target}` lies inside the mountpoint `{mp}`: a loop")
}

#[test]
fn a_target_inside_the_mountpoint_is_a_loop() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/mnt/sub\n  - path: b\n    target: {{T}}/mnt\n  - path: c\n    target: ../mnt/./x\n  - path: d\n    target: {{T}}/tgt/../mnt/\n"
    );
    let mp = fx.p("mnt");
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                5,
                13,
                inside_mountpoint(&fx.p("mnt/sub"), &mp),
                HELP_INSIDE_MOUNTPOINT
            ),
            err(7, 13, inside_mountpoint(&mp, &mp), HELP_INSIDE_MOUNTPOINT),
            err(
                9,
                13,
                inside_mountpoint(&fx.p("mnt/x"), &mp),
                HELP_INSIDE_MOUNTPOINT
            ),
            err(11, 13, inside_mountpoint(&mp, &mp), HELP_INSIDE_MOUNTPOINT),
        ]
    );
}

#[cfg(unix)]
#[test]
fn a_loop_through_a_symlink_is_found() {
    let fx = Fx::new();
    std::os::unix::fs::symlink(fx.root().join("mnt"), fx.root().join("via")).expect("symlink");
    let text = format!("{HEAD}redirections:\n  - path: a\n    target: {{T}}/via/deep\n");
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            5,
            13,
            inside_mountpoint(&fx.p("via/deep"), &fx.p("mnt")),
            HELP_INSIDE_MOUNTPOINT
        )]
    );
}

#[test]
fn a_target_containing_the_mountpoint_is_a_loop() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}\n  - path: b\n    target: ..\n  - path: c\n    target: /\n"
    );
    let mp = fx.p("mnt");
    let msg = |t: &str| format!("the mountpoint `{mp}` lies inside target `{t}`: a loop");
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                5,
                13,
                msg(&fx.root().display().to_string()),
                HELP_CONTAINS_MOUNTPOINT
            ),
            err(
                7,
                13,
                msg(&fx.root().display().to_string()),
                HELP_CONTAINS_MOUNTPOINT
            ),
            err(9, 13, msg("/"), HELP_CONTAINS_MOUNTPOINT),
        ]
    );
}

#[test]
fn a_sibling_of_the_mountpoint_is_not_a_loop() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root().join("mnt2")).expect("mkdir");
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/mnt2\n  - path: b\n    target: {{T}}/mn\n    on_missing: hide\n"
    ));
    assert_eq!(d.entries.len(), 2);
    assert_eq!(
        diags,
        vec![warn(
            7,
            13,
            format!(
                "target `{}` cannot be reached: it does not exist",
                fx.p("mn")
            ),
            HELP_HIDE
        )]
    );
}

#[test]
fn a_drive_mountpoint_has_no_loop_check() {
    let fx = Fx::new();
    let (d, diags) =
        fx.valid("version: 1\nmountpoint: \"M:\"\nredirections:\n  - path: a\n    target: {T}\n");
    assert_eq!(d.entries[0].target, fx.root());
    assert_eq!(diags, vec![]);
}

#[test]
fn a_missing_target_follows_on_missing() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/gone-a\n  - path: b\n    target: {{T}}/gone-b\n    on_missing: dangling\n  - path: c\n    target: {{T}}/gone-c\n    on_missing: hide\n  - path: d\n    target: {{T}}/gone-d\n    as: transparent\n    on_missing: hide\n"
    );
    let gone = |n: &str| format!("target `{}` cannot be reached: it does not exist", fx.p(n));
    let (d, diags) = fx.valid(&text);
    assert_eq!(
        diags,
        vec![
            warn(5, 13, gone("gone-a"), HELP_DANGLING),
            warn(7, 13, gone("gone-b"), HELP_DANGLING),
            warn(10, 13, gone("gone-c"), HELP_HIDE),
            warn(13, 13, gone("gone-d"), HELP_HIDE),
        ]
    );
    let modes: Vec<OnMissing> = d.entries.iter().map(|e| e.on_missing).collect();
    assert_eq!(
        modes,
        [
            OnMissing::Dangling,
            OnMissing::Dangling,
            OnMissing::Hide,
            OnMissing::Hide
        ]
    );
    assert_eq!(d.warnings().count(), 4);

    let text = format!(
        "{HEAD}redirections:\n  - path: e\n    target: {{T}}/gone-e\n    on_missing: error\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![err(5, 13, gone("gone-e"), HELP_MISSING_ERROR)]
    );
}

#[cfg(unix)]
#[test]
fn a_windows_target_on_unix_says_so() {
    let fx = Fx::new();
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: a\n    target: 'D:\\archive'\n  - path: b\n    target: '\\\\server\\share'\n"
    ));
    assert_eq!(d.entries[0].target, PathBuf::from("D:\\archive"));
    assert_eq!(
        diags,
        vec![
            warn(
                5,
                13,
                "target `D:\\archive` cannot be reached: it does not exist (it is a Windows path: only a Windows mount can reach it)",
                HELP_DANGLING
            ),
            warn(
                7,
                13,
                "target `\\\\server\\share` cannot be reached: it does not exist (it is a Windows path: only a Windows mount can reach it)",
                HELP_DANGLING
            ),
        ]
    );
}

#[test]
fn a_junction_must_point_to_a_directory() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: j\n    target: {{T}}/file.txt\n    as: junction\n  - path: s\n    target: {{T}}/file.txt\n  - path: t\n    target: {{T}}/file.txt\n    as: transparent\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            5,
            13,
            format!(
                "a junction must point to a directory; `{}` is not one",
                fx.p("file.txt")
            ),
            "use `as: symlink` (or `transparent`) for a file"
        )]
    );
    // An absent junction target is only a warning: nothing says what it will be.
    let (_, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: j\n    target: {{T}}/later\n    as: junction\n"
    ));
    assert_eq!(
        diags,
        vec![warn(
            5,
            13,
            format!(
                "target `{}` cannot be reached: it does not exist",
                fx.p("later")
            ),
            HELP_DANGLING
        )]
    );
}

#[test]
fn as_and_on_missing_take_known_values() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/tgt\n    as: symlnk\n    on_missing: hid\n  - path: b\n    target: {{T}}/tgt\n    as: hardlink\n    on_missing: ignore\n  - path: c\n    target: {{T}}/tgt\n    as: [symlink]\n    on_missing: \"\"\n    read_only: 1\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                6,
                9,
                "unknown `as` value `symlnk`",
                "did you mean `symlink`? `as` takes one of: symlink, transparent, junction"
            ),
            err(
                7,
                17,
                "unknown `on_missing` value `hid`",
                "did you mean `hide`? `on_missing` takes one of: dangling, hide, error"
            ),
            err(
                10,
                9,
                "unknown `as` value `hardlink`",
                "`as` takes one of: symlink, transparent, junction"
            ),
            err(
                11,
                17,
                "unknown `on_missing` value `ignore`",
                "`on_missing` takes one of: dangling, hide, error"
            ),
            err(
                14,
                9,
                "`as` must be a string, found a list",
                "write one of: symlink, transparent, junction"
            ),
            err(
                15,
                17,
                "`on_missing` is empty",
                "write one of: dangling, hide, error"
            ),
            err(
                16,
                16,
                "`read_only` must be true or false, found a number `1`",
                "write `read_only: true` or `read_only: false`"
            ),
        ]
    );
}

#[test]
fn read_only_on_a_link_has_no_effect() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}redirections:\n  - path: s\n    target: {{T}}/tgt\n    read_only: true\n  - path: j\n    target: {{T}}/tgt\n    as: junction\n    read_only: true\n  - path: t\n    target: {{T}}/tgt\n    as: transparent\n    read_only: true\n  - path: f\n    target: {{T}}/tgt\n    read_only: false\n"
    );
    let (d, diags) = fx.valid(&text);
    assert_eq!(
        diags,
        vec![
            warn(
                6,
                16,
                "`read_only` has no effect on a `symlink` entry",
                HELP_READ_ONLY_LINK
            ),
            warn(
                10,
                16,
                "`read_only` has no effect on a `junction` entry",
                HELP_READ_ONLY_LINK
            ),
        ]
    );
    let ro: Vec<bool> = d.entries.iter().map(|e| e.read_only).collect();
    assert_eq!(ro, [true, true, true, false]);
}

#[test]
fn entries_masking_the_base_get_a_note() {
    let fx = Fx::new();
    let text = format!(
        "{HEAD}base: {{T}}/base\nredirections:\n  - path: data\n    target: {{T}}/tgt\n  - path: sub/x\n    target: {{T}}/tgt\n    as: transparent\n  - path: readme.txt\n    target: {{T}}/file.txt\n  - path: new\n    target: {{T}}/tgt\n"
    );
    let (d, diags) = fx.valid(&text);
    let masks = |path: &str| {
        format!(
            "`{path}` masks `{}`, which exists in the base: the declared entry wins",
            fx.p(&format!("base/{path}"))
        )
    };
    assert_eq!(
        diags,
        vec![
            note(5, 11, masks("data")),
            note(7, 11, masks("sub/x")),
            note(10, 11, masks("readme.txt")),
        ]
    );
    assert_eq!(d.entries.len(), 4);
    // The same entries without a base mask nothing.
    let (_, diags) = fx.valid(&text.replace("base: {T}/base\n", ""));
    assert_eq!(diags, vec![]);
}

#[test]
fn relative_targets_resolve_against_the_file() {
    let fx = Fx::new();
    std::fs::create_dir(fx.root().join("decl/local")).expect("mkdir");
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: a\n    target: ../tgt\n  - path: b\n    target: local\n  - path: c\n    target: ./local/../../archive/\n  - path: d\n    target: {{T}}/tgt/./../archive\n  - path: e\n    target: ../not-yet\n"
    ));
    let targets: Vec<PathBuf> = d.entries.iter().map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [
            fx.root().join("tgt"),
            fx.root().join("decl/local"),
            fx.root().join("archive"),
            fx.root().join("archive"),
            fx.root().join("not-yet"),
        ]
    );
    assert_eq!(
        diags,
        vec![warn(
            13,
            13,
            format!(
                "target `{}` cannot be reached: it does not exist",
                fx.p("not-yet")
            ),
            HELP_DANGLING
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// The declaration as a whole

#[test]
fn a_valid_declaration_keeps_file_order_defaults_and_positions() {
    let fx = Fx::new();
    let (d, diags) = fx.valid(&format!(
        "{HEAD}base: {{T}}/base\noptions:\n  read_only: true\nredirections:\n  - path: z\n    target: {{T}}/tgt\n  - target: {{T}}/archive\n    path: a\n    as: transparent\n    on_missing: error\n    read_only: true\n  - {{path: m, target: ../tgt, as: junction, on_missing: hide}}\n"
    ));
    assert_eq!(diags, vec![]);
    assert_eq!(d.file, fx.file());
    assert_eq!(d.mountpoint, Mountpoint::Dir(fx.root().join("mnt")));
    assert_eq!(d.base, Some(fx.root().join("base")));
    assert!(d.options.read_only && !d.options.allow_other);
    let summary: Vec<_> = d
        .entries
        .iter()
        .map(|e| {
            (
                e.path.to_string(),
                e.target.clone(),
                e.presentation,
                e.on_missing,
                e.read_only,
                (e.loc.line, e.loc.col),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "z".to_string(),
                fx.root().join("tgt"),
                Presentation::Symlink,
                OnMissing::Dangling,
                false,
                (7, 5)
            ),
            (
                "a".to_string(),
                fx.root().join("archive"),
                Presentation::Transparent,
                OnMissing::Error,
                true,
                (9, 5)
            ),
            (
                "m".to_string(),
                fx.root().join("tgt"),
                Presentation::Junction,
                OnMissing::Hide,
                false,
                (14, 5)
            ),
        ]
    );
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let fx = Fx::new();
    let text = "version: 2\nmountpoint: {T}/mnt\nbase: {T}/file.txt\nextra: 1\noptions:\n  read_only: maybe\nredirections:\n  - path: /abs\n    target: {T}/tgt\n  - path: l\n    target: {T}/tgt\n  - path: l/x\n    target: {T}/mnt/x\n  - path: ok\n    target: {T}/gone\n    as: junktion\n  - path: ok\n    target: {T}/gone\n    on_missing: error\n";
    let parsed = fx.parse(text);
    let inv = parsed.expect_err("invalid");
    let (m, h) = beneath("l/x", "l", "symlink", 10);
    assert_eq!(
        simplify(&inv.diagnostics),
        vec![
            err(
                1,
                10,
                "unsupported declaration version `2`",
                "this redirfs reads `version: 1`; upgrade redirfs or write the declaration in version 1"
            ),
            err(
                3,
                7,
                format!("base `{}` is not a directory", fx.p("file.txt")),
                "point `base` at a directory"
            ),
            err(
                4,
                1,
                "unknown key `extra` at the top level",
                format!("valid keys at the top level: {TOP_KEYS}")
            ),
            err(
                6,
                14,
                "`read_only` must be true or false, found a string `maybe`",
                "write `read_only: true` or `read_only: false`"
            ),
            err(
                8,
                11,
                "path `/abs` is absolute",
                "write it relative to the mount's root: `abs`"
            ),
            err(
                13,
                13,
                inside_mountpoint(&fx.p("mnt/x"), &fx.p("mnt")),
                HELP_INSIDE_MOUNTPOINT
            ),
            warn(
                15,
                13,
                format!("target `{}` cannot be reached: it does not exist", fx.p("gone")),
                HELP_DANGLING
            ),
            err(
                16,
                9,
                "unknown `as` value `junktion`",
                "did you mean `junction`? `as` takes one of: symlink, transparent, junction"
            ),
            err(
                17,
                11,
                "path `ok` is declared twice (first at line 14)",
                "keep one of the two entries, or give this one another path"
            ),
            err(
                18,
                13,
                format!("target `{}` cannot be reached: it does not exist", fx.p("gone")),
                HELP_MISSING_ERROR
            ),
        ]
    );
    // `l/x` has no valid target, so it is not checked for nesting: no error is a consequence of
    // another.
    assert!(!inv
        .diagnostics
        .iter()
        .any(|d| d.message == m && d.help.as_deref() == Some(&h)));
    assert_eq!(inv.error_count(), 9);
    let shown = inv.to_string();
    assert!(shown.ends_with("\n9 errors in the declaration"), "{shown}");
    assert_eq!(shown.matches(": error: ").count(), 9);
    assert_eq!(shown.matches(": warning: ").count(), 1);
    assert_eq!(shown.matches("\n  help: ").count(), 10);
}

#[test]
fn one_error_is_counted_in_the_singular() {
    let fx = Fx::new();
    let inv = fx
        .parse("version: 3\nmountpoint: {T}/mnt\nredirections: []\n")
        .expect_err("invalid");
    assert!(inv.to_string().ends_with("\n1 error in the declaration"));
}

#[test]
fn a_diagnostic_shows_the_line_and_a_caret() {
    let fx = Fx::new();
    let inv = fx
        .parse(
            "version: 1\nmountpoint: {T}/mnt\nredirections:\n  - path: /abs\n    target: {T}/tgt\n",
        )
        .expect_err("invalid");
    assert_eq!(
        inv.diagnostics[0].to_string(),
        "app.yaml:4:11: error: path `/abs` is absolute\n   |\n 4 |   - path: /abs\n   |           ^\n  help: write it relative to the mount's root: `abs`"
    );
}

#[test]
fn notes_have_no_help_line() {
    let fx = Fx::new();
    let (d, _) = fx.valid(&format!(
        "{HEAD}base: {{T}}/base\nredirections:\n  - path: data\n    target: {{T}}/tgt\n"
    ));
    let shown = d.diagnostics[0].to_string();
    assert!(
        shown.starts_with("app.yaml:5:11: note: `data` masks"),
        "{shown}"
    );
    assert!(!shown.contains("help:"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Loading files

#[test]
fn load_file_reads_and_validates() {
    let fx = Fx::new();
    let file = fx.root().join("decl/app.yaml");
    std::fs::write(
        &file,
        "version: 1\nmountpoint: ../mnt\nredirections:\n  - path: a\n    target: ../tgt\n",
    )
    .expect("write");
    let d = load_file(&file).expect("valid");
    assert_eq!(d.file, file);
    assert_eq!(d.mountpoint, Mountpoint::Dir(fx.root().join("mnt")));
    assert_eq!(d.entries[0].target, fx.root().join("tgt"));
}

#[test]
fn load_file_reports_an_unreadable_file() {
    let fx = Fx::new();
    let missing = fx.root().join("nope.yaml");
    match load_file(&missing) {
        Err(LoadError::Io { file, source }) => {
            assert_eq!(file, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn load_file_refuses_invalid_utf8_with_its_position() {
    let fx = Fx::new();
    let file = fx.root().join("bad.yaml");
    std::fs::write(&file, b"version: 1\nmountpoint: /a\xffb\n").expect("write");
    match load_file(&file) {
        Err(LoadError::Invalid(inv)) => {
            assert_eq!(inv.diagnostics.len(), 1);
            let d = &inv.diagnostics[0];
            assert_eq!(d.file, file);
            assert_eq!((d.loc.line, d.loc.col), (2, 15));
            assert_eq!(d.severity, Severity::Error);
            assert_eq!(d.message, "the file is not valid UTF-8");
            assert_eq!(
                d.help.as_deref(),
                Some("save the declaration as UTF-8 text")
            );
        }
        other => panic!("expected an invalid declaration, got {other:?}"),
    }
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let fx = Fx::new();
    // Block mappings 5,000 deep: the parser's own loader would recurse once per level. (The
    // parser marks a block mapping at the end of its first key, here the `:` of line 65.)
    let text: String = (0..5000)
        .map(|i| format!("{}a:\n", "  ".repeat(i)))
        .collect();
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            65,
            130,
            "invalid YAML: collections nest deeper than 64 levels",
            HELP_SYNTAX
        )]
    );
    let text = format!("{}x\n", "- ".repeat(20_000));
    assert_eq!(
        fx.invalid(&text),
        vec![err(
            1,
            129,
            "invalid YAML: collections nest deeper than 64 levels",
            HELP_SYNTAX
        )]
    );
    // Flow collections hit the scanner's own limit first.
    let text = "[".repeat(100_000);
    let diags = fx.invalid(&text);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "invalid YAML: recursion limit exceeded");
    // 64 levels are fine as YAML (and simply wrong as a declaration).
    let text: String = (0..64).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
    assert!(fx
        .invalid(&text)
        .iter()
        .all(|d| !d.message.starts_with("invalid YAML")));
}

#[cfg(unix)]
#[test]
fn targets_that_are_symlinks_are_judged_by_what_they_point_to() {
    let fx = Fx::new();
    let link = |to: &str, name: &str| {
        std::os::unix::fs::symlink(fx.root().join(to), fx.root().join(name)).expect("symlink")
    };
    link("mnt", "to-mnt");
    link("tgt", "to-dir");
    link("file.txt", "to-file");
    link("nowhere", "to-nothing");
    link("", "to-root");
    // A target that is itself a symlink into the mountpoint (or to the mountpoint's parent) is a
    // loop; one to a directory may be a junction; one to a file may not; a dangling one is a
    // missing target.
    let text = format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/to-mnt\n  - path: b\n    target: {{T}}/to-root\n  - path: c\n    target: {{T}}/to-dir\n    as: junction\n  - path: d\n    target: {{T}}/to-file\n    as: junction\n  - path: e\n    target: {{T}}/to-nothing\n    on_missing: error\n  - path: f\n    target: {{T}}/to-dir/sub/../../to-file\n"
    );
    assert_eq!(
        fx.invalid(&text),
        vec![
            err(
                5,
                13,
                inside_mountpoint(&fx.p("to-mnt"), &fx.p("mnt")),
                HELP_INSIDE_MOUNTPOINT
            ),
            err(
                7,
                13,
                format!(
                    "the mountpoint `{}` lies inside target `{}`: a loop",
                    fx.p("mnt"),
                    fx.p("to-root")
                ),
                HELP_CONTAINS_MOUNTPOINT
            ),
            err(
                12,
                13,
                format!(
                    "a junction must point to a directory; `{}` is not one",
                    fx.p("to-file")
                ),
                "use `as: symlink` (or `transparent`) for a file"
            ),
            err(
                15,
                13,
                format!(
                    "target `{}` cannot be reached: it does not exist",
                    fx.p("to-nothing")
                ),
                HELP_MISSING_ERROR
            ),
        ]
    );
}

/// Regression: a target of 20,000 components exhausted the stack (its parents were resolved
/// recursively).
#[test]
fn a_target_of_thousands_of_components_is_checked_without_exhausting_the_stack() {
    let fx = Fx::new();
    let deep = "x/".repeat(20_000);
    let (d, diags) = fx.valid(&format!(
        "{HEAD}redirections:\n  - path: a\n    target: {{T}}/{deep}end\n"
    ));
    assert_eq!(d.entries.len(), 1);
    assert_eq!(diags.len(), 1);
    assert_eq!((diags[0].severity, diags[0].line), (Severity::Warning, 5));
    assert!(diags[0].message.contains("cannot be reached"));
}
