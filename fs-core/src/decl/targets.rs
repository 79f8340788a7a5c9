//! Facts about targets on disk: whether each exists and what it is, asked once per distinct
//! target (in parallel past a few thousand), and the path arithmetic that makes them absolute.

use super::*;

impl Checker<'_> {
    /// The target as an absolute path.
    pub(super) fn target_path(&mut self, node: &Node) -> Option<PathBuf> {
        let text = self.string(
            node,
            "target",
            "write where the data lives: an absolute path, or one relative to this file",
        )?;
        Some(if is_windows_absolute(text) {
            PathBuf::from(text)
        } else {
            self.resolve(text)
        })
    }

    /// Reports a target that cannot be reached, or a junction to something not a directory;
    /// `stat` is whether the target is a directory.
    pub(super) fn target_state(
        &mut self,
        target: &Path,
        loc: Loc,
        stat: &io::Result<bool>,
        presentation: Presentation,
        on_missing: OnMissing,
    ) {
        match stat {
            Ok(is_dir) => {
                if presentation == Presentation::Junction && !is_dir {
                    self.d.error(
                        loc,
                        format!(
                            "a junction must point to a directory; `{}` is not one",
                            target.display()
                        ),
                        "use `as: symlink` (or `transparent`) for a file",
                    );
                }
            }
            Err(e) => {
                let windows = if is_windows_absolute(&target.to_string_lossy()) && !cfg!(windows) {
                    " (it is a Windows path: only a Windows mount can reach it)"
                } else {
                    ""
                };
                let msg = format!(
                    "target `{}` cannot be reached: {}{windows}",
                    target.display(),
                    plain_io(e)
                );
                match on_missing {
                    OnMissing::Error => self.d.error(
                        loc,
                        msg,
                        "create the target or fix the path; `on_missing: dangling` or `hide` accept an absent target",
                    ),
                    OnMissing::Dangling => self.d.warning(
                        loc,
                        msg,
                        "the entry shows as a dangling link until the target appears",
                    ),
                    OnMissing::Hide => self.d.warning(
                        loc,
                        msg,
                        "the entry stays hidden until the target appears",
                    ),
                }
            }
        }
    }

    pub(super) fn resolve(&self, text: &str) -> PathBuf {
        if is_normal_absolute(text) {
            return PathBuf::from(text);
        }
        normalize_lexically(&self.dir.join(text))
    }
}

/// What the filesystem says about one target.
pub(super) struct TargetFacts {
    /// How it leads back into the mount, if it does (a loop makes `stat` moot).
    pub(super) a_loop: Option<Loop>,
    /// What `stat` says: whether it is a directory, or why it cannot be reached.
    pub(super) stat: io::Result<bool>,
}

impl TargetFacts {
    /// The facts about `target`; `mountpoint` is the canonical mountpoint directory, when the
    /// target is to be checked for loops.
    pub(super) fn of(target: &Path, mountpoint: Option<&Path>, canon: &mut Canon) -> TargetFacts {
        let Some(m) = mountpoint else {
            return TargetFacts {
                a_loop: None,
                stat: std::fs::metadata(target).map(|m| m.is_dir()),
            };
        };
        // Both compared with symlinks resolved: a target may reach the mountpoint through one.
        let (t, lstat) = canon.target(target);
        let a_loop = if t.starts_with(m) {
            Some(Loop::InsideMountpoint)
        } else if m.starts_with(&t) {
            Some(Loop::HoldsMountpoint)
        } else {
            None
        };
        // What `stat` says, from the `lstat` the canonical form took when it tells.
        let stat = match lstat {
            Some(Ok(m)) if !m.file_type().is_symlink() => Ok(m.is_dir()),
            Some(Err(e)) => Err(e),
            _ if a_loop.is_some() => Ok(false),
            _ => std::fs::metadata(target).map(|m| m.is_dir()),
        };
        TargetFacts { a_loop, stat }
    }
}

