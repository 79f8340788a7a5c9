//! The `redirfs` command as users run it: exit statuses, diagnostics on stderr, help and
//! version, and `explain` output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

fn redirfs(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redirfs"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("run redirfs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed by a signal")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// A scratch tree: `mnt/`, `base/` (with `docs/readme.txt`), `archive/` (with `2019/`),
/// `reports/` (with `2020/q1.csv`), and declarations written next to them.
struct Fx {
    tmp: TempDir,
}

impl Fx {
    fn new() -> Fx {
        let tmp = tempfile::tempdir().expect("tempdir");
        for d in ["mnt", "base/docs", "archive/2019", "reports/2020"] {
            std::fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
        }
        std::fs::write(tmp.path().join("base/docs/readme.txt"), "hello").expect("write");
        std::fs::write(tmp.path().join("reports/2020/q1.csv"), "1,2").expect("write");
        Fx { tmp }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn p(&self, rel: &str) -> String {
        self.root().join(rel).display().to_string()
    }

    /// Writes a declaration; `{T}` stands for the scratch directory.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root().join(name);
        let text = text.replace("{T}", &self.root().display().to_string());
        std::fs::write(&path, text).expect("write declaration");
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        redirfs(args, self.root())
    }
}

const GOOD: &str = "\
version: 1
mountpoint: mnt
base: base
redirections:
  - path: data
    target: archive
  - path: reports
    target: reports
    as: transparent
    read_only: true
";

/// Six errors (on lines 1, 4, 7, 10, 11 and 15) and one warning (line 14). The entry with the
/// misspelled `as` still counts as a symlink, so `data/x` beneath it is unreachable.
const BAD: &str = "\
version: 2
mountpoint: mnt
redirections:
  - path: /abs
    target: archive
  - path: logs
    target: mnt/inside
  - path: data
    target: archive
    as: symlnk
  - path: data/x
    target: archive
  - path: gone
    target: nowhere
    colour: red
";

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_accepts_a_valid_file() {
    let fx = Fx::new();
    let file = fx.write("good.yaml", GOOD);
    let o = fx.run(&["check", file.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: ok: 2 redirections\n", file.display())
    );
    assert_eq!(stderr(&o), "");
}

#[test]
fn check_prints_warnings_and_still_succeeds() {
    let fx = Fx::new();
    fx.write(
        "warn.yaml",
        "version: 1\nmountpoint: mnt\nredirections:\n  - path: later\n    target: not-yet\n",
    );
    let o = fx.run(&["check", "warn.yaml"]);
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), "warn.yaml: ok: 1 redirection, 1 warning\n");
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "warn.yaml:5:13: warning: target `{}` cannot be reached: it does not exist\n",
            fx.p("not-yet")
        )),
        "{err}"
    );
    assert!(err.contains(
        "\n 5 |     target: not-yet\n   |             ^\n  help: the entry shows as a dangling link until the target appears\n"
    ));
}

