//! Unchanged real programs run through the mount: each scenario runs in a directory inside a
//! `transparent` target and again in one inside the base. A scenario whose program is missing is
//! skipped with a printed reason.

// Mounts through the Linux harness (tests/src/lib.rs).
#![cfg(target_os = "linux")]

use std::path::Path;

use fuse_backend::Tuning;
use tests::{require_fuse, which, Mount, Sandbox};

/// Where a scenario runs: the mount's directory (relative) and a label.
const PLACES: [(&str, &str); 2] = [("transparent target", "t/work"), ("base", "work")];

/// Runs `scenario` in `t/work` (inside the transparent target `vol`) and in `work` (inside the
/// base), each on its own mount. `extra` adds redirections; `{dir}` in it names the directory.
fn in_both(extra: &str, scenario: impl Fn(&Mount, &str)) {
    in_both_with(Tuning::default(), extra, scenario);
}

/// As [`in_both`], with chosen tuning.
fn in_both_with(tuning: Tuning, extra: &str, scenario: impl Fn(&Mount, &str)) {
    for (label, dir) in PLACES {
        let sb = Sandbox::new();
        sb.dir("base/work");
        sb.dir("vol/work");
        sb.dir("native");
        sb.dir("real/sub");
        let body = format!(
            "base: base\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n{}",
            extra.replace("{dir}", dir)
        );
        let m = sb.mount_with(&body, tuning);
        eprintln!(
            "-- in the {label} ({dir}), passthrough {}",
            if tuning.passthrough { "allowed" } else { "off" }
        );
        scenario(&m, dir);
    }
}

fn no_passthrough() -> Tuning {
    Tuning {
        passthrough: false,
        ..Tuning::default()
    }
}

