//! The mount lifecycle through the real binary: background mounts, status, live reload,
//! signals, crash recovery and the mount-helper convention.

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_redirfs");

fn can_mount() -> bool {
    if !Path::new("/dev/fuse").exists() {
        tests::skip::skipped(tests::test_name!(), "no /dev/fuse");
        return false;
    }
    true
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

/// A sandbox whose mount is run by the real binary, with its own runtime directory; dropping
/// it unmounts whatever is still mounted.
struct Lab {
    dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("redirfs-lc-")
            .tempdir()
            .expect("tempdir");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mnt");
        std::fs::create_dir(dir.path().join("run")).expect("run");
        Lab { dir, mnt }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("parent");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    fn declare(&self, body: &str) -> PathBuf {
        self.write("decl.yaml", &format!("version: 1\nmountpoint: mnt\n{body}"))
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("REDIRFS_RUNTIME_DIR", self.path("run"))
            .env_remove("XDG_RUNTIME_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run redirfs")
    }

    /// Mounts through the daemon. The file watcher is off so that a test's explicit reload is
    /// the only one; `editing_the_file_reloads_it` turns it on.
    fn mount(&self) {
        self.mount_with(&["--no-watch"]);
    }

    fn mount_with(&self, flags: &[&str]) {
        let file = self.path("decl.yaml").to_string_lossy().into_owned();
        let mut args = vec!["mount"];
        args.extend_from_slice(flags);
        args.push(&file);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            mounted_at(&self.mnt),
            "`redirfs mount` returned before the mount was ready"
        );
    }

    fn status(&self) -> serde_json::Value {
        let out = self.run(&["status", &self.mnt.to_string_lossy(), "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    fn reload(&self) -> Output {
        self.run(&["reload", &self.mnt.to_string_lossy()])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if mounted_at(&self.mnt) {
            let _ = self.run(&["umount", &self.mnt.to_string_lossy()]);
            if mounted_at(&self.mnt) {
                let _ = self.run(&["umount", "--lazy", &self.mnt.to_string_lossy()]);
            }
        }
    }
}

#[test]
fn mount_status_umount() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("vol/f", "x");
    lab.declare("redirections:\n  - path: data\n    target: vol\n    as: transparent\n");
    lab.mount();
    assert_eq!(
        std::fs::read_to_string(lab.mnt.join("data/f")).expect("read"),
        "x"
    );
    let s = lab.status();
    assert_eq!(s["entries"][0]["path"], "data");
    assert_eq!(s["entries"][0]["exists"], true);
    assert!(
        s["entries"][0]["hits"].as_u64().unwrap_or(0) >= 1,
        "hits are counted: {s}"
    );
    assert!(s["pid"].as_u64().is_some());
    let out = lab.run(&["umount", &lab.mnt.to_string_lossy()]);
    assert!(out.status.success());
    assert!(!mounted_at(&lab.mnt));
}

#[test]
fn mount_failures_are_explained() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write(
        "decl.yaml",
        "version: 1\nmountpoint: missing-dir\nredirections: []\n",
    );
    let out = lab.run(&["mount", &lab.path("decl.yaml").to_string_lossy()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist") && err.contains("mkdir -p"),
        "{err}"
    );
    // Mounting twice on one mountpoint.
    lab.declare("redirections: []\n");
    lab.mount();
    let out = lab.run(&["mount", &lab.path("decl.yaml").to_string_lossy()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already mounted"), "{err}");
}

#[test]
fn reload_adds_removes_and_retargets_at_once() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("v1/f", "one");
    lab.write("v2/f", "two");
    lab.declare("redirections:\n  - path: data\n    target: v1\n  - path: gone\n    target: v1\n");
    lab.mount();
    // Prime the kernel's caches so a stale answer would show.
    assert_eq!(
        std::fs::read_link(lab.mnt.join("data")).expect("readlink"),
        lab.path("v1")
    );
    assert!(lab.mnt.join("gone").exists());
    assert!(!lab.mnt.join("added").exists());
    lab.declare("redirections:\n  - path: data\n    target: v2\n  - path: added\n    target: v1\n    as: transparent\n");
    let out = lab.reload();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Visible immediately: the kernel's caches were invalidated, no lifetime to wait out.
    assert_eq!(
        std::fs::read_link(lab.mnt.join("data")).expect("readlink"),
        lab.path("v2")
    );
    assert_eq!(
        std::fs::read_to_string(lab.mnt.join("data/f")).expect("read"),
        "two"
    );
    assert!(!lab.mnt.join("gone").exists());
    assert_eq!(
        std::fs::read_to_string(lab.mnt.join("added/f")).expect("read"),
        "one"
    );
    let s = lab.status();
    assert_eq!(s["last_reload"]["ok"], true);
}

#[test]
fn dry_run_prints_changes_without_applying() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("v1/f", "one");
    lab.write("v2/f", "two");
    lab.declare("redirections:\n  - path: data\n    target: v1\n");
    lab.mount();
    lab.declare("redirections:\n  - path: data\n    target: v2\n    as: transparent\n");
    let out = lab.run(&["reload", "--dry-run", &lab.mnt.to_string_lossy()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("~ data: target"), "{text}");
    let out = lab.run(&["diff", &lab.mnt.to_string_lossy()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("~ data: target"));
}

#[test]
fn broken_declaration_leaves_the_old_mapping_serving() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("v1/f", "one");
    lab.declare("redirections:\n  - path: data\n    target: v1\n");
    lab.mount();
    lab.declare("redirections:\n  - path: /data\n    target: v1\n    as: sideways\n");
    let out = lab.reload();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("decl.yaml:4:11: error: path `/data` is absolute"),
        "{err}"
    );
    assert!(
        err.contains("unknown `as` value `sideways`"),
        "all errors at once: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(lab.mnt.join("data/f")).expect("old mapping"),
        "one"
    );
    let s = lab.status();
    assert_eq!(s["last_reload"]["ok"], false);
    assert!(s["last_reload"]["errors"][0]
        .as_str()
        .unwrap_or("")
        .contains("is absolute"));
}

#[test]
fn editing_the_file_reloads_it() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("v1/f", "one");
    lab.write("v2/f", "two");
    lab.declare("redirections:\n  - path: data\n    target: v1\n");
    lab.mount_with(&[]);
    // An editor's save: write a temporary file, rename it over the declaration.
    lab.write(
        "decl.yaml.tmp",
        "version: 1\nmountpoint: mnt\nredirections:\n  - path: data\n    target: v2\n",
    );
    std::fs::rename(lab.path("decl.yaml.tmp"), lab.path("decl.yaml")).expect("rename");
    wait_for("the watcher to reload", || {
        std::fs::read_link(lab.mnt.join("data")).ok() == Some(lab.path("v2"))
    });
}

