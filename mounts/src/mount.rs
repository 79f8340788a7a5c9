//! `redirfs mount` and `redirfs umount` (Linux, macOS).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use fs_core::decl::Mountpoint;
use fs_core::NameCase;
use fuse_backend::Tuning;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::daemon::Daemon;

use crate::EXIT_USAGE;

/// How a FUSE mount compares names: byte for byte, as fuse-backend's table does.
const NAMES: NameCase = NameCase::Sensitive;

/// What the daemon prints on its stdout once the mount is up.
const READY: &str = "redirfs: ready";

/// `redirfs mount FILE`: validates, then either serves here (`--foreground`) or starts a daemon
/// and returns once the mount is ready.
/// How a daemon serves.
#[derive(Debug, Clone, Default)]
pub struct Serve {
    /// Kernel mount flags from `-o` (names in [`fuse_backend::KERNEL_FLAGS`]).
    pub kernel_flags: Vec<String>,
    /// Serve file I/O from the daemon even where the kernel offers passthrough.
    pub no_passthrough: bool,
    /// Reload only on SIGHUP or `redirfs reload`.
    pub no_watch: bool,
    /// Mount read-only whatever the declaration says (`-o ro`).
    pub read_only: bool,
    /// Let other users in whatever the declaration says (`-o allow_other`).
    pub allow_other: bool,
    /// Print nothing on success (a mount helper).
    pub quiet: bool,
}

pub fn mount(file: &Path, foreground: bool, how: Serve) -> ExitCode {
    let mut d = match crate::check::load(file, NAMES) {
        Ok(d) => d,
        Err(code) => return code,
    };
    d.options.read_only |= how.read_only;
    d.options.allow_other |= how.allow_other;
    if foreground {
        return serve(&d, how);
    }
    let mp = match &d.mountpoint {
        Mountpoint::Dir(p) => p.clone(),
        Mountpoint::Drive(c) => {
            eprintln!("redirfs: the mountpoint `{c}:` is a Windows drive letter: on this system use a directory");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = crate::runtime::ensure_dir().and_then(|_| crate::runtime::ensure_log_dir()) {
        eprintln!("redirfs: {e}");
        return ExitCode::from(1);
    }
    let log_path = crate::runtime::log(&mp);
    let stderr = match crate::runtime::open_private(&log_path) {
        Ok(f) => Stdio::from(f),
        Err(e) => {
            eprintln!("redirfs: cannot open the log: {e}");
            return ExitCode::from(1);
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
    if how.no_passthrough {
        cmd.arg("--no-passthrough");
    }
    if how.no_watch {
        cmd.arg("--no-watch");
    }
    if how.read_only {
        cmd.arg("--read-only");
    }
    if how.allow_other {
        cmd.arg("--allow-other");
    }
    for f in &how.kernel_flags {
        cmd.arg(format!("--kernel-flag={f}"));
    }
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env("REDIRFS_DAEMON", "1")
        .env("REDIRFS_LOG_FILE", &log_path)
        .process_group(0);
    if std::env::var_os("RUST_LOG").is_none() {
        if let Some(f) = crate::logging::filter() {
            cmd.env("RUST_LOG", f);
        }
    }
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
                if how.quiet {
                    return ExitCode::SUCCESS;
                }
                println!(
                    "redirfs: mounted {} on {} (pid {}, log {})",
                    d.file.display(),
                    mp.display(),
                    child.id(),
                    log_path.display()
                );
                return ExitCode::SUCCESS;
            }
            Some(Ok(line)) => eprintln!("{line}"),
            Some(Err(_)) | None => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                eprintln!(
                    "redirfs: the daemon exited before the mount was ready ({status}); see {}",
                    log_path.display()
                );
                return ExitCode::from(1);
            }
        }
    }
}

