//! Permissions through the mount: allow_other only when declared, files created by a user belong
//! to that user, and nobody reaches through the mount what they could not reach directly.

// Mounts through the Linux harness (tests/src/lib.rs).
#![cfg(target_os = "linux")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use tests::{require_fuse, which, Sandbox};

const UID: u32 = 4321;

/// Runs `script` as an unprivileged user; `None` when that is impossible here.
fn as_user(dir: &std::path::Path, script: &str) -> Option<(bool, String)> {
    let setpriv = which("setpriv")?;
    let out = Command::new(setpriv)
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

fn open_up(sb: &Sandbox) {
    // The sandbox is private to root; let the test user walk to the mount.
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn allow_other_gives_new_files_to_their_creator_and_enforces_modes() {
    require_fuse!();
    if fs_core::sys::geteuid() != 0 {
        tests::skip!("needs root to act as another user");
    }
    let sb = Sandbox::new();
    open_up(&sb);
    let shared = sb.dir("vol/shared");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let secret = sb.file("vol/secret.txt", "root only");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let ro = sb.file("vol/readonly.txt", "everyone reads");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::set_permissions(sb.path("vol"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let m = sb.mount("options:\n  allow_other: true\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    let Some((ok, out)) = as_user(
        m.mnt(),
        "echo mine > t/shared/new.txt && mkdir t/shared/d && cat t/readonly.txt",
    ) else {
        tests::skip!("setpriv is not installed");
    };
    assert!(ok, "{out}");
    assert!(out.contains("everyone reads"));
    let f = std::fs::metadata(m.real("vol/shared/new.txt")).expect("created");
    assert_eq!(
        (f.uid(), f.gid()),
        (UID, UID),
        "a user's new file belongs to that user"
    );
    let d = std::fs::metadata(m.real("vol/shared/d")).expect("created");
    assert_eq!(d.uid(), UID);
    let (ok, out) = as_user(m.mnt(), "cat t/secret.txt").expect("setpriv");
    assert!(!ok && out.contains("Permission denied"), "{out}");
    let (ok, out) = as_user(m.mnt(), "echo x >> t/readonly.txt").expect("setpriv");
    assert!(!ok && out.contains("Permission denied"), "{out}");
    let (ok, _) = as_user(m.mnt(), "echo x > t/not-allowed.txt").expect("setpriv");
    assert!(
        !ok,
        "the target's top directory is not writable by the user"
    );
}

#[test]
fn without_allow_other_other_users_are_kept_out() {
    require_fuse!();
    if fs_core::sys::geteuid() != 0 {
        tests::skip!("needs root to act as another user");
    }
    let sb = Sandbox::new();
    open_up(&sb);
    sb.file("vol/open.txt", "world readable");
    std::fs::set_permissions(sb.path("vol"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let m = sb.mount("redirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    let Some((ok, out)) = as_user(sb_root(&m), "ls mnt/t") else {
        tests::skip!("setpriv is not installed");
    };
    assert!(!ok && out.contains("Permission denied"), "{out}");
}

fn sb_root(m: &tests::Mount) -> &std::path::Path {
    m.sandbox().root()
}

/// The modes a fixed series of writes, truncates and opens leaves on set-user-ID and
/// set-group-ID files in `dir`, made by root, changed by the test user and then by root.
fn privileges_after_writes(dir: &std::path::Path) -> Vec<(String, String)> {
    // (name, mode made with, what the test user does to it)
    let cases = [
        ("written", 0o6777, "echo x >> written"),
        ("truncated", 0o6777, "truncate -s 0 truncated"),
        ("opened-only", 0o6777, ": >> opened-only"),
        ("sgid-no-gx", 0o2767, "echo x >> sgid-no-gx"),
        ("sgid-in-group", 0o2767, "echo x >> sgid-in-group"),
        ("fallocated", 0o4777, "fallocate -l 8192 fallocated"),
        (
            "dd-notrunc",
            0o4777,
            "printf y | dd of=dd-notrunc conv=notrunc status=none",
        ),
        ("root-writes", 0o6777, ""),
    ];
    for (name, mode, _) in cases {
        let p = dir.join(name);
        std::fs::write(&p, "data\n").expect("create");
        if name == "sgid-in-group" {
            // The test user's own group: set-group-ID without group execute then stays.
            std::os::unix::fs::chown(&p, None, Some(UID)).expect("chown");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let script: Vec<&str> = cases
        .iter()
        .map(|c| c.2)
        .filter(|s| !s.is_empty())
        .collect();
    let (ok, out) = as_user(dir, &script.join(" && ")).expect("setpriv");
    assert!(ok, "as uid {UID} in {}: {out}", dir.display());
    // Root keeps them: it has CAP_FSETID.
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("root-writes"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"root\n"))
        .expect("root writes");
    cases
        .iter()
        .map(|(name, _, _)| {
            let m = std::fs::metadata(dir.join(name)).expect("stat");
            (name.to_string(), format!("{:04o}", m.mode() & 0o7777))
        })
        .collect()
}

#[test]
fn unprivileged_writes_drop_setuid_and_setgid_as_on_a_local_disk() {
    require_fuse!();
    if fs_core::sys::geteuid() != 0 {
        tests::skip!("needs root to act as another user");
    }
    if which("setpriv").is_none() || which("fallocate").is_none() {
        tests::skip!("setpriv or fallocate is not installed");
    }
    let native_sb = Sandbox::new();
    open_up(&native_sb);
    let native = privileges_after_writes(&native_sb.dir("native"));
    // The local disk's own rules, which the mount must reproduce.
    assert!(
        native.contains(&("written".into(), "0777".into())),
        "{native:?}"
    );
    assert!(
        native.contains(&("opened-only".into(), "6777".into())),
        "{native:?}"
    );
    assert!(
        native.contains(&("sgid-no-gx".into(), "0767".into())),
        "{native:?}"
    );
    assert!(
        native.contains(&("sgid-in-group".into(), "2767".into())),
        "{native:?}"
    );
    for passthrough in [true, false] {
        let sb = Sandbox::new();
        open_up(&sb);
        for d in ["vol", "base"] {
            std::fs::set_permissions(sb.dir(d), std::fs::Permissions::from_mode(0o777))
                .expect("chmod");
        }
        let tuning = fuse_backend::Tuning {
            passthrough,
            ..fuse_backend::Tuning::default()
        };
        let m = sb.mount_with(
            "base: base\noptions:\n  allow_other: true\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n",
            tuning,
        );
        for dir in ["t", ""] {
            let through = privileges_after_writes(&m.at(dir));
            assert_eq!(
                through,
                native,
                "modes through the mount ({}, passthrough {passthrough}) differ from a local disk",
                if dir.is_empty() { "base" } else { dir }
            );
        }
    }
}

#[test]
fn a_program_the_user_may_execute_but_not_read_runs_through_the_mount() {
    require_fuse!();
    if fs_core::sys::geteuid() != 0 {
        tests::skip!("needs root to act as another user");
    }
    let sb = Sandbox::new();
    open_up(&sb);
    let prog = sb.file("base/prog", "");
    std::fs::copy("/bin/true", &prog).expect("copy /bin/true");
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let m = sb.mount("base: base\noptions:\n  allow_other: true\n");
    let Some((ok, out)) = as_user(
        m.mnt(),
        "./prog && echo ran; cat prog >/dev/null 2>&1 || echo unreadable",
    ) else {
        tests::skip!("no setpriv");
    };
    assert!(ok, "{out}");
    assert_eq!(
        out, "ran\nunreadable\n",
        "as natively: executable, not readable"
    );
}
