//! `redirfs check` and `redirfs explain`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fs_core::decl::{self, LoadError};
use fs_core::{NameCase, Table, VPath};

use crate::{EXIT_INVALID, EXIT_USAGE};

fn diag_json(d: &fs_core::diag::Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "severity": d.severity.to_string(),
        "file": d.file.display().to_string(),
        "line": d.loc.line,
        "column": d.loc.col,
        "message": d.message,
        "help": d.help,
    })
}

/// `check --json`: one object per file, in order: `file`, `ok`, `entries` (when valid),
/// `diagnostics` (severity, file, line, column, message, help) or `error` (unreadable).
fn check_json(files: &[PathBuf], case: NameCase) -> ExitCode {
    let mut status = 0u8;
    let mut out = Vec::new();
    for file in files {
        let name = file.display().to_string();
        out.push(match decl::load_file_for(file, case) {
            Ok(d) => serde_json::json!({
                "file": name,
                "ok": true,
                "entries": d.entries.len(),
                "diagnostics": d.diagnostics.iter().map(diag_json).collect::<Vec<_>>(),
            }),
            Err(LoadError::Invalid(inv)) => {
                status = status.max(EXIT_INVALID);
                serde_json::json!({
                    "file": name,
                    "ok": false,
                    "diagnostics": inv.diagnostics.iter().map(diag_json).collect::<Vec<_>>(),
                })
            }
            Err(e) => {
                status = status.max(EXIT_USAGE);
                serde_json::json!({"file": name, "ok": false, "error": e.to_string()})
            }
        });
    }
    outln!("{}", serde_json::Value::Array(out));
    ExitCode::from(status)
}

/// Checks `files` for a mount that compares names by `case`.
pub fn check(files: &[PathBuf], case: NameCase, as_json: bool) -> ExitCode {
    if as_json {
        return check_json(files, case);
    }
    let mut status = 0u8;
    for file in files {
        match decl::load_file_for(file, case) {
            Ok(d) => {
                for diag in &d.diagnostics {
                    eprintln!("{diag}");
                }
                let warnings = d.warnings().count();
                outln!(
                    "{}: ok: {} redirection{}{}",
                    file.display(),
                    d.entries.len(),
                    if d.entries.len() == 1 { "" } else { "s" },
                    match warnings {
                        0 => String::new(),
                        1 => ", 1 warning".to_string(),
                        n => format!(", {n} warnings"),
                    }
                );
            }
            Err(LoadError::Invalid(inv)) => {
                for diag in &inv.diagnostics {
                    eprintln!("{diag}");
                }
                let n = inv.error_count();
                eprintln!(
                    "{}: invalid: {n} error{}",
                    file.display(),
                    if n == 1 { "" } else { "s" }
                );
                status = status.max(EXIT_INVALID);
            }
            Err(e @ LoadError::Io { .. }) => {
                eprintln!("redirfs: {e}");
                status = status.max(EXIT_USAGE);
            }
        }
    }
    ExitCode::from(status)
}

/// Loads a declaration for a command that acts on it, checked for a mount that compares names
/// by `case`: warnings go to stderr; an invalid or unreadable file is reported and becomes the
/// exit status (1 invalid, 2 I/O).
pub fn load(file: &Path, case: NameCase) -> Result<decl::Declaration, ExitCode> {
    match decl::load_file_for(file, case) {
        Ok(d) => {
            for diag in d.warnings() {
                eprintln!("{diag}");
            }
            Ok(d)
        }
        Err(LoadError::Invalid(inv)) => {
            eprintln!("{inv}");
            Err(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => {
            eprintln!("redirfs: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Explains `path` as a mount that compares names by `case` resolves it.
pub fn explain(file: &Path, path: &str, case: NameCase, as_json: bool) -> ExitCode {
    let d = match load(file, case) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // An absolute path under the mountpoint (`/opt/app/data/x`) is taken as the path a program
    // uses; any other is relative to the mount's root, a leading `/` allowed.
    let inside = match &d.mountpoint {
        decl::Mountpoint::Dir(mp) => Path::new(path)
            .strip_prefix(mp)
            .ok()
            .map(|rest| rest.to_string_lossy().into_owned()),
        decl::Mountpoint::Drive(_) => None,
    };
    let path = inside.as_deref().unwrap_or(path);
    let vpath = match VPath::parse_lenient(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("redirfs: the path `{path}` {e}: give a path inside the mount, e.g. `data/file.txt`");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let table = Table::new(&d, d.case);
    let text = fs_core::explain::explain(&table, &vpath);
    if as_json {
        outln!(
            "{}",
            serde_json::json!({
                "file": d.file.display().to_string(),
                "path": vpath.to_string(),
                "explanation": text.lines().collect::<Vec<_>>(),
            })
        );
    } else {
        out!("{text}");
    }
    ExitCode::SUCCESS
}
