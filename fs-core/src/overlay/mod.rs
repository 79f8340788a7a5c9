//! The overlay's operations, independent of any kernel protocol.
//!
//! Inodes are numbered from a counter and deduplicated by what they are: a real object by its
//! (device, inode) (directories also by the tree they were reached in), a declared link or
//! synthetic directory by its virtual path. Each inode remembers the names it was looked up by
//! (parent inode, name); an operation rebuilds the virtual path from them and resolves it through
//! the table in force, so a reload takes effect at the next request and renames move whole
//! subtrees at once. Only open files hold descriptors, so memory and descriptors stay flat while a
//! program walks millions of files; an inode goes when the kernel forgets its last lookup. The
//! inode table itself, compact and indexed by number, key and name, is the `inodes` module.
//!
//! What a path is and what an operation may do to it is decided by [`crate::place`]; this module
//! and its children only execute, one file per family of operations: `names` (lookup, forget,
//! create and remove names, rename, link), `attrs` (stat, setattr, readlink, statfs, access),
//! `files` (open files and their I/O), `dirs` (listings) and `xattrs`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use crate::beneath;
use crate::decl::Entry;
use crate::error::{Error, Result};
use crate::inodes::{Inodes, Key};
use crate::place::{self, Creation, Found, Host, Place, RenameFlags, RenamePlan};
use crate::sys::{self, SetTime, StatFs};
use crate::table::{Dir, EntryCounters, SharedTable, Table};

mod attrs;
mod dirs;
mod files;
mod names;
mod xattrs;

pub use crate::inodes::ROOT_INO;

/// The extended attribute that tells where a node really lives.
pub const TARGET_XATTR: &str = "user.redirfs.target";

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
    /// A character device.
    CharDev,
    /// A block device.
    BlockDev,
}

impl Kind {
    fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDev,
            libc::S_IFBLK => Kind::BlockDev,
            _ => Kind::File,
        }
    }
}

/// What a node is, for choosing cache lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A real object: others may change it behind the mount.
    Real,
    /// A declared link or synthetic directory: changes only on reload, which invalidates it.
    Declared,
}

/// A node's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// The overlay's inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last change.
    pub ctime: SystemTime,
    /// Kind.
    pub kind: Kind,
    /// Permission bits (including setuid, setgid, sticky).
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Cache class.
    pub class: Class,
}

pub use crate::creds::Caller;

/// Changes asked by setattr.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    /// New mode bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
    /// Drop set-user-ID and set-group-ID as a write or truncate by this caller (one without
    /// CAP_FSETID) does. The kernel leaves this to the daemon once it has agreed to
    /// FUSE_HANDLE_KILLPRIV_V2, since the daemon's own writes are privileged.
    pub kill_suidgid: Option<Writer>,
}

/// A caller without CAP_FSETID whose write or truncate drops a file's set-user-ID and
/// set-group-ID bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    /// Group id.
    pub gid: u32,
    /// Process id, for its supplementary groups.
    pub pid: u32,
}

/// One directory entry.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Its name.
    pub name: OsString,
    /// Its kind.
    pub kind: Kind,
    /// An inode number for plain readdir (informational).
    pub ino: u64,
}

/// An open file.
#[derive(Debug)]
pub struct Handle {
    /// The real file.
    pub file: File,
    /// The overlay inode it was opened through.
    pub ino: u64,
    /// Whose quota it counts in.
    owner: Option<u32>,
    /// The counters of the entry it was opened through, if any.
    counters: Option<Arc<EntryCounters>>,
}

/// Where setattr applies a change: an open descriptor or a path.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    Fd(&'a File),
    Path(&'a Path),
}

/// An open directory: what it was when opened, and its listing once first read.
#[derive(Debug)]
struct OpenDir {
    ino: u64,
    owner: Option<u32>,
    comps: Vec<OsString>,
    node: View,
    listing: parking_lot::Mutex<Option<Arc<Vec<DirEntry>>>>,
    /// The bytes of `listing` charged to `owner` (a shared listing is charged to each holder).
    charged: AtomicU64,
}

/// What an xattr call applies to.
#[derive(Debug)]
enum XattrAt {
    View(View),
    /// A file unlinked while open, through one of its descriptors.
    Open(Arc<Handle>),
}

/// Which real tree a node is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tree {
    Base,
    Entry(String),
}

