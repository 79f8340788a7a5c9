//! Where log lines go and how they look.
//!
//! Under systemd (`JOURNAL_STREAM` or `INVOCATION_ID` set) lines go to stderr without timestamps:
//! the journal adds its own. Otherwise each line has a timestamp. A background daemon writes its
//! log file itself (its parent names it in `REDIRFS_LOG_FILE`) and rotates it when it passes
//! [`DEFAULT_MAX_BYTES`] (or `REDIRFS_LOG_MAX_BYTES`): the full file becomes `NAME.1`, replacing
//! the previous one, so a log never takes more than twice the limit.

use std::io::Write;
use std::path::PathBuf;

/// The size at which a daemon's log file is rotated.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;

static FILTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The default filter `-v`/`-q` chose, for a daemon started from this process.
pub fn filter() -> Option<&'static str> {
    FILTER.get().map(String::as_str)
}

/// Whether this process runs as a systemd service.
pub fn under_systemd() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some()
}

/// Sets up the logger: `RUST_LOG` when set, else `info` (`-q`: errors only; `-v`: debug;
/// `-vv`: trace).
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let default = format!("{level},fuser=error");
    let _ = FILTER.set(default.clone());
    let mut b =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    if under_systemd() {
        b.format_timestamp(None);
    } else {
        b.format_timestamp_secs();
        if let Some(path) = std::env::var_os("REDIRFS_LOG_FILE").map(PathBuf::from) {
            let max = std::env::var("REDIRFS_LOG_MAX_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_MAX_BYTES);
            match Rotating::open(path, max) {
                Ok(r) => {
                    b.target(env_logger::Target::Pipe(Box::new(r)));
                }
                Err(e) => eprintln!("redirfs: cannot open the log: {e}; logging to stderr"),
            }
        }
    }
    b.init();
}

/// A log file that moves to `NAME.1` when it reaches its size limit.
#[derive(Debug)]
struct Rotating {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    max: u64,
}

impl Rotating {
    fn open(path: PathBuf, max: u64) -> std::io::Result<Rotating> {
        let file = crate::runtime::open_private(&path)?;
        let size = file.metadata()?.len();
        Ok(Rotating {
            path,
            file,
            size,
            max,
        })
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old)?;
        self.file = crate::runtime::open_private(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for Rotating {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max {
            // A failed rotation keeps writing where it was: losing lines is worse.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
