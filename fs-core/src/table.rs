//! The redirection table: a validated declaration compiled into a trie of virtual path components.
//!
//! Resolving a path walks one trie node per component, so its cost grows with the path's depth and
//! not with the number of rules. The table is immutable; a reload builds a new one and swaps it in
//! [`SharedTable`], so readers never wait on a writer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::decl::{Declaration, Entry, Mountpoint, Options};
// Re-exported where they used to live, for the crates that name them through the table.
pub use crate::names::{component_path, fold_case, NameCase};

/// Index of a rule in [`Table::rules`].
pub type RuleId = u32;

/// Index of a trie node.
type NodeId = u32;

const ROOT: NodeId = 0;

/// A node's children by folded name: (name as declared, node).
type Children = HashMap<Box<[u8]>, (Box<[u8]>, NodeId)>;

#[derive(Debug, Default)]
struct TNode {
    /// Children by folded name: (name as declared, node).
    children: Children,
    rule: Option<RuleId>,
}

/// Per-entry counters: relaxed atomics, so counting costs a few instructions and no lock.
#[derive(Debug, Default)]
pub struct EntryCounters {
    hits: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    errors: AtomicU64,
    not_found: AtomicU64,
}

/// A snapshot of one entry's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryStats {
    /// Requests that reached the daemon through the entry (lookups and opens; the kernel answers
    /// repeats from its caches, and follows symlink entries without asking again).
    pub hits: u64,
    /// Bytes the daemon read for programs (passthrough I/O goes around the daemon).
    pub bytes_read: u64,
    /// Bytes the daemon wrote for programs.
    pub bytes_written: u64,
    /// Failed operations through the entry; "no such file" answers are counted apart.
    pub errors: u64,
    /// Lookups and opens answered "no such file" (programs probe for files that may not exist).
    pub not_found: u64,
}

impl EntryCounters {
    /// Counts a request.
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts bytes read.
    pub fn read(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes written.
    pub fn written(&self, n: u64) {
        self.bytes_written.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a failure.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed request: "no such file" apart from real failures.
    pub fn failed(&self, e: &crate::Error) {
        if e.is_not_found() {
            self.not_found.fetch_add(1, Ordering::Relaxed);
        } else {
            self.error();
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> EntryStats {
        EntryStats {
            hits: self.hits.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            not_found: self.not_found.load(Ordering::Relaxed),
        }
    }
}

/// A redirection table built from one declaration.
#[derive(Debug)]
pub struct Table {
    nodes: Vec<TNode>,
    rules: Vec<Entry>,
    counters: Vec<Arc<EntryCounters>>,
    base: Option<PathBuf>,
    mountpoint: Mountpoint,
    options: Options,
    file: PathBuf,
    case: NameCase,
}

/// Where a virtual path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved<'t> {
    /// Exactly a `symlink` or `junction` entry.
    Link(&'t Entry),
    /// Beneath a link entry: the kernel follows the link, so this names `real` in the target.
    BeneathLink {
        /// The link entry.
        entry: &'t Entry,
        /// The target joined with the rest of the path.
        real: PathBuf,
    },
    /// A real object in the base or in a transparent target, possibly with declared children
    /// laid over it (when it is a directory that declarations nest in).
    Real {
        /// The real path.
        real: PathBuf,
        /// The transparent entry it lies in, or `None` for the base.
        via: Option<&'t Entry>,
        /// Declared children masking the real directory's own, if any.
        dir: Option<Dir<'t>>,
    },
    /// A directory that exists only because entries are declared beneath it.
    Synthetic(Dir<'t>),
    /// Nothing: no declaration covers it and there is no base.
    Absent,
}

/// A directory node of the table: the names declared directly in it.
#[derive(Debug, Clone, Copy)]
pub struct Dir<'t> {
    table: &'t Table,
    node: NodeId,
}

impl PartialEq for Dir<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.table, other.table) && self.node == other.node
    }
}
impl Eq for Dir<'_> {}

impl<'t> Dir<'t> {
    /// The declared names in this directory, as declared.
    pub fn names(&self) -> impl Iterator<Item = &'t [u8]> + 't {
        let node: &'t TNode = &self.table.nodes[self.node as usize];
        node.children.values().map(|(name, _)| &**name)
    }

    /// Whether `name` is declared here (an entry, or a directory entries are nested in).
    pub fn contains(&self, name: &[u8]) -> bool {
        let node = &self.table.nodes[self.node as usize];
        node.children.contains_key(&*self.table.fold(name))
    }

    /// The number of declared names.
    pub fn len(&self) -> usize {
        self.table.nodes[self.node as usize].children.len()
    }

    /// Whether nothing is declared here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    /// Compiles a validated declaration.
    pub fn new(decl: &Declaration, case: NameCase) -> Table {
        let mut t = Table {
            nodes: vec![TNode::default()],
            rules: Vec::with_capacity(decl.entries.len()),
            counters: Vec::with_capacity(decl.entries.len()),
            base: decl.base.clone(),
            mountpoint: decl.mountpoint.clone(),
            options: decl.options,
            file: decl.file.clone(),
            case,
        };
        for entry in &decl.entries {
            let id = t.rules.len() as RuleId;
            t.rules.push(entry.clone());
            t.counters.push(Arc::default());
            let mut node = ROOT;
            for comp in entry.path.components() {
                let key: Box<[u8]> = t.fold(comp.as_bytes()).into();
                let next = t.nodes.len() as NodeId;
                let child = match t.nodes[node as usize].children.get(&key) {
                    Some((_, id)) => *id,
                    None => {
                        t.nodes[node as usize]
                            .children
                            .insert(key, (comp.as_bytes().into(), next));
                        t.nodes.push(TNode::default());
                        next
                    }
                };
                node = child;
            }
            t.nodes[node as usize].rule = Some(id);
        }
        t
    }