/// Whether all `programs` are installed; says which one is missing otherwise.
fn have(programs: &[&str]) -> bool {
    for p in programs {
        if which(p).is_none() {
            tests::skip::skipped(tests::test_name!(), &format!("`{p}` is not installed"));
            return false;
        }
    }
    true
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// Makes a tree in `$1`: files, directories, symlinks (one dangling), a hard link, modes
/// (including setgid) and old times.
const MAKE_TREE: &str = r#"set -e
d="$1"
mkdir -p "$d/a/b" "$d/empty" "$d/with space"
printf 'one\n' > "$d/a/one.txt"; chmod 640 "$d/a/one.txt"
printf '#!/bin/sh\necho hi\n' > "$d/a/b/run.sh"; chmod 755 "$d/a/b/run.sh"
head -c 300000 /dev/urandom > "$d/a/blob"; chmod 600 "$d/a/blob"
: > "$d/a/b/empty-file"
printf 'spaced' > "$d/with space/f g"
ln -s one.txt "$d/a/link"
ln -s ../../nowhere "$d/a/b/dangling"
ln -s a/b "$d/dirlink"
ln "$d/a/one.txt" "$d/a/hard"
chmod 700 "$d/empty"; chmod 2775 "$d/a/b"
touch -d @981173106 "$d/a/one.txt"
touch -h -d @946684799 "$d/a/link"
touch -d @1286705410 "$d/empty"
"#;

/// Lists the tree in the current directory: type, mode, links, name (and link text) and mtime of
/// each entry, and a checksum of each file, sorted; for comparing copies.
const LIST_TREE: &str = r#"find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
  if [ -f "$p" ] && [ ! -L "$p" ]; then
    echo "$(stat -c '%F %a %h %N %Y' "$p") $(sha256sum < "$p" | cut -c1-16)"
  else
    stat -c '%F %a %h %N %Y' "$p"
  fi
done
"#;

/// Writes the tree scripts into the sandbox (outside the mount); returns (make, list) commands.
fn tree_scripts(m: &Mount) -> (String, String) {
    let make = m.real("make-tree.sh");
    let list = m.real("list-tree.sh");
    std::fs::write(&make, MAKE_TREE).expect("write make-tree.sh");
    std::fs::write(&list, LIST_TREE).expect("write list-tree.sh");
    (
        format!("sh {}", make.display()),
        format!("sh {}", list.display()),
    )
}

/// The number of entries MAKE_TREE makes.
const TREE_ENTRIES: &str = "13";

// ---------------------------------------------------------------------------------------------

#[test]
fn git_init_add_commit_status_log() {
    require_fuse!();
    if !have(&["git"]) {
        return;
    }
    in_both("", |m, dir| {
        let out = m.sh(
            dir,
            "set -e
             export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.invalid
             export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.invalid
             export GIT_CONFIG_NOSYSTEM=1
             git init -q repo
             cd repo
             git symbolic-ref HEAD refs/heads/main
             mkdir -p src docs
             printf 'fn main() {}\\n' > src/main.rs
             printf '# readme\\n' > README.md
             printf 'doc\\n' > docs/guide.txt
             ln -s README.md README
             git add -A
             git commit -q -m first
             echo status1: $(git status --porcelain | wc -l)
             echo more >> README.md
             git status --porcelain
             git commit -q -a -m second
             git branch feature
             git checkout -q feature
             printf 'feature\\n' > feature.txt
             git add feature.txt
             git commit -q -m third
             git checkout -q main
             git merge -q --ff-only feature
             git mv docs/guide.txt docs/manual.txt
             git commit -q -m fourth
             git rm -q src/main.rs
             git commit -q -m fifth
             git fsck --strict --no-progress 2>&1
             git gc -q
             git clone -q . ../clone
             echo status2: $(git status --porcelain | wc -l)
             git log --format=%s
             git -C ../clone log --format=%s | wc -l
             git ls-files
             git -C ../clone ls-files -s README | cut -c1-6",
        );
        assert_eq!(
            lines(&out),
            vec![
                "status1: 0",
                " M README.md",
                "status2: 0",
                "fifth",
                "fourth",
                "third",
                "second",
                "first",
                "5",
                "README",
                "README.md",
                "docs/manual.txt",
                "feature.txt",
                "120000",
            ],
            "git output in {dir}"
        );
    });
}

#[test]
fn tar_round_trip_keeps_contents_modes_links_and_times() {
    require_fuse!();
    if !have(&["tar", "sha256sum", "find", "stat"]) {
        return;
    }
    in_both("", |m, dir| {
        let (make_tree, list_tree) = tree_scripts(m);
        let native = m.real("native/out");
        let script = format!(
            "set -e
             {make_tree} src
             tar -cpf ../tree.tar -C src .
             tar -tvf ../tree.tar > /dev/null
             mkdir out && tar -xpf ../tree.tar -C out
             mkdir {native} && tar -xpf ../tree.tar -C {native}
             (cd src && {list_tree}) > ../src.list
             (cd out && {list_tree}) > ../out.list
             (cd {native} && {list_tree}) > ../native.list
             diff ../src.list ../out.list
             diff ../src.list ../native.list
             wc -l < ../src.list",
            native = native.display()
        );
        let out = m.sh(dir, &script);
        assert_eq!(out.trim(), TREE_ENTRIES, "entries listed in {dir}");
        let list = std::fs::read_to_string(m.at(dir).join("../src.list")).expect("listing");
        assert!(
            list.contains("regular file 640 2 './a/one.txt' 981173106"),
            "{list}"
        );
        assert!(
            list.contains("symbolic link 777 1 './a/link' -> 'one.txt' 946684799"),
            "{list}"
        );
        assert!(list.contains("directory 2775"), "{list}");
    });
}

#[test]
fn sqlite_transactions_integrity_and_wal() {
    require_fuse!();
    if !have(&["sqlite3"]) {
        return;
    }
    // Thousands of inserts in a few transactions, an index, updates and deletes.
    let mut sql = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER);\n");
    for tx in 0..5 {
        sql.push_str("BEGIN;\n");
        for i in 0..1000 {
            let n = tx * 1000 + i;
            sql.push_str(&format!(
                "INSERT INTO t(v, n) VALUES('row {n} {}', {n});\n",
                "x".repeat(n % 97)
            ));
        }
        sql.push_str("COMMIT;\n");
    }
    sql.push_str("CREATE INDEX t_n ON t(n);\nUPDATE t SET v = v || '!' WHERE n % 3 = 0;\nDELETE FROM t WHERE n % 10 = 7;\n");
    // A second process reads while a transaction is open: in WAL mode through the shared-memory
    // index mapped from the mount.
    let script = "set -e
for journal in delete wal; do
  sqlite3 $journal.db \"PRAGMA journal_mode=$journal;\"
  sqlite3 $journal.db < load.sql
  sqlite3 $journal.db 'PRAGMA integrity_check; SELECT count(*), sum(n), sum(length(v)) FROM t;'
  sqlite3 $journal.db <<EOF
BEGIN;
INSERT INTO t(v, n) VALUES('open', -1);
.system sqlite3 $journal.db 'SELECT count(*) FROM t;'
COMMIT;
EOF
  sqlite3 $journal.db 'SELECT count(*) FROM t; PRAGMA journal_mode; PRAGMA integrity_check;'
done
sqlite3 wal.db 'PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA integrity_check;'
";
    let scenario = |m: &Mount, dir: &str| {
        std::fs::write(m.at(dir).join("load.sql"), &sql).expect("write sql");
        let out = m.sh(dir, script);
        // The same programs in a native directory give the same answers.
        let native = m.real("native");
        std::fs::write(native.join("load.sql"), &sql).expect("write sql");
        let want = m.sh("", &format!("cd {} && {script}", native.display()));
        assert_eq!(
            out, want,
            "sqlite in {dir} differs from the native directory"
        );
        let sums = "4500|11246500|255983";
        assert_eq!(
            lines(&out),
            vec![
                "delete", "ok", sums, "4500", "4501", "delete", "ok", // rollback journal
                "wal", "ok", sums, "4500", "4501", "wal", "ok", // write-ahead log
                "0|0|0", "ok", // checkpoint, vacuum
            ],
            "sqlite in {dir}"
        );
    };
    in_both("", scenario);
    // Without passthrough the WAL index is mapped through the kernel's FUSE page cache instead.
    in_both_with(no_passthrough(), "", scenario);
}

