//! What a reload changes: entries added, removed, retargeted, or shown differently.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::decl::Entry;
use crate::vpath::VPath;

/// One change between two declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new entry.
    Added(Entry),
    /// An entry that is gone.
    Removed(Entry),
    /// Same path, another target.
    Retargeted {
        /// The entry before.
        old: Entry,
        /// The entry after.
        new: Entry,
    },
    /// Same path and target, another `as`, `on_missing` or `read_only`.
    Presentation {
        /// The entry before.
        old: Entry,
        /// The entry after.
        new: Entry,
    },
    /// The base directory changed.
    Base {
        /// Before.
        old: Option<PathBuf>,
        /// After.
        new: Option<PathBuf>,
    },
}

impl Change {
    /// The virtual path the change is about (the root for a base change).
    pub fn path(&self) -> VPath {
        match self {
            Change::Added(e) | Change::Removed(e) => e.path.clone(),
            Change::Retargeted { new, .. } | Change::Presentation { new, .. } => new.path.clone(),
            Change::Base { .. } => VPath::root(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added(e) => write!(
                f,
                "+ {} -> {} (as {})",
                e.path,
                e.target.display(),
                e.presentation
            ),
            Change::Removed(e) => write!(f, "- {} -> {}", e.path, e.target.display()),
            Change::Retargeted { old, new } => write!(
                f,
                "~ {}: target {} -> {}",
                new.path,
                old.target.display(),
                new.target.display()
            ),
            Change::Presentation { old, new } => {
                let mut parts = Vec::new();
                if old.presentation != new.presentation {
                    parts.push(format!("as {} -> {}", old.presentation, new.presentation));
                }
                if old.on_missing != new.on_missing {
                    parts.push(format!(
                        "on_missing {} -> {}",
                        old.on_missing, new.on_missing
                    ));
                }
                if old.read_only != new.read_only {
                    parts.push(format!("read_only {} -> {}", old.read_only, new.read_only));
                }
                write!(f, "~ {}: {}", new.path, parts.join(", "))
            }
            Change::Base { old, new } => {
                let show = |p: &Option<PathBuf>| {
                    p.as_ref()
                        .map_or("(none)".to_string(), |p| p.display().to_string())
                };
                write!(f, "~ base: {} -> {}", show(old), show(new))
            }
        }
    }
}

/// The changes from `old` to `new` entries (and base), sorted by path.
pub fn diff(
    old: &[Entry],
    old_base: Option<&PathBuf>,
    new: &[Entry],
    new_base: Option<&PathBuf>,
) -> Vec<Change> {
    let before: BTreeMap<&VPath, &Entry> = old.iter().map(|e| (&e.path, e)).collect();
    let after: BTreeMap<&VPath, &Entry> = new.iter().map(|e| (&e.path, e)).collect();
    let mut out = Vec::new();
    if old_base != new_base {
        out.push(Change::Base {
            old: old_base.cloned(),
            new: new_base.cloned(),
        });
    }
    for (path, o) in &before {
        match after.get(path) {
            None => out.push(Change::Removed((*o).clone())),
            Some(n) if n.target != o.target => out.push(Change::Retargeted {
                old: (*o).clone(),
                new: (*n).clone(),
            }),
            Some(n)
                if n.presentation != o.presentation
                    || n.on_missing != o.on_missing
                    || n.read_only != o.read_only =>
            {
                out.push(Change::Presentation {
                    old: (*o).clone(),
                    new: (*n).clone(),
                })
            }
            Some(_) => {}
        }
    }
    for (path, n) in &after {
        if !before.contains_key(path) {
            out.push(Change::Added((*n).clone()));
        }
    }
    out.sort_by_key(Change::path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decl::{OnMissing, Presentation};
    use crate::yaml::Loc;

    fn entry(path: &str, target: &str, p: Presentation) -> Entry {
        Entry {
            path: VPath::parse_declared(path).expect("valid path"),
            target: PathBuf::from(target),
            presentation: p,
            on_missing: OnMissing::Dangling,
            read_only: false,
            loc: Loc::default(),
        }
    }

    #[test]
    fn finds_each_kind_of_change() {
        let old = vec![
            entry("a", "/x", Presentation::Symlink),
            entry("b", "/y", Presentation::Symlink),
            entry("c", "/z", Presentation::Symlink),
        ];
        let new = vec![
            entry("b", "/y2", Presentation::Symlink),
            entry("c", "/z", Presentation::Transparent),
            entry("d", "/w", Presentation::Symlink),
        ];
        let changes: Vec<String> = diff(&old, None, &new, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            vec![
                "- a -> /x",
                "~ b: target /y -> /y2",
                "~ c: as symlink -> transparent",
                "+ d -> /w (as symlink)",
            ]
        );
    }

    #[test]
    fn no_change_is_empty() {
        let e = vec![entry("a", "/x", Presentation::Symlink)];
        assert!(diff(&e, None, &e, None).is_empty());
    }
}
