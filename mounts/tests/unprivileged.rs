//! Mounting as an unprivileged user (uid 4321) with the real binary: `redirfs mount` through
//! fusermount3, reads and writes through the mount, status, `redirfs umount`, SIGTERM, a killed
//! daemon's stale mount, and allow_other refused without `user_allow_other`.
//!
//! fusermount3 lends users mount(2) but opens /dev/fuse with the user's own permissions, so users
//! can mount only where /dev/fuse is open to them (mode 0666, as most distributions ship it).
//! This machine may keep it 0600 (some containers do), and other tests run concurrently, so the
//! device is never changed for the machine: the lifecycle runs in a private mount namespace where
//! a 0666 node of the same device is bound over /dev/fuse, with an /etc/passwd that names the test
//! user (fusermount3 needs a user name) and an /etc/fuse.conf without `user_allow_other`. Where
//! /dev/fuse is closed to users, `users_denied_dev_fuse_are_told_why` checks the explanation.
//!
//! Needs root (to act as the user and build the namespace), setpriv, unshare and mount. A missing
//! or non-setuid fusermount3 fails the test, unless REDIRFS_ALLOW_NO_FUSERMOUNT=1 allows skipping.

#![cfg(target_os = "linux")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_redirfs");
const UID: u32 = 4321;
/// Set to 1 to skip, rather than fail, where fusermount3 is missing or not setuid root.
const ALLOW_SKIP: &str = "REDIRFS_ALLOW_NO_FUSERMOUNT";
/// The lab directory, for the test run inside the private namespace.
const INNER_LAB: &str = "REDIRFS_TEST_NAMESPACE_LAB";

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Why the tests cannot act as another user here, or `None` when they can.
fn cannot_act_as_user() -> Option<String> {
    if fs_core::sys::geteuid() != 0 {
        return Some("needs root to act as another user".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    ["setpriv", "unshare", "mount", "mknod"]
        .iter()
        .find(|p| which(p).is_none())
        .map(|p| format!("no {p}"))
}

/// Whether fusermount3 is installed setuid root; panics saying what is wrong unless skipping is
/// allowed.
fn fusermount3_usable() -> bool {
    let problem = match which("fusermount3").map(|p| (std::fs::metadata(&p), p)) {
        None => "fusermount3 is not installed (install fuse3: `apt-get install fuse3`)".to_string(),
        Some((Err(e), p)) => format!("cannot stat {}: {e}", p.display()),
        Some((Ok(m), p)) if m.uid() != 0 || m.mode() & 0o4000 == 0 => format!(
            "{} is not setuid root (mode {:o}, owner {}): reinstall fuse3",
            p.display(),
            m.mode() & 0o7777,
            m.uid()
        ),
        Some(_) => return true,
    };
    if std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1") {
        tests::skip::skipped(tests::test_name!(), &format!("{problem} ({ALLOW_SKIP}=1)"));
        return false;
    }
    panic!("{problem}; set {ALLOW_SKIP}=1 to skip this test instead");
}

/// The test's directories: `root` is root's (0755), `root/priv` root's alone (0700), and
/// `root/home` belongs to the user: the mountpoint `mnt`, a target `vol`, a base `base`, the
/// runtime directory `run` (0700) and `decl.yaml`.
#[derive(Debug, Clone)]
struct Paths {
    root: PathBuf,
}

impl Paths {
    fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.home().join(rel)
    }

    fn mnt(&self) -> PathBuf {
        self.at("mnt")
    }

    fn private(&self) -> PathBuf {
        self.root.join("priv")
    }

    /// Daemons started, one pid a line, for the outer test to check they are gone.
    fn pids(&self) -> PathBuf {
        self.root.join("pids")
    }

    fn declare(&self, body: &str) {
        let file = self.at("decl.yaml");
        std::fs::write(&file, format!("version: 1\nmountpoint: mnt\n{body}")).expect("decl");
        std::os::unix::fs::chown(&file, Some(UID), Some(UID)).expect("chown");
    }

    /// Runs `program args` as the user, in `home`, with the user's own runtime directory.
    fn as_user(&self, program: &str, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                &format!("--reuid={UID}"),
                &format!("--regid={UID}"),
                "--clear-groups",
                "--",
                program,
            ])
            .args(args)
            .current_dir(self.home())
            .env("REDIRFS_RUNTIME_DIR", self.at("run"))
            .env_remove("XDG_RUNTIME_DIR")
            .env("HOME", self.home())
            .env("LC_ALL", "C")
            .output()
            .expect("run setpriv")
    }

    fn sh_as_user(&self, script: &str) -> Output {
        self.as_user("sh", &["-c", script])
    }

    fn redirfs(&self, args: &[&str]) -> Output {
        self.as_user(BIN, args)
    }
}