/// What the overlay keeps, for one request or an open directory, of what the decision layer
/// said a virtual path is ([`crate::place::Place`], owned and with the entry's counters).
#[derive(Debug, Clone)]
enum View {
    /// Shown as a symlink with this text.
    Link {
        text: PathBuf,
        counters: Option<Arc<EntryCounters>>,
    },
    /// A directory made from the declaration only; `standin` when it stands in for a directory
    /// its tree lacks, which may appear at any time.
    Synthetic {
        declared: Vec<OsString>,
        standin: bool,
    },
    /// A real object.
    Real(Box<RealView>),
}

#[derive(Debug, Clone)]
struct RealView {
    /// The object as its verified parent directory and its own name, `/proc/self/fd/N/NAME`
    /// (`/proc/self/fd/N/.` for a tree's root directory): the kernel looks up that one name
    /// only, so system calls that do not follow a final symlink act on exactly what the name
    /// holds, and nothing on the way can be swapped.
    path: PathBuf,
    /// The descriptor `path` goes through, held while the view lives.
    anchor: Arc<OwnedFd>,
    /// The object's name in `anchor`; `None` when `anchor` is the object (a root directory).
    name: Option<OsString>,
    /// The real path as the table names it, for messages and the target attribute.
    real: PathBuf,
    /// The real root of the tree (base or transparent target) and the tree's identity.
    root: PathBuf,
    /// Where the root really is, symlinks resolved when it was opened.
    root_real: PathBuf,
    tree: Tree,
    read_only: bool,
    /// The transparent entry that is exactly this node, if any.
    entry: Option<Entry>,
    /// Declared names laid over this directory.
    declared: Vec<OsString>,
    /// The node is the root of its tree (base root or transparent entry): follow a symlink there.
    tree_root: bool,
    /// The counters of the transparent entry it lies in, if any.
    counters: Option<Arc<EntryCounters>>,
}

/// A directory opened for the names in it: `path` is `/proc/self/fd/N`, through `fd`.
#[derive(Debug)]
struct Anchored {
    path: PathBuf,
    _fd: Arc<OwnedFd>,
}

impl Anchored {
    /// The directory's descriptor, for *at system calls.
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._fd.as_fd()
    }

    /// The path of `name` in this directory: the kernel looks up that one name.
    fn join(&self, name: impl AsRef<Path>) -> AtPath {
        AtPath {
            path: self.path.join(name),
            _fd: self._fd.clone(),
        }
    }
}

/// A `/proc/self/fd/N/NAME` path with the descriptor N it needs kept open.
#[derive(Debug)]
struct AtPath {
    path: PathBuf,
    _fd: Arc<OwnedFd>,
}

impl std::ops::Deref for AtPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl RealView {
    /// This object as a directory to act in, opened from its verified parent without following
    /// a symlink (ESTALE when its name no longer holds a directory).
    fn dir(&self) -> Result<Anchored> {
        let fd = match &self.name {
            None => self.anchor.clone(),
            Some(name) => {
                let flags = libc::O_PATH | libc::O_DIRECTORY;
                Arc::new(
                    beneath::open_beneath(self.anchor.as_fd(), Path::new(name), flags)
                        .map_err(walked)?,
                )
            }
        };
        Ok(Anchored {
            path: beneath::fd_path(&*fd),
            _fd: fd,
        })
    }
}

impl View {
    fn counters(&self) -> Option<&Arc<EntryCounters>> {
        match self {
            View::Link { counters, .. } => counters.as_ref(),
            View::Real(r) => r.counters.as_ref(),
            View::Synthetic { .. } => None,
        }
    }
}

/// The overlay: a table and the inodes and handles the kernel holds.
#[derive(Debug)]
pub struct Overlay {
    table: SharedTable,
    inodes: RwLock<Inodes>,
    handles: RwLock<HashMap<u64, Arc<Handle>>>,
    dirs: RwLock<HashMap<u64, Arc<OpenDir>>>,
    next_handle: AtomicU64,
    roots: RwLock<Roots>,
    held: parking_lot::Mutex<Held>,
    quota: Quota,
    listings: parking_lot::Mutex<HashMap<u64, Shared>>,
    started: SystemTime,
    owner: Caller,
    privileged: bool,
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

fn not_found_is(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

/// Checks a name from the kernel: one component, no `/` or NUL.
fn check_name(name: &OsStr) -> Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(Error::InvalidName);
    }
    Ok(())
}

impl Overlay {
    /// An overlay over `table`, owned by the user running it.
    pub fn new(table: Table) -> Overlay {
        let uid = sys::geteuid();
        let overlay = Overlay {
            table: SharedTable::new(table),
            inodes: RwLock::new(Inodes::new()),
            handles: RwLock::new(HashMap::new()),
            dirs: RwLock::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            roots: RwLock::new(Roots::default()),
            held: parking_lot::Mutex::new(Held::new(held_budget())),
            quota: Quota::new(beneath::raise_descriptor_limit()),
            listings: parking_lot::Mutex::new(HashMap::new()),
            started: SystemTime::now(),
            owner: Caller {
                uid,
                gid: sys::getegid(),
                pid: std::process::id(),
            },
            privileged: uid == 0,
        };
        let table = overlay.table.snapshot();
        overlay.open_roots(&table);
        drop(table);
        overlay
    }

