//! `redirfs status`, `redirfs reload` and the mount-helper convention (`mount -t fuse.redirfs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::daemon::ask;
use crate::runtime;

fn mountpoint_arg(mp: &Path) -> PathBuf {
    std::fs::canonicalize(mp).unwrap_or_else(|_| {
        if mp.is_absolute() {
            mp.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(mp))
                .unwrap_or_else(|_| mp.to_path_buf())
        }
    })
}

/// The sockets of all mounts this user runs, pruning those whose daemon is gone.
fn sockets() -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(runtime::dir()) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    out.sort();
    out
}

fn print_status(s: &Value) {
    let str_of = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!("{}", str_of(&s["mountpoint"]));
    println!("  declaration: {}", str_of(&s["file"]));
    println!(
        "  pid {}, up {} s, {} entries, {} inodes, {} open files, passthrough {}",
        s["pid"],
        s["uptime_secs"],
        s["entries"].as_array().map_or(0, Vec::len),
        s["inodes"],
        s["open_files"],
        if s["passthrough"].as_bool() == Some(true) {
            "on"
        } else {
            "off"
        }
    );
    match s["last_reload"].as_object() {
        None => println!("  last reload: none"),
        Some(r) => {
            let ok = r.get("ok").and_then(Value::as_bool) == Some(true);
            println!(
                "  last reload: {} ({})",
                if ok {
                    "applied"
                } else {
                    "REFUSED, the previous mapping keeps serving"
                },
                r.get("cause").and_then(Value::as_str).unwrap_or("")
            );
            for e in r
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for line in e.as_str().unwrap_or("").lines() {
                    println!("    {line}");
                }
            }
        }
    }
    println!(
        "  {:<24} {:<7} {:>8} {:>12} {:>12} {:>6}  target",
        "entry", "exists", "hits", "read", "written", "errors"
    );
    for e in s["entries"].as_array().into_iter().flatten() {
        println!(
            "  {:<24} {:<7} {:>8} {:>12} {:>12} {:>6}  {} ({})",
            str_of(&e["path"]),
            if e["exists"].as_bool() == Some(true) {
                "yes"
            } else {
                "NO"
            },
            e["hits"].as_u64().unwrap_or(0),
            e["bytes_read"].as_u64().unwrap_or(0),
            e["bytes_written"].as_u64().unwrap_or(0),
            e["errors"].as_u64().unwrap_or(0),
            str_of(&e["target"]),
            str_of(&e["as"]),
        );
    }
}

/// `redirfs status [MOUNTPOINT] [--json]`.
pub fn status(mountpoint: Option<&Path>, as_json: bool) -> ExitCode {
    let targets = match mountpoint {
        Some(mp) => vec![runtime::socket(&mountpoint_arg(mp))],
        None => sockets(),
    };
    let mut all = Vec::new();
    for sock in &targets {
        match ask(sock, "status") {
            Ok(v) => all.push(v),
            Err(e) => {
                if let Some(mp) = mountpoint {
                    eprintln!(
                        "redirfs: no redirfs daemon answers for {} ({e})",
                        mp.display()
                    );
                    return ExitCode::from(1);
                }
                // A daemon that died left its socket: clear it.
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    let _ = std::fs::remove_file(sock);
                }
            }
        }
    }
    if as_json {
        let v = if mountpoint.is_some() {
            all.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(all)
        };
        println!("{v}");
    } else if all.is_empty() {
        println!("no redirfs mounts running (for this user)");
    } else {
        for s in &all {
            print_status(s);
        }
    }
    ExitCode::SUCCESS
}

/// `redirfs reload MOUNTPOINT [--dry-run]`.
pub fn reload(mountpoint: &Path, dry_run: bool) -> ExitCode {
    let sock = runtime::socket(&mountpoint_arg(mountpoint));
    let v = match ask(&sock, if dry_run { "diff" } else { "reload" }) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "redirfs: no redirfs daemon answers for {} ({e})",
                mountpoint.display()
            );
            return ExitCode::from(2);
        }
    };
    if v["ok"].as_bool() == Some(true) {
        let changes = v["changes"].as_array().cloned().unwrap_or_default();
        if changes.is_empty() {
            println!("no changes");
        }
        for c in changes {
            println!("{}", c.as_str().unwrap_or(""));
        }
        if !dry_run {
            println!("reloaded {}", mountpoint.display());
        }
        ExitCode::SUCCESS
    } else {
        for e in v["errors"].as_array().into_iter().flatten() {
            eprintln!("{}", e.as_str().unwrap_or(""));
        }
        if let Some(e) = v["error"].as_str() {
            eprintln!("redirfs: {e}");
        }
        eprintln!("redirfs: reload refused; the running mapping keeps serving");
        ExitCode::from(1)
    }
}