/// A fresh lab, removed on drop.
struct Lab {
    _dir: tempfile::TempDir,
    paths: Paths,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("redirfs-unpriv-")
            .tempdir()
            .expect("tempdir");
        let paths = Paths {
            root: dir.path().to_path_buf(),
        };
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        mode(&paths.root, 0o755);
        std::fs::create_dir(paths.private()).expect("priv");
        mode(&paths.private(), 0o700);
        for d in ["home", "home/mnt", "home/vol", "home/base", "home/run"] {
            std::fs::create_dir(paths.root.join(d)).expect("mkdir");
        }
        mode(&paths.at("run"), 0o700);
        std::fs::write(paths.at("vol/f"), "through the entry").expect("write");
        std::fs::write(paths.at("base/b.txt"), "from the base").expect("write");
        paths.declare(
            "base: base\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n",
        );
        for rel in ["", "mnt", "vol", "vol/f", "base", "base/b.txt", "run"] {
            std::os::unix::fs::chown(paths.at(rel), Some(UID), Some(UID)).expect("chown");
        }
        Lab { _dir: dir, paths }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The mountinfo line of the mount at `p` in this process's namespace.
fn mount_line(p: &Path) -> Option<String> {
    let want = p.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .map(str::to_owned)
}

fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    tests::poll::wait_until(Duration::from_secs(15), what, cond);
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn users_denied_dev_fuse_are_told_why() {
    if let Some(why) = cannot_act_as_user() {
        tests::skip!("{why}");
    }
    let lab = Lab::new();
    let p = &lab.paths;
    let open = p.sh_as_user("test -r /dev/fuse && test -w /dev/fuse");
    if open.status.success() {
        tests::skip!(
            "/dev/fuse is open to users here (a_user_mounts_through_fusermount3 mounts as one)"
        );
    }
    let out = p.redirfs(&["mount", "decl.yaml"]);
    assert!(!out.status.success(), "mounted anyway: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open /dev/fuse")
            && err.contains("fusermount3 opens it with your own permissions")
            && err.contains("mount as root"),
        "{err}"
    );
    assert!(mount_line(&p.mnt()).is_none());
}

/// Runs `user_lifecycle_in_private_namespace` in a private mount namespace, then checks that no
/// daemon it started outlived it.
/// For 3 s one thread replaces DIR/race (write a temporary, rename over it) while the main one
/// reads it whole; prints `opens N ENOENT partial`.
const REPLACE_RACE: &str = r#"
import os, sys, threading, time
d = sys.argv[1]
size = 65536
open(os.path.join(d, "race"), "wb").write(b"a" * size)
stop = time.monotonic() + 3
def writer():
    i = 0
    while time.monotonic() < stop:
        i += 1
        tmp = os.path.join(d, ".race.tmp")
        open(tmp, "wb").write(bytes([97 + i % 26]) * size)
        os.rename(tmp, os.path.join(d, "race"))
t = threading.Thread(target=writer)
t.start()
opens = enoent = partial = 0
while time.monotonic() < stop:
    opens += 1
    try:
        data = open(os.path.join(d, "race"), "rb").read()
        if len(data) != size or data.count(data[:1]) != size:
            partial += 1
    except FileNotFoundError:
        enoent += 1
t.join()
print("opens", opens, enoent, partial)
"#;

#[test]
fn a_user_mounts_through_fusermount3() {
    if let Some(why) = cannot_act_as_user() {
        tests::skip!("{why}");
    }
    if !fusermount3_usable() {
        return;
    }
    let lab = Lab::new();
    let p = &lab.paths;
    let runs = p.redirfs(&["--version"]);
    assert!(
        runs.status.success(),
        "uid {UID} cannot run {BIN} (every directory above it must be searchable by others): {}",
        text(&runs)
    );
    let exe = std::env::current_exe().expect("this test's executable");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([
            "--exact",
            "user_lifecycle_in_private_namespace",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_LAB, &p.root)
        .output()
        .expect("run unshare");
    let pids = std::fs::read_to_string(p.pids()).unwrap_or_default();
    let mut leftover = Vec::new();
    for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        let gone = tests::poll::try_wait_for(Duration::from_secs(10), || exited(pid).then_some(()));
        if gone.is_none() {
            let _ = fs_core::sys::send_signal(pid, libc::SIGKILL);
            leftover.push(pid);
        }
    }
    let report = text(&out);
    assert!(out.status.success(), "in the namespace: {report}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the namespace test did not run: {report}"
    );
    assert!(
        leftover.is_empty(),
        "daemons outlived the test: {leftover:?}"
    );
    assert!(
        mount_line(&p.mnt()).is_none(),
        "the mount leaked out of the namespace"
    );
}

