//! Attacks on a root daemon that serves other users (`allow_other`), each run as an unprivileged
//! user (uid 4321) against a real mount, and each held to what the same user gets natively.
//!
//! Races run for a bounded time in a python3 script as that user, which reports what it got;
//! the test then checks that nothing outside the user's reach was read, changed or created.

// Mounts through the Linux harness (tests/src/lib.rs).
#![cfg(target_os = "linux")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{require_fuse, which, Mount, Sandbox};

const UID: u32 = 4321;
const SECRET: &str = "ROOT-ONLY-SECRET";

/// Why this suite cannot run here.
fn cannot_run() -> Option<&'static str> {
    if fs_core::sys::geteuid() != 0 {
        return Some("needs root to act as another user");
    }
    if which("setpriv").is_none() {
        return Some("no setpriv");
    }
    if python().is_none() {
        return Some("no python3 the test user may run");
    }
    None
}

macro_rules! require_attack_env {
    () => {
        require_fuse!();
        if let Some(why) = cannot_run() {
            tests::skip!("{why}");
        }
    };
}

/// Runs `argv` as uid 4321 in `dir`: (success, stdout + stderr).
fn as_user(dir: &Path, argv: &[&str]) -> (bool, String) {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
        ])
        .args(argv)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sh_as_user(dir: &Path, script: &str) -> (bool, String) {
    as_user(dir, &["sh", "-c", script])
}

/// A python3 every user may run (root's PATH may hold a per-user shim first).
fn python() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn python_as_user(dir: &Path, script: &str, args: &[&str]) -> (bool, String) {
    let mut argv = vec![python().expect("python3"), "-c", script];
    argv.extend_from_slice(args);
    as_user(dir, &argv)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown_user(p: &Path) {
    std::os::unix::fs::lchown(p, Some(UID), Some(UID)).expect("chown");
}

/// The root-only things an attacker aims at, outside every tree: `secret/` (root 0700) holding
/// `s.txt` (root 0600), and `root.txt` (root 0600) beside it.
struct Targets {
    dir: PathBuf,
    file: PathBuf,
    loose: PathBuf,
}

impl Targets {
    fn new(sb: &Sandbox) -> Targets {
        let dir = sb.dir("secret");
        let file = sb.file("secret/s.txt", SECRET);
        chmod(&file, 0o600);
        chmod(&dir, 0o700);
        let loose = sb.file("root.txt", SECRET);
        chmod(&loose, 0o600);
        Targets { dir, file, loose }
    }

    /// Nothing was read (the caller checks output), changed or created.
    fn intact(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.dir)
            .expect("list secret")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            names == ["s.txt"],
            "{} names were created in the root 0700 directory, e.g. {:?}",
            names.len().saturating_sub(1),
            &names[..names.len().min(5)]
        );
        for f in [&self.file, &self.loose] {
            let m = std::fs::symlink_metadata(f).expect("stat secret");
            assert_eq!(
                std::fs::read_to_string(f).expect("read"),
                SECRET,
                "{f:?} changed"
            );
            assert_eq!(m.mode() & 0o7777, 0o600, "{f:?} mode changed");
            assert_eq!((m.uid(), m.gid()), (0, 0), "{f:?} owner changed");
        }
    }
}

/// A sandbox the user can walk into, with `base/` (0755 root) holding `pub/` (the user's own).
fn open_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    chmod(sb.root(), 0o755);
    sb.dir("base");
    let p = sb.dir("base/pub");
    chown_user(&p);
    sb
}

const ALLOW_OTHER: &str = "options:\n  allow_other: true\n";

/// Swaps `pub/mine` between the user's own file and a symlink to a root 0600 file, directly in
/// the base, while opening, writing, truncating and chmod'ing it through the mount.
const SWAP_FILE: &str = r#"
import os, sys, threading, time
base, mnt, secret = sys.argv[1], sys.argv[2], sys.argv[3]
name = os.path.join(base, "pub", "mine")
open(name, "w").write("mine")
stop = time.monotonic() + 3
def swapper():
    i = 0
    while time.monotonic() < stop:
        i += 1
        tmp = os.path.join(base, "pub", ".t%d" % (i % 2))
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if i % 2:
            os.symlink(secret, tmp)
        else:
            open(tmp, "w").write("mine")
        os.rename(tmp, name)
