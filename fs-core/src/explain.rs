//! `redirfs explain`: where a virtual path goes, and why.

use std::fmt::Write as _;
use std::path::Path;

use crate::decl::{Entry, OnMissing, Presentation};
use crate::place::{self, Place, StdHost};
use crate::table::{Resolved, Table};
use crate::vpath::VPath;

fn state(path: &Path) -> &'static str {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => "exists, a directory",
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::metadata(path).is_ok() {
                "exists, a symlink"
            } else {
                "exists, a dangling symlink"
            }
        }
        Ok(_) => "exists, a file",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
        Err(_) => "cannot be reached",
    }
}

fn rule(table: &Table, e: &Entry) -> String {
    format!(
        "`{}` ({}:{}:{}, as {}, on_missing {}{})",
        e.path,
        table.file().display(),
        e.loc.line,
        e.loc.col,
        e.presentation,
        e.on_missing,
        if e.read_only { ", read-only" } else { "" }
    )
}

fn missing_effect(e: &Entry) -> &'static str {
    match e.on_missing {
        OnMissing::Dangling => "the entry shows as a dangling link until it appears",
        OnMissing::Hide => "the entry is hidden until it appears",
        OnMissing::Error => "a reload would refuse this declaration",
    }
}

/// Explains in a few lines where `path` goes in `table`, as the mount decides it
/// ([`crate::place::classify`] on the local filesystems).
pub fn explain(table: &Table, path: &VPath) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{path}");
    let comps = path.components();
    match place::classify(table, &StdHost::posix(), comps) {
        Place::Link(e) if e.presentation == Presentation::Transparent => {
            let _ = writeln!(out, "  rule:     {}", rule(table, e));
            let _ = writeln!(
                out,
                "  shows as: a dangling symlink to {}",
                e.target.display()
            );
            let _ = writeln!(out, "  target:   {}", state(&e.target));
            let _ = writeln!(
                out,
                "  why:      the path is a transparent entry whose target is absent"
            );
            let _ = writeln!(
                out,
                "  note:     the target is absent: {}",
                missing_effect(e)
            );
        }
        Place::Link(e) => {
            let st = link_lines(&mut out, table, e);
            let _ = writeln!(
                out,
                "  why:      the path is a declared {} entry; the kernel follows the link to the target",
                e.presentation
            );
            if st == "does not exist" {
                let _ = writeln!(
                    out,
                    "  note:     the target is absent: {}",
                    missing_effect(e)
                );
            }
        }
        Place::BeneathLink { entry, real } => {
            let _ = writeln!(out, "  rule:     {}", rule(table, entry));
            let _ = writeln!(out, "  resolves: {}", real.display());
            let _ = writeln!(out, "  real:     {}", state(&real));
            let _ = writeln!(
                out,
                "  why:      `{}` is a {} entry: the kernel follows it out of the mount, so the rest of the path is looked up in {}",
                entry.path,
                entry.presentation,
                entry.target.display()
            );
        }
        Place::Real(r) => {
            real_lines(&mut out, table, path, &r.real, r.via);
            if let Some(dir) = r.declared {
                let _ = writeln!(
                    out,
                    "  masks:    declared entries beneath it take precedence: {}",
                    names(dir.names())
                );
            }
        }
        Place::Synthetic { dir, standin: true } => {
            // A directory of a tree that the tree lacks: say which tree, then what shows.
            if let Resolved::Real { real, via, .. } = table.resolve_vpath(path) {
                real_lines(&mut out, table, path, &real, via);
            }
            let _ = writeln!(
                out,
                "  shows as: a synthetic read-only directory, since it exists in neither the base nor a target"
            );
            let _ = writeln!(out, "  holds:    {}", names(dir.names()));
        }
        Place::Synthetic {
            dir,
            standin: false,
        } => {
            let _ = writeln!(out, "  rule:     none; entries are declared beneath it");
            let _ = writeln!(out, "  shows as: a synthetic read-only directory");
            let _ = writeln!(out, "  holds:    {}", names(dir.names()));
            let _ = writeln!(
                out,
                "  why:      no base or target holds this directory, so redirfs makes it to reach the entries beneath"
            );
        }
        Place::Absent => match table.resolve_vpath(path) {
            // A hidden entry: what it would be, and why it is not there.
            Resolved::Link(e) => {
                link_lines(&mut out, table, e);
                let _ = writeln!(
                    out,
                    "  note:     the target is absent: {}",
                    missing_effect(e)
                );
            }
            Resolved::Real { real, via, .. } if via.is_some() => {
                real_lines(&mut out, table, path, &real, via);
                if let Some(e) = via {
                    let _ = writeln!(
                        out,
                        "  note:     the target is absent: {}",
                        missing_effect(e)
                    );
                }
            }
            _ => {
                let _ = writeln!(out, "  rule:     none");
                let _ = writeln!(out, "  resolves: nothing: the mount has no such path");
                let _ = writeln!(
                    out,
                    "  why:      no declared entry covers it and the declaration has no `base`"
                );
            }
        },
    }
    out
}

/// The rule of a link entry, what it shows as and its target's state (returned too).
fn link_lines(out: &mut String, table: &Table, e: &Entry) -> &'static str {
    let st = state(&e.target);
    let _ = writeln!(out, "  rule:     {}", rule(table, e));
    let _ = writeln!(
        out,
        "  shows as: a {} to {}",
        e.presentation,
        e.target.display()
    );
    let _ = writeln!(out, "  target:   {st}");
    st
}

/// Where a real path lies: the entry that covers it, or the base.
fn real_lines(out: &mut String, table: &Table, path: &VPath, real: &Path, via: Option<&Entry>) {
    match via {
        Some(e) => {
            let _ = writeln!(out, "  rule:     {}", rule(table, e));
            let _ = writeln!(out, "  resolves: {}", real.display());
            let _ = writeln!(out, "  real:     {}", state(real));
            let why = if e.path == *path {
                "the path is a transparent entry: it is the target itself".to_string()
            } else {
                format!(
                    "`{}` is the longest declared prefix; transparent entries pass everything beneath through to the target",
                    e.path
                )
            };
            let _ = writeln!(out, "  why:      {why}");
        }
        None => {
            let _ = writeln!(out, "  rule:     none (no declared entry covers this path)");
            let _ = writeln!(out, "  resolves: {} (the base)", real.display());
            let _ = writeln!(out, "  real:     {}", state(real));
            let _ = writeln!(
                out,
                "  why:      paths no entry covers show the base directory's own contents"
            );
        }
    }
}

fn names<'a>(it: impl Iterator<Item = &'a [u8]>) -> String {
    let mut v: Vec<String> = it
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    v.sort();
    v.join(", ")
}