    /// The table in force, to read. Install a new one with [`Overlay::install`].
    pub fn table(&self) -> &SharedTable {
        &self.table
    }

    /// Puts `table` in force (a reload) and opens its trees' roots now, so the trees served are
    /// the ones its targets name at this moment; returns the previous table.
    pub fn install(&self, table: Table) -> Arc<Table> {
        let old = self.table.swap(table);
        let table = self.table.snapshot();
        self.open_roots(&table);
        old
    }

    /// Opens every root of `table` (the base and each transparent target that exists), dropping
    /// those of earlier tables.
    fn open_roots(&self, table: &Table) {
        let mut roots = Roots {
            table: table_id(table),
            map: HashMap::new(),
        };
        let paths = table.base().into_iter().chain(
            table
                .rules()
                .iter()
                .filter(|e| e.presentation == crate::decl::Presentation::Transparent)
                .map(|e| e.target.as_path()),
        );
        for path in paths {
            if let Ok(root) = Root::open(path) {
                roots.map.insert(path.to_path_buf(), Arc::new(root));
            }
        }
        *self.roots.write() = roots;
    }

    /// The opened root `path` of `table`'s trees, opening it now if it was absent until now.
    fn root(&self, table: &Table, path: &Path) -> Result<Arc<Root>> {
        {
            let roots = self.roots.read();
            if roots.table == table_id(table) {
                if let Some(r) = roots.map.get(path) {
                    return Ok(r.clone());
                }
            }
        }
        if self.roots.read().table != table_id(table) {
            // Swapped without `install` (or the first request): open this table's roots.
            self.open_roots(table);
            if let Some(r) = self.roots.read().map.get(path) {
                return Ok(r.clone());
            }
        }
        let root = Arc::new(Root::open(path)?);
        let mut roots = self.roots.write();
        if roots.table == table_id(table) {
            roots.map.insert(path.to_path_buf(), root.clone());
        }
        Ok(root)
    }

    /// What the overlay keeps of a real place for the rest of a request (and for open
    /// directories): the object's verified parent directory, reached from its tree's root by a
    /// walk that follows no symlink, and its name.
    fn real_node(&self, table: &Table, r: place::Real<'_>) -> Result<RealView> {
        self.real_node_via(table, r, Via::Walk)
    }

    /// As [`Overlay::real_node`], reached from a held directory when `via` names one: the
    /// directory inode itself (so it is that very directory, as a native cwd is, whatever its
    /// name holds now), or the parent a name is looked up in (no walk from the root).
    fn real_node_via(&self, table: &Table, r: place::Real<'_>, via: Via) -> Result<RealView> {
        let tree = match r.via {
            Some(e) => Tree::Entry(e.path.to_string()),
            None => Tree::Base,
        };
        let rel = r.real.strip_prefix(r.root).map_err(|_| Error::NotFound)?;
        let itself = match via {
            Via::Itself(ino) => self.held.lock().dir(ino, &tree),
            _ => None,
        };
        let held = match via {
            Via::Walk => None,
            // The directory itself if held; else from its (held) parent, as a lookup would be.
            Via::Itself(ino) => match itself {
                Some(fd) => Some((fd, None)),
                None if r.tree_root => None,
                None => {
                    let parent = self.inodes.read().parent_of(ino);
                    parent.and_then(|p| self.in_held_dir(p, &tree, rel))
                }
            },
            Via::Parent(_) if r.tree_root => None,
            Via::Parent(parent) => self.in_held_dir(parent, &tree, rel),
        };
        let root = self.root(table, r.root)?;
        let (anchor, name) = match held {
            Some(h) => h,
            None => self.walk(&root, rel)?,
        };
        let path = match &name {
            Some(n) => beneath::fd_path(&*anchor).join(n),
            None => beneath::fd_path(&*anchor).join("."),
        };
        Ok(RealView {
            path,
            anchor,
            name,
            root: r.root.to_path_buf(),
            root_real: root.real.clone(),
            tree,
            read_only: r.read_only,
            entry: r.entry().cloned(),
            declared: r.declared.map(names).unwrap_or_default(),
            tree_root: r.tree_root,
            counters: r.via.and_then(|e| table.counters(e)).cloned(),
            real: r.real,
        })
    }