threading.Thread(target=swapper, daemon=True).start()
through = os.path.join(mnt, "pub", "mine")
got = set()
while time.monotonic() < stop:
    for op in ("read", "write", "trunc", "chmod"):
        try:
            if op == "read":
                with open(through) as f:
                    got.add(f.read())
            elif op == "write":
                with open(through, "a") as f:
                    f.write("x")
            elif op == "trunc":
                os.truncate(through, 0)
            else:
                os.chmod(through, 0o666)
        except OSError:
            pass
print("LEAKED" if any("ROOT-ONLY" in g for g in got) else "clean")
"#;

#[test]
fn a_file_swapped_for_a_symlink_does_not_reach_its_target() {
    require_attack_env!();
    let sb = open_sandbox();
    let t = Targets::new(&sb);
    let base = sb.path("base");
    let m = sb.mount(&format!("base: base\n{ALLOW_OTHER}"));
    race_as_user(&m, SWAP_FILE, &[&base, m.mnt(), &t.loose]);
    t.intact();
}

/// Runs the race `script` as the user with `args`; it must end and print `clean`.
fn race_as_user(m: &Mount, script: &str, args: &[&Path]) {
    let args: Vec<&str> = args.iter().map(|p| p.to_str().expect("utf-8")).collect();
    let (ok, out) = python_as_user(m.mnt(), script, &args);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "clean", "{out}");
}

/// Swaps `pub/d` between the user's directory and a symlink to a root 0700 directory, in the
/// base, while creating, linking, renaming and removing names in it through the mount.
const SWAP_DIR: &str = r#"
import os, sys, threading, time
base, mnt, secret = sys.argv[1], sys.argv[2], sys.argv[3]
pub = os.path.join(base, "pub")
os.mkdir(os.path.join(pub, "d"))
os.mkdir(os.path.join(pub, "real"))
os.symlink(secret, os.path.join(pub, "evil"))
stop = time.monotonic() + 3
def swapper():
    i = 0
    while time.monotonic() < stop:
        i += 1
        src = os.path.join(pub, "evil" if i % 2 else "real")
        try:
            os.rename(os.path.join(pub, "d"), os.path.join(pub, "real" if i % 2 else "evil"))
        except OSError:
            pass
        try:
            os.rename(src, os.path.join(pub, "d"))
        except OSError:
            pass
threading.Thread(target=swapper, daemon=True).start()
d = os.path.join(mnt, "pub", "d")
n = 0
read = set()
while time.monotonic() < stop:
    n += 1
    for op in range(6):
        try:
            if op == 0:
                open(os.path.join(d, "f%d" % n), "w").write("x")
            elif op == 1:
                os.mkdir(os.path.join(d, "m%d" % n))
            elif op == 2:
                os.symlink("x", os.path.join(d, "l%d" % n))
            elif op == 3:
                os.rename(os.path.join(d, "s.txt"), os.path.join(d, "moved"))
            elif op == 4:
                os.unlink(os.path.join(d, "s.txt"))
            else:
                read.add(open(os.path.join(d, "s.txt")).read())
        except OSError:
            pass
print("LEAKED" if any("ROOT-ONLY" in r for r in read) else "clean")
"#;

#[test]
fn a_directory_swapped_for_a_symlink_does_not_reach_its_target() {
    require_attack_env!();
    let sb = open_sandbox();
    let t = Targets::new(&sb);
    let base = sb.path("base");
    let m = sb.mount(&format!("base: base\n{ALLOW_OTHER}"));
    race_as_user(&m, SWAP_DIR, &[&base, m.mnt(), &t.dir]);
    t.intact();
}

