//! What the mount shows: every presentation mode, nesting, synthetic directories, missing
//! targets, the in-place overlay, and entries that cannot be deleted through the mount.

// Mounts through the Linux harness (tests/src/lib.rs).
#![cfg(target_os = "linux")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use tests::{errno, require_fuse, Sandbox};

#[test]
fn symlink_entry_is_a_native_symlink_to_the_absolute_target() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("archive/data/a.txt", "archived\n");
    let target = sb.path("archive/data");
    let m = sb.mount("redirections:\n  - path: data\n    target: archive/data\n");
    let meta = std::fs::symlink_metadata(m.at("data")).expect("lstat");
    assert!(meta.file_type().is_symlink());
    assert_eq!(meta.permissions().mode() & 0o777, 0o777);
    assert_eq!(meta.len(), target.as_os_str().len() as u64);
    assert_eq!(std::fs::read_link(m.at("data")).expect("readlink"), target);
    assert_eq!(
        std::fs::read_to_string(m.at("data/a.txt")).expect("read through"),
        "archived\n"
    );
    // Writing through the link lands in the target.
    std::fs::write(m.at("data/new.txt"), "x").expect("write through");
    assert_eq!(sb_path(&m, "archive/data/new.txt"), "x");
}

fn sb_path(m: &tests::Mount, rel: &str) -> String {
    std::fs::read_to_string(m.real(rel)).expect("read real file")
}

#[test]
fn junction_entry_is_a_directory_symlink() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/dir/f", "1");
    let m = sb.mount("redirections:\n  - path: j\n    target: vol/dir\n    as: junction\n");
    assert!(std::fs::symlink_metadata(m.at("j"))
        .expect("lstat")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(m.at("j/f")).expect("read"), "1");
}

#[test]
fn transparent_entry_is_the_target_itself() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/t/sub/f.txt", "hello");
    let m = sb.mount("redirections:\n  - path: app/data\n    target: vol/t\n    as: transparent\n");
    let meta = std::fs::symlink_metadata(m.at("app/data")).expect("lstat");
    assert!(meta.is_dir());
    // readlink on the entry is EINVAL: it is not a link.
    assert_eq!(
        errno(&std::fs::read_link(m.at("app/data"))),
        Some(libc::EINVAL)
    );
    assert_eq!(
        std::fs::read_to_string(m.at("app/data/sub/f.txt")).expect("read"),
        "hello"
    );
    // Full read/write semantics beneath.
    std::fs::create_dir(m.at("app/data/new")).expect("mkdir");
    std::fs::write(m.at("app/data/new/g"), "g").expect("write");
    std::fs::rename(m.at("app/data/new/g"), m.at("app/data/sub/g")).expect("rename");
    assert_eq!(
        std::fs::read_to_string(m.real("vol/t/sub/g")).expect("real"),
        "g"
    );
    std::fs::remove_file(m.at("app/data/sub/g")).expect("unlink");
    assert!(!m.real("vol/t/sub/g").exists());
    // The xattr says where it really lives.
    let out = m.sh("", "python3 -c \"import os;print(os.getxattr('app/data/sub','user.redirfs.target').decode())\"");
    assert_eq!(out.trim(), m.real("vol/t/sub").to_string_lossy());
}

#[test]
fn synthetic_parent_directories_are_read_only() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.dir("vol/x");
    let m = sb.mount("redirections:\n  - path: a/b/c\n    target: vol/x\n");
    let meta = std::fs::metadata(m.at("a/b")).expect("stat synthetic");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o555);
    let names: Vec<_> = std::fs::read_dir(m.at("a/b"))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["c"]);
    // Root can bypass modes; the overlay still refuses.
    assert_eq!(
        errno(&std::fs::create_dir(m.at("a/b/new"))),
        Some(libc::EROFS)
    );
    assert_eq!(
        errno(&std::fs::write(m.at("a/new"), "x")),
        Some(libc::EROFS)
    );
}