/// Mounts and serves in this process until unmounted or signalled.
fn serve(d: &fs_core::Declaration, how: Serve) -> ExitCode {
    let tuning = Tuning {
        passthrough: !how.no_passthrough,
        ..Tuning::default()
    };
    let mut mounted = match fuse_backend::mount_with(d, tuning, &how.kernel_flags) {
        Ok(m) => m,
        Err(e) => {
            // The parent (or the user) reads this line.
            println!("redirfs: {e}");
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let mp = mounted.mountpoint().to_path_buf();
    let daemon = Daemon::new(d, &mounted);
    let socket = match daemon.serve_control() {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("no control socket ({e}): `redirfs status` and `redirfs reload` will not reach this mount; SIGHUP still reloads");
            None
        }
    };
    if !how.no_watch {
        daemon.watch();
    }
    let mut unmounter = mounted.unmounter();
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            let mp = mp.clone();
            let daemon = daemon.clone();
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGHUP {
                        daemon.reload(false, "SIGHUP");
                        continue;
                    }
                    log::info!("signal {sig}: unmounting {}", mp.display());
                    if let Err(e) = unmounter.unmount() {
                        log::warn!("unmount of {} failed ({e}); detaching lazily", mp.display());
                        let _ = fuse_backend::unmount(&mp, true);
                    }
                    break;
                }
            });
        }
        Err(e) => log::warn!("cannot watch for signals: {e}"),
    }
    log::info!("mounted {} on {}", d.file.display(), mp.display());
    println!("{READY}");
    let _ = std::io::stdout().flush();
    crate::daemon::notify_ready();
    let result = mounted.run();
    if let Some(s) = socket {
        let _ = std::fs::remove_file(s);
    }
    match result {
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
    // As fusermount -u: only our own kind. umount(8) is there for the others.
    let abs = crate::control::mountpoint_arg(mountpoint);
    match crate::mountinfo::at(&abs) {
        None => {
            eprintln!(
                "redirfs: cannot unmount {}: nothing is mounted there",
                mountpoint.display()
            );
            return ExitCode::from(1);
        }
        Some(m) if !m.is_redirfs() => {
            eprintln!(
                "redirfs: refusing to unmount {}: it is a {} mount, not redirfs (use umount(8) for other filesystems)",
                mountpoint.display(),
                m.fstype
            );
            return ExitCode::from(1);
        }
        Some(_) => {}
    }
    match fuse_backend::unmount(&abs, lazy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) => ": it is busy (a program has a file open or a shell is inside); close it, or use --lazy",
                Some(libc::EINVAL) => ": nothing is mounted there",
                Some(libc::EPERM) => ": not permitted (unmount as the user who mounted, or as root)",
                _ => "",
            };
            eprintln!(
                "redirfs: cannot unmount {}: {e}{hint}",
                mountpoint.display()
            );
            ExitCode::from(1)
        }
    }
}