/// Through the mount alone: RENAME_EXCHANGE of a directory and a symlink to a root 0700
/// directory in a sticky shared directory, racing openat on a descriptor of the directory.
const EXCHANGE: &str = r#"
import ctypes, os, sys, threading, time
mnt, secret = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
shared = os.path.join(mnt, "shared")
d, l = os.path.join(shared, "d"), os.path.join(shared, "l")
os.mkdir(d)
os.symlink(secret, l)
stop = time.monotonic() + 4
def exchanger():
    while time.monotonic() < stop:
        libc.renameat2(AT_FDCWD, d.encode(), AT_FDCWD, l.encode(), RENAME_EXCHANGE)
read = set()
def opener(k):
    n = 0
    while time.monotonic() < stop:
        n += 1
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            for i in range(20):
                try:
                    f = os.open("s.txt", os.O_RDONLY, dir_fd=fd)
                    read.add(os.read(f, 100))
                    os.close(f)
                except OSError:
                    pass
                try:
                    os.close(os.open("new%d-%d-%d" % (k, n, i), os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
                except OSError:
                    pass
        finally:
            os.close(fd)
threads = [threading.Thread(target=exchanger)] + [threading.Thread(target=opener, args=(k,)) for k in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("LEAKED" if any(b"ROOT-ONLY" in r for r in read) else "clean")
"#;

#[test]
fn rename_exchange_through_the_mount_does_not_reach_a_root_directory() {
    require_attack_env!();
    let sb = open_sandbox();
    let t = Targets::new(&sb);
    let shared = sb.dir("base/shared");
    chmod(&shared, 0o1777);
    // No access to the base except through the mount.
    chmod(&sb.path("base"), 0o711);
    let m = sb.mount(&format!("base: base\n{ALLOW_OTHER}"));
    race_as_user(&m, EXCHANGE, &[m.mnt(), &t.dir]);
    t.intact();
    // Whatever the user made in the shared directory is theirs.
    for e in std::fs::read_dir(&shared).expect("list") {
        let e = e.expect("entry");
        let meta = std::fs::symlink_metadata(e.path()).expect("stat");
        assert_eq!(meta.uid(), UID, "{:?} is not the user's", e.path());
    }
}

#[test]
fn replacing_a_root_owned_entry_target_is_refused_as_natively() {
    require_attack_env!();
    let sb = open_sandbox();
    let etc = sb.dir("etc");
    let conf = sb.file("etc/app.conf", "root's configuration");
    chmod(&conf, 0o644);
    chmod(&etc, 0o755);
    let dir = sb.dir("base/dir");
    chmod(&dir, 0o777);
    let native = sb.dir("native");
    chmod(&native, 0o755);
    sb.file("native/app.conf", "root's configuration");
    let m = sb.mount(&format!(
        "base: base\n{ALLOW_OTHER}redirections:\n  - path: dir/app.conf\n    target: {}\n    as: transparent\n",
        conf.display()
    ));
    let (ok, out) = sh_as_user(
        m.mnt(),
        "echo mine > dir/mine && mv -f dir/mine dir/app.conf",
    );
    let (native_ok, native_out) = sh_as_user(
        m.sandbox().root(),
        "echo mine > /tmp/redirfs-attack-mine.$$ && mv -f /tmp/redirfs-attack-mine.$$ native/app.conf; rc=$?; rm -f /tmp/redirfs-attack-mine.$$; exit $rc",
    );
    assert!(!native_ok, "native mv must be refused: {native_out}");
    assert!(!ok, "mv onto a root-owned entry target succeeded: {out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&conf).expect("read"),
        "root's configuration"
    );
}

#[test]
fn the_cross_filesystem_save_ignores_links_planted_beside_the_target() {
    require_attack_env!();
    // The entry's target on another filesystem than the base: a tmpfs of the test's own.
    let sb = open_sandbox();
    let t = Targets::new(&sb);
    let vol = sb.dir("vol");
    let Some(_tmpfs) = Tmpfs::mount(&vol) else {
        tests::skip!("cannot mount a tmpfs here");
    };
    chmod(&vol, 0o1777);
    let conf = vol.join("app.conf");
    std::fs::write(&conf, "v1").expect("write");
    chown_user(&conf);
    // Links at the names a predictable save would use, pointing at a root 0600 file.
    for pid in 1..64 {
        let planted = vol.join(format!(".app.conf.redirfs-save-{pid}"));
        std::os::unix::fs::symlink(&t.loose, &planted).expect("plant");
        chown_user(&planted);
    }
    let dir = sb.dir("base/dir");
    chmod(&dir, 0o777);
    let m = sb.mount(&format!(
        "base: base\n{ALLOW_OTHER}redirections:\n  - path: dir/app.conf\n    target: {}\n    as: transparent\n",
        conf.display()
    ));
    let (ok, out) = sh_as_user(m.mnt(), "echo v2 > dir/.new && mv dir/.new dir/app.conf");
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&conf).expect("read"), "v2\n");
    let meta = std::fs::metadata(&conf).expect("stat");
    assert_eq!(meta.uid(), UID, "the saved file is the saver's");
    t.intact();
    drop(m);
}

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "redirfs-test"])
            .arg(at)
            .status()
            .ok()?
            .success();
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, in case a test left a process inside.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A user's shell that has `cd`'ed into a directory of the mount and waits to be told to run
/// the rest of its script.
struct CwdShell {
    child: std::process::Child,
    stdout: std::process::ChildStdout,
    go: PathBuf,
}