#[test]
fn base_passes_through_and_entries_mask_it() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("base/keep.txt", "base file");
    sb.file("base/data/old.txt", "shadowed");
    sb.file("vol/new.txt", "redirected");
    let m = sb
        .mount("base: base\nredirections:\n  - path: data\n    target: vol\n    as: transparent\n");
    assert_eq!(
        std::fs::read_to_string(m.at("keep.txt")).expect("base"),
        "base file"
    );
    assert!(m.at("data/new.txt").exists());
    assert!(
        !m.at("data/old.txt").exists(),
        "the entry masks the base's data/"
    );
    let mut names: Vec<_> = std::fs::read_dir(m.at(""))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["data", "keep.txt"]);
}

#[test]
fn nested_entry_under_transparent_masks_the_target() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/app/cache/stale", "old");
    sb.file("vol/app/main.cfg", "cfg");
    sb.file("fast/hot", "new");
    let m = sb.mount(
        "redirections:\n  - path: app\n    target: vol/app\n    as: transparent\n  - path: app/cache\n    target: fast\n",
    );
    assert_eq!(
        std::fs::read_to_string(m.at("app/main.cfg")).expect("cfg"),
        "cfg"
    );
    assert!(std::fs::symlink_metadata(m.at("app/cache"))
        .expect("lstat")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(m.at("app/cache/hot")).expect("hot"),
        "new"
    );
}

#[test]
fn missing_targets_follow_on_missing() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.dir("vol/ok");
    let m = sb.mount(
        "redirections:\n  - path: ok\n    target: vol/ok\n  - path: dangling\n    target: vol/nope\n  - path: hidden\n    target: vol/nope2\n    on_missing: hide\n  - path: tdangling\n    target: vol/nope3\n    as: transparent\n",
    );
    let mut names: Vec<_> = std::fs::read_dir(m.at(""))
        .expect("a listing survives broken entries")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["dangling", "ok", "tdangling"]);
    assert!(std::fs::symlink_metadata(m.at("dangling"))
        .expect("lstat")
        .file_type()
        .is_symlink());
    assert_eq!(
        errno(&std::fs::metadata(m.at("dangling"))),
        Some(libc::ENOENT)
    );
    assert_eq!(
        errno(&std::fs::symlink_metadata(m.at("hidden"))),
        Some(libc::ENOENT)
    );
    // A transparent entry whose target is absent shows as a dangling link to it.
    assert_eq!(
        std::fs::read_link(m.at("tdangling")).expect("readlink"),
        m.real("vol/nope3")
    );
    // The target appears: the hidden entry shows up (after the negative cache expires).
    std::fs::create_dir(m.real("vol/nope2")).expect("create target");
    eventually("the hidden entry to appear", || {
        std::fs::symlink_metadata(m.at("hidden")).is_ok()
    });
}

