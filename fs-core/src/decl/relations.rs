//! Relations between entries: duplicates (after normalization and, on case-insensitive mounts,
//! case folding), nesting under links, and targets that lead back into the mount.

use super::*;

impl Checker<'_> {
    /// Reports `c`, whose path was declared before by `first`.
    pub(super) fn duplicate(&mut self, c: &Candidate, first: &Candidate) {
        let (path, first_path) = (&c.entry.path, &first.entry.path);
        let line = first.path_loc.line;
        if path == first_path {
            self.d.error(
                c.path_loc,
                format!("path `{path}` is declared twice (first at line {line})"),
                "keep one of the two entries, or give this one another path",
            );
        } else {
            self.d.error(
                c.path_loc,
                format!(
                    "path `{path}` is declared twice (first at line {line}, as `{first_path}`): names that differ only in case are one name on a case-insensitive mount"
                ),
                "keep one of the two entries, or give this one a path that differs in more than case",
            );
        }
    }

    /// Reports `target`, which leads back into the mountpoint `mp`.
    pub(super) fn a_loop(&mut self, target: &Path, loc: Loc, mp: &Path, a_loop: Loop) {
        match a_loop {
            Loop::InsideMountpoint => self.d.error(
                loc,
                format!(
                    "target `{}` lies inside the mountpoint `{}`: a loop",
                    target.display(),
                    mp.display()
                ),
                "point the redirection at data outside the mount (use the base's own path for data in the base)",
            ),
            Loop::HoldsMountpoint => self.d.error(
                loc,
                format!(
                    "the mountpoint `{}` lies inside target `{}`: a loop",
                    mp.display(),
                    target.display()
                ),
                "point the redirection at a directory that does not contain the mountpoint",
            ),
        }
    }
}

/// How a target leads back into the mount.
#[derive(Debug, Clone, Copy)]
pub(super) enum Loop {
    /// The target lies inside the mountpoint.
    InsideMountpoint,
    /// The mountpoint lies inside the target.
    HoldsMountpoint,
}

/// An entry with a usable path and target, before duplicates and nesting are looked at.
pub(super) struct Candidate {
    pub(super) entry: Entry,
    /// Where its path is.
    pub(super) path_loc: Loc,
    /// Where a `read_only: true` that has no effect is.
    pub(super) useless_read_only: Option<Loc>,
}

/// For each candidate, the index of the first candidate before it with the same path, if any;
/// and for each that is no such duplicate, the index of the nearest link entry it lies beneath,
/// if any. Names compare by `case`, as the mount compares them.
pub(super) fn entry_relations(
    candidates: &[Candidate],
    case: NameCase,
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let is_link: Vec<bool> = candidates
        .iter()
        .map(|c| c.entry.presentation.is_link())
        .collect();
    match case {
        NameCase::Sensitive => {
            let paths: Vec<&[String]> = candidates
                .iter()
                .map(|c| c.entry.path.components())
                .collect();
            path_relations(&paths, &is_link)
        }
        NameCase::Insensitive => {
            // Folded as the table folds names when it looks them up.
            let folded: Vec<Vec<Cow<'_, [u8]>>> = candidates
                .iter()
                .map(|c| {
                    let names = c.entry.path.components().iter();
                    names.map(|n| fold_case(n.as_bytes())).collect()
                })
                .collect();
            let paths: Vec<&[Cow<'_, [u8]>]> = folded.iter().map(Vec::as_slice).collect();
            path_relations(&paths, &is_link)
        }
    }
}

/// [`relations`] of paths given as their components.
pub(super) fn path_relations<T: Hash + Eq>(
    paths: &[&[T]],
    is_link: &[bool],
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut first: FxHashMap<&[T], usize> =
        FxHashMap::with_capacity_and_hasher(paths.len(), Default::default());
    let duplicate_of: Vec<Option<usize>> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| match first.entry(p) {
            std::collections::hash_map::Entry::Occupied(o) => Some(*o.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                None
            }
        })
        .collect();
    // `first` now holds every path that is no duplicate: keep its links.
    first.retain(|_, i| is_link.get(*i).copied().unwrap_or(false));
    let beneath = if first.is_empty() {
        vec![None; paths.len()]
    } else {
        paths
            .iter()
            .zip(&duplicate_of)
            .map(|(p, dup)| match dup {
                Some(_) => None,
                None => (1..p.len())
                    .rev()
                    .find_map(|n| p.get(..n).and_then(|prefix| first.get(prefix)).copied()),
            })
            .collect()
    };
    (duplicate_of, beneath)
}