impl CwdShell {
    fn start(m: &Mount, cwd: &str, then: &str) -> CwdShell {
        let go = m.sandbox().path("go");
        let script = format!(
            "cd {cwd} || exit 1; echo ready; while [ ! -e {} ]; do sleep 0.05; done; {then}",
            go.display()
        );
        let mut child = Command::new("setpriv")
            .args([
                &format!("--reuid={UID}"),
                &format!("--regid={UID}"),
                "--clear-groups",
                "sh",
                "-c",
                &script,
            ])
            .current_dir(m.mnt())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 6];
        std::io::Read::read_exact(&mut stdout, &mut first).expect("ready");
        assert_eq!(&first, b"ready\n");
        CwdShell { child, stdout, go }
    }

    /// Lets the shell go on; (success, what it printed after `ready`).
    fn finish(mut self) -> (bool, String) {
        std::fs::write(&self.go, "").expect("go");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).expect("output");
        (self.child.wait().expect("wait").success(), rest)
    }
}

/// Polls `done` until it holds, failing the test at `limit`.
fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) {
    tests::poll::wait_until(limit, what, done);
}

/// Runs `argv` as the user with a deadline; `None` when it is still running at the deadline
/// (then killed).
fn bounded(dir: &Path, argv: &[&str], limit: Duration) -> Option<(bool, String)> {
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
        ])
        .args(argv)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let Some(status) = tests::poll::try_wait_for(limit, || child.try_wait().expect("wait")) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((status.success(), text))
}

#[test]
fn symlinks_back_into_the_mount_do_not_stall_it() {
    require_attack_env!();
    let sb = open_sandbox();
    let mnt = sb.path("mnt");
    let base = sb.path("base");
    for (name, to) in [
        ("loop", mnt.join("loop")),
        ("back", mnt.clone()),
        ("etc", mnt.join("etc")),
    ] {
        std::os::unix::fs::symlink(to, base.join(name)).expect("symlink");
    }
    let vol = sb.dir("vol");
    let m = sb.mount(&format!(
        "base: base\n{ALLOW_OTHER}redirections:\n  - path: etc/app\n    target: {}\n",
        vol.display()
    ));
    let script = "ls -la . >/dev/null; ls -laL . >/dev/null 2>&1; cat loop/x 2>/dev/null; ls back/pub >/dev/null 2>&1; ls etc/ >/dev/null 2>&1; stat -L etc >/dev/null 2>&1; echo done";
    for _ in 0..2 {
        let r = bounded(m.mnt(), &["sh", "-c", script], Duration::from_secs(20));
        let Some((_, out)) = r else {
            panic!("the mount stopped answering with symlinks into itself in its base");
        };
        assert!(out.contains("done"), "{out}");
    }
    // Every worker still answers.
    let r = bounded(m.mnt(), &["ls", "-la", "pub"], Duration::from_secs(10));
    assert!(r.is_some_and(|(ok, _)| ok), "the mount is stuck");
}