#[test]
fn check_reports_every_error_of_a_file_in_one_run() {
    let fx = Fx::new();
    fx.write("bad.yaml", BAD);
    let o = fx.run(&["check", "bad.yaml"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    let headers: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("bad.yaml:") && !l.ends_with("invalid: 6 errors"))
        .collect();
    assert_eq!(
        headers,
        [
            "bad.yaml:1:10: error: unsupported declaration version `2`",
            "bad.yaml:4:11: error: path `/abs` is absolute",
            &format!(
                "bad.yaml:7:13: error: target `{}` lies inside the mountpoint `{}`: a loop",
                fx.p("mnt/inside"),
                fx.p("mnt")
            ),
            "bad.yaml:10:9: error: unknown `as` value `symlnk`",
            "bad.yaml:11:11: error: `data/x` lies beneath `data`, a symlink entry (line 8): the kernel leaves the mount at the link, so this entry can never be reached",
            &format!(
                "bad.yaml:14:13: warning: target `{}` cannot be reached: it does not exist",
                fx.p("nowhere")
            ),
            "bad.yaml:15:5: error: unknown key `colour` in a redirection",
        ]
    );
    // Each diagnostic shows its line, a caret and a help line.
    assert_eq!(err.matches("\n  help: ").count(), 7, "{err}");
    assert!(err.contains(" 4 |   - path: /abs\n   |           ^\n  help: write it relative to the mount's root: `abs`\n"));
    assert!(err.contains(
        "  help: did you mean `symlink`? `as` takes one of: symlink, transparent, junction\n"
    ));
    assert!(err.ends_with("bad.yaml: invalid: 6 errors\n"), "{err}");
}

#[test]
fn check_uses_the_file_name_as_given() {
    let fx = Fx::new();
    let file = fx.write("bad.yaml", "version: 1\nmountpoint: mnt\nredirections: 5\n");
    let abs = file.display().to_string();
    let o = fx.run(&["check", &abs]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with(&format!(
        "{abs}:3:15: error: `redirections` must be a list, found a number `5`\n"
    )));
    assert!(stderr(&o).ends_with(&format!("{abs}: invalid: 1 error\n")));
}

#[test]
fn check_of_a_missing_file_is_an_io_error() {
    let fx = Fx::new();
    let o = fx.run(&["check", "nope.yaml"]);
    assert_eq!(code(&o), 2);
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).starts_with("redirfs: cannot read nope.yaml: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_reports_every_file_and_exits_with_the_worst_status() {
    let fx = Fx::new();
    fx.write("good.yaml", GOOD);
    fx.write("bad.yaml", BAD);
    let o = fx.run(&["check", "good.yaml", "bad.yaml"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "good.yaml: ok: 2 redirections\n");
    assert!(stderr(&o).contains("bad.yaml: invalid: 6 errors\n"));

    let o = fx.run(&["check", "bad.yaml", "missing.yaml", "good.yaml"]);
    assert_eq!(code(&o), 2);
    assert_eq!(stdout(&o), "good.yaml: ok: 2 redirections\n");
    let err = stderr(&o);
    assert!(err.contains("bad.yaml: invalid: 6 errors\n"), "{err}");
    assert!(err.contains("redirfs: cannot read missing.yaml: "), "{err}");
}

#[test]
fn check_refuses_a_file_that_is_not_utf8() {
    let fx = Fx::new();
    std::fs::write(fx.root().join("latin1.yaml"), b"version: 1\n# caf\xe9\n").expect("write");
    let o = fx.run(&["check", "latin1.yaml"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("latin1.yaml:2:6: error: the file is not valid UTF-8\n"));
}

/// A declaration meant for Windows: `Data` and `data` are one name there.
const WINDOWS_CASE: &str = "\
version: 1
mountpoint: mnt
redirections:
  - path: Data
    target: archive
  - path: data
    target: reports
";

#[test]
fn check_case_insensitive_refuses_paths_that_differ_only_in_case() {
    let fx = Fx::new();
    fx.write("win.yaml", WINDOWS_CASE);
    // Here names are compared byte for byte: two entries.
    let o = fx.run(&["check", "win.yaml"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "win.yaml: ok: 2 redirections\n");
    // As on Windows: one name, declared twice.
    let o = fx.run(&["check", "--case-insensitive", "win.yaml"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "win.yaml:6:11: error: path `data` is declared twice (first at line 4, as `Data`): names that differ only in case are one name on a case-insensitive mount\n   |\n 6 |   - path: data\n   |           ^\n  help: keep one of the two entries, or give this one a path that differs in more than case\nwin.yaml: invalid: 1 error\n"
    );
    let help = stdout(&fx.run(&["check", "--help"]));
    assert!(help.contains("--case-insensitive"), "{help}");
    assert!(help.contains("meant for Windows"), "{help}");
}

#[test]
fn explain_case_insensitive_resolves_names_whatever_their_case() {
    let fx = Fx::new();
    let file = fx.write(
        "win.yaml",
        "version: 1\nmountpoint: mnt\nredirections:\n  - path: Data\n    target: archive\n",
    );
    let file = file.display().to_string();
    let o = fx.run(&["explain", "--case-insensitive", &file, "DATA/2019"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!(
            "DATA/2019\n  rule:     `Data` ({file}:4:5, as symlink, on_missing dangling)\n"
        )),
        "{}",
        stdout(&o)
    );
    // Byte for byte, `DATA` is no entry.
    let o = fx.run(&["explain", &file, "DATA/2019"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).starts_with("DATA/2019\n  rule:     none"),
        "{}",
        stdout(&o)
    );
    fx.write("dup.yaml", WINDOWS_CASE);
    let o = fx.run(&["explain", "--case-insensitive", "dup.yaml", "data"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("is declared twice"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// Usage

#[test]
fn usage_errors_exit_2() {
    let fx = Fx::new();
    fx.write("good.yaml", GOOD);
    for args in [
        &[][..],
        &["check"][..],
        &["explain", "good.yaml"][..],
        &["frobnicate"][..],
        &["check", "--no-such-flag", "good.yaml"][..],
        &["explain", "good.yaml", "data", "extra"][..],
    ] {
        let o = fx.run(args);
        assert_eq!(code(&o), 2, "redirfs {args:?}");
        assert_eq!(stdout(&o), "", "redirfs {args:?}");
        assert!(
            stderr(&o).contains("Usage: redirfs"),
            "redirfs {args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn help_describes_the_commands_with_examples() {
    let fx = Fx::new();
    let o = fx.run(&["--help"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(out.contains("Usage: redirfs <COMMAND>"), "{out}");
    for cmd in ["check", "explain"] {
        assert!(out.contains(&format!("\n  {cmd} ")), "{cmd} in {out}");
    }
    assert!(out.contains("redirfs check app.yaml"), "{out}");
    // The format's reference is the installed man page, not a path only the repository has.
    assert!(out.contains("redirfs.yaml(5)"), "{out}");
    assert!(
        !out.contains("generate-assets"),
        "packaging-only command listed: {out}"
    );
    // `-h` is the short form.
    assert_eq!(code(&fx.run(&["-h"])), 0);
}

#[test]
fn no_help_text_names_a_repository_path() {
    let fx = Fx::new();
    for cmd in [
        "check", "explain", "mount", "umount", "status", "reload", "diff", "demo",
    ] {
        let o = fx.run(&[cmd, "--help"]);
        assert_eq!(code(&o), 0, "{cmd} --help");
        let out = stdout(&o);
        for repo_only in ["docs/", "contrib/", "mounts/", ".md"] {
            assert!(
                !out.contains(repo_only),
                "`{cmd} --help` names {repo_only}: {out}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn generate_assets_writes_a_page_per_subcommand_and_three_completions() {
    let fx = Fx::new();
    let o = fx.run(&["generate-assets", "assets"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let main = std::fs::read_to_string(fx.root().join("assets/man/redirfs.1")).expect("redirfs.1");
    assert!(main.contains(".TH redirfs 1"), "{main}");
    assert!(
        main.contains("MOUNT HELPER") && main.contains("redirfs.yaml"),
        "{main}"
    );
    let mut pages: Vec<String> = std::fs::read_dir(fx.root().join("assets/man"))
        .expect("man/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let subcommands = [
        "check", "demo", "diff", "explain", "mount", "reload", "status", "umount",
    ];
    let mut want: Vec<String> = subcommands
        .iter()
        .map(|c| format!("redirfs-{c}.1"))
        .collect();
    want.push("redirfs.1".to_owned());
    want.sort();
    assert_eq!(pages, want);
    let mount = std::fs::read_to_string(fx.root().join("assets/man/redirfs-mount.1"))
        .expect("redirfs-mount.1");
    assert!(mount.contains("foreground"), "{mount}");
    for name in ["redirfs", "_redirfs", "redirfs.fish"] {
        let text = std::fs::read_to_string(fx.root().join("assets/completions").join(name))
            .expect("completion");
        for c in subcommands {
            assert!(text.contains(c), "{name} lacks {c}");
        }
        assert!(
            !text.contains("generate-assets"),
            "{name} offers generate-assets"
        );
    }
    // A missing DIR is a usage error, not a panic or a write into the current directory.
    let o = fx.run(&["generate-assets"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("usage: redirfs generate-assets DIR"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn version_prints_the_crate_version() {
    let fx = Fx::new();
    let o = fx.run(&["--version"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        format!("redirfs {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The subcommands `redirfs --help` lists (without `help` itself).
fn subcommands(fx: &Fx) -> Vec<String> {
    let out = stdout(&fx.run(&["--help"]));
    let section = out
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section");
    section
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_help_shows_an_example() {
    let fx = Fx::new();
    let cmds = subcommands(&fx);
    assert!(cmds.iter().any(|c| c == "check"), "{cmds:?}");
    assert!(cmds.iter().any(|c| c == "explain"), "{cmds:?}");
    for cmd in &cmds {
        let o = fx.run(&[cmd, "--help"]);
        assert_eq!(code(&o), 0, "{cmd} --help");
        let out = stdout(&o);
        assert!(
            out.contains("Example"),
            "`redirfs {cmd} --help` shows no example:\n{out}"
        );
        assert!(
            out.contains(&format!("redirfs {cmd} ")),
            "`redirfs {cmd} --help` shows no example invocation:\n{out}"
        );
    }
    let check = stdout(&fx.run(&["check", "--help"]));
    assert!(
        check.contains("Exit status: 0 valid, 1 invalid, 2 usage or I/O error."),
        "{check}"
    );
}

// ---------------------------------------------------------------------------------------------
// explain

const EXPLAINED: &str = "\
version: 1
mountpoint: mnt
base: base
redirections:
  - path: data
    target: archive
  - path: reports
    target: reports
    as: transparent
    read_only: true
  - path: deep/a/b
    target: archive/2019
    as: junction
  - path: gone
    target: nowhere
    as: transparent
    on_missing: hide
";

fn explain(fx: &Fx, file: &str, path: &str) -> String {
    let o = fx.run(&["explain", file, path]);
    assert_eq!(code(&o), 0, "explain {path}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn explain_a_symlink_entry() {
    let fx = Fx::new();
    let file = fx.write("app.yaml", EXPLAINED).display().to_string();
    assert_eq!(
        explain(&fx, &file, "data"),
        format!(
            "data\n  rule:     `data` ({file}:5:5, as symlink, on_missing dangling)\n  shows as: a symlink to {}\n  target:   exists, a directory\n  why:      the path is a declared symlink entry; the kernel follows the link to the target\n",
            fx.p("archive")
        )
    );
    // A leading `/` and extra separators name the same path.
    assert_eq!(explain(&fx, &file, "/data/"), explain(&fx, &file, "data"));
}

#[test]
fn explain_a_path_beneath_a_link() {
    let fx = Fx::new();
    let file = fx.write("app.yaml", EXPLAINED).display().to_string();
    assert_eq!(
        explain(&fx, &file, "data/2019"),
        format!(
            "data/2019\n  rule:     `data` ({file}:5:5, as symlink, on_missing dangling)\n  resolves: {}\n  real:     exists, a directory\n  why:      `data` is a symlink entry: the kernel follows it out of the mount, so the rest of the path is looked up in {}\n",
            fx.p("archive/2019"),
            fx.p("archive")
        )
    );
}

#[test]
fn explain_a_path_beneath_a_transparent_entry() {
    let fx = Fx::new();
    let file = fx.write("app.yaml", EXPLAINED).display().to_string();
    assert_eq!(
        explain(&fx, &file, "reports/2020/q1.csv"),
        format!(
            "reports/2020/q1.csv\n  rule:     `reports` ({file}:7:5, as transparent, on_missing dangling, read-only)\n  resolves: {}\n  real:     exists, a file\n  why:      `reports` is the longest declared prefix; transparent entries pass everything beneath through to the target\n",
            fx.p("reports/2020/q1.csv")
        )
    );
    assert_eq!(
        explain(&fx, &file, "reports"),
        format!(
            "reports\n  rule:     `reports` ({file}:7:5, as transparent, on_missing dangling, read-only)\n  resolves: {}\n  real:     exists, a directory\n  why:      the path is a transparent entry: it is the target itself\n",
            fx.p("reports")
        )
    );
}

#[test]
fn explain_a_transparent_entry_whose_target_is_missing() {
    let fx = Fx::new();
    let file = fx.write("app.yaml", EXPLAINED).display().to_string();
    let o = fx.run(&["explain", &file, "gone"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        format!(
            "gone\n  rule:     `gone` ({file}:14:5, as transparent, on_missing hide)\n  resolves: {}\n  real:     does not exist\n  why:      the path is a transparent entry: it is the target itself\n  note:     the target is absent: the entry is hidden until it appears\n",
            fx.p("nowhere")
        )
    );
    // The declaration's warnings go to stderr.
    assert!(stderr(&o).contains(": warning: target `"), "{}", stderr(&o));
}

#[test]
fn explain_a_base_path() {
    let fx = Fx::new();
    let file = fx.write("app.yaml", EXPLAINED).display().to_string();
    assert_eq!(
        explain(&fx, &file, "docs/readme.txt"),
        format!(
            "docs/readme.txt\n  rule:     none (no declared entry covers this path)\n  resolves: {} (the base)\n  real:     exists, a file\n  why:      paths no entry covers show the base directory's own contents\n",
            fx.p("base/docs/readme.txt")
        )
    );
    // The root is the base, with the declared entries laid over it.
    assert_eq!(
        explain(&fx, &file, "/"),
        format!(
            "/\n  rule:     none (no declared entry covers this path)\n  resolves: {} (the base)\n  real:     exists, a directory\n  why:      paths no entry covers show the base directory's own contents\n  masks:    declared entries beneath it take precedence: data, deep, gone, reports\n",
            fx.p("base")
        )
    );
}

#[test]
fn explain_a_synthetic_directory() {
    let fx = Fx::new();
    // With a base that has no `deep/`, the directory is made up to reach `deep/a/b`.
    let file = fx.write("app.yaml", EXPLAINED).display().to_string();
    assert_eq!(
        explain(&fx, &file, "deep/a"),
        format!(
            "deep/a\n  rule:     none (no declared entry covers this path)\n  resolves: {} (the base)\n  real:     does not exist\n  why:      paths no entry covers show the base directory's own contents\n  shows as: a synthetic read-only directory, since it exists in neither the base nor a target\n  holds:    b\n",
            fx.p("base/deep/a")
        )
    );
    // Without a base, every intermediate directory is synthetic.
    let file = fx
        .write(
            "nobase.yaml",
            "version: 1\nmountpoint: mnt\nredirections:\n  - path: x/y\n    target: archive\n  - path: x/z\n    target: reports\n",
        )
        .display()
        .to_string();
    assert_eq!(
        explain(&fx, &file, "x"),
        "x\n  rule:     none; entries are declared beneath it\n  shows as: a synthetic read-only directory\n  holds:    y, z\n  why:      no base or target holds this directory, so redirfs makes it to reach the entries beneath\n"
    );
    assert_eq!(
        explain(&fx, &file, "elsewhere"),
        "elsewhere\n  rule:     none\n  resolves: nothing: the mount has no such path\n  why:      no declared entry covers it and the declaration has no `base`\n"
    );
}

#[test]
fn explain_refuses_invalid_input() {
    let fx = Fx::new();
    fx.write("app.yaml", EXPLAINED);
    fx.write("bad.yaml", BAD);
    // An invalid declaration: its errors, exit 1.
    let o = fx.run(&["explain", "bad.yaml", "data"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("bad.yaml:1:10: error: unsupported declaration version `2`"));
    assert!(
        stderr(&o).ends_with("6 errors in the declaration\n"),
        "{}",
        stderr(&o)
    );
    // A path climbing out of the mount: exit 2.
    let o = fx.run(&["explain", "app.yaml", "data/../../etc"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).ends_with(
        "redirfs: the path `data/../../etc` climbs with `..`: give a path inside the mount, e.g. `data/file.txt`\n"
    ));
    // A missing file: exit 2.
    let o = fx.run(&["explain", "nope.yaml", "data"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with("redirfs: cannot read nope.yaml: "));
}

// ---------------------------------------------------------------------------------------------
// The shipped examples

#[test]
fn the_examples_are_valid_but_for_paths_missing_here() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("mounts/examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "{examples:?}");
    let cwd = std::env::temp_dir();
    for file in &examples {
        let o = redirfs(&["check", file.to_str().expect("utf-8")], &cwd);
        let err = stderr(&o);
        // A declaration's base, targets and mountpoint exist on the machine it is written for,
        // not on this one: only their absence may be reported.
        for line in err.lines().filter(|l| l.contains(": error: ")) {
            assert!(
                line.ends_with("cannot be used: it does not exist")
                    || line.ends_with("cannot be reached: it does not exist"),
                "{}: {line}",
                file.display()
            );
        }
        assert!(matches!(code(&o), 0 | 1), "{}: {}", file.display(), err);
        // Every example explains its first entry's path.
        let text = std::fs::read_to_string(file).expect("read example");
        let first_path = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("- path: "))
            .expect("an entry");
        if code(&o) == 0 {
            let e = redirfs(
                &["explain", file.to_str().expect("utf-8"), first_path],
                &cwd,
            );
            assert_eq!(code(&e), 0, "{}", stderr(&e));
            assert!(stdout(&e).contains(&format!("rule:     `{first_path}`")));
        }
    }
}