/// `redirfs umount --all`: every mount `redirfs status` lists for this user, dead ones included.
pub fn umount_all(lazy: bool) -> ExitCode {
    let mps = crate::control::mountpoints();
    if mps.is_empty() {
        println!("no redirfs mounts running (for this user)");
        return ExitCode::SUCCESS;
    }
    let mut failed = 0;
    for mp in &mps {
        // A dead mount can only be detached.
        let lazy = lazy || crate::mountinfo::is_dead(mp);
        if umount(mp, lazy) != ExitCode::SUCCESS {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!(
            "redirfs: {failed} of {} mounts were not unmounted",
            mps.len()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `redirfs mount --all DIR`: every declaration in a folder, in name order.
pub fn mount_all(dir: &Path, how: Serve) -> ExitCode {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            eprintln!("redirfs: cannot read {}: {e}", dir.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    files.sort();
    if files.is_empty() {
        eprintln!(
            "redirfs: no declarations (*.yaml, *.yml) in {}",
            dir.display()
        );
        return ExitCode::from(1);
    }
    let mut failed = 0;
    for f in &files {
        if mount(f, false, how.clone()) != ExitCode::SUCCESS {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!(
            "redirfs: {failed} of {} declarations did not mount",
            files.len()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The FUSE mount-helper convention: `mount -t fuse.redirfs FILE MOUNTPOINT -o OPTS` (and fstab)
/// runs `redirfs FILE MOUNTPOINT -o OPTS` through mount.fuse3, or this program as
/// `mount.fuse.redirfs`. `None` when the arguments are an ordinary command line.
pub fn helper_mode() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv0 = args.first().map(|a| {
        Path::new(a)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    })?;
    let positional: Vec<&std::ffi::OsString> = args
        .iter()
        .skip(1)
        .scan(false, |after_o, a| {
            let skip = *after_o;
            *after_o = a == "-o";
            Some((skip, a))
        })
        .filter(|(skip, a)| !*skip && !a.to_string_lossy().starts_with('-'))
        .map(|(_, a)| a)
        .collect();
    let named_helper = argv0.starts_with("mount.");
    let looks_like_helper = positional.len() == 2 && Path::new(positional[0]).is_file();
    if !named_helper && !looks_like_helper {
        return None;
    }
    if positional.len() != 2 {
        eprintln!("usage: {argv0} DECLARATION MOUNTPOINT [-o OPTIONS]");
        return Some(ExitCode::from(EXIT_USAGE));
    }
    let file = Path::new(positional[0]);
    let mp = Path::new(positional[1]);
    let opts: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "-o")
        .flat_map(|w| {
            w[1].to_string_lossy()
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let d = match crate::check::load(file, NAMES) {
        Ok(d) => d,
        Err(code) => return Some(code),
    };
    let same = match &d.mountpoint {
        Mountpoint::Dir(p) => std::fs::canonicalize(p).ok() == std::fs::canonicalize(mp).ok(),
        Mountpoint::Drive(_) => false,
    };
    if !same {
        eprintln!(
            "redirfs: {} declares mountpoint {}, but the mount command names {}: make them agree",
            file.display(),
            d.mountpoint,
            mp.display()
        );
        return Some(ExitCode::from(EXIT_USAGE));
    }
    let mut how = Serve {
        quiet: true,
        ..Serve::default()
    };
    let mut refused = Vec::new();
    for o in &opts {
        match o.as_str() {
            "ro" => how.read_only = true,
            "rw" if d.options.read_only => {
                eprintln!(
                    "redirfs: `-o rw` given, but {} declares `read_only: true`: make them agree",
                    file.display()
                );
                return Some(ExitCode::from(EXIT_USAGE));
            }
            "allow_other" => how.allow_other = true,
            "no_passthrough" => how.no_passthrough = true,
            "no_watch" => how.no_watch = true,
            o if fuse_backend::KERNEL_FLAGS.contains(&o) => how.kernel_flags.push(o.to_string()),
            // Always in effect on a redirfs mount.
            "rw" | "nodev" | "default_permissions" | "relatime" => {}
            // mount.fuse3 adds these for root on every fstab line; a redirfs mount stays nodev
            // and nosuid (device nodes and set-user-ID files of the trees are not honoured), as
            // docs/lifecycle.md says.
            "dev" | "suid" if fs_core::sys::geteuid() == 0 => {
                log::info!("`{o}` from the mount command: a redirfs mount stays nodev,nosuid");
            }
            // A user's mount (through fusermount3) is always nosuid.
            "nosuid" if fs_core::sys::geteuid() != 0 => {}
            // For mount(8), fstab and systemd, not for the filesystem.
            "defaults" | "auto" | "noauto" | "nofail" | "_netdev" | "user" | "users" | "nouser"
            | "owner" | "group" => {}
            o if o.starts_with("x-") || o.starts_with("comment=") => {}
            "" => {}
            o => refused.push(o.to_string()),
        }
    }
    if !refused.is_empty() {
        eprintln!(
            "redirfs: mount option{} `{}` not supported by redirfs: remove {} from the mount command or fstab \
             (supported: ro, rw, allow_other, {}, no_passthrough, no_watch; and defaults, nofail, _netdev, \
             noauto, user, x-*, nodev, relatime, default_permissions, which need nothing from redirfs)",
            if refused.len() == 1 { "" } else { "s" },
            refused.join("`, `"),
            if refused.len() == 1 { "it" } else { "them" },
            fuse_backend::KERNEL_FLAGS.join(", ")
        );
        return Some(ExitCode::from(EXIT_USAGE));
    }
    Some(mount(file, false, how))
}