#[test]
fn open_file_keeps_reading_across_a_retarget() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let big: String = "0123456789abcdef".repeat(64 * 1024);
    lab.write("v1/f", &big);
    lab.write("v2/f", "other");
    lab.declare("redirections:\n  - path: data\n    target: v1\n    as: transparent\n");
    lab.mount();
    use std::io::Read;
    let mut f = std::fs::File::open(lab.mnt.join("data/f")).expect("open");
    let mut first = vec![0u8; 1000];
    f.read_exact(&mut first).expect("read");
    lab.declare("redirections:\n  - path: data\n    target: v2\n    as: transparent\n");
    assert!(lab.reload().status.success());
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).expect("read after reload");
    first.extend_from_slice(&rest);
    assert!(
        first == big.as_bytes(),
        "the open file changed under the reader"
    );
    assert_eq!(
        std::fs::read_to_string(lab.mnt.join("data/f")).expect("new"),
        "other"
    );
}

fn spawn_foreground(lab: &Lab) -> Child {
    let mut child = lab
        .cmd()
        .args([
            "mount",
            "--foreground",
            &lab.path("decl.yaml").to_string_lossy(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    use std::io::BufRead;
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "redirfs: ready");
    child
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    tests::poll::wait_for(Duration::from_secs(15), "the daemon to exit", || {
        child.try_wait().expect("wait")
    })
}

#[test]
fn sigterm_unmounts_cleanly() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("vol/f", "x");
    lab.declare("redirections:\n  - path: data\n    target: vol\n    as: transparent\n");
    let mut child = spawn_foreground(&lab);
    assert!(mounted_at(&lab.mnt));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit status {status}");
    assert!(!mounted_at(&lab.mnt));
}

#[test]
fn sigkill_then_mount_again_recovers_the_mountpoint() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("vol/f", "x");
    lab.declare("redirections:\n  - path: data\n    target: vol\n    as: transparent\n");
    let mut child = spawn_foreground(&lab);
    child.kill().expect("SIGKILL");
    let _ = wait_exit(&mut child);
    let err = std::fs::metadata(&lab.mnt).expect_err("the mountpoint is stale");
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN));
    lab.mount();
    assert_eq!(
        std::fs::read_to_string(lab.mnt.join("data/f")).expect("read"),
        "x"
    );
}