/// Asks the filesystem about each distinct target once: the facts, and for each pending entry
/// the index of its target's. `mountpoint` as for [`TargetFacts::of`].
pub(super) fn target_facts(
    pending: &[Pending<'_>],
    mountpoint: Option<&Path>,
) -> (Vec<TargetFacts>, Vec<Option<usize>>) {
    let mut index: FxHashMap<&OsStr, usize> =
        FxHashMap::with_capacity_and_hasher(pending.len(), Default::default());
    let mut distinct: Vec<&Path> = Vec::new();
    let fact_of = pending
        .iter()
        .map(|p| {
            let (t, _) = p.target.as_ref()?;
            Some(*index.entry(t.as_os_str()).or_insert_with(|| {
                distinct.push(t);
                distinct.len() - 1
            }))
        })
        .collect();
    let facts = map_in_parallel(&distinct, |canon: &mut Canon, t| {
        TargetFacts::of(t, mountpoint, canon)
    });
    (facts, fact_of)
}

/// `f` applied to every item, in order. Many items are spread over a few threads, each with its
/// own `S` (a cache): each call asks the filesystem, and a declaration may hold 100,000 entries.
pub(super) fn map_in_parallel<T, R, S, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    S: Default,
    F: Fn(&mut S, &T) -> R + Sync,
{
    /// Fewer items than this per thread are not worth a thread.
    const PER_THREAD: usize = 1024;
    const MAX_THREADS: usize = 8;
    let run = |chunk: &[T]| -> Vec<R> {
        let mut state = S::default();
        chunk.iter().map(|t| f(&mut state, t)).collect()
    };
    let most = (items.len() / PER_THREAD).min(MAX_THREADS);
    if most < 2 {
        return run(items);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(most));
    if threads < 2 {
        return run(items);
    }
    let run = &run;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks(items.len().div_ceil(threads));
        let mine = chunks.next().unwrap_or(&[]);
        let others: Vec<_> = chunks
            .map(|chunk| {
                let handle = std::thread::Builder::new().spawn_scoped(scope, move || run(chunk));
                (chunk, handle)
            })
            .collect();
        let mut out = run(mine);
        for (chunk, handle) in others {
            // A thread that could not start (or died) leaves its share to this one.
            match handle.map(|h| h.join()) {
                Ok(Ok(results)) => out.extend(results),
                _ => out.extend(run(chunk)),
            }
        }
        out
    })
}

/// Canonical forms of paths, for the loop checks. Each directory is resolved once per
/// declaration: entries' targets share parents, and resolving a path from scratch costs a
/// `readlink` per component.
#[derive(Default)]
pub(super) struct Canon {
    /// By the directory's text: the paths asked about are normalized.
    pub(super) dirs: FxHashMap<OsString, PathBuf>,
}

impl Canon {
    /// The canonical form of `path` (see [`canonical`]), and the `lstat` of `path` (through its
    /// canonical parent) when one was taken.
    pub(super) fn target(
        &mut self,
        path: &Path,
    ) -> (PathBuf, Option<io::Result<std::fs::Metadata>>) {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if path.is_absolute() => {
                let candidate = match self.dir(parent) {
                    Some(dir) => dir.join(name),
                    None => canonical(parent).join(name),
                };
                let lstat = std::fs::symlink_metadata(&candidate);
                let c = match &lstat {
                    Ok(m) if m.file_type().is_symlink() => canonical(&candidate),
                    _ => candidate,
                };
                (c, Some(lstat))
            }
            _ => (canonical(path), None),
        }
    }

    /// The canonical form of directory `dir` (always known once asked for).
    pub(super) fn dir(&mut self, dir: &Path) -> Option<&Path> {
        if !self.dirs.contains_key(dir.as_os_str()) {
            self.resolve_dir(dir);
        }
        self.dirs.get(dir.as_os_str()).map(PathBuf::as_path)
    }

    /// Resolves directory `dir` from its nearest known ancestor down (in a loop: a path may have
    /// thousands of components).
    pub(super) fn resolve_dir(&mut self, dir: &Path) -> PathBuf {
        // No system resolves a path this long, and remembering every ancestor of one would take
        // memory quadratic in its length: it is resolved whole.
        const LONG: usize = 4096;
        if dir.as_os_str().len() > LONG {
            let c = canonical(dir);
            self.dirs.insert(dir.as_os_str().to_owned(), c.clone());
            return c;
        }
        let mut todo = Vec::new();
        let mut cur = dir;
        let mut c = loop {
            if let Some(c) = self.dirs.get(cur.as_os_str()) {
                break c.clone();
            }
            match (cur.parent(), cur.file_name()) {
                (Some(parent), Some(_)) if cur.is_absolute() => {
                    todo.push(cur);
                    cur = parent;
                }
                _ => {
                    let c = canonical(cur);
                    self.dirs.insert(cur.as_os_str().to_owned(), c.clone());
                    break c;
                }
            }
        };
        for d in todo.into_iter().rev() {
            let candidate = c.join(d.file_name().unwrap_or_default());
            c = match std::fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => canonical(&candidate),
                _ => candidate,
            };
            self.dirs.insert(d.as_os_str().to_owned(), c.clone());
        }
        c
    }
}

/// The canonical path when it exists; otherwise the canonical form of its nearest existing
/// ancestor with the rest appended. Used only to compare paths for loops.
pub(super) fn canonical(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = path;
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            return rest.iter().rev().fold(c, |p, n| p.join(n));
        }
        match (cur.file_name(), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

pub(super) fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(normalize_lexically(path))
    } else {
        Ok(normalize_lexically(&std::env::current_dir()?.join(path)))
    }
}
