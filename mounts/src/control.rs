//! `redirfs status`, `redirfs reload` and the mount-helper convention (`mount -t fuse.redirfs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::daemon::ask;
use crate::runtime;

/// A mountpoint as the user named it, made absolute: canonical when it can be resolved (a dead
/// mount cannot), else joined to the current directory.
pub fn mountpoint_arg(mp: &Path) -> PathBuf {
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
    outln!("{}", str_of(&s["mountpoint"]));
    outln!("  declaration: {}", str_of(&s["file"]));
    outln!(
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
        None => outln!("  last reload: none"),
        Some(r) => {
            let ok = r.get("ok").and_then(Value::as_bool) == Some(true);
            outln!(
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
                    outln!("    {line}");
                }
            }
        }
    }
    outln!(
        "  {:<24} {:<7} {:>8} {:>12} {:>12} {:>6} {:>9}  target",
        "entry",
        "exists",
        "hits",
        "read",
        "written",
        "errors",
        "not-found"
    );
    for e in s["entries"].as_array().into_iter().flatten() {
        outln!(
            "  {:<24} {:<7} {:>8} {:>12} {:>12} {:>6} {:>9}  {} ({})",
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
            e["not_found"].as_u64().unwrap_or(0),
            str_of(&e["target"]),
            str_of(&e["as"]),
        );
    }
}

/// A mount whose daemon is gone: what `status` says about it, and how to recover.
fn dead(mountpoint: &Path, file: Option<&Path>) -> Value {
    let mp = mountpoint.display();
    let recover = match file {
        Some(f) => format!(
            "`redirfs mount {}` clears it and mounts again; `redirfs umount --lazy {mp}` only clears it",
            f.display()
        ),
        None => format!("`redirfs umount --lazy {mp}` clears it; then mount its declaration again"),
    };
    json!({
        "mountpoint": mountpoint.display().to_string(),
        "file": file.map(|f| f.display().to_string()),
        "dead": true,
        "error": "the daemon is gone (killed or crashed): programs get \"transport endpoint is not connected\"",
        "recover": recover,
    })
}

fn print_dead(s: &Value) {
    let str_of = |v: &Value| v.as_str().unwrap_or("").to_string();
    outln!("{}", str_of(&s["mountpoint"]));
    if let Some(f) = s["file"].as_str() {
        outln!("  declaration: {f}");
    }
    outln!("  DEAD: {}", str_of(&s["error"]));
    outln!("  recover: {}", str_of(&s["recover"]));
}

/// `redirfs status [MOUNTPOINT] [--json]`: exit 0 when every mount shown answers, 1 when one is
/// dead (its daemon gone, its mountpoint left "not connected") or does not answer.
pub fn status(mountpoint: Option<&Path>, as_json: bool) -> ExitCode {
    let mut all = Vec::new();
    let mut bad = false;
    if let Some(mp) = mountpoint {
        let abs = mountpoint_arg(mp);
        match ask(&runtime::socket(&abs), "status") {
            Ok(v) => all.push(v),
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && crate::mountinfo::is_dead(&abs) =>
            {
                let file = crate::mountinfo::at(&abs).and_then(|m| m.declaration());
                all.push(dead(&abs, file.as_deref()));
                bad = true;
            }
            Err(e) => {
                eprintln!(
                    "redirfs: no redirfs daemon answers for {} ({e})",
                    mp.display()
                );
                return ExitCode::from(1);
            }
        }
    } else {
        for sock in &sockets() {
            match ask(sock, "status") {
                Ok(v) => all.push(v),
                // A daemon that died left its socket, which names its mountpoint. Only then is
                // the mountpoint looked at: a stat cannot hang on a mount whose daemon is gone,
                // while it could on a live but wedged one.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    let mp = sock
                        .file_stem()
                        .and_then(|s| runtime::mountpoint_of(&s.to_string_lossy()));
                    let m = mp.as_deref().and_then(crate::mountinfo::at);
                    match m {
                        Some(m) if m.is_redirfs() && crate::mountinfo::is_dead(&m.mountpoint) => {
                            all.push(dead(&m.mountpoint, m.declaration().as_deref()));
                            bad = true;
                        }
                        _ => {
                            let _ = std::fs::remove_file(sock);
                        }
                    }
                }
                Err(_) => {}
            }
        }
    }
    if as_json {
        let v = if mountpoint.is_some() {
            all.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(all)
        };
        outln!("{v}");
    } else if all.is_empty() {
        outln!("no redirfs mounts running (for this user)");
    } else {
        for s in &all {
            if s["dead"].as_bool() == Some(true) {
                print_dead(s);
            } else {
                print_status(s);
            }
        }
    }
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The mountpoints of every mount this user runs, answering or dead (as `status` lists them).
pub fn mountpoints() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sock in &sockets() {
        match ask(sock, "status") {
            Ok(v) => out.extend(v["mountpoint"].as_str().map(PathBuf::from)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                let m = sock
                    .file_stem()
                    .and_then(|s| runtime::mountpoint_of(&s.to_string_lossy()))
                    .and_then(|mp| crate::mountinfo::at(&mp));
                if let Some(m) =
                    m.filter(|m| m.is_redirfs() && crate::mountinfo::is_dead(&m.mountpoint))
                {
                    out.push(m.mountpoint);
                }
            }
            Err(_) => {}
        }
    }
    out
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
            outln!("no changes");
        }
        for c in changes {
            outln!("{}", c.as_str().unwrap_or(""));
        }
        if !dry_run {
            outln!("reloaded {}", mountpoint.display());
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