    /// An empty table: everything is the base.
    pub fn empty(mountpoint: Mountpoint, base: Option<PathBuf>) -> Table {
        Table {
            nodes: vec![TNode::default()],
            rules: Vec::new(),
            counters: Vec::new(),
            base,
            mountpoint,
            options: Options::default(),
            file: PathBuf::new(),
            case: NameCase::Sensitive,
        }
    }

    fn fold<'a>(&self, name: &'a [u8]) -> Cow<'a, [u8]> {
        match self.case {
            NameCase::Sensitive => Cow::Borrowed(name),
            NameCase::Insensitive => fold_case(name),
        }
    }

    /// The rules, in declaration order.
    pub fn rules(&self) -> &[Entry] {
        &self.rules
    }

    /// The counters of `entry`, which must be one of this table's rules.
    pub fn counters(&self, entry: &Entry) -> Option<&Arc<EntryCounters>> {
        // `entry` borrows from `self.rules`: its index follows from its address.
        let offset = (entry as *const Entry as usize).wrapping_sub(self.rules.as_ptr() as usize);
        let idx = offset / std::mem::size_of::<Entry>().max(1);
        match self.rules.get(idx) {
            Some(r) if std::ptr::eq(r, entry) => self.counters.get(idx),
            _ => None,
        }
    }

    /// Every entry's counters, in rule order.
    pub fn stats(&self) -> Vec<EntryStats> {
        self.counters.iter().map(|c| c.snapshot()).collect()
    }

    /// Keeps counting where `old` left off for the entries both tables declare at one path.
    pub fn adopt_counters(&mut self, old: &Table) {
        let by_path: HashMap<&crate::vpath::VPath, &Arc<EntryCounters>> = old
            .rules
            .iter()
            .map(|e| &e.path)
            .zip(old.counters.iter())
            .collect();
        for (rule, counter) in self.rules.iter().zip(self.counters.iter_mut()) {
            if let Some(c) = by_path.get(&rule.path) {
                *counter = Arc::clone(c);
            }
        }
    }

    /// The base directory.
    pub fn base(&self) -> Option<&Path> {
        self.base.as_deref()
    }

    /// The mountpoint.
    pub fn mountpoint(&self) -> &Mountpoint {
        &self.mountpoint
    }

    /// Mount-wide options.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The declaration file the table was built from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The root directory's declared names.
    pub fn root(&self) -> Dir<'_> {
        Dir {
            table: self,
            node: ROOT,
        }
    }

    /// Resolves a virtual path given as components (names, never `.` or `..`).
    pub fn resolve<'a, I>(&self, components: I) -> Resolved<'_>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut comps = components.into_iter();
        let mut node = Some(ROOT);
        // The real object the walk is at: (path, transparent entry or None for the base).
        let mut real: Option<(PathBuf, Option<&Entry>)> =
            self.base.as_ref().map(|b| (b.clone(), None));
        while let Some(comp) = comps.next() {
            let child = node.and_then(|n| {
                self.nodes[n as usize]
                    .children
                    .get(&*self.fold(comp))
                    .map(|(_, id)| *id)
            });
            node = child;
            let rule = child.and_then(|n| self.nodes[n as usize].rule);
            let Some(rule) = rule else {
                if let Some((p, _)) = real.as_mut() {
                    p.push(component_path(comp));
                }
                continue;
            };
            let entry = &self.rules[rule as usize];
            if entry.presentation.is_link() {
                let mut rest = comps.peekable();
                if rest.peek().is_none() {
                    return Resolved::Link(entry);
                }
                let mut real = entry.target.clone();
                for c in rest {
                    real.push(component_path(c));
                }
                return Resolved::BeneathLink { entry, real };
            }
            real = Some((entry.target.clone(), Some(entry)));
        }
        let dir = node.and_then(|n| {
            let has_children = !self.nodes[n as usize].children.is_empty();
            has_children.then_some(Dir {
                table: self,
                node: n,
            })
        });
        match (real, dir) {
            (Some((real, via)), dir) => Resolved::Real { real, via, dir },
            (None, Some(dir)) => Resolved::Synthetic(dir),
            (None, None) if node == Some(ROOT) => Resolved::Synthetic(self.root()),
            (None, None) => Resolved::Absent,
        }
    }

    /// Resolves a normalized virtual path.
    pub fn resolve_vpath(&self, path: &crate::vpath::VPath) -> Resolved<'_> {
        self.resolve(path.components().iter().map(|c| c.as_bytes()))
    }
}

/// The table in force, swapped whole on reload. Readers take a snapshot and never block.
#[derive(Debug)]
pub struct SharedTable {
    current: ArcSwap<Table>,
}

impl SharedTable {
    /// Starts with `table`.
    pub fn new(table: Table) -> SharedTable {
        SharedTable {
            current: ArcSwap::from_pointee(table),
        }
    }

    /// The table in force now; holding it keeps this version alive.
    pub fn load(&self) -> Arc<Table> {
        self.current.load_full()
    }

    /// A cheap guard on the table in force, for one request.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Table>> {
        self.current.load()
    }

    /// Replaces the table; returns the previous one.
    pub fn swap(&self, table: Table) -> Arc<Table> {
        self.current.swap(Arc::new(table))
    }
}

/// What a backend does after a reload swapped the table: drop the cached views (the kernel's
/// names, attributes and listings; WinFsp's file info) along each changed virtual path, so the
/// new mapping shows at once rather than when a cache lifetime ends. The daemon's reload works
/// through this, whatever the backend.
pub trait Invalidate: Send + Sync {
    /// Invalidates every cached view on the way to each path, and the path itself.
    fn invalidate(&self, paths: &[crate::vpath::VPath]);
}
