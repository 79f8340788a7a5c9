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
use std::fs::{File, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

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

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

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
    comps: Vec<OsString>,
    node: View,
    listing: parking_lot::Mutex<Option<Arc<Vec<DirEntry>>>>,
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
    Real(RealView),
}

#[derive(Debug, Clone)]
struct RealView {
    path: PathBuf,
    /// The real root of the tree (base or transparent target) and the tree's identity.
    root: PathBuf,
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
        Overlay {
            table: SharedTable::new(table),
            inodes: RwLock::new(Inodes::new()),
            handles: RwLock::new(HashMap::new()),
            dirs: RwLock::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            started: SystemTime::now(),
            owner: Caller {
                uid,
                gid: sys::getegid(),
            },
            privileged: uid == 0,
        }
    }

    /// The table in force, to read or swap.
    pub fn table(&self) -> &SharedTable {
        &self.table
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
        Ok(match place::classify(table, &Local, comps) {
            Place::Link(entry) => View::Link {
                text: entry.target.clone(),
                counters: table.counters(entry).cloned(),
            },
            Place::Synthetic { dir, standin } => View::Synthetic {
                declared: names(dir),
                standin,
            },
            Place::Real(r) => View::Real(real_node(table, r)),
            Place::BeneathLink { .. } | Place::Absent => return Err(Error::NotFound),
        })
    }

    fn node_of(&self, ino: u64) -> Result<(Vec<OsString>, View)> {
        let comps = self.components(ino)?;
        let table = self.table.snapshot();
        let node = self.node(&table, &comps)?;
        Ok((comps, node))
    }

    fn stat_real(&self, r: &RealView) -> Result<Metadata> {
        let m = if r.tree_root {
            sys::at_path(&r.path, |p| std::fs::metadata(p))
        } else {
            sys::at_path(&r.path, |p| std::fs::symlink_metadata(p))
        };
        m.map_err(Error::Os)
    }

    fn key_for<'a>(meta: &Metadata, r: &'a RealView) -> Key<'a> {
        if meta.is_dir() {
            Key::RealDir {
                dev: meta.dev(),
                ino: meta.ino(),
                tree: match &r.tree {
                    Tree::Base => None,
                    Tree::Entry(path) => Some(path),
                },
            }
        } else {
            Key::Real {
                dev: meta.dev(),
                ino: meta.ino(),
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
                let meta = self.stat_real(r)?;
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

/// A real object's attributes under the overlay's inode number.
fn real_attr(ino: u64, m: &Metadata) -> Attr {
    Attr {
        ino,
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        kind: Kind::from_mode(m.mode()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        class: Class::Real,
    }
}

/// The local filesystems as the decision layer sees them (long paths walked like every other
/// real path).
#[derive(Debug)]
struct Local;

impl Host for Local {
    fn probe(&self, path: &Path, follow: bool) -> Option<Found> {
        let m = if follow {
            sys::at_path(path, |p| std::fs::metadata(p))
        } else {
            sys::at_path(path, |p| std::fs::symlink_metadata(p))
        };
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

/// What the overlay keeps of a real place for the rest of a request (and for open directories).
fn real_node(table: &Table, r: place::Real<'_>) -> RealView {
    RealView {
        root: r.root.to_path_buf(),
        tree: match r.via {
            Some(e) => Tree::Entry(e.path.to_string()),
            None => Tree::Base,
        },
        read_only: r.read_only,
        entry: r.entry().cloned(),
        declared: r.declared.map(names).unwrap_or_default(),
        tree_root: r.tree_root,
        counters: r.via.and_then(|e| table.counters(e)).cloned(),
        path: r.real,
    }
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