    /// `rel`'s last name in the held directory `parent` of `tree`, if it is held.
    fn in_held_dir(
        &self,
        parent: u64,
        tree: &Tree,
        rel: &Path,
    ) -> Option<(Arc<OwnedFd>, Option<OsString>)> {
        let name = rel.file_name()?.to_owned();
        let fd = self.held.lock().dir(parent, tree)?;
        Some((fd, Some(name)))
    }

    /// The verified parent of `rel` beneath `root`, and its last name (`None` for the root).
    fn walk(&self, root: &Root, rel: &Path) -> Result<(Arc<OwnedFd>, Option<OsString>)> {
        Ok(match (rel.parent(), rel.file_name()) {
            (_, None) => match &root.file {
                None => (root.fd.clone(), None),
                Some(file) => (root.fd.clone(), Some(file.clone())),
            },
            (Some(parent), Some(name)) if root.file.is_none() => {
                let dir = if parent.as_os_str().is_empty() {
                    root.fd.clone()
                } else {
                    let flags = libc::O_PATH | libc::O_DIRECTORY;
                    Arc::new(beneath::open_beneath(root.fd.as_fd(), parent, flags).map_err(walked)?)
                };
                (dir, Some(name.to_owned()))
            }
            _ => return Err(Error::NotADirectory),
        })
    }

    /// The number of inodes the kernel holds (for status and leak tests).
    pub fn inode_count(&self) -> usize {
        self.inodes.read().len()
    }

    /// The number of open handles.
    pub fn handle_count(&self) -> usize {
        self.handles.read().len()
    }

    fn components(&self, ino: u64) -> Result<Vec<OsString>> {
        self.inodes.read().path(ino)
    }

    fn node(&self, table: &Table, comps: &[OsString]) -> Result<View> {
        self.node_via(table, comps, Via::Walk)
    }

    fn node_via(&self, table: &Table, comps: &[OsString], via: Via) -> Result<View> {
        Ok(match place::classify(table, &Local, comps) {
            Place::Link(entry) => View::Link {
                text: entry.target.clone(),
                counters: table.counters(entry).cloned(),
            },
            Place::Synthetic { dir, standin } => View::Synthetic {
                declared: names(dir),
                standin,
            },
            Place::Real(r) => View::Real(Box::new(self.real_node_via(table, r, via)?)),
            Place::BeneathLink { .. } | Place::Absent => return Err(Error::NotFound),
        })
    }

    fn node_of(&self, ino: u64) -> Result<(Vec<OsString>, View)> {
        let comps = self.components(ino)?;
        let table = self.table.snapshot();
        let node = self.node_via(&table, &comps, Via::Itself(ino))?;
        Ok((comps, node))
    }

    /// The status of `r`: one fstatat of its name in its verified directory (no path walk).
    fn stat_real(&self, r: &RealView) -> Result<Meta> {
        let name = r.name.as_deref().map_or(&b""[..], OsStrExt::as_bytes);
        let st = beneath::stat_at(r.anchor.as_fd(), name, r.tree_root)?;
        Ok(Meta::from(&st))
    }

    /// Opens `r`'s name in its verified directory with `flags` (no path walk).
    fn open_real(r: &RealView, flags: i32) -> std::io::Result<File> {
        let name = r.name.as_deref().map_or(&b"."[..], OsStrExt::as_bytes);
        beneath::open_at(r.anchor.as_fd(), name, flags, 0).map(File::from)
    }

