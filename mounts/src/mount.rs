//! `redirfs mount` and `redirfs umount` (Linux, macOS).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use fs_core::decl::{self, LoadError, Mountpoint};
use fuse_backend::Tuning;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::{EXIT_INVALID, EXIT_USAGE};

/// What the daemon prints on its stdout once the mount is up.
const READY: &str = "redirfs: ready";

/// Where a background daemon logs.
fn log_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("redirfs");
    }
    if fs_core::sys::geteuid() == 0 {
        PathBuf::from("/run/redirfs")
    } else {
        std::env::temp_dir().join(format!("redirfs-{}", fs_core::sys::geteuid()))
    }
}

fn log_file_for(mp: &Path) -> PathBuf {
    let name: String = mp
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    log_dir().join(format!("{}.log", name.trim_start_matches('_')))
}

/// `redirfs mount FILE`: validates, then either serves here (`--foreground`) or starts a daemon
/// and returns once the mount is ready.
pub fn mount(file: &Path, foreground: bool, no_passthrough: bool) -> ExitCode {
    let d = match decl::load_file(file) {
        Ok(d) => d,
        Err(LoadError::Invalid(inv)) => {
            eprintln!("{inv}");
            return ExitCode::from(EXIT_INVALID);
        }
        Err(e) => {
            eprintln!("redirfs: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for diag in d.warnings() {
        eprintln!("{diag}");
    }
    if foreground {
        return serve(&d, no_passthrough);
    }
    let mp = match &d.mountpoint {
        Mountpoint::Dir(p) => p.clone(),
        Mountpoint::Drive(c) => {
            eprintln!("redirfs: the mountpoint `{c}:` is a Windows drive letter: on this system use a directory");
            return ExitCode::from(1);
        }
    };
    let log_path = log_file_for(&mp);
    let log = std::fs::create_dir_all(log_dir())
        .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&log_path));
    let stderr = match log {
        Ok(f) => Stdio::from(f),
        Err(e) => {
            eprintln!("redirfs: cannot open the log {}: {e}; the daemon will not log", log_path.display());
            Stdio::null()
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("redirfs: cannot find this program to start the daemon: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("mount").arg("--foreground").arg(&d.file);
    if no_passthrough {
        cmd.arg("--no-passthrough");
    }
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env("REDIRFS_DAEMON", "1")
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redirfs: cannot start the daemon: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(out) = child.stdout.take() else {
        eprintln!("redirfs: cannot talk to the daemon");
        return ExitCode::from(1);
    };
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == READY => {
                println!("redirfs: mounted {} on {} (pid {}, log {})", d.file.display(), mp.display(), child.id(), log_path.display());
                return ExitCode::SUCCESS;
            }
            Some(Ok(line)) => eprintln!("{line}"),
            Some(Err(_)) | None => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                eprintln!("redirfs: the daemon exited before the mount was ready ({status}); see {}", log_path.display());
                return ExitCode::from(1);
            }
        }
    }
}

/// Mounts and serves in this process until unmounted or signalled.
fn serve(d: &fs_core::Declaration, no_passthrough: bool) -> ExitCode {
    let tuning = Tuning {
        passthrough: !no_passthrough,
        ..Tuning::default()
    };
    let mut mounted = match fuse_backend::mount(d, tuning) {
        Ok(m) => m,
        Err(e) => {
            // The parent (or the user) reads this line.
            println!("redirfs: {e}");
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let mp = mounted.mountpoint().to_path_buf();
    let mut unmounter = mounted.unmounter();
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let mp = mp.clone();
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    log::info!("signal {sig}: unmounting {}", mp.display());
                    if let Err(e) = unmounter.unmount() {
                        log::warn!("unmount of {} failed ({e}); detaching lazily", mp.display());
                        let _ = fuse_backend::unmount(&mp, true);
                    }
                }
            });
        }
        Err(e) => log::warn!("cannot watch for SIGINT/SIGTERM: {e}"),
    }
    log::info!("mounted {} on {}", d.file.display(), mp.display());
    println!("{READY}");
    let _ = std::io::stdout().flush();
    match mounted.run() {
        Ok(()) => {
            log::info!("unmounted {}", mp.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("the session on {} ended: {e}", mp.display());
            ExitCode::from(1)
        }
    }
}

/// `redirfs umount MOUNTPOINT`.
pub fn umount(mountpoint: &Path, lazy: bool) -> ExitCode {
    match fuse_backend::unmount(mountpoint, lazy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) => ": it is busy (a program has a file open or a shell is inside); close it, or use --lazy",
                Some(libc::EINVAL) => ": nothing is mounted there",
                Some(libc::EPERM) => ": not permitted (unmount as the user who mounted, or as root)",
                _ => "",
            };
            eprintln!("redirfs: cannot unmount {}: {e}{hint}", mountpoint.display());
            ExitCode::from(1)
        }
    }
}