/// Unmounts and stops whatever the namespace test left, even when it fails.
struct Cleanup<'a>(&'a Paths);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let p = self.0;
        if mount_line(&p.mnt()).is_some() {
            let _ = p.redirfs(&["umount", "mnt"]);
        }
        if mount_line(&p.mnt()).is_some() {
            let _ = fs_core::sys::umount(&p.mnt(), true);
        }
        let pids = std::fs::read_to_string(p.pids()).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            if !exited(pid) {
                let _ = fs_core::sys::send_signal(pid, libc::SIGKILL);
            }
        }
        if std::thread::panicking() {
            if let Ok(rd) = std::fs::read_dir(p.at("run")) {
                for log in rd.filter_map(Result::ok).map(|e| e.path()) {
                    if log.extension().is_some_and(|x| x == "log") {
                        let body = std::fs::read_to_string(&log).unwrap_or_default();
                        eprintln!("--- {}:\n{body}", log.display());
                    }
                }
            }
        }
    }
}

/// Binds `source` over `target` in this (private) namespace.
fn bind(source: &Path, target: &Path) {
    let st = Command::new("mount")
        .arg("--bind")
        .arg(source)
        .arg(target)
        .status()
        .expect("mount --bind");
    assert!(
        st.success(),
        "mount --bind {} {}",
        source.display(),
        target.display()
    );
}

/// Makes this namespace an ordinary distribution's, for the user: /dev/fuse 0666, the user named
/// in /etc/passwd, no `user_allow_other`. Refuses to touch anything unless the namespace is
/// private, so nothing can propagate to the machine.
fn set_up_namespace(p: &Paths) {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    assert!(
        ns("self").is_some() && ns("self") != ns("1"),
        "not in a mount namespace of its own"
    );
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !info.contains(" shared:") && !info.contains(" master:"),
        "mounts here propagate; refusing to bind anything:\n{info}"
    );
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0700", "tmpfs"])
        .arg(p.private())
        .status()
        .expect("mount tmpfs");
    assert!(st.success(), "mount tmpfs");
    let node = p.private().join("fuse");
    let st = Command::new("mknod")
        .args(["-m", "0666"])
        .arg(&node)
        .args(["c", "10", "229"])
        .status()
        .expect("mknod");
    assert!(st.success(), "mknod");
    bind(&node, Path::new("/dev/fuse"));
    let mut passwd = std::fs::read_to_string("/etc/passwd").expect("passwd");
    passwd.push_str(&format!(
        "redirfs-test:x:{UID}:{UID}::/nonexistent:/usr/sbin/nologin\n"
    ));
    let file = p.private().join("passwd");
    std::fs::write(&file, passwd).expect("passwd");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    bind(&file, Path::new("/etc/passwd"));
    if Path::new("/etc/fuse.conf").exists() {
        let file = p.private().join("fuse.conf");
        std::fs::write(&file, "# no user_allow_other\n").expect("fuse.conf");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        bind(&file, Path::new("/etc/fuse.conf"));
    }
}

