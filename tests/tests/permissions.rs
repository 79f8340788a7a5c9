//! Permissions through the mount: allow_other only when declared, files created by a user belong
//! to that user, and nobody reaches through the mount what they could not reach directly.

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
        eprintln!("skipped: needs root to act as another user");
        return;
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
        eprintln!("skipped: no setpriv");
        return;
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
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let sb = Sandbox::new();
    open_up(&sb);
    sb.file("vol/open.txt", "world readable");
    std::fs::set_permissions(sb.path("vol"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let m = sb.mount("redirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    let Some((ok, out)) = as_user(sb_root(&m), "ls mnt/t") else {
        eprintln!("skipped: no setpriv");
        return;
    };
    assert!(!ok && out.contains("Permission denied"), "{out}");
}

fn sb_root(m: &tests::Mount) -> &std::path::Path {
    m.sandbox().root()
}
