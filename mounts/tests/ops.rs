//! Issue 13: a mount an admin can leave running unattended. Each test is a regression test for
//! one item of the issue, run on the built binary with real mounts.

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_redirfs");
/// The unprivileged attacker of the issue's reports.
const UID: u32 = 4321;

fn can_mount() -> bool {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED: no /dev/fuse");
        return false;
    }
    if euid() != 0 {
        eprintln!("SKIPPED: needs root (mounts directly, plants files as another uid)");
        return false;
    }
    true
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn mounted_at(p: &Path) -> bool {
    let want = p.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|m| m == want)
        })
        .unwrap_or(false)
}

fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    tests::poll::wait_until(Duration::from_secs(15), what, cond);
}

fn text(out: &Output) -> String {
    format!(
        "rc {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A sandbox with its own runtime directory; dropping it unmounts what is still mounted
/// beneath it, redirfs or not, lazily if need be.
struct Lab {
    dir: tempfile::TempDir,
    run_dir: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("redirfs-ops-")
            .tempdir()
            .expect("tempdir");
        let run_dir = dir.path().join("run");
        Lab { dir, run_dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn mnt(&self) -> PathBuf {
        self.path("mnt")
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("parent");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    /// `decl.yaml` for the mountpoint `mnt` (created).
    fn declare(&self, body: &str) -> PathBuf {
        std::fs::create_dir_all(self.mnt()).expect("mnt");
        self.write("decl.yaml", &format!("version: 1\nmountpoint: mnt\n{body}"))
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("REDIRFS_RUNTIME_DIR", &self.run_dir)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("RUST_LOG");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run redirfs")
    }

    fn mount(&self, file: &Path, flags: &[&str]) {
        let file = file.to_string_lossy().into_owned();
        let mut args = vec!["mount"];
        args.extend_from_slice(flags);
        args.push(&file);
        let out = self.run(&args);
        assert!(out.status.success(), "mount failed: {}", text(&out));
    }

    fn status(&self, mp: &Path) -> serde_json::Value {
        let out = self.run(&["status", &mp.to_string_lossy(), "--json"]);
        assert!(out.status.success(), "status failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("status json")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut mine: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .map(|m| m.replace("\\040", " "))
            .collect();
        mine.reverse();
        for m in mine {
            let _ = Command::new("umount").arg(&m).output();
            if mounted_at(Path::new(&m)) {
                let _ = Command::new("umount").arg("-l").arg(&m).output();
            }
        }
    }
}

// ---- item 10: runtime directory, log and control socket ----

#[test]
fn runtime_dir_that_is_a_planted_symlink_is_refused() {
    if !can_mount() {
        return;
    }
    let mut lab = Lab::new();
    let victim = lab.path("victim");
    std::fs::create_dir(&victim).expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink(&victim, lab.path("run-link")).expect("symlink");
    lab.run_dir = lab.path("run-link");
    let decl = lab.declare("redirections: []\n");
    let out = lab.run(&["mount", &decl.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a directory"), "{}", text(&out));
    assert!(!mounted_at(&lab.mnt()));
    let m = std::fs::metadata(&victim).expect("victim");
    assert_eq!(m.mode() & 0o7777, 0o755, "the target's mode was changed");
    assert_eq!(std::fs::read_dir(&victim).expect("ls").count(), 0);
}

#[test]
fn shared_sticky_runtime_dir_is_refused_not_chmodded() {
    if !can_mount() {
        return;
    }
    let mut lab = Lab::new();
    let shared = lab.path("shared");
    std::fs::create_dir(&shared).expect("shared");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    lab.run_dir = shared.clone();
    let decl = lab.declare("redirections: []\n");
    let out = lab.run(&["mount", &decl.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("open to other users"), "{}", text(&out));
    let m = std::fs::metadata(&shared).expect("shared");
    assert_eq!(m.mode() & 0o7777, 0o1777, "a shared directory was chmod'ed");
}

#[test]
fn users_xdg_runtime_dir_is_not_used_by_root() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    // A user's runtime dir, with `redirfs` planted as a symlink to a root-only directory.
    let xdg = lab.path("xdg");
    std::fs::create_dir(&xdg).expect("xdg");
    let secret = lab.path("secret");
    std::fs::create_dir(&secret).expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::symlink(&secret, xdg.join("redirfs")).expect("plant");
    std::os::unix::fs::chown(&xdg, Some(UID), Some(UID)).expect("chown");
    std::os::unix::fs::lchown(xdg.join("redirfs"), Some(UID), Some(UID)).expect("lchown");
    // `status` computes the runtime dir the daemon would use: with the user's XDG it must not
    // touch the planted link; it lists nothing from the secret directory.
    std::fs::write(secret.join("x.sock"), "").expect("decoy");
    let out = Command::new(BIN)
        .args(["status", "--json"])
        .env_remove("REDIRFS_RUNTIME_DIR")
        .env("XDG_RUNTIME_DIR", &xdg)
        .output()
        .expect("status");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert!(
        secret.join("x.sock").exists(),
        "status pruned a file through the planted link"
    );
    assert_eq!(
        std::fs::read_dir(&secret).expect("ls").count(),
        1,
        "something was created through the planted link"
    );
}

#[test]
fn planted_log_symlink_is_not_followed() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    std::fs::create_dir(&lab.run_dir).expect("run");
    std::fs::set_permissions(&lab.run_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let victim = lab.write("victim", "root's secret\n");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let decl = lab.declare("redirections: []\n");
    // The log's name: the mountpoint with `/` as `_` (the lab's path is letters, digits, `-`).
    let id = lab
        .mnt()
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_");
    std::os::unix::fs::symlink(&victim, lab.run_dir.join(format!("{id}.log"))).expect("plant");
    let out = lab.run(&["mount", &decl.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!mounted_at(&lab.mnt()));
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "root's secret\n"
    );
}

#[test]
fn mountpoints_that_differ_only_by_slash_or_underscore_have_their_own_sockets() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    std::fs::create_dir_all(lab.path("a/c_d")).expect("mp1");
    std::fs::create_dir_all(lab.path("a/c/d")).expect("mp2");
    let one = lab.write(
        "one.yaml",
        "version: 1\nmountpoint: a/c_d\nredirections: []\n",
    );
    let two = lab.write(
        "two.yaml",
        "version: 1\nmountpoint: a/c/d\nredirections: []\n",
    );
    lab.mount(&one, &["--no-watch"]);
    lab.mount(&two, &["--no-watch"]);
    let s1 = lab.status(&lab.path("a/c_d"));
    let s2 = lab.status(&lab.path("a/c/d"));
    assert_eq!(s1["file"], one.to_string_lossy().as_ref());
    assert_eq!(s2["file"], two.to_string_lossy().as_ref());
    let socks = std::fs::read_dir(&lab.run_dir)
        .expect("ls")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sock"))
        .count();
    assert_eq!(socks, 2);
}

fn vm_rss_kib(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn silent_and_huge_control_clients_neither_block_nor_grow_the_daemon() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    lab.mount(&decl, &["--no-watch"]);
    let pid = lab.status(&lab.mnt())["pid"].as_u64().expect("pid");
    let sock = std::fs::read_dir(&lab.run_dir)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sock"))
        .expect("socket");
    // Two clients that connect and say nothing.
    let _silent1 = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    let _silent2 = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    let t = Instant::now();
    lab.status(&lab.mnt());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a silent client held up status for {:?}",
        t.elapsed()
    );
    // A client sending 256 MiB without a newline is cut off after a few KiB.
    let before = vm_rss_kib(pid);
    let mut big = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    big.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    for _ in 0..256 {
        match big.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 256 << 20, "the daemon read all of a 256 MiB request");
    let mut reply = String::new();
    let _ = big.read_to_string(&mut reply);
    assert!(reply.contains("at most"), "reply: {reply}");
    let after = vm_rss_kib(pid);
    assert!(
        after < before + 64 * 1024,
        "the daemon grew from {before} KiB to {after} KiB"
    );
    lab.status(&lab.mnt());
}

#[test]
fn status_into_a_closed_pipe_does_not_panic() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    lab.mount(&decl, &["--no-watch"]);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = lab
        .cmd()
        .arg("status")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("status");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

// ---- item 1: a broken watched declaration is tried once, and fixing it clears the refusal ----

#[test]
fn broken_watched_declaration_is_tried_once_and_fixing_it_clears_refused() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("v1/f", "one");
    let good = "redirections:\n  - path: data\n    target: v1\n";
    let decl = lab.declare(good);
    lab.mount(&decl, &[]);
    let mp = lab.mnt();
    lab.declare("redirections:\n  - path: /data\n    target: v1\n    as: sideways\n");
    wait_for("the watcher to refuse the broken file", || {
        lab.status(&mp)["last_reload"]["ok"] == false
    });
    let refused_at = lab.status(&mp)["reloads"].as_u64().expect("reloads");
    // Watch for two seconds: the old watcher retried ~7 times a second, woken by its own reads.
    let window = Instant::now() + Duration::from_secs(2);
    while Instant::now() < window {
        assert_eq!(
            lab.status(&mp)["reloads"].as_u64(),
            Some(refused_at),
            "the broken file was reloaded again with no edit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Back to the text that is serving: the refusal is cleared without `redirfs reload`.
    lab.declare(good);
    wait_for("the fixed file to clear REFUSED", || {
        lab.status(&mp)["last_reload"]["ok"] == true
    });
}

// ---- item 2: umount refuses what is not redirfs ----

#[test]
fn umount_refuses_a_mount_that_is_not_redirfs() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let t = lab.path("tmpfs");
    std::fs::create_dir(&t).expect("dir");
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "redirfs-ops-test", &t.to_string_lossy()])
        .output()
        .expect("mount tmpfs");
    if !out.status.success() {
        eprintln!("SKIPPED: cannot mount a tmpfs here: {}", text(&out));
        return;
    }
    let out = lab.run(&["umount", &t.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not redirfs"), "{}", text(&out));
    assert!(mounted_at(&t), "redirfs umount unmounted a tmpfs");
    // Nothing mounted: said so, not success.
    std::fs::create_dir(lab.path("empty")).expect("dir");
    let out = lab.run(&["umount", &lab.path("empty").to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing is mounted"), "{}", text(&out));
}

// ---- item 4: a killed daemon's mount shows in status as dead ----

#[test]
fn status_shows_a_killed_daemons_mount_as_dead_and_fails() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    lab.mount(&decl, &["--no-watch"]);
    let mp = lab.mnt();
    let pid = lab.status(&mp)["pid"].as_u64().expect("pid");
    let out = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .output()
        .expect("kill");
    assert!(out.status.success());
    wait_for("the mount to be left not connected", || {
        std::fs::metadata(&mp).is_err_and(|e| e.raw_os_error() == Some(ENOTCONN))
    });
    let out = lab.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("DEAD") && t.contains(&*mp.to_string_lossy()),
        "{t}"
    );
    assert!(
        t.contains("redirfs mount") && t.contains("umount --lazy"),
        "{t}"
    );
    let out = lab.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["dead"], true, "{v}");
    let out = lab.run(&["status", &mp.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("DEAD"));
    // The advice works.
    let out = lab.run(&["umount", "--lazy", &mp.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!mounted_at(&mp));
    let out = lab.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// "Transport endpoint is not connected" on Linux.
const ENOTCONN: i32 = 107;

// ---- item 11: a declaration that is not a regular file, or too large ----

fn mkfifo(p: &Path) {
    let out = Command::new("mkfifo").arg(p).output().expect("mkfifo");
    assert!(out.status.success(), "{}", text(&out));
}

/// Runs `redirfs args`, killing it if it has not finished within 10 s.
fn bounded(lab: &Lab, args: &[&str]) -> Output {
    let mut child = lab
        .cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redirfs {args:?} did not return in 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn check_refuses_fifo_device_and_oversized_declarations() {
    let lab = Lab::new();
    let fifo = lab.path("fifo.yaml");
    mkfifo(&fifo);
    let out = bounded(&lab, &["check", &fifo.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
    let out = bounded(&lab, &["check", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
    let big = lab.path("big.yaml");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(65 << 20))
        .expect("sparse file");
    let out = bounded(&lab, &["check", &big.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("larger than"), "{}", text(&out));
}

#[test]
fn a_declaration_replaced_by_a_fifo_is_refused_on_reload_and_status_answers() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    lab.mount(&decl, &[]);
    let mp = lab.mnt();
    let fifo = lab.path("fifo");
    mkfifo(&fifo);
    std::fs::rename(&fifo, &decl).expect("rename the fifo over the declaration");
    let out = bounded(&lab, &["reload", &mp.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
    let out = bounded(&lab, &["status", &mp.to_string_lossy(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
}

// ---- item 3: mount helper options are honoured or refused by name; the helper is silent ----

/// The mount options and superblock options of the mount at `p`.
fn mount_options(p: &Path) -> String {
    let want = p.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .map(|l| {
            let opts = l.split(' ').nth(5).unwrap_or_default();
            let sb = l.rsplit(' ').next().unwrap_or_default();
            format!("{opts},{sb}")
        })
        .next_back()
        .unwrap_or_default()
}

#[test]
fn helper_options_are_honoured_or_refused_by_name() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    let helper = |opts: &str| {
        lab.cmd()
            .args([
                &*decl.to_string_lossy(),
                &*lab.mnt().to_string_lossy(),
                "-o",
                opts,
            ])
            .output()
            .expect("helper")
    };
    let out = helper("allow_other,noatime,uid=1000,bogusopt");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`uid=1000`, `bogusopt`"), "{err}");
    assert!(!mounted_at(&lab.mnt()));
    let out =
        helper("defaults,nofail,_netdev,x-systemd.automount,allow_other,noatime,nosuid,noexec,ro");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout.is_empty(),
        "a helper is silent on success: {}",
        text(&out)
    );
    let opts = mount_options(&lab.mnt());
    for want in ["ro", "noatime", "nosuid", "noexec", "allow_other"] {
        assert!(
            opts.split(',').any(|o| o == want),
            "`{want}` not applied: {opts}"
        );
    }
}

// ---- item 6: explain takes an absolute path under the mountpoint ----

#[test]
fn explain_accepts_an_absolute_path_under_the_mountpoint() {
    let lab = Lab::new();
    lab.write("vol/f", "x");
    let decl = lab.declare("redirections:\n  - path: data\n    target: vol\n");
    let rel = lab.run(&["explain", &decl.to_string_lossy(), "data/f"]);
    assert!(rel.status.success(), "{}", text(&rel));
    let abs_path = lab.mnt().join("data/f");
    let abs = lab.run(&[
        "explain",
        &decl.to_string_lossy(),
        &abs_path.to_string_lossy(),
    ]);
    assert!(abs.status.success(), "{}", text(&abs));
    assert_eq!(
        String::from_utf8_lossy(&abs.stdout),
        String::from_utf8_lossy(&rel.stdout)
    );
    assert!(
        String::from_utf8_lossy(&abs.stdout).contains(&*lab.path("vol/f").to_string_lossy()),
        "{}",
        text(&abs)
    );
}

// ---- item 7: an in-place overlay does not look through itself ----

#[test]
fn in_place_overlay_reports_no_mask_seen_through_the_mount_and_shows_its_base() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("vol/f", "x");
    lab.write("mnt/keep", "base file");
    let decl = lab.write(
        "decl.yaml",
        "version: 1\nmountpoint: mnt\nbase: mnt\nredirections:\n  - path: data\n    target: vol\n",
    );
    let before = lab.run(&["check", &decl.to_string_lossy()]);
    assert!(before.status.success(), "{}", text(&before));
    assert!(!text(&before).contains("masks"), "{}", text(&before));
    lab.mount(&decl, &["--no-watch"]);
    assert!(lab.mnt().join("data").exists() && lab.mnt().join("keep").exists());
    let during = lab.run(&["check", &decl.to_string_lossy()]);
    assert!(during.status.success(), "{}", text(&during));
    assert!(
        !text(&during).contains("masks"),
        "check looked through the mount: {}",
        text(&during)
    );
    let s = lab.status(&lab.mnt());
    assert_eq!(s["base"], lab.mnt().to_string_lossy().as_ref(), "{s}");
}

// ---- item 5: not-found probes are not errors ----

#[test]
fn not_found_lookups_are_counted_apart_from_errors() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("vol/db", "x");
    let decl = lab.declare("redirections:\n  - path: data\n    target: vol\n    as: transparent\n");
    lab.mount(&decl, &["--no-watch"]);
    // What sqlite does before opening a database: probe for its journal files.
    for i in 0..30 {
        let probe = lab.mnt().join(format!("data/db-journal-{i}"));
        let e = std::fs::metadata(&probe).expect_err("absent");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
    assert_eq!(
        std::fs::read_to_string(lab.mnt().join("data/db")).expect("read"),
        "x"
    );
    let e = &lab.status(&lab.mnt())["entries"][0];
    assert_eq!(e["errors"], 0, "{e}");
    assert!(e["not_found"].as_u64().unwrap_or(0) >= 30, "{e}");
    let out = lab.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not-found"),
        "{}",
        text(&out)
    );
}

// ---- item 8: logs, -v/-q, --json on check and explain, umount --all ----

fn log_file(lab: &Lab) -> PathBuf {
    std::fs::read_dir(&lab.run_dir)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a log")
}

#[test]
fn daemon_log_has_timestamps_says_mounted_and_rotates() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    let file = decl.to_string_lossy().into_owned();
    let out = lab
        .cmd()
        .env("REDIRFS_LOG_MAX_BYTES", "2000")
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVOCATION_ID")
        .args(["mount", "--no-watch", &file])
        .output()
        .expect("mount");
    assert!(out.status.success(), "{}", text(&out));
    let log = log_file(&lab);
    let first = std::fs::read_to_string(&log).expect("log");
    let line = first
        .lines()
        .find(|l| l.contains("mounted"))
        .unwrap_or_else(|| panic!("no `mounted` line at the default level: {first}"));
    assert!(
        line.starts_with("[20") && line.contains("Z "),
        "no timestamp: {line}"
    );
    // Broken reloads log their errors until the file passes 2000 bytes and rotates.
    lab.declare("redirections:\n  - path: /data\n    target: v1\n    as: sideways\n");
    let mut rotated = log.clone().into_os_string();
    rotated.push(".1");
    let rotated = PathBuf::from(rotated);
    wait_for("the log to rotate", || {
        let _ = lab.run(&["reload", &lab.mnt().to_string_lossy()]);
        rotated.exists()
    });
    for p in [&log, &rotated] {
        let n = std::fs::metadata(p).expect("size").len();
        assert!(n <= 2000 + 1000, "{} is {n} bytes", p.display());
    }
    assert!(std::fs::read_to_string(&rotated)
        .expect("log.1")
        .contains("mounted"));
}

#[test]
fn under_systemd_the_log_has_no_timestamps() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let decl = lab.declare("redirections: []\n");
    let out = lab
        .cmd()
        .env("JOURNAL_STREAM", "8:12345")
        .args(["mount", "--no-watch", &decl.to_string_lossy()])
        .output()
        .expect("mount");
    assert!(out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(log_file(&lab)).expect("log");
    let line = log
        .lines()
        .find(|l| l.contains("mounted"))
        .unwrap_or_else(|| panic!("no `mounted` line: {log}"));
    assert!(
        line.starts_with("[INFO"),
        "the journal adds its own timestamps: {line}"
    );
}

#[test]
fn umount_all_unmounts_live_and_dead_mounts() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    std::fs::create_dir_all(lab.path("m1")).expect("m1");
    std::fs::create_dir_all(lab.path("m2")).expect("m2");
    let one = lab.write("one.yaml", "version: 1\nmountpoint: m1\nredirections: []\n");
    let two = lab.write("two.yaml", "version: 1\nmountpoint: m2\nredirections: []\n");
    lab.mount(&one, &["--no-watch"]);
    lab.mount(&two, &["--no-watch"]);
    let pid = lab.status(&lab.path("m2"))["pid"].as_u64().expect("pid");
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill")
        .success());
    wait_for("m2 to be left not connected", || {
        std::fs::metadata(lab.path("m2")).is_err_and(|e| e.raw_os_error() == Some(ENOTCONN))
    });
    let out = lab.run(&["umount", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!mounted_at(&lab.path("m1")) && !mounted_at(&lab.path("m2")));
    let out = lab.run(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn check_and_explain_speak_json_and_take_verbosity_flags() {
    let lab = Lab::new();
    lab.write("vol/f", "x");
    let good = lab.declare("redirections:\n  - path: data\n    target: vol\n");
    let bad = lab.write(
        "bad.yaml",
        "version: 1\nmountpoint: mnt\nredirections:\n  - path: data\n    target: vol\n    as: sideways\n",
    );
    let out = lab.run(&[
        "-q",
        "check",
        "--json",
        &good.to_string_lossy(),
        &bad.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["ok"], true, "{v}");
    assert_eq!(v[0]["entries"], 1, "{v}");
    assert_eq!(v[1]["ok"], false, "{v}");
    let d = &v[1]["diagnostics"][0];
    assert_eq!(d["severity"], "error", "{v}");
    assert_eq!(d["line"], 6, "{v}");
    assert!(d["column"].as_u64().is_some_and(|c| c > 1), "{v}");
    let out = lab.run(&["explain", "-v", "--json", &good.to_string_lossy(), "data/f"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["path"], "data/f", "{v}");
    assert!(
        v["explanation"].as_array().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
}

// ---- item 12: the demo clears its sandbox; a tab in YAML is reported where it is ----

#[test]
fn demo_removes_the_sandbox_it_made() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let tmp = lab.path("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let out = lab
        .cmd()
        .env("TMPDIR", &tmp)
        .arg("demo")
        .output()
        .expect("demo");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("demo ok"), "{}", text(&out));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}

#[test]
fn a_tab_in_yaml_is_reported_at_its_own_line_and_column() {
    let lab = Lab::new();
    let at_start = lab.write(
        "a.yaml",
        "version: 1\nmountpoint: /m\nredirections:\n\t- path: a\n",
    );
    let out = lab.run(&["check", &at_start.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let want = format!("{}:4:1: error", at_start.display());
    assert!(text(&out).contains(&want), "want {want}: {}", text(&out));
    assert!(text(&out).contains("never tabs"), "{}", text(&out));
    let inside = lab.write(
        "b.yaml",
        "version: 1\nmountpoint: /m\nredirections:\n  - path: a\n  \t  target: /x\n",
    );
    let out = lab.run(&["check", &inside.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let want = format!("{}:5:3: error", inside.display());
    assert!(text(&out).contains(&want), "want {want}: {}", text(&out));
}

// ---- item 9: no single user can exhaust the daemon ----

#[test]
fn one_users_opens_stop_at_emfile_while_root_and_status_go_on() {
    if !can_mount() {
        return;
    }
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        tests::skip!("no python3");
    };
    let lab = Lab::new();
    std::fs::set_permissions(lab.path(""), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    lab.write("base/f", "shared");
    let decl = lab.declare("base: base\noptions:\n  allow_other: true\n");
    lab.mount(&decl, &["--no-watch"]);
    let script = r#"
import errno, os, sys
held = []
while len(held) < 100000:
    try:
        held.append(os.open(sys.argv[1], os.O_RDONLY))
    except OSError as e:
        print("stopped", len(held), errno.errorcode[e.errno], flush=True)
        break
sys.stdin.readline()
"#;
    let mut user = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            python,
            "-c",
            script,
        ])
        .arg(lab.mnt().join("f"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(user.stdout.take().expect("stdout"));
    std::io::BufRead::read_line(&mut out, &mut line).expect("report");
    assert!(
        line.starts_with("stopped") && line.contains("EMFILE"),
        "{line}"
    );
    // While the user holds all they could get: root reads, creates and lists, and the control
    // socket answers.
    assert_eq!(
        std::fs::read_to_string(lab.mnt().join("f")).expect("root reads"),
        "shared"
    );
    std::fs::write(lab.mnt().join("root-made"), "x").expect("root creates");
    assert!(std::fs::read_dir(lab.mnt()).expect("root lists").count() >= 2);
    assert!(lab.status(&lab.mnt())["mountpoint"].is_string());
    drop(user.stdin.take());
    assert!(user.wait().expect("wait").success());
    let out = lab.run(&["umount", &lab.mnt().to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));
}
