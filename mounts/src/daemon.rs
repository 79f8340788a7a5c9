//! A serving mount's life: reloads (file watch, SIGHUP, `redirfs reload`), the control socket,
//! status, and clean shutdown on SIGINT/SIGTERM.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs_core::decl::{self, Declaration, Entry, LoadError, Mountpoint};
use fs_core::diff::{diff, Change};
use fs_core::overlay::Overlay;
use fs_core::table::Invalidate;
use fuse_backend::TableMaker;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::runtime;

/// The outcome of one reload.
#[derive(Debug, Clone)]
pub struct Reload {
    /// When it happened.
    pub at: SystemTime,
    /// Whether the new declaration was applied (or, for a dry run, would be).
    pub ok: bool,
    /// The changes, one line each.
    pub changes: Vec<String>,
    /// The errors, with FILE:LINE:COLUMN.
    pub errors: Vec<String>,
    /// What asked for it.
    pub cause: &'static str,
}

struct State {
    entries: Vec<Entry>,
    base: Option<PathBuf>,
    text: Vec<u8>,
    last: Option<Reload>,
    reloads: u64,
}

/// A mount being served.
pub struct Daemon {
    file: PathBuf,
    mountpoint: PathBuf,
    started: SystemTime,
    overlay: Arc<Overlay>,
    invalidator: Box<dyn Invalidate>,
    maker: TableMaker,
    passthrough: Arc<std::sync::atomic::AtomicBool>,
    state: Mutex<State>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Daemon {
    /// A daemon for a mount of `decl`.
    pub fn new(decl: &Declaration, mounted: &fuse_backend::Mounted) -> Arc<Daemon> {
        Arc::new(Daemon {
            file: decl.file.clone(),
            mountpoint: mounted.mountpoint().to_path_buf(),
            started: SystemTime::now(),
            overlay: mounted.overlay().clone(),
            invalidator: Box::new(mounted.invalidator()),
            maker: mounted.table_maker(),
            passthrough: mounted.passthrough(),
            state: Mutex::new(State {
                entries: decl.entries.clone(),
                base: decl.base.clone(),
                text: std::fs::read(&decl.file).unwrap_or_default(),
                last: None,
                reloads: 0,
            }),
        })
    }

    /// Reloads the declaration file: validate in full, then swap and invalidate the kernel's
    /// caches of what changed; an invalid file leaves the running mapping as it is.
    pub fn reload(&self, dry_run: bool, cause: &'static str) -> Reload {
        let mut state = self.state.lock();
        let fail = |errors: Vec<String>| Reload {
            at: SystemTime::now(),
            ok: false,
            changes: Vec::new(),
            errors,
            cause,
        };
        let outcome = match decl::load_file(&self.file) {
            Err(LoadError::Invalid(inv)) => fail(inv.diagnostics.iter().map(ToString::to_string).collect()),
            Err(e) => fail(vec![e.to_string()]),
            Ok(d) if d.mountpoint != Mountpoint::Dir(self.mountpoint.clone()) => fail(vec![format!(
                "{}: the mountpoint changed from {} to {}: a running mount cannot move; unmount and mount again",
                self.file.display(),
                self.mountpoint.display(),
                d.mountpoint
            )]),
            Ok(d) => {
                let changes = diff(&state.entries, state.base.as_ref(), &d.entries, d.base.as_ref());
                let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
                if !dry_run {
                    let mut table = self.maker.table(&d);
                    table.adopt_counters(&self.overlay.table().load());
                    self.overlay.install(table);
                    self.invalidate(&changes);
                    state.entries = d.entries.clone();
                    state.base = d.base.clone();
                    state.text = std::fs::read(&self.file).unwrap_or_default();
                }
                Reload {
                    at: SystemTime::now(),
                    ok: true,
                    changes: lines,
                    errors: Vec::new(),
                    cause,
                }
            }
        };
        if !dry_run {
            state.reloads += 1;
            state.last = Some(outcome.clone());
            if outcome.ok {
                log::info!(
                    "reloaded {} ({cause}): {}",
                    self.file.display(),
                    if outcome.changes.is_empty() {
                        "no changes".to_string()
                    } else {
                        outcome.changes.join("; ")
                    }
                );
            } else {
                log::error!(
                    "reload of {} ({cause}) refused; the running mapping keeps serving:\n{}",
                    self.file.display(),
                    outcome.errors.join("\n")
                );
            }
        }
        outcome
    }

    /// Drops the backend's cached views along each changed path, so `ls`, `stat` and
    /// `readlink` see the new mapping at once rather than when a cache lifetime ends.
    fn invalidate(&self, changes: &[Change]) {
        let paths: Vec<_> = changes.iter().map(Change::path).collect();
        self.invalidator.invalidate(&paths);
    }

    /// Whether the file on disk differs from what was last applied.
    fn file_changed(&self) -> bool {
        let now = std::fs::read(&self.file).unwrap_or_default();
        self.state.lock().text != now
    }

    /// The status, for `redirfs status --json`.
    pub fn status(&self) -> Value {
        let state = self.state.lock();
        let table = self.overlay.table().load();
        let stats = self.overlay.entry_stats();
        let entries: Vec<Value> = table
            .rules()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let s = stats.get(i).copied().unwrap_or_default();
                json!({
                    "path": e.path.to_string(),
                    "target": e.target.display().to_string(),
                    "as": e.presentation.as_str(),
                    "on_missing": e.on_missing.as_str(),
                    "read_only": e.read_only,
                    "line": e.loc.line,
                    "exists": std::fs::metadata(&e.target).is_ok(),
                    "hits": s.hits,
                    "bytes_read": s.bytes_read,
                    "bytes_written": s.bytes_written,
                    "errors": s.errors,
                })
            })
            .collect();
        let last = state.last.as_ref().map(|r| {
            json!({
                "at": unix(r.at),
                "ok": r.ok,
                "cause": r.cause,
                "changes": r.changes,
                "errors": r.errors,
            })
        });
        json!({
            "file": self.file.display().to_string(),
            "mountpoint": self.mountpoint.display().to_string(),
            "pid": std::process::id(),
            "started": unix(self.started),
            "uptime_secs": self.started.elapsed().map_or(0, |d| d.as_secs()),
            "base": table.base().map(|b| b.display().to_string()),
            "passthrough": self.passthrough.load(std::sync::atomic::Ordering::Relaxed),
            "inodes": self.overlay.inode_count(),
            "open_files": self.overlay.handle_count(),
            "reloads": state.reloads,
            "last_reload": last,
            "entries": entries,
        })
    }

    /// Serves the control socket until the daemon exits.
    pub fn serve_control(self: &Arc<Self>) -> std::io::Result<PathBuf> {
        runtime::ensure_dir()?;
        let path = runtime::socket(&self.mountpoint);
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(std::io::Error::other(format!(
                    "another daemon answers on {}",
                    path.display()
                )));
            }
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        let me = self.clone();
        std::thread::Builder::new()
            .name("redirfs-control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    if let Err(e) = me.answer(stream) {
                        log::warn!("control request failed: {e}");
                    }
                }
            })?;
        Ok(path)
    }

    fn answer(&self, stream: UnixStream) -> std::io::Result<()> {
        let peer = fs_core::sys::peer_uid(&stream)?;
        let me = fs_core::sys::geteuid();
        let mut out = stream.try_clone()?;
        if peer != me && peer != 0 {
            log::warn!("refused a control request from uid {peer}");
            writeln!(out, "{}", json!({"error": "not your mount"}))?;
            return Ok(());
        }
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        let reply = match line.trim() {
            "status" => self.status(),
            "reload" => reload_json(&self.reload(false, "redirfs reload")),
            "diff" => reload_json(&self.reload(true, "redirfs reload --dry-run")),
            other => json!({"error": format!("unknown request `{other}`")}),
        };
        writeln!(out, "{reply}")
    }

    /// Watches the declaration file and reloads when it changes. Editors save by rename and in
    /// several steps: the directory is watched, and events settle for a moment first.
    pub fn watch(self: &Arc<Self>) {
        use notify::{RecursiveMode, Watcher};
        let Some(dir) = self.file.parent().map(Path::to_path_buf) else {
            return;
        };
        let name = self.file.file_name().map(OsString::from);
        let (tx, rx) = mpsc::channel();
        let mut watcher =
            match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                if let Ok(ev) = ev {
                    if ev
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(OsString::from) == name)
                    {
                        let _ = tx.send(());
                    }
                }
            }) {
                Ok(w) => w,
                Err(e) => {
                    log::warn!(
                        "cannot watch {}: {e}; reload with SIGHUP or `redirfs reload`",
                        self.file.display()
                    );
                    return;
                }
            };
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            log::warn!(
                "cannot watch {}: {e}; reload with SIGHUP or `redirfs reload`",
                dir.display()
            );
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("redirfs-watch".into())
            .spawn(move || {
                let _watcher = watcher;
                while rx.recv().is_ok() {
                    // Debounce: wait until the file has been quiet for a moment.
                    while rx.recv_timeout(Duration::from_millis(150)).is_ok() {}
                    if me.file_changed() {
                        me.reload(false, "file changed");
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the file watcher: {e}");
        }
    }
}

fn reload_json(r: &Reload) -> Value {
    json!({"ok": r.ok, "changes": r.changes, "errors": r.errors})
}

/// Tells systemd the mount is ready (Type=notify), when started by it.
pub fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => return log::warn!("sd_notify: {e}"),
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(abs) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abs)
            .and_then(|a| sock.send_to_addr(b"READY=1", &a))
    } else {
        sock.send_to(b"READY=1", Path::new(&path))
    };
    if let Err(e) = result {
        log::warn!("sd_notify READY=1 failed: {e}");
    }
}

/// Asks the daemon at `mountpoint` one thing; its JSON answer.
///
/// # Errors
/// When no daemon answers there.
pub fn ask(socket: &Path, request: &str) -> std::io::Result<Value> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    writeln!(s, "{request}")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::other(format!("bad answer: {e}")))
}