#[test]
fn deleting_or_renaming_an_entry_never_touches_the_target() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/d/precious", "keep me");
    sb.file("vol/d2/other", "x");
    sb.file("vol/file.txt", "keep me too");
    sb.dir("base");
    let m = sb.mount(
        "base: base\nredirections:\n  - path: link\n    target: vol/d\n  - path: tdir\n    target: vol/d2\n    as: transparent\n  - path: tfile\n    target: vol/file.txt\n    as: transparent\n",
    );
    assert_eq!(
        errno(&std::fs::remove_file(m.at("link"))),
        Some(libc::EPERM)
    );
    assert_eq!(errno(&std::fs::remove_dir(m.at("tdir"))), Some(libc::EPERM));
    assert_eq!(
        errno(&std::fs::remove_file(m.at("tfile"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno(&std::fs::rename(m.at("link"), m.at("moved"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno(&std::fs::rename(m.at("tdir"), m.at("moved"))),
        Some(libc::EPERM)
    );
    let out = m.sh_output("", "rm -rf link tfile");
    assert!(!out.status.success());
    // `rm -rf` on a transparent directory deletes what is inside, as on the real directory; the
    // entry itself stays.
    let out = m.sh_output(
        "",
        "mkdir tdir/scratch && rm -rf tdir/scratch && rm -rf tdir",
    );
    assert!(!out.status.success());
    assert!(m.at("tdir").is_dir());
    assert_eq!(
        std::fs::read_to_string(m.real("vol/d/precious")).expect("intact"),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(m.real("vol/file.txt")).expect("intact"),
        "keep me too"
    );
    assert!(std::fs::symlink_metadata(m.at("link")).is_ok());
}

#[test]
fn atomic_save_onto_a_transparent_file_lands_in_the_target() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/settings.ini", "v1\n");
    sb.dir("base");
    let m = sb.mount("base: base\nredirections:\n  - path: settings.ini\n    target: vol/settings.ini\n    as: transparent\n");
    std::fs::write(m.at(".settings.ini.tmp"), "v2\n").expect("write temp");
    std::fs::rename(m.at(".settings.ini.tmp"), m.at("settings.ini")).expect("atomic save");
    assert_eq!(
        std::fs::read_to_string(m.real("vol/settings.ini")).expect("target"),
        "v2\n"
    );
    assert!(!m.real("base/settings.ini").exists());
    assert!(!m.real("base/.settings.ini.tmp").exists());
    assert_eq!(
        std::fs::read_to_string(m.at("settings.ini")).expect("through mount"),
        "v2\n"
    );
}

#[test]
fn rename_between_base_and_target_is_exdev() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("base/f", "1");
    sb.dir("vol");
    let m =
        sb.mount("base: base\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    assert_eq!(
        errno(&std::fs::rename(m.at("f"), m.at("t/f"))),
        Some(libc::EXDEV)
    );
    // mv falls back to copying, as between disks.
    m.sh("", "mv f t/f");
    assert_eq!(
        std::fs::read_to_string(m.real("vol/f")).expect("moved"),
        "1"
    );
    assert!(!m.real("base/f").exists());
}

#[test]
fn relative_link_climbing_out_of_a_target_reaches_the_targets_tree() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/shared/lib.txt", "the right file");
    sb.dir("vol/app");
    std::os::unix::fs::symlink("../shared/lib.txt", sb.path("vol/app/lib")).expect("symlink");
    std::os::unix::fs::symlink("inner.txt", sb.path("vol/app/near")).expect("symlink");
    sb.file("vol/app/inner.txt", "inner");
    sb.file("base/shared/lib.txt", "the WRONG file");
    let m = sb.mount(
        "base: base\nredirections:\n  - path: app\n    target: vol/app\n    as: transparent\n",
    );
    assert_eq!(
        std::fs::read_to_string(m.at("app/lib")).expect("read"),
        "the right file"
    );
    assert_eq!(
        std::fs::read_link(m.at("app/lib")).expect("readlink"),
        m.real("vol/shared/lib.txt")
    );
    // A link that stays inside keeps its relative text.
    assert_eq!(
        std::fs::read_link(m.at("app/near")).expect("readlink"),
        std::path::PathBuf::from("inner.txt")
    );
}

#[test]
fn in_place_overlay_keeps_the_original_folder_reachable() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("mnt/original.txt", "was here before");
    sb.file("vol/data.txt", "moved away");
    let m = sb.mount("base: mnt\nredirections:\n  - path: data\n    target: vol\n");
    assert_eq!(
        std::fs::read_to_string(m.at("original.txt")).expect("base beneath"),
        "was here before"
    );
    assert_eq!(
        std::fs::read_to_string(m.at("data/data.txt")).expect("redirected"),
        "moved away"
    );
    std::fs::write(m.at("created.txt"), "new").expect("write into base beneath");
    assert_eq!(
        std::fs::read_to_string(m.at("created.txt")).expect("read back"),
        "new"
    );
    let mut m = m;
    m.unmount();
    // After unmounting, the file sits in the original folder.
    assert_eq!(
        std::fs::read_to_string(m.real("mnt/created.txt")).expect("in the folder"),
        "new"
    );
    assert!(!m.real("mnt/data").exists());
}

#[test]
fn read_only_entry_and_mount_refuse_writes() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/f", "1");
    sb.file("vol2/g", "2");
    let m = sb.mount(
        "redirections:\n  - path: ro\n    target: vol\n    as: transparent\n    read_only: true\n  - path: rw\n    target: vol2\n    as: transparent\n",
    );
    assert_eq!(errno(&std::fs::write(m.at("ro/f"), "x")), Some(libc::EROFS));
    assert_eq!(
        errno(&std::fs::write(m.at("ro/new"), "x")),
        Some(libc::EROFS)
    );
    assert_eq!(std::fs::read_to_string(m.at("ro/f")).expect("read"), "1");
    std::fs::write(m.at("rw/g"), "3").expect("writable");
}