/// Opens and reads `path` while another thread replaces it (write a temporary, rename over) for
/// `secs`: (opens, ENOENT, partial or mixed reads).
fn reader_replace_race(dir: &Path, secs: u64) -> (u64, u64, u64) {
    const SIZE: usize = 64 * 1024;
    let path = dir.join("f");
    std::fs::write(&path, vec![b'a'; SIZE]).expect("first version");
    let stop = Instant::now() + Duration::from_secs(secs);
    let writer = {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let mut i = 0u8;
            while Instant::now() < stop {
                i = i.wrapping_add(1);
                let byte = b'a' + i % 26;
                let tmp = dir.join(".f.tmp");
                std::fs::write(&tmp, vec![byte; SIZE]).expect("write temp");
                std::fs::rename(&tmp, dir.join("f")).expect("rename over");
            }
        })
    };
    let (mut opens, mut enoent, mut partial) = (0, 0, 0);
    while Instant::now() < stop {
        opens += 1;
        match std::fs::read(&path) {
            Ok(data) => {
                if data.len() != SIZE || data.iter().any(|&b| b != data[0]) {
                    partial += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => enoent += 1,
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }
    writer.join().expect("writer");
    (opens, enoent, partial)
}

#[test]
fn readers_never_miss_a_file_replaced_by_rename() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.dir("base/d");
    sb.dir("vol/d");
    let m: Mount =
        sb.mount("base: base\nredirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    for at in ["d", "t/d"] {
        let (opens, enoent, partial) = reader_replace_race(&m.at(at), 10);
        eprintln!("{at}: {opens} opens, {enoent} ENOENT, {partial} partial");
        assert!(opens > 100, "{at}: too few opens to mean anything: {opens}");
        assert_eq!((enoent, partial), (0, 0), "{at}: over {opens} opens");
    }
}

#[test]
fn a_cwd_in_an_entry_keeps_its_volume_after_a_lazy_unmount() {
    require_attack_env!();
    let sb = open_sandbox();
    let vol = sb.dir("vol");
    let Some(tmpfs) = Tmpfs::mount(&vol) else {
        tests::skip!("cannot mount a tmpfs here");
    };
    std::fs::create_dir(vol.join("sub")).expect("mkdir");
    std::fs::write(vol.join("sub/on-volume"), "x").expect("write");
    chmod(&vol.join("sub"), 0o777);
    let m = sb.mount(&format!(
        "base: base\n{ALLOW_OTHER}redirections:\n  - path: t\n    target: {}\n    as: transparent\n",
        vol.display()
    ));
    // A shell with its cwd in the entry, told when to go on.
    let shell = CwdShell::start(&m, "t/sub", "ls; echo new > created && echo created");
    drop(tmpfs);
    // Lazily unmounted: the volume is gone from the namespace, only held references reach it.
    wait_until(
        Duration::from_secs(10),
        "the tmpfs to leave /proc/mounts",
        || {
            !std::fs::read_to_string("/proc/mounts")
                .expect("mounts")
                .contains(vol.to_str().expect("utf-8"))
        },
    );
    let (ok, rest) = shell.finish();
    assert!(ok, "{rest}");
    assert!(
        rest.contains("on-volume"),
        "the cwd lost its volume: {rest}"
    );
    assert!(
        !vol.join("sub").exists(),
        "the directory under the unmounted volume was used"
    );
}

#[test]
fn relative_links_climb_from_where_they_really_are() {
    require_fuse!();
    let sb = Sandbox::new();
    sb.file("real/vol/sub/.keep", "");
    sb.file("real/other/file", "the real one");
    sb.file("other/file", "the lexical one");
    std::os::unix::fs::symlink(sb.path("real/vol"), sb.path("link-to-vol")).expect("symlink");
    std::os::unix::fs::symlink("../../other/file", sb.path("real/vol/sub/l")).expect("symlink");
    let native = std::fs::read_to_string(sb.path("link-to-vol/sub/l")).expect("native");
    assert_eq!(native, "the real one");
    let target = sb.path("link-to-vol");
    let m = sb.mount(&format!(
        "redirections:\n  - path: t\n    target: {}\n    as: transparent\n",
        target.display()
    ));
    assert_eq!(
        std::fs::read_to_string(m.at("t/sub/l")).expect("through the mount"),
        native
    );
}

#[test]
fn a_cwd_in_a_directory_swapped_for_a_symlink_stays_in_that_directory() {
    require_attack_env!();
    cwd_in_a_swapped_directory(0);
}

#[test]
fn a_cwd_past_the_descriptor_budget_stays_in_its_directory() {
    require_attack_env!();
    // Past a quarter of the hard limit of open files, the daemon reopens inodes by handle.
    let hard: usize = std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .expect("Max open files");
    cwd_in_a_swapped_directory(hard / 4 + 1000);
}

/// A user's shell with its cwd in `pub/d`; behind the mount the directory is moved away and a
/// symlink to a root 0700 directory put in its place, after `others` other files were looked
/// up (pushing the directory out of the daemon's descriptors).
fn cwd_in_a_swapped_directory(others: usize) {
    let sb = open_sandbox();
    let t = Targets::new(&sb);
    let many = sb.dir("base/many");
    for i in 0..others {
        std::fs::write(many.join(format!("f{i}")), "x").expect("create");
    }
    let d = sb.dir("base/pub/d");
    chown_user(&d);
    std::fs::write(d.join("mine"), "my own").expect("write");
    chown_user(&d.join("mine"));
    let m = sb.mount(&format!("base: base\n{ALLOW_OTHER}"));
    let shell = CwdShell::start(
        &m,
        "pub/d",
        "ls; cat s.txt 2>/dev/null; echo new > created; echo end",
    );
    for i in 0..others {
        std::fs::metadata(m.at("many").join(format!("f{i}"))).expect("stat");
    }
    // Behind the mount, as the user may: move the directory away, a symlink in its place.
    let moved = m.sandbox().path("base/pub/d-old");
    std::fs::rename(&d, &moved).expect("rename");
    std::os::unix::fs::symlink(&t.dir, &d).expect("symlink");
    let (_, rest) = shell.finish();
    assert!(!rest.contains("ROOT-ONLY"), "{rest}");
    assert!(
        rest.contains("mine"),
        "the cwd no longer lists its own directory: {rest}"
    );
    assert!(moved.join("created").exists(), "{rest}");
    t.intact();
}

#[test]
fn readers_never_miss_a_replaced_file_past_the_descriptor_budget() {
    require_fuse!();
    if fs_core::sys::geteuid() != 0 {
        eprintln!("SKIPPED: past the descriptor budget: file handles need root");
        return;
    }
    // The daemon holds descriptors for a quarter of its hard limit of open files; past that,
    // inodes are reopened by their kernel file handles.
    let hard: usize = std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .expect("Max open files");
    let files = hard / 4 + 1000;
    let sb = Sandbox::new();
    let many = sb.dir("base/many");
    for i in 0..files {
        std::fs::write(many.join(format!("f{i}")), "x").expect("create");
    }
    sb.dir("base/d");
    let m: Mount = sb.mount("base: base\n");
    let d = m.at("d");
    std::fs::write(d.join("f"), vec![b'a'; 64 * 1024]).expect("first version");
    // The race's file is looked up first, then pushed out of the budget by the others.
    std::fs::metadata(d.join("f")).expect("stat");
    for i in 0..files {
        std::fs::metadata(m.at("many").join(format!("f{i}"))).expect("stat");
    }
    let (opens, enoent, partial) = reader_replace_race(&d, 3);
    assert!(opens > 100, "too few opens to mean anything: {opens}");
    assert_eq!((enoent, partial), (0, 0), "over {opens} opens");
}