    /// Opens what `r`'s name holds with `flags`, if it is still the object `ino` stands for:
    /// ESTALE when the name now holds another object (replaced, or swapped for a symlink,
    /// behind the mount), which makes the kernel look the name up again, as a native open
    /// would have found it. The descriptor is then exactly the inode the kernel checked
    /// permissions on.
    fn open_verified(&self, ino: u64, r: &RealView, flags: i32) -> Result<File> {
        let flags = if r.tree_root {
            flags
        } else {
            flags | libc::O_NOFOLLOW
        };
        let file = Self::open_real(r, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => stale(),
            _ => Error::Os(e),
        })?;
        if ino != ROOT_INO {
            let meta = Meta::from(&file.metadata()?);
            if !self.inodes.read().holds(ino, Self::key_for(&meta, &r.tree)) {
                return Err(stale());
            }
        }
        Ok(file)
    }

    fn key_for<'a>(meta: &Meta, tree: &'a Tree) -> Key<'a> {
        if meta.is_dir() {
            Key::RealDir {
                dev: meta.dev,
                ino: meta.ino,
                tree: match tree {
                    Tree::Base => None,
                    Tree::Entry(path) => Some(path),
                },
            }
        } else {
            Key::Real {
                dev: meta.dev,
                ino: meta.ino,
            }
        }
    }

    /// Finds or makes the inode for `key` reached as (parent, name); counts a lookup if asked.
    fn intern(&self, key: Key<'_>, parent: u64, name: &OsStr, count: bool) -> Result<u64> {
        self.inodes.write().intern(key, parent, name, count)
    }

    fn attr_of(&self, ino: u64, node: &View) -> Result<Attr> {
        match node {
            View::Link { text, .. } => {
                Ok(self.virtual_attr(ino, Kind::Symlink, text.as_os_str().len() as u64))
            }
            View::Synthetic { declared, standin } => {
                let mut a = self.virtual_attr(ino, Kind::Dir, 0);
                a.nlink = 2 + declared.len() as u32;
                if *standin {
                    a.class = Class::Real;
                }
                Ok(a)
            }
            View::Real(r) => {
                let held = self.held.lock().get(ino);
                if let Some(fd) = held {
                    let st = beneath::stat_at(fd.as_fd(), b"", false)?;
                    return Ok(real_attr(ino, &Meta::from(&st)));
                }
                let meta = self.stat_real(r)?;
                // The name may hold another object than `ino` now (replaced behind the mount):
                // its attributes are not `ino`'s, and ESTALE makes the kernel look again.
                if ino != ROOT_INO && !self.inodes.read().holds(ino, Self::key_for(&meta, &r.tree))
                {
                    return Err(stale());
                }
                Ok(real_attr(ino, &meta))
            }
        }
    }

    fn virtual_attr(&self, ino: u64, kind: Kind, size: u64) -> Attr {
        Attr {
            ino,
            size,
            blocks: 0,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            kind,
            perm: if kind == Kind::Dir { 0o555 } else { 0o777 },
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            uid: self.owner.uid,
            gid: self.owner.gid,
            rdev: 0,
            blksize: 4096,
            class: Class::Declared,
        }
    }

    fn handle(&self, fh: u64) -> Result<Arc<Handle>> {
        self.handles
            .read()
            .get(&fh)
            .cloned()
            .ok_or(Error::Os(std::io::Error::from_raw_os_error(libc::EBADF)))
    }

    /// Any open handle of `ino`: what is left of a file unlinked while open.
    fn open_handle_of(&self, ino: u64) -> Option<Arc<Handle>> {
        self.handles.read().values().find(|h| h.ino == ino).cloned()
    }

    fn node_of_or_root(&self, ino: u64) -> Result<(Vec<OsString>, View)> {
        if ino == ROOT_INO {
            let table = self.table.snapshot();
            return Ok((Vec::new(), self.node(&table, &[])?));
        }
        self.node_of(ino)
    }
}