/// `redirfs mount` as the user; returns the daemon's pid (recorded for cleanup).
fn mount_as_user(p: &Paths) -> u32 {
    let out = p.redirfs(&["mount", "decl.yaml"]);
    assert!(out.status.success(), "mount as uid {UID}: {}", text(&out));
    assert!(
        mount_line(&p.mnt()).is_some(),
        "`redirfs mount` returned before the mount was ready"
    );
    let s = status(p);
    let pid = s["pid"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .expect("pid");
    let mut pids = std::fs::read_to_string(p.pids()).unwrap_or_default();
    pids.push_str(&format!("{pid}\n"));
    std::fs::write(p.pids(), pids).expect("pids");
    pid
}

fn status(p: &Paths) -> serde_json::Value {
    let out = p.redirfs(&["status", "mnt", "--json"]);
    assert!(out.status.success(), "status: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("status json")
}

#[test]
#[ignore = "run by a_user_mounts_through_fusermount3 inside a private mount namespace"]
fn user_lifecycle_in_private_namespace() {
    let Some(root) = std::env::var_os(INNER_LAB) else {
        tests::skip!("run through a_user_mounts_through_fusermount3");
    };
    let p = &Paths {
        root: PathBuf::from(root),
    };
    set_up_namespace(p);
    let _cleanup = Cleanup(p);

    // Mount: through fusermount3, with the declared options in its syntax.
    let pid = mount_as_user(p);
    let line = mount_line(&p.mnt()).unwrap_or_default();
    for want in [
        " - fuse.redirfs redirfs:",
        "user_id=4321",
        "default_permissions",
        "nosuid",
        "nodev",
    ] {
        assert!(line.contains(want), "`{want}` missing from: {line}");
    }

    // Reads and writes through a transparent entry and the base, as the user.
    let out = p.sh_as_user(
        "cat mnt/t/f && echo && cat mnt/b.txt && echo written > mnt/t/new && echo based > mnt/b-new",
    );
    assert!(
        out.status.success(),
        "I/O through the mount: {}",
        text(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through the entry\nfrom the base"
    );
    for (rel, want) in [("vol/new", "written\n"), ("base/b-new", "based\n")] {
        let real = p.at(rel);
        assert_eq!(std::fs::read_to_string(&real).expect("read"), want);
        let m = std::fs::metadata(&real).expect("stat");
        assert_eq!((m.uid(), m.gid()), (UID, UID), "{rel} belongs to the user");
    }

    // The identity fallback of a daemon that cannot open by file handle: a reader opening a
    // file while it is replaced by rename, through the user's own mount, never gets ENOENT or
    // a short read (docs/security.md).
    if Path::new("/usr/bin/python3").exists() {
        let out = p.as_user("/usr/bin/python3", &["-c", REPLACE_RACE, "mnt/t"]);
        assert!(out.status.success(), "replace race: {}", text(&out));
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(report.starts_with("opens"), "{report}");
        assert!(
            report.trim_end().ends_with(" 0 0"),
            "ENOENT or short reads: {report}"
        );
    } else {
        tests::skip::skipped(tests::test_name!(), "replace race: no /usr/bin/python3");
    }

    // Kernel passthrough needs CAP_SYS_ADMIN: the user's daemon serves file I/O itself.
    let s = status(p);
    assert_eq!(s["passthrough"], false, "{s}");
    let e = &s["entries"][0];
    assert_eq!(e["path"], "t");
    assert!(e["bytes_read"].as_u64().unwrap_or(0) >= 17, "{s}");
    assert!(e["bytes_written"].as_u64().unwrap_or(0) >= 8, "{s}");
    let out = p.redirfs(&["status"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("passthrough off"),
        "{}",
        text(&out)
    );

    // `redirfs umount` as the user; the daemon exits; a second umount says why it cannot.
    let out = p.redirfs(&["umount", "mnt"]);
    assert!(out.status.success(), "umount as uid {UID}: {}", text(&out));
    assert!(mount_line(&p.mnt()).is_none());
    wait_for("the daemon to exit", || exited(pid));
    let out = p.redirfs(&["umount", "mnt"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing is mounted there"),
        "{}",
        text(&out)
    );

    // SIGTERM: the daemon unmounts through fusermount3 and exits.
    let pid = mount_as_user(p);
    fs_core::sys::send_signal(pid, libc::SIGTERM).expect("SIGTERM");
    wait_for("SIGTERM to unmount", || mount_line(&p.mnt()).is_none());
    wait_for("the daemon to exit", || exited(pid));

    // A killed daemon leaves a stale mount; the next mount clears it through fusermount3.
    let pid = mount_as_user(p);
    fs_core::sys::send_signal(pid, libc::SIGKILL).expect("SIGKILL");
    // (Requests in flight while the last thread closes the device get ECONNABORTED; new ones,
    // once it is closed, ENOTCONN.)
    wait_for("the mount to go stale", || {
        String::from_utf8_lossy(&p.sh_as_user("stat mnt").stderr).contains("not connected")
    });
    let pid = mount_as_user(p);
    let out = p.sh_as_user("cat mnt/t/f");
    assert!(out.status.success(), "{}", text(&out));
    let out = p.redirfs(&["umount", "mnt"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the daemon to exit", || exited(pid));

    // allow_other without `user_allow_other` in /etc/fuse.conf: refused, and explained.
    p.declare("options:\n  allow_other: true\nredirections: []\n");
    let out = p.redirfs(&["mount", "decl.yaml"]);
    assert!(!out.status.success(), "allow_other mounted: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fusermount3 refused")
            && err.contains("user_allow_other")
            && err.contains("/etc/fuse.conf"),
        "{err}"
    );
    assert!(mount_line(&p.mnt()).is_none());
}
