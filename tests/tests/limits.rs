//! No single user can exhaust the daemon: open handles are bounded per user (EMFILE past the
//! limit, while others, root included, go on working), and so is the memory of the listings a
//! user's open directories hold (ENOMEM past it).

// Mounts through the Linux harness (tests/src/lib.rs).
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use tests::{require_fuse, Sandbox};

const UID: u32 = 4321;

/// The tests measure this process's memory and descriptors (the daemon serves in it): one at a
/// time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// The hard limit on open files, the most the daemon (this process) can raise itself to.
fn hard_nofile() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .expect("Max open files")
}

/// A python3 every user may run.
fn python() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Starts `script` as the user with `arg`, and reads the first line it prints (it then holds
/// what it took until its stdin closes).
fn hold_as_user(
    python: &str,
    script: &str,
    arg: &std::path::Path,
) -> (std::process::Child, String) {
    let mut user = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            python,
            "-c",
            script,
        ])
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(user.stdout.take().expect("stdout"));
    std::io::BufRead::read_line(&mut out, &mut line).expect("report");
    (user, line)
}

#[test]
fn one_user_cannot_take_every_descriptor() {
    require_fuse!();
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if fs_core::sys::geteuid() != 0 || tests::which("setpriv").is_none() {
        tests::skip!("needs root and setpriv");
    }
    let Some(python) = python() else {
        tests::skip!("no python3");
    };
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    sb.file("base/f", "shared file");
    let m = sb.mount("base: base\noptions:\n  allow_other: true\n");
    // The user opens one file until the mount refuses, holds everything, and says how far it
    // got; then waits for a line on stdin before letting go.
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
    let (mut user, line) = hold_as_user(python, script, &m.at("f"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"stopped"), "{line}");
    assert_eq!(words.get(2), Some(&"EMFILE"), "{line}");
    let got: usize = words[1].parse().expect("count");
    let limit = hard_nofile();
    assert!(
        got < limit / 4,
        "one user held {got} of the daemon's {limit} descriptors"
    );
    // Meanwhile root (and the daemon) still open, create and list through the mount.
    let held: Vec<_> = (0..64)
        .map(|_| std::fs::File::open(m.at("f")).expect("root opens"))
        .collect();
    std::fs::write(m.at("new"), "x").expect("root creates");
    assert!(std::fs::read_dir(m.mnt()).expect("root lists").count() >= 2);
    drop(held);
    drop(user.stdin.take());
    assert!(user.wait().expect("wait").success());
    // Given back: the same user can open again.
    let again = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            "cat",
        ])
        .arg(m.at("f"))
        .output()
        .expect("cat");
    assert_eq!(String::from_utf8_lossy(&again.stdout), "shared file");
}

/// Holds 200 handles on a 20,000-entry directory, changing it between opens so no listing can
/// be shared, as uid 4321: each listing is about 1.5 MiB, so unbounded the daemon would grow by
/// 300 MiB.
const HOLD_LISTINGS: &str = r#"
import errno, os, sys
d = sys.argv[1]
held, refused = [], 0
for i in range(200):
    open(os.path.join(d, "change-%d" % i), "w").close()
    it = os.scandir(d)
    try:
        next(it)
        held.append(it)
    except OSError as e:
        it.close()
        if e.errno != errno.ENOMEM:
            raise
        refused += 1
print("held", len(held), "refused", refused, flush=True)
sys.stdin.readline()
"#;

#[test]
fn one_user_cannot_grow_the_daemon_with_open_listings() {
    require_fuse!();
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if fs_core::sys::geteuid() != 0 || tests::which("setpriv").is_none() {
        tests::skip!("needs root and setpriv");
    }
    let Some(python) = python() else {
        tests::skip!("no python3");
    };
    let sb = Sandbox::new();
    std::fs::set_permissions(sb.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let big = sb.dir("base/big");
    for i in 0..20_000 {
        std::fs::File::create(big.join(format!("entry-with-a-longish-name-{i:06}")))
            .expect("create");
    }
    std::os::unix::fs::chown(&big, Some(UID), Some(UID)).expect("chown");
    let m = sb.mount("base: base\noptions:\n  allow_other: true\n");
    let before = rss_kib();
    let (mut user, line) = hold_as_user(python, HOLD_LISTINGS, &m.at("big"));
    let grown = rss_kib().saturating_sub(before);
    eprintln!("open listings: {} -> daemon grew {grown} KiB", line.trim());
    assert!(line.starts_with("held"), "{line}");
    assert!(
        grown < 150 * 1024,
        "one user's open listings grew the daemon by {grown} KiB ({line})"
    );
    assert!(
        !line.ends_with("refused 0\n"),
        "nothing was refused: {line}"
    );
    // Root still lists it.
    assert!(std::fs::read_dir(m.at("big")).expect("root lists").count() >= 20_000);
    drop(user.stdin.take());
    assert!(user.wait().expect("wait").success());
}