/// A real object's status: from fstatat(2) on a verified directory, or from an open file.
#[derive(Debug, Clone, Copy)]
struct Meta {
    dev: u64,
    ino: u64,
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: u64,
    blksize: u64,
    blocks: u64,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Meta {
    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

impl From<&libc::stat> for Meta {
    fn from(st: &libc::stat) -> Meta {
        Meta {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size as u64,
            blksize: st.st_blksize as u64,
            blocks: st.st_blocks as u64,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Meta {
        Meta {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size(),
            blksize: m.blksize(),
            blocks: m.blocks(),
            atime: (m.atime(), m.atime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A real object's attributes under the overlay's inode number.
fn real_attr(ino: u64, m: &Meta) -> Attr {
    Attr {
        ino,
        size: m.size,
        blocks: m.blocks,
        atime: time(m.atime.0, m.atime.1),
        mtime: time(m.mtime.0, m.mtime.1),
        ctime: time(m.ctime.0, m.ctime.1),
        kind: Kind::from_mode(m.mode),
        perm: (m.mode & 0o7777) as u16,
        nlink: m.nlink as u32,
        uid: m.uid,
        gid: m.gid,
        rdev: m.rdev as u32,
        blksize: m.blksize as u32,
        class: Class::Real,
    }
}

/// A status for [`real_attr`] from an open file.
fn meta_of(f: &File) -> Result<Meta> {
    Ok(Meta::from(&f.metadata()?))
}

/// The local filesystems as the decision layer sees them (long paths walked like every other
/// real path).
#[derive(Debug)]
struct Local;

impl Host for Local {
    fn probe(&self, path: &Path, follow: bool) -> Option<Found> {
        // What is there, whoever asks: a probe only looks, and a caller may not be able to
        // search the directories above a tree's root.
        let m = crate::creds::as_daemon(|| {
            if follow {
                sys::at_path(path, |p| std::fs::metadata(p))
            } else {
                sys::at_path(path, |p| std::fs::symlink_metadata(p))
            }
        });
        m.ok()
            .map(|m| if m.is_dir() { Found::Dir } else { Found::Other })
    }

    fn valid_name(&self, name: &[u8]) -> bool {
        place::posix_name(name)
    }
}

/// The declared names of a directory.
fn names(dir: Dir<'_>) -> Vec<OsString> {
    dir.names()
        .map(|n| OsStr::from_bytes(n).to_owned())
        .collect()
}

/// Descriptors of the regular files the kernel holds inodes for, opened (`O_PATH`) when they
/// were looked up: an inode is then that very file for as long as the kernel holds it, as a
/// native dentry is, even after its name is replaced or removed behind the mount. At most
/// `budget` are held, the oldest dropped first; a file without one is reached by its name and
/// checked against its identity (ESTALE when the name holds another file now).
///
/// Past the budget (and for every inode, where the daemon may open by handle: root), an inode
/// also keeps its kernel file handle, a few dozen bytes and no descriptor, and is reopened by
/// it (`open_by_handle_at`) when asked for: identity for every inode the kernel holds.
#[derive(Debug)]
struct Held {
    fds: HashMap<u64, HeldFd>,
    order: std::collections::VecDeque<u64>,
    budget: usize,
    /// Kernel file handles by inode.
    ids: HashMap<u64, Ident>,
    /// A descriptor on each mount a handle belongs to, by mount id.
    mounts: HashMap<i32, Arc<OwnedFd>>,
}

/// An inode's kernel file handle.
#[derive(Debug)]
struct Ident {
    handle: beneath::Handle,
    dir: bool,
    tree: Tree,
}

impl Held {
    fn new(budget: usize) -> Held {
        Held {
            fds: HashMap::new(),
            order: std::collections::VecDeque::new(),
            budget,
            ids: HashMap::new(),
            mounts: HashMap::new(),
        }
    }

    /// The held regular file `ino`.
    fn get(&mut self, ino: u64) -> Option<Arc<OwnedFd>> {
        if let Some(h) = self.fds.get(&ino) {
            return (!h.dir).then(|| h.fd.clone());
        }
        self.reopen(ino, false, None)
    }

    /// The held directory `ino`, if it lies in `tree`.
    fn dir(&mut self, ino: u64, tree: &Tree) -> Option<Arc<OwnedFd>> {
        if let Some(h) = self.fds.get(&ino) {
            return (h.dir && h.tree == *tree).then(|| h.fd.clone());
        }
        self.reopen(ino, true, Some(tree))
    }

    /// Reopens `ino` by its handle, and holds it again.
    fn reopen(&mut self, ino: u64, dir: bool, tree: Option<&Tree>) -> Option<Arc<OwnedFd>> {
        let id = self.ids.get(&ino)?;
        if id.dir != dir || tree.is_some_and(|t| *t != id.tree) {
            return None;
        }
        let mount = self.mounts.get(&id.handle.mount)?;
        // The daemon's own capability (CAP_DAC_READ_SEARCH), which acting as a caller drops: an
        // O_PATH descriptor grants nothing, and what is done through it is checked as the caller.
        let fd = crate::creds::as_daemon(|| {
            beneath::open_by_handle(mount.as_fd(), &id.handle, libc::O_PATH)
        })
        .ok()?;
        let tree = id.tree.clone();
        self.hold(ino, fd, dir, &tree);
        self.fds.get(&ino).map(|h| h.fd.clone())
    }

    /// Keeps `ino`'s handle (of `name` in `at`), and a descriptor on its mount.
    /// Keeps the handle of the object `fd` is open on; `at`, a directory on the same mount
    /// (its parent), gives the mount's descriptor the first time.
    fn identify(&mut self, ino: u64, fd: &OwnedFd, at: &OwnedFd, dir: bool, tree: &Tree) {
        let Ok(handle) = beneath::name_to_handle(fd.as_fd(), b"") else {
            return;
        };
        if let std::collections::hash_map::Entry::Vacant(v) = self.mounts.entry(handle.mount) {
            // A directory on that very mount: the parent, unless the object is a mount's root
            // (then itself, a directory); a handle decoded on another mount would name a
            // stranger.
            let same = beneath::name_to_handle(at.as_fd(), b"").map(|h| h.mount);
            let on_mount = match same {
                Ok(m) if m == handle.mount => at,
                _ if dir => fd,
                _ => return,
            };
            // open_by_handle_at takes no O_PATH descriptor: a real open of the directory.
            let flags = libc::O_RDONLY | libc::O_DIRECTORY;
            let opened =
                crate::creds::as_daemon(|| sys::open(&beneath::fd_path(on_mount), flags, 0));
            let Ok(dir) = opened else {
                return;
            };
            v.insert(Arc::new(dir.into()));
        }
        self.ids.insert(
            ino,
            Ident {
                handle,
                dir,
                tree: tree.clone(),
            },
        );
    }

    fn holds(&self, ino: u64) -> bool {
        self.fds.contains_key(&ino) || self.ids.contains_key(&ino)
    }

    fn hold(&mut self, ino: u64, fd: OwnedFd, dir: bool, tree: &Tree) {
        if self.budget == 0 {
            return;
        }
        while self.fds.len() >= self.budget {
            match self.order.pop_front() {
                Some(old) => {
                    self.fds.remove(&old);
                }
                None => break,
            }
        }
        let held = HeldFd {
            fd: Arc::new(fd),
            dir,
            tree: tree.clone(),
        };
        if self.fds.insert(ino, held).is_none() {
            self.order.push_back(ino);
        }
    }

    fn drop_ino(&mut self, ino: u64) {
        self.ids.remove(&ino);
        if self.fds.remove(&ino).is_some() {
            // `order` keeps the number until it reaches the front; compact when it is mostly
            // numbers no longer held.
            if self.order.len() > 2 * self.fds.len() + 64 {
                let fds = &self.fds;
                self.order.retain(|i| fds.contains_key(i));
            }
        }
    }
}

/// Open files and directories, counted per user, so that no user can take the daemon's
/// descriptors from everyone else: past `per_user` open handles a user gets EMFILE, and past
/// `total` everyone but root does. With the inodes' budget (a quarter of the descriptor limit),
/// a quarter stays in reserve for the daemon's own work: walks, listings, the control socket.
#[derive(Debug)]
struct Quota {
    per_user: usize,
    total: usize,
    open: parking_lot::Mutex<(usize, HashMap<u32, usize>)>,
    /// Bytes of directory listings each user's open directories hold.
    listed: parking_lot::Mutex<HashMap<u32, usize>>,
}

/// How many bytes of listings one user's open directories may hold (about 600,000 names).
const LISTING_BYTES_PER_USER: usize = 64 << 20;

/// The memory a listing takes, as charged to its owner.
fn listing_bytes(l: &[DirEntry]) -> usize {
    l.iter().map(|e| entry_bytes(&e.name)).sum()
}

/// The memory one listed name takes: the entry, its name, and the allocator's header.
fn entry_bytes(name: &OsStr) -> usize {
    std::mem::size_of::<DirEntry>() + name.len().next_multiple_of(16) + 16
}

impl Quota {
    fn new(limit: u64) -> Quota {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Quota {
            total: limit / 2,
            per_user: (limit / 8).max(64),
            open: parking_lot::Mutex::new((0, HashMap::new())),
            listed: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// How many more bytes of listings `uid` may hold (no bound for root and the daemon).
    fn remaining(&self, uid: Option<u32>) -> usize {
        match uid {
            None => usize::MAX,
            Some(u) => LISTING_BYTES_PER_USER
                .saturating_sub(self.listed.lock().get(&u).copied().unwrap_or(0)),
        }
    }

    /// Charges `bytes` of a listing to `uid`, or refuses with ENOMEM past its share.
    fn charge(&self, uid: Option<u32>, bytes: usize) -> Result<()> {
        let Some(u) = uid else {
            return Ok(());
        };
        let mut listed = self.listed.lock();
        let mine = listed.entry(u).or_insert(0);
        if *mine + bytes > LISTING_BYTES_PER_USER {
            return Err(Error::Os(std::io::Error::from_raw_os_error(libc::ENOMEM)));
        }
        *mine += bytes;
        Ok(())
    }

    fn refund(&self, uid: Option<u32>, bytes: usize) {
        let Some(u) = uid else {
            return;
        };
        let mut listed = self.listed.lock();
        if let Some(n) = listed.get_mut(&u) {
            *n = n.saturating_sub(bytes);
            if *n == 0 {
                listed.remove(&u);
            }
        }
    }

    /// Counts one more handle for `uid` (`None`: the daemon's own user or root, bound only by
    /// the total), or refuses with EMFILE.
    fn take(&self, uid: Option<u32>) -> Result<()> {
        let mut open = self.open.lock();
        let over_total = open.0 >= self.total;
        match uid {
            Some(u) => {
                let mine = open.1.get(&u).copied().unwrap_or(0);
                if over_total || mine >= self.per_user {
                    return Err(Error::Os(std::io::Error::from_raw_os_error(libc::EMFILE)));
                }
                open.1.insert(u, mine + 1);
            }
            // Root may go on into half of the reserve, so an administrator can still work.
            None if open.0 >= self.total + self.total / 8 => {
                return Err(Error::Os(std::io::Error::from_raw_os_error(libc::EMFILE)));
            }
            None => {}
        }
        open.0 += 1;
        Ok(())
    }

    fn give_back(&self, uid: Option<u32>) {
        let mut open = self.open.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(u) = uid {
            if let Some(n) = open.1.get_mut(&u) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&u);
                }
            }
        }
    }
}

/// A listing shared by the handles open on one directory while it is unchanged (same
/// modification and change times, same table): a thousand handles on a huge directory cost one
/// listing, not a thousand.
#[derive(Debug)]
struct Shared {
    stamp: Stamp,
    listing: std::sync::Weak<Vec<DirEntry>>,
}

/// What a directory's listing depends on: the table in force and the directory's times.
type Stamp = (usize, i64, i64, i64, i64);

/// Listings at least this long are shared between handles; shorter ones are read per handle,
/// so they are always exact to the nanosecond of their opendir.
const SHARED_LISTING: usize = 1024;

/// One held descriptor: a regular file, or a directory of `tree`.
#[derive(Debug)]
struct HeldFd {
    fd: Arc<OwnedFd>,
    dir: bool,
    tree: Tree,
}

/// Where a request's real object is reached from.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// From its tree's root, walking.
    Walk,
    /// It is the inode `ino`: its held descriptor, if it is a held directory.
    Itself(u64),
    /// It is a name in the directory inode `parent`: from that held directory, if held.
    Parent(u64),
}

/// How many file descriptors inodes may hold: a quarter of what the process may open, so open
/// files, listings and the daemon's own work keep the rest.
fn held_budget() -> usize {
    usize::try_from(beneath::raise_descriptor_limit() / 4)
        .unwrap_or(4096)
        .min(65536)
}

/// A table's identity, for knowing which table the opened roots belong to.
fn table_id(table: &Table) -> usize {
    std::ptr::from_ref(table) as usize
}

/// The roots opened for the table in force, by the path the table names them by.
#[derive(Debug, Default)]
struct Roots {
    table: usize,
    map: HashMap<PathBuf, Arc<Root>>,
}

/// A tree's root, opened by the daemon itself (the administrator declared it), with symlinks in
/// its path followed once, when the table was installed.
#[derive(Debug)]
struct Root {
    /// The root directory, or a file target's directory.
    fd: Arc<OwnedFd>,
    /// A file target's name in `fd`.
    file: Option<OsString>,
    /// Where the root really is.
    real: PathBuf,
}

impl Root {
    fn open(path: &Path) -> Result<Root> {
        crate::creds::as_daemon(|| {
            // Opened by its path as given, not by a resolved spelling of it: an in-place base is
            // `/proc/self/fd/N`, whose resolved spelling is this mount's own mountpoint.
            let fd = beneath::open_root(path)?;
            let at = beneath::fd_path(&fd);
            if std::fs::metadata(&at)?.is_dir() {
                let real = std::fs::read_link(&at)?;
                return Ok(Root {
                    fd: Arc::new(fd),
                    file: None,
                    real,
                });
            }
            let real = sys::at_path(path, |p| std::fs::canonicalize(p))?;
            let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
                return Err(Error::NotFound);
            };
            Ok(Root {
                fd: Arc::new(beneath::open_root(dir)?),
                file: Some(name.to_owned()),
                real: real.clone(),
            })
        })
    }
}

/// A walk that met a symlink where a directory was (swapped behind the mount): the kernel's
/// view of the path is stale, and ESTALE makes it look the path up again, as it then sees it.
fn walked(e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV) => stale(),
        _ => Error::Os(e),
    }
}

/// ESTALE: the kernel's inode no longer is what its name holds; the kernel looks the name up
/// again (once) and retries, as a native path walk would have found it.
fn stale() -> Error {
    Error::Os(std::io::Error::from_raw_os_error(libc::ESTALE))
}

// Administration: reloads and status (used by the daemon, not by request paths).
impl Overlay {
    /// The inode the kernel holds for a virtual path, if it holds one.
    pub fn known_inode(&self, comps: &[OsString]) -> Option<u64> {
        self.inodes.read().find(comps)
    }
}

impl Overlay {
    /// Every entry's counters, in the order of the table in force.
    pub fn entry_stats(&self) -> Vec<crate::table::EntryStats> {
        self.table.load().stats()
    }
}
