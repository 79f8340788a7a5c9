//! `redirfs demo`: a legacy program finds its data through a redirection.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use fuse_backend::Tuning;

const LEGACY_SCRIPT: &str = r#"#!/bin/sh
# A legacy program: it only knows its own folder layout, and has never heard of redirfs.
set -e
cd "$(dirname "$0")"
echo "legacy-app: reading data/customers.csv"
count=$(wc -l < data/customers.csv)
echo "legacy-app: $count customers on file"
echo "4,Dana,2026-11-25" >> data/customers.csv
echo "legacy-app: added customer 4"
mkdir -p logs
echo "run at $(date -u +%Y-%m-%dT%H:%M:%SZ): $((count + 1)) customers" >> logs/app.log
echo "legacy-app: wrote logs/app.log"
cat config.ini | sed 's/^/legacy-app: config: /'
"#;

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, text)
}

fn build_sandbox(root: &Path) -> std::io::Result<PathBuf> {
    let app = root.join("legacy-app");
    let archive = root.join("archive-volume");
    write(&app.join("config.ini"), "[app]\nname=ledger\n")?;
    write(&app.join("run.sh"), LEGACY_SCRIPT)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(app.join("run.sh"), std::fs::Permissions::from_mode(0o755))?;
    write(
        &archive.join("ledger-data/customers.csv"),
        "1,Ada,2019-03-01\n2,Brian,2020-07-15\n3,Chen,2021-01-09\n",
    )?;
    std::fs::create_dir_all(archive.join("ledger-logs"))?;
    std::fs::create_dir_all(root.join("mnt"))?;
    let decl = root.join("demo.yaml");
    write(
        &decl,
        "# The legacy app's folder, with its data moved to an archive volume.\n\
         version: 1\n\
         mountpoint: mnt\n\
         base: legacy-app\n\
         redirections:\n\
         \x20 - path: data\n\
         \x20   target: archive-volume/ledger-data\n\
         \x20   as: symlink\n\
         \x20 - path: logs\n\
         \x20   target: archive-volume/ledger-logs\n\
         \x20   as: transparent\n",
    )?;
    Ok(decl)
}

fn shell(root: &Path, cmd: &str) -> String {
    match Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(root)
        .output()
    {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        }
        Err(e) => format!("(cannot run `{cmd}`: {e})\n"),
    }
}

/// Runs the demo in `dir` (a new temporary folder when `None`).
pub fn demo(dir: Option<&Path>, keep: bool) -> ExitCode {
    let root = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("redirfs-demo-{}", std::process::id())),
    };
    if root.join("mnt").exists()
        && std::fs::read_dir(root.join("mnt"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        eprintln!("redirfs: {} already holds a demo (mounted?); pick another --dir or `redirfs umount {}`", root.display(), root.join("mnt").display());
        return ExitCode::from(1);
    }
    let decl_path = match build_sandbox(&root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "redirfs: cannot build the demo sandbox in {}: {e}",
                root.display()
            );
            return ExitCode::from(1);
        }
    };
    let d = match fs_core::load_file(&decl_path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("redirfs: the demo declaration is invalid (a bug): {e}");
            return ExitCode::from(1);
        }
    };
    println!("== redirfs demo in {}", root.display());
    println!(
        "-- declaration ({}):\n{}",
        decl_path.display(),
        std::fs::read_to_string(&decl_path).unwrap_or_default()
    );
    let mut mounted = match fuse_backend::mount(&d, Tuning::default()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("redirfs: {e}");
            return ExitCode::from(1);
        }
    };
    let mp = mounted.mountpoint().to_path_buf();
    let mut unmounter = mounted.unmounter();
    let server = std::thread::spawn(move || mounted.run());
    // Wait until the mount answers (it does at once; this guards against a slow kernel).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mp.join("run.sh").exists() {
        if Instant::now() > deadline {
            eprintln!("redirfs: the mount did not come up within 10 s");
            let _ = unmounter.unmount();
            return ExitCode::from(1);
        }
        std::thread::yield_now();
    }
    let mut out = String::new();
    let _ = writeln!(out, "-- the mount, as the legacy app sees it (ls -l mnt):");
    out.push_str(&shell(&root, "ls -l mnt | sed 's/^/   /'"));
    let _ = writeln!(out, "-- running the unchanged legacy program: mnt/run.sh");
    out.push_str(&shell(&root, "sh mnt/run.sh 2>&1 | sed 's/^/   /'"));
    let _ = writeln!(out, "-- where the bytes really went:");
    out.push_str(&shell(
        &root,
        "echo \"   mnt/data -> $(readlink mnt/data)\"; \
         echo \"   mnt/logs is transparent; its xattr user.redirfs.target = $(getfattr --only-values -n user.redirfs.target mnt/logs 2>/dev/null || python3 -c 'import os;print(os.getxattr(\"mnt/logs\",\"user.redirfs.target\").decode())')\"; \
         echo '   archive-volume/ledger-data/customers.csv:'; sed 's/^/     /' archive-volume/ledger-data/customers.csv; \
         echo '   archive-volume/ledger-logs/app.log:'; sed 's/^/     /' archive-volume/ledger-logs/app.log; \
         echo \"   legacy-app/ (the base) still holds only: $(ls legacy-app | tr '\\n' ' ')\"",
    ));
    print!("{out}");
    let ok = std::fs::read_to_string(root.join("archive-volume/ledger-data/customers.csv"))
        .map(|s| s.contains("4,Dana"))
        .unwrap_or(false)
        && root.join("archive-volume/ledger-logs/app.log").exists()
        && !root.join("legacy-app/data").exists();
    if keep {
        println!("-- the mount stays up at {} (served by this process; Ctrl-C or `redirfs umount {}` ends it)", mp.display(), mp.display());
        let _ = server.join();
    } else {
        if let Err(e) = unmounter.unmount() {
            eprintln!("redirfs: unmount failed ({e}); detaching lazily");
            let _ = fuse_backend::unmount(&mp, true);
        }
        let _ = server.join();
        println!("-- unmounted {}", mp.display());
        // A sandbox the demo chose is the demo's to clear; one given with --dir stays.
        if dir.is_none() {
            match std::fs::remove_dir_all(&root) {
                Ok(()) => println!("-- removed the sandbox {}", root.display()),
                Err(e) => eprintln!("redirfs: cannot remove the sandbox {}: {e}", root.display()),
            }
        }
    }
    if ok {
        println!("== demo ok: the legacy program read and wrote its data through the redirection, and the data lives on the archive volume");
        ExitCode::SUCCESS
    } else {
        eprintln!("== demo FAILED: the data did not land on the archive volume");
        ExitCode::from(1)
    }
}