#[test]
fn python_venv_and_imports() {
    require_fuse!();
    if !have(&["python3"]) {
        return;
    }
    in_both("", |m, dir| {
        let out = m.sh(
            dir,
            "set -e
             mkdir -p pkg/mymod
             printf 'VALUE = 42\\n' > pkg/mymod/__init__.py
             printf 'def f():\\n    return \"sub\"\\n' > pkg/mymod/sub.py
             cd pkg
             python3 -c 'import mymod, mymod.sub; print(mymod.VALUE, mymod.sub.f())'
             python3 -m compileall -q mymod
             ls mymod/__pycache__ | grep -c '\\.pyc$'
             python3 -B -c 'import mymod.sub; print(mymod.sub.__cached__ is not None)'
             cd ..
             python3 -m venv --without-pip venv
             site=$(venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')
             printf 'NAME = \"in the venv\"\\n' > \"$site/venvmod.py\"
             venv/bin/python -c 'import sys, venvmod; print(venvmod.NAME, sys.prefix != sys.base_prefix)'
             test -L venv/bin/python && echo linked",
        );
        assert_eq!(
            lines(&out),
            vec!["42 sub", "2", "True", "in the venv True", "linked"],
            "python in {dir}"
        );
    });
}

#[test]
fn make_builds_and_rebuilds_only_what_changed() {
    require_fuse!();
    if !have(&["make", "cc"]) {
        return;
    }
    in_both("", |m, dir| {
        let d = m.at(dir);
        std::fs::write(
            d.join("Makefile"),
            "app: main.o util.o\n\tcc -o app main.o util.o\n\n%.o: %.c util.h\n\tcc -c -o $@ $<\n",
        )
        .expect("Makefile");
        std::fs::write(d.join("util.h"), "int twice(int);\n").expect("util.h");
        std::fs::write(
            d.join("util.c"),
            "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n",
        )
        .expect("util.c");
        std::fs::write(
            d.join("main.c"),
            "#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n",
        )
        .expect("main.c");
        let out = m.sh(dir, "make 2>&1 && ./app");
        assert!(
            out.contains("cc -c -o main.o main.c") && out.contains("cc -c -o util.o util.c"),
            "{out}"
        );
        assert!(out.trim_end().ends_with("42"), "{out}");
        // Up to date now.
        let out = m.sh(dir, "make -q && echo up-to-date");
        assert_eq!(out.trim(), "up-to-date");
        // Order the times explicitly (a fresh build can share a clock tick with a touch), then
        // touch one source: only it is recompiled, and the program relinked.
        let out = m.sh(
            dir,
            "touch -d '2020-01-01 00:00:00' main.c util.c util.h Makefile
             touch -d '2020-01-01 00:00:01' main.o util.o
             touch -d '2020-01-01 00:00:02' app
             make -q && echo still-up-to-date
             touch util.c
             make 2>&1
             ./app",
        );
        assert_eq!(
            lines(&out),
            vec![
                "still-up-to-date",
                "cc -c -o util.o util.c",
                "cc -o app main.o util.o",
                "42"
            ],
            "make in {dir}"
        );
    });
}

#[test]
fn rsync_into_and_out_of_the_mount_leaves_nothing_to_do() {
    require_fuse!();
    if !have(&["rsync"]) {
        return;
    }
    in_both("", |m, dir| {
        let (make_tree, _) = tree_scripts(m);
        let src = m.real("native/src");
        let back = m.real("native/back");
        let mnt = m.at(dir);
        let out = m.sh(
            dir,
            &format!(
                "set -e
                 {make_tree} {src}
                 rsync -a {src}/ {mnt}/in/
                 rsync -aH {src}/ {mnt}/inh/
                 rsync -a {mnt}/in/ {back}/
                 rsync -a {mnt}/in/ {mnt}/again/
                 echo into: $(rsync -ac --dry-run --itemize-changes {src}/ {mnt}/in/ | wc -l)
                 echo out: $(rsync -ac --dry-run --itemize-changes {mnt}/in/ {back}/ | wc -l)
                 echo within: $(rsync -ac --dry-run --itemize-changes {mnt}/in/ {mnt}/again/ | wc -l)
                 echo hard: $(rsync -acH --dry-run --itemize-changes {src}/ {mnt}/inh/ | wc -l)
                 rsync -ac --dry-run --itemize-changes {src}/ {mnt}/in/",
                src = src.display(),
                back = back.display(),
                mnt = mnt.display()
            ),
        );
        assert_eq!(
            lines(&out),
            vec!["into: 0", "out: 0", "within: 0", "hard: 0"],
            "rsync in {dir}"
        );
        // A change is noticed.
        std::fs::write(m.at(dir).join("in/a/one.txt"), "changed\n").expect("change");
        let out = m.sh(
            dir,
            &format!(
                "rsync -ac --dry-run --itemize-changes {}/ {}/in/",
                src.display(),
                mnt.display()
            ),
        );
        assert!(out.contains("a/one.txt"), "{out}");
    });
}

#[test]
fn cp_a_preserves_modes_times_and_symlinks() {
    require_fuse!();
    if !have(&["cp", "stat", "find", "sha256sum"]) {
        return;
    }
    in_both("", |m, dir| {
        let (make_tree, list_tree) = tree_scripts(m);
        let native = m.real("native");
        let mnt = m.at(dir);
        let out = m.sh(
            dir,
            &format!(
                "set -e
                 {make_tree} {native}/src
                 cp -a {native}/src {mnt}/in
                 cp -a {mnt}/in {mnt}/within
                 cp -a {mnt}/in {native}/out
                 (cd {native}/src && {list_tree}) > {native}/src.list
                 for d in {mnt}/in {mnt}/within {native}/out; do
                   (cd $d && {list_tree}) > {native}/copy.list
                   diff {native}/src.list {native}/copy.list
                 done
                 wc -l < {native}/src.list",
                native = native.display(),
                mnt = mnt.display()
            ),
        );
        assert_eq!(out.trim(), TREE_ENTRIES, "cp -a in {dir}");
    });
}

#[test]
fn cd_through_a_symlink_entry_has_physical_and_logical_paths() {
    require_fuse!();
    in_both("  - path: {dir}/link\n    target: real\n", |m, dir| {
        let real = std::fs::canonicalize(m.real("real")).expect("canonical target");
        let out = m.sh(
            dir,
            "cd link && pwd -P && pwd -L && cd sub && pwd -P && cd .. && cd .. && pwd -L && cd -P link/.. && pwd",
        );
        let virt = m.at(dir);
        assert_eq!(
            lines(&out),
            vec![
                real.to_string_lossy().as_ref(),
                virt.join("link").to_string_lossy().as_ref(),
                real.join("sub").to_string_lossy().as_ref(),
                virt.to_string_lossy().as_ref(),
                real.parent()
                    .map(Path::to_string_lossy)
                    .unwrap_or_default()
                    .as_ref(),
            ],
            "cd in {dir}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Regressions

/// `cp -a` copies every listed extended attribute: the mount must not list its virtual
/// `user.redirfs.target`, or every copy made out of the mount carries a stale location.
#[test]
fn listxattr_hides_redirfs_target_so_cp_a_does_not_copy_it() {
    require_fuse!();
    if !have(&["cp", "python3"]) {
        return;
    }
    in_both("", |m, dir| {
        let native = m.real("native");
        let out = m.sh(
            dir,
            &format!(
                "set -e
                 mkdir tree && printf x > tree/f
                 python3 -c 'import os; os.setxattr(\"tree/f\", \"user.kept\", b\"1\")'
                 cp -a tree {native}/copy
                 cp -a tree within
                 python3 -c 'import os; print(os.getxattr(\"tree/f\", \"user.redirfs.target\").decode())'
                 python3 -c 'import os; print(sorted(os.listxattr(\"{native}/copy/f\")), sorted(os.listxattr(\"within/f\")))'",
                native = native.display()
            ),
        );
        let real_f = if dir.starts_with("t/") {
            m.real("vol/work/tree/f")
        } else {
            m.real("base/work/tree/f")
        };
        assert_eq!(
            lines(&out),
            vec![
                real_f.to_string_lossy().as_ref(),
                "['user.kept'] ['user.kept']"
            ],
            "xattrs in {dir}"
        );
    });
}