#[test]
fn mount_helper_convention_and_mount_all() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    lab.write("vol/f", "x");
    let decl = lab.declare("redirections:\n  - path: data\n    target: vol\n");
    // What mount.fuse3 runs for `mount -t fuse.redirfs FILE MOUNTPOINT -o rw,noatime`.
    let out = lab
        .cmd()
        .args([
            &decl.to_string_lossy(),
            &lab.mnt.to_string_lossy(),
            "-o",
            "rw,noatime",
        ] as [&str; 4])
        .output()
        .expect("helper");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(mounted_at(&lab.mnt));
    assert!(lab
        .run(&["umount", &lab.mnt.to_string_lossy()])
        .status
        .success());
    // `redirfs mount --all DIR`.
    let etc = lab.path("etc");
    std::fs::create_dir(&etc).expect("etc");
    std::fs::create_dir(lab.path("mnt2")).expect("mnt2");
    std::fs::write(
        etc.join("a.yaml"),
        format!(
            "version: 1\nmountpoint: {}\nredirections: []\n",
            lab.mnt.display()
        ),
    )
    .expect("a");
    std::fs::write(
        etc.join("b.yml"),
        format!(
            "version: 1\nmountpoint: {}\nredirections: []\n",
            lab.path("mnt2").display()
        ),
    )
    .expect("b");
    let out = lab.run(&["mount", "--all", &etc.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(mounted_at(&lab.mnt) && mounted_at(&lab.path("mnt2")));
    let _ = lab.run(&["umount", &lab.path("mnt2").to_string_lossy()]);
    assert!(!mounted_at(&lab.path("mnt2")));
}

#[test]
fn reload_stress_under_concurrent_readers() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let a = "A".repeat(200_000);
    let b = "B".repeat(200_000);
    let stable = "0123456789".repeat(30_000);
    lab.write("va/f", &a);
    lab.write("vb/f", &b);
    lab.write("vs/f", &stable);
    let flip = |t: &str| {
        format!("redirections:\n  - path: flip\n    target: {t}\n    as: transparent\n  - path: link\n    target: {t}\n  - path: stable\n    target: vs\n    as: transparent\n")
    };
    lab.declare(&flip("va"));
    lab.mount();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..4 {
        let stop = stop.clone();
        let mnt = lab.mnt.clone();
        let (a, b, stable) = (a.clone(), b.clone(), stable.clone());
        readers.push(std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut errors = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = ["flip/f", "link/f", "stable/f"][(reads as usize + i) % 3];
                match std::fs::read_to_string(mnt.join(name)) {
                    Ok(s) if name == "stable/f" && s == stable => {}
                    Ok(s) if name != "stable/f" && (s == a || s == b) => {}
                    Ok(s) => errors.push(format!("{name}: wrong bytes ({} bytes)", s.len())),
                    Err(e) => errors.push(format!("{name}: {e}")),
                }
                reads += 1;
            }
            (reads, errors)
        }));
    }
    for i in 0..200 {
        lab.declare(&flip(if i % 2 == 0 { "vb" } else { "va" }));
        let out = lab.reload();
        assert!(
            out.status.success(),
            "reload {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        let (reads, errors) = r.join().expect("reader");
        assert!(
            errors.is_empty(),
            "{} errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        total += reads;
    }
    assert!(total > 0);
    assert_eq!(
        lab.status()["reloads"].as_u64().map(|n| n >= 200),
        Some(true)
    );
}

#[test]
fn passthrough_io_does_not_go_through_the_daemon() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(lab.path("vol")).expect("vol");
    std::fs::write(lab.path("vol/big"), &data).expect("write");
    lab.declare("redirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    lab.mount();
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lab.mnt.join("t/big"))
        .expect("open");
    let s = lab.status();
    if s["passthrough"] != true {
        tests::skip!("the kernel did not accept passthrough here");
    }
    // Writes: the bytes go from the kernel to the target; the daemon serves none of them.
    f.write_all_at(&data[..1 << 20], 0).expect("write");
    let s = lab.status();
    assert_eq!(
        s["entries"][0]["bytes_written"], 0,
        "the daemon served writes: {s}"
    );
    // Reads: with the daemon stopped, only the kernel can serve them. A watchdog resumes the
    // daemon after a deadline, so a read that reaches the daemon fails the test, not hangs it.
    let pid: u32 = s["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .expect("pid");
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let timed_out = done_rx.recv_timeout(Duration::from_secs(10)).is_err();
        let _ = fs_core::sys::send_signal(pid, libc::SIGCONT);
        timed_out
    });
    fs_core::sys::send_signal(pid, libc::SIGSTOP).expect("SIGSTOP");
    let mut got = vec![0u8; data.len()];
    let read = f.read_exact_at(&mut got, 0);
    let _ = done_tx.send(());
    let timed_out = watchdog.join().expect("watchdog");
    assert!(
        !timed_out,
        "a read waited for the stopped daemon: not passthrough"
    );
    read.expect("read with the daemon stopped");
    assert!(got == data);
}

#[test]
fn without_passthrough_the_daemon_serves_and_counts_io() {
    if !can_mount() {
        return;
    }
    let lab = Lab::new();
    std::fs::create_dir_all(lab.path("vol")).expect("vol");
    std::fs::write(lab.path("vol/f"), vec![7u8; 100_000]).expect("write");
    lab.declare("redirections:\n  - path: t\n    target: vol\n    as: transparent\n");
    let out = lab.run(&[
        "mount",
        "--no-passthrough",
        &lab.path("decl.yaml").to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(lab.mnt.join("t/f")).expect("read").len(),
        100_000
    );
    std::fs::write(lab.mnt.join("t/g"), vec![1u8; 50_000]).expect("write");
    let s = lab.status();
    assert_eq!(s["passthrough"], false);
    let e = &s["entries"][0];
    assert!(e["bytes_read"].as_u64().unwrap_or(0) >= 100_000, "{s}");
    assert_eq!(e["bytes_written"], 50_000, "{s}");
}
