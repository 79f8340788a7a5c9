//! Test harness: a private sandbox per test, a real FUSE mount served in this process, and an
//! unmount that happens even when the test fails.

#![cfg(target_os = "linux")]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fs_core::overlay::Overlay;
use fuse_backend::Tuning;

pub mod poll;
pub mod skip;

/// Why a test cannot run here, or `None` when it can.
pub fn skip_reason() -> Option<&'static str> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse");
    }
    if fs_core::sys::geteuid() != 0 && which("fusermount3").is_none() {
        return Some("not root and no fusermount3");
    }
    None
}

/// Returns early from a test, saying why, when mounting is impossible here.
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Some(why) = $crate::skip_reason() {
            $crate::skip!("{why}");
        }
    };
}

/// The path of a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A private directory tree for one test: `root/mnt` is the mountpoint; everything else is
/// the test's to lay out.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A new sandbox with an empty `mnt`.
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("redirfs-test-")
            .tempdir()
            .expect("create a temporary directory");
        std::fs::create_dir(dir.path().join("mnt")).expect("create mnt");
        Sandbox { dir }
    }

    /// The sandbox's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the sandbox.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates a directory (and its parents).
    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("create dir");
        p
    }

    /// Writes a file (creating its parents).
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, content).expect("write file");
        p
    }

    /// Writes `decl.yaml` with `version: 1` and `mountpoint: mnt` prepended, and mounts it.
    pub fn mount(self, body: &str) -> Mount {
        self.mount_with(body, Tuning::default())
    }

    /// As [`Sandbox::mount`], with chosen tuning (e.g. passthrough off).
    pub fn mount_with(self, body: &str, tuning: Tuning) -> Mount {
        let text = format!("version: 1\nmountpoint: mnt\n{body}");
        let file = self.path("decl.yaml");
        std::fs::write(&file, &text).expect("write declaration");
        let decl = match fs_core::load_file(&file) {
            Ok(d) => d,
            Err(e) => panic!("test declaration is invalid:\n{e}\n{text}"),
        };
        let mut mounted =
            fuse_backend::mount(&decl, tuning).unwrap_or_else(|e| panic!("mount failed: {e}"));
        let mnt = mounted.mountpoint().to_path_buf();
        let overlay = mounted.overlay().clone();
        let unmounter = mounted.unmounter();
        let server = std::thread::spawn(move || mounted.run());
        let m = Mount {
            sandbox: self,
            mnt,
            overlay,
            unmounter: Some(unmounter),
            server: Some(server),
        };
        m.wait_until_mounted();
        m
    }
}

/// A live mount; dropping it unmounts and waits for the server to finish.
pub struct Mount {
    sandbox: Sandbox,
    mnt: PathBuf,
    overlay: Arc<Overlay>,
    unmounter: Option<fuse_backend::Unmounter>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("mnt", &self.mnt)
            .finish_non_exhaustive()
    }
}

fn mounted_at(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            let want = p.to_string_lossy().replace(' ', "\\040");
            t.lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|m| m == want)
        })
        .unwrap_or(false)
}

impl Mount {
    fn wait_until_mounted(&self) {
        poll::wait_until(Duration::from_secs(10), "the mount to appear", || {
            if self.server.as_ref().is_some_and(|s| s.is_finished()) {
                panic!("the server ended before the mount appeared");
            }
            mounted_at(&self.mnt)
        });
    }

    /// The mountpoint.
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// A path inside the mount.
    pub fn at(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.mnt.clone()
        } else {
            self.mnt.join(rel)
        }
    }

    /// A path in the sandbox (outside the mount).
    pub fn real(&self, rel: &str) -> PathBuf {
        self.sandbox.path(rel)
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The overlay being served.
    pub fn overlay(&self) -> &Arc<Overlay> {
        &self.overlay
    }

    /// Runs `sh -c script` in `dir` (a path in the mount, relative), returning its output; panics
    /// with both streams when it fails.
    pub fn sh(&self, dir: &str, script: &str) -> String {
        let out = self.sh_output(dir, script);
        assert!(
            out.status.success(),
            "`{script}` failed in {dir:?}: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `sh -c script` in `dir` and returns whatever happened.
    pub fn sh_output(&self, dir: &str, script: &str) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(self.at(dir))
            .env("HOME", self.sandbox.root())
            .env("LC_ALL", "C")
            .output()
            .expect("run sh")
    }

    /// Unmounts now (also done on drop).
    pub fn unmount(&mut self) {
        let Some(mut u) = self.unmounter.take() else {
            return;
        };
        if let Err(e) = u.unmount() {
            eprintln!(
                "unmount of {} failed ({e}); detaching lazily",
                self.mnt.display()
            );
            let _ = fuse_backend::unmount(&self.mnt, true);
        }
        if let Some(server) = self.server.take() {
            // No panic here: this runs from Drop, perhaps while a failed test unwinds.
            let stopped = poll::try_wait_for(Duration::from_secs(10), || {
                server.is_finished().then_some(())
            });
            if stopped.is_some() {
                if let Ok(Err(e)) = server.join() {
                    eprintln!("server ended with {e}");
                }
            } else {
                eprintln!("server of {} did not stop within 10 s", self.mnt.display());
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
        if mounted_at(&self.mnt) {
            let _ = fuse_backend::unmount(&self.mnt, true);
        }
    }
}

/// The errno of an I/O result, for parity checks.
pub fn errno<T>(r: &std::io::Result<T>) -> Option<i32> {
    r.as_ref().err().and_then(std::io::Error::raw_os_error)
}

/// An OsStr from a str.
pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}