#[test]
fn hard_links_share_one_inode_number() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("vol/a", "data");
    let m = sb.mount("redirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    std::fs::hard_link(m.at("t/a"), m.at("t/b")).expect("link");
    let a = std::fs::metadata(m.at("t/a")).expect("stat a");
    let b = std::fs::metadata(m.at("t/b")).expect("stat b");
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    assert_eq!(b.nlink(), 2);
    std::fs::remove_file(m.at("t/a")).expect("unlink a");
    let b = std::fs::metadata(m.at("t/b")).expect("stat b after unlink");
    assert_eq!(b.nlink(), 1);
    assert_eq!(
        std::fs::read_to_string(m.at("t/b")).expect("read b"),
        "data"
    );
}

/// Polls `f` until it returns true, failing with `what` after a deadline well past the mount's
/// one-second attribute lifetime.
fn eventually(what: &str, f: impl FnMut() -> bool) {
    tests::poll::wait_until(std::time::Duration::from_secs(10), what, f);
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The kernel keeps file pages across opens (FOPEN_KEEP_CACHE without passthrough) and keeps
/// directory listings (FOPEN_CACHE_DIR): changes through the mount must show at once, and
/// changes made behind the mount must show once the attribute lifetime has passed.
#[test]
fn cached_pages_and_listings_follow_changes_through_and_behind_the_mount() {
    require_fuse!();
    for passthrough in [true, false] {
        let sb = Sandbox::new();
        sb.file("vol/d/a.txt", "first version\n");
        let tuning = fuse_backend::Tuning {
            passthrough,
            ..fuse_backend::Tuning::default()
        };
        let m = sb.mount_with(
            "redirections:\n  - path: t\n    target: vol\n    as: transparent\n",
            tuning,
        );
        let (dir, file) = (m.at("t/d"), m.at("t/d/a.txt"));
        // Prime both caches.
        assert_eq!(names(&dir), ["a.txt"]);
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "first version\n"
        );
        assert_eq!(names(&dir), ["a.txt"]);

        // Through the mount: visible at once.
        std::fs::write(m.at("t/d/b.txt"), "b").expect("create");
        assert_eq!(names(&dir), ["a.txt", "b.txt"], "passthrough {passthrough}");
        std::fs::write(&file, "second version, longer\n").expect("rewrite");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "second version, longer\n"
        );
        std::fs::remove_file(m.at("t/d/b.txt")).expect("unlink");
        assert_eq!(names(&dir), ["a.txt"], "passthrough {passthrough}");

        // Behind the mount: visible after the attribute lifetime, with no stale bytes.
        std::fs::write(m.real("vol/d/c.txt"), "c").expect("create behind");
        eventually("a file created behind the mount is listed", || {
            names(&dir) == ["a.txt", "c.txt"]
        });
        // Same size, new bytes: only the mtime tells the kernel its pages are stale.
        let same_size = "SECOND VERSION, LONGER\n";
        std::fs::write(m.real("vol/d/a.txt"), same_size).expect("rewrite behind");
        let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(m.real("vol/d/a.txt"))
            .and_then(|f| f.set_modified(t))
            .expect("set mtime");
        eventually("bytes rewritten behind the mount are read", || {
            std::fs::read_to_string(&file).expect("read") == same_size
        });
        std::fs::remove_file(m.real("vol/d/c.txt")).expect("unlink behind");
        eventually("a file removed behind the mount leaves the listing", || {
            names(&dir) == ["a.txt"]
        });
    }
}
