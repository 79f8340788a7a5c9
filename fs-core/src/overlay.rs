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

/// The root inode's number.
pub const ROOT_INO: u64 = 1;

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
    node: Node,
    listing: parking_lot::Mutex<Option<Arc<Vec<DirEntry>>>>,
}

/// What an xattr call applies to.
#[derive(Debug)]
enum XattrAt {
    Node(Node),
    /// A file unlinked while open, through one of its descriptors.
    Open(Arc<Handle>),
}

/// Which real tree a node is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tree {
    Base,
    Entry(String),
}

/// What a virtual path is right now.
#[derive(Debug, Clone)]
enum Node {
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
    Real(RealNode),
}

#[derive(Debug, Clone)]
struct RealNode {
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

impl Node {
    fn counters(&self) -> Option<&Arc<EntryCounters>> {
        match self {
            Node::Link { counters, .. } => counters.as_ref(),
            Node::Real(r) => r.counters.as_ref(),
            Node::Synthetic { .. } => None,
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

    fn node(&self, table: &Table, comps: &[OsString]) -> Result<Node> {
        Ok(match place::classify(table, &Local, comps) {
            Place::Link(entry) => Node::Link {
                text: entry.target.clone(),
                counters: table.counters(entry).cloned(),
            },
            Place::Synthetic { dir, standin } => Node::Synthetic {
                declared: names(dir),
                standin,
            },
            Place::Real(r) => Node::Real(real_node(table, r)),
            Place::BeneathLink { .. } | Place::Absent => return Err(Error::NotFound),
        })
    }

    fn node_of(&self, ino: u64) -> Result<(Vec<OsString>, Node)> {
        let comps = self.components(ino)?;
        let table = self.table.snapshot();
        let node = self.node(&table, &comps)?;
        Ok((comps, node))
    }

    fn stat_real(&self, r: &RealNode) -> Result<Metadata> {
        let m = if r.tree_root {
            sys::at_path(&r.path, |p| std::fs::metadata(p))
        } else {
            sys::at_path(&r.path, |p| std::fs::symlink_metadata(p))
        };
        m.map_err(Error::Os)
    }

    fn key_for<'a>(meta: &Metadata, r: &'a RealNode) -> Key<'a> {
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

    fn attr_of(&self, ino: u64, node: &Node) -> Result<Attr> {
        match node {
            Node::Link { text, .. } => {
                Ok(self.virtual_attr(ino, Kind::Symlink, text.as_os_str().len() as u64))
            }
            Node::Synthetic { declared, standin } => {
                let mut a = self.virtual_attr(ino, Kind::Dir, 0);
                a.nlink = 2 + declared.len() as u32;
                if *standin {
                    a.class = Class::Real;
                }
                Ok(a)
            }
            Node::Real(r) => {
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

    /// Looks `name` up in `parent` and counts a lookup on the result.
    ///
    /// # Errors
    /// NotFound when the name does not exist; the OS error of the real stat otherwise.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        self.lookup_counted(parent, name, true)
    }

    fn lookup_counted(&self, parent: u64, name: &OsStr, count: bool) -> Result<Attr> {
        check_name(name)?;
        let mut comps = self.components(parent)?;
        comps.push(name.to_owned());
        let table = self.table.snapshot();
        let node = self.node(&table, &comps)?;
        drop(table);
        let counters = node.counters().cloned();
        let result = self.intern_node(parent, name, &comps, &node, count);
        if let Some(c) = counters {
            c.hit();
            if matches!(&result, Err(e) if !matches!(e, Error::NotFound)) {
                c.error();
            }
        }
        result
    }

    fn intern_node(
        &self,
        parent: u64,
        name: &OsStr,
        comps: &[OsString],
        node: &Node,
        count: bool,
    ) -> Result<Attr> {
        match node {
            Node::Real(r) => {
                let meta = self.stat_real(r)?;
                let ino = self.intern(Self::key_for(&meta, r), parent, name, count)?;
                Ok(real_attr(ino, &meta))
            }
            Node::Link { .. } | Node::Synthetic { .. } => {
                let is_link = matches!(node, Node::Link { .. });
                let ino = self.intern(Key::Virtual(comps, is_link), parent, name, count)?;
                self.attr_of(ino, node)
            }
        }
    }

    /// Drops `n` lookups of `ino`; the inode goes at zero.
    pub fn forget(&self, ino: u64, n: u64) {
        // The table shrinks after a big forget: give the memory back, outside the lock, so the
        // daemon's size follows what the kernel holds.
        let shrunk = self.inodes.write().forget(ino, n);
        if shrunk {
            sys::release_free_memory();
        }
    }

    fn handle(&self, fh: u64) -> Result<Arc<Handle>> {
        self.handles
            .read()
            .get(&fh)
            .cloned()
            .ok_or(Error::Os(std::io::Error::from_raw_os_error(libc::EBADF)))
    }

    /// The attributes of `ino` (through the open file `fh` when given).
    ///
    /// # Errors
    /// The OS error of the real stat.
    pub fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<Attr> {
        if let Some(h) = fh.and_then(|fh| self.handle(fh).ok()) {
            let meta = h.file.metadata()?;
            return Ok(real_attr(ino, &meta));
        }
        if ino == ROOT_INO {
            let table = self.table.snapshot();
            let node = self.node(&table, &[])?;
            return self.attr_of(ino, &node);
        }
        match self.node_of(ino) {
            Ok((_, node)) => self.attr_of(ino, &node),
            // Unlinked while open (fstat after unlink): the open file's attributes.
            Err(Error::NotFound) => match self.open_handle_of(ino) {
                Some(h) => Ok(real_attr(ino, &h.file.metadata()?)),
                None => Err(Error::NotFound),
            },
            Err(e) => Err(e),
        }
    }

    /// Any open handle of `ino`: what is left of a file unlinked while open.
    fn open_handle_of(&self, ino: u64) -> Option<Arc<Handle>> {
        self.handles.read().values().find(|h| h.ino == ino).cloned()
    }

    /// chmod, chown, truncate and utimens.
    ///
    /// # Errors
    /// ReadOnly on read-only nodes; the OS error otherwise.
    pub fn setattr(&self, ino: u64, fh: Option<u64>, set: &SetAttr) -> Result<Attr> {
        let mut h = fh.and_then(|fh| self.handle(fh).ok());
        let decided = self.components(ino).and_then(|comps| {
            let table = self.table.snapshot();
            place::writable(&place::classify(&table, &Local, &comps))
                .map(|r| real_node(&table, r.clone()))
        });
        let r = match decided {
            Ok(r) => Some(r),
            // Unlinked while open (fchmod, futimens after unlink): change it through a descriptor.
            Err(Error::NotFound) => {
                h = h.or_else(|| self.open_handle_of(ino));
                None
            }
            Err(e) => return Err(e),
        };
        let at = match (&h, &r) {
            (Some(h), _) => At::Fd(&h.file),
            (None, Some(r)) => At::Path(&r.path),
            (None, None) => return Err(Error::NotFound),
        };
        if let Some(mode) = set.mode {
            match at {
                At::Fd(f) => sys::fchmod(f, mode & 0o7777)?,
                At::Path(p) => sys::chmod(p, mode & 0o7777)?,
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            match at {
                At::Fd(f) => sys::fchown(f, set.uid, set.gid)?,
                At::Path(p) => sys::lchown(p, set.uid, set.gid)?,
            }
        }
        if let Some(size) = set.size {
            match at {
                At::Fd(f) => f.set_len(size)?,
                At::Path(p) => sys::truncate(p, size)?,
            }
        }
        if let (Some(w), None) = (set.kill_suidgid, set.mode) {
            match at {
                At::Fd(f) => kill_suidgid(f, w)?,
                At::Path(p) => {
                    let meta = sys::at_path(p, |p| std::fs::symlink_metadata(p))?;
                    if let Some(mode) = mode_without_privileges(&meta, w) {
                        sys::chmod(p, mode)?;
                    }
                }
            }
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let a = set.atime.unwrap_or(SetTime::Omit);
            let m = set.mtime.unwrap_or(SetTime::Omit);
            match at {
                At::Fd(f) => sys::futimens(f, a, m)?,
                At::Path(p) => sys::utimens(p, a, m)?,
            }
        }
        if let At::Fd(f) = at {
            return Ok(real_attr(ino, &f.metadata()?));
        }
        match r {
            Some(r) => self.attr_of(ino, &Node::Real(r)),
            None => Err(Error::NotFound),
        }
    }

    /// The text of a symlink.
    ///
    /// A relative link stored in a real tree whose text climbs above the tree's root is answered
    /// with the absolute real path it names, so it reaches the same file it reaches on disk
    /// rather than whatever the mount holds at that place.
    ///
    /// # Errors
    /// InvalidArgument when the node is not a symlink.
    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let (_, node) = self.node_of(ino)?;
        match node {
            Node::Link { text, .. } => Ok(text.into_os_string().into_vec()),
            Node::Synthetic { .. } => Err(Error::InvalidArgument),
            Node::Real(r) => {
                if r.entry.is_some() {
                    return Err(Error::InvalidArgument);
                }
                let text = sys::at_path(&r.path, |p| std::fs::read_link(p))?;
                Ok(rewrite_link(&r, &text).into_os_string().into_vec())
            }
        }
    }

    /// The directory a new `name` is made in, as the decision layer places it.
    fn new_name(&self, parent: u64, name: &OsStr) -> Result<(Vec<OsString>, RealNode, PathBuf)> {
        let comps = self.components(parent)?;
        let table = self.table.snapshot();
        match place::creation(&table, &Local, &comps, name.as_bytes())? {
            Creation::In(r) => {
                let dir = real_node(&table, r);
                let path = dir.path.join(name);
                Ok((comps, dir, path))
            }
            Creation::Declared => Err(Error::Exists),
        }
    }

    /// Gives a new object to the caller when the overlay runs as root for other users.
    fn own(&self, path: &Path, dir: &RealNode, caller: Caller) -> Result<()> {
        if !self.privileged || caller.uid == 0 {
            return Ok(());
        }
        let setgid_dir = sys::at_path(&dir.path, |p| std::fs::metadata(p))
            .map(|m| m.mode() & libc::S_ISGID != 0)
            .unwrap_or(false);
        let gid = if setgid_dir { None } else { Some(caller.gid) };
        sys::lchown(path, Some(caller.uid), gid)?;
        Ok(())
    }

    fn created(&self, parent: u64, name: &OsStr, comps: &[OsString]) -> Result<Attr> {
        let mut c = comps.to_vec();
        c.push(name.to_owned());
        let table = self.table.snapshot();
        let node = self.node(&table, &c)?;
        drop(table);
        self.intern_node(parent, name, &c, &node, true)
    }

    /// mknod: regular files, fifos, sockets and devices.
    ///
    /// # Errors
    /// The OS error.
    pub fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u64,
        caller: Caller,
    ) -> Result<Attr> {
        let (comps, dir, path) = self.new_name(parent, name)?;
        sys::mknod(&path, mode, rdev)?;
        self.own(&path, &dir, caller)?;
        self.created(parent, name, &comps)
    }

    /// mkdir.
    ///
    /// # Errors
    /// The OS error.
    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32, caller: Caller) -> Result<Attr> {
        let (comps, dir, path) = self.new_name(parent, name)?;
        sys::mkdir(&path, mode)?;
        self.own(&path, &dir, caller)?;
        self.created(parent, name, &comps)
    }

    /// symlink: a real link holding `text`.
    ///
    /// # Errors
    /// The OS error.
    pub fn symlink(&self, parent: u64, name: &OsStr, text: &Path, caller: Caller) -> Result<Attr> {
        let (comps, dir, path) = self.new_name(parent, name)?;
        sys::symlink(text.as_os_str(), &path)?;
        self.own(&path, &dir, caller)?;
        self.created(parent, name, &comps)
    }

    /// The real directory `name` is removed or renamed from, as the decision layer allows.
    fn parent_for_removal(&self, parent: u64, name: &OsStr, what: &str) -> Result<RealNode> {
        let comps = self.components(parent)?;
        let table = self.table.snapshot();
        let dir = place::removal(&table, &Local, &comps, name.as_bytes(), what)?;
        Ok(real_node(&table, dir))
    }

    /// Drops the alias (parent, name) from whatever inode holds it.
    fn drop_alias(&self, parent: u64, name: &OsStr) {
        self.inodes.write().unbind(parent, name);
    }

    /// Moves the alias (parent, name) to (newparent, newname), replacing that name.
    fn move_alias(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr) {
        self.inodes.write().rename(parent, name, newparent, newname);
    }

    /// unlink.
    ///
    /// # Errors
    /// DeclaredEntry for a declared entry; the OS error otherwise.
    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        let dir = self.parent_for_removal(parent, name, "delete")?;
        sys::unlink(&dir.path.join(name))?;
        self.drop_alias(parent, name);
        Ok(())
    }

    /// rmdir.
    ///
    /// # Errors
    /// DeclaredEntry for a declared entry; the OS error otherwise.
    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let dir = self.parent_for_removal(parent, name, "remove")?;
        sys::rmdir(&dir.path.join(name))?;
        self.drop_alias(parent, name);
        Ok(())
    }

    /// rename with RENAME_NOREPLACE / RENAME_EXCHANGE flags.
    ///
    /// Renaming onto a `transparent` file entry (an editor's atomic save) replaces the target's
    /// file and keeps the redirection; across filesystems it copies beside the target first, so
    /// the replacement stays atomic there.
    ///
    /// # Errors
    /// DeclaredEntry when an entry itself would move or vanish; CrossDevice between trees.
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<()> {
        let flags_seen = RenameFlags {
            noreplace: flags & libc::RENAME_NOREPLACE != 0,
            exchange: flags & libc::RENAME_EXCHANGE != 0,
            whiteout: flags & libc::RENAME_WHITEOUT != 0,
        };
        let (from_dir, to_dir) = (self.components(parent)?, self.components(newparent)?);
        let table = self.table.snapshot();
        let plan = place::rename(
            &table,
            &Local,
            (&from_dir, name.as_bytes()),
            (&to_dir, newname.as_bytes()),
            flags_seen,
        )?;
        match plan {
            RenamePlan::Within { from, to } => {
                let (from, to) = (from.real.join(name), to.real.join(newname));
                drop(table);
                sys::rename(&from, &to, flags)?;
                if flags & libc::RENAME_EXCHANGE != 0 {
                    self.inodes
                        .write()
                        .exchange(parent, name, newparent, newname);
                } else {
                    self.move_alias(parent, name, newparent, newname);
                }
            }
            RenamePlan::ReplaceTarget { from, entry } => {
                let (src, target) = (from.real.join(name), entry.target.clone());
                drop(table);
                replace_target(&src, &target)?;
                self.move_alias(parent, name, newparent, newname);
            }
        }
        Ok(())
    }

    /// link: a hard link within one tree.
    ///
    /// # Errors
    /// CrossDevice between trees; the OS error otherwise.
    pub fn link(&self, ino: u64, newparent: u64, newname: &OsStr) -> Result<Attr> {
        let (comps, dir_comps) = (self.components(ino)?, self.components(newparent)?);
        let table = self.table.snapshot();
        let src = place::classify(&table, &Local, &comps);
        let (src, dir) = place::hard_link(&table, &Local, &src, &dir_comps, newname.as_bytes())?;
        let (from, to) = (src.real.clone(), dir.real.join(newname));
        drop(table);
        sys::link(&from, &to)?;
        self.created(newparent, newname, &dir_comps)
    }

    fn register(
        &self,
        file: File,
        ino: u64,
        counters: Option<Arc<EntryCounters>>,
    ) -> (u64, Arc<Handle>) {
        if let Some(c) = &counters {
            c.hit();
        }
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let h = Arc::new(Handle {
            file,
            ino,
            counters,
        });
        self.handles.write().insert(fh, h.clone());
        (fh, h)
    }

    /// open: the real file, opened with the caller's flags except O_DIRECT: requests reach the
    /// daemon in buffers with no alignment, which O_DIRECT would refuse (EINVAL). The kernel
    /// still gives the caller direct I/O, and with passthrough opens the backing file itself with
    /// the caller's flags.
    ///
    /// # Errors
    /// ReadOnly for writes to read-only nodes; the OS error otherwise.
    pub fn open(&self, ino: u64, flags: i32) -> Result<(u64, Arc<Handle>)> {
        let (_, node) = self.node_of(ino)?;
        let r = match node {
            Node::Real(r) => r,
            Node::Synthetic { .. } => return Err(Error::IsADirectory),
            Node::Link { .. } => {
                return Err(Error::Os(std::io::Error::from_raw_os_error(libc::ELOOP)))
            }
        };
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        if writes && r.read_only {
            return Err(Error::ReadOnly);
        }
        let flags = flags
            & !(libc::O_NOFOLLOW | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_DIRECT);
        let file = match sys::open(&r.path, flags, 0) {
            Ok(f) => f,
            Err(e) => {
                if let Some(c) = &r.counters {
                    c.error();
                }
                return Err(Error::Os(e));
            }
        };
        Ok(self.register(file, ino, r.counters.clone()))
    }

    /// create: a new file, opened.
    ///
    /// # Errors
    /// The OS error (EEXIST with O_EXCL).
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Arc<Handle>)> {
        let comps = self.components(parent)?;
        let table = self.table.snapshot();
        let dir = match place::creation(&table, &Local, &comps, name.as_bytes())? {
            Creation::In(r) => real_node(&table, r),
            Creation::Declared => {
                drop(table);
                if flags & libc::O_EXCL != 0 {
                    return Err(Error::Exists);
                }
                // Opening a declared entry with O_CREAT: open what it is.
                let attr = self.lookup(parent, name)?;
                let (fh, h) = self.open(attr.ino, flags & !libc::O_CREAT)?;
                return Ok((attr, fh, h));
            }
        };
        drop(table);
        let path = dir.path.join(name);
        let file = sys::open(
            &path,
            (flags | libc::O_CREAT) & !(libc::O_NOCTTY | libc::O_DIRECT),
            mode,
        )?;
        if let Err(e) = self.own(&path, &dir, caller) {
            log::warn!("cannot give {} to uid {}: {e}", path.display(), caller.uid);
        }
        let meta = file.metadata()?;
        let r = RealNode {
            path,
            root: dir.root.clone(),
            tree: dir.tree.clone(),
            read_only: false,
            entry: None,
            declared: Vec::new(),
            tree_root: false,
            counters: dir.counters.clone(),
        };
        let ino = self.intern(Self::key_for(&meta, &r), parent, name, true)?;
        let counters = r.counters.clone();
        let (fh, h) = self.register(file, ino, counters);
        Ok((real_attr(ino, &meta), fh, h))
    }

    /// read at an offset.
    ///
    /// # Errors
    /// The OS error.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let h = self.handle(fh)?;
        let mut buf = vec![0u8; size as usize];
        let mut done = 0usize;
        while done < buf.len() {
            match h.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(c) = &h.counters {
                        c.error();
                    }
                    return Err(Error::Os(e));
                }
            }
        }
        buf.truncate(done);
        if let Some(c) = &h.counters {
            c.read(done as u64);
        }
        Ok(buf)
    }

    /// write at an offset.
    ///
    /// # Errors
    /// The OS error.
    /// With `kill_suidgid` (a writer without CAP_FSETID), the file first loses set-user-ID and
    /// set-group-ID as it would on a local filesystem.
    pub fn write(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        kill_suidgid: Option<Writer>,
    ) -> Result<usize> {
        let h = self.handle(fh)?;
        if let Some(w) = kill_suidgid {
            self::kill_suidgid(&h.file, w)?;
        }
        let r = h.file.write_at(data, offset);
        if let Some(c) = &h.counters {
            match &r {
                Ok(n) => c.written(*n as u64),
                Err(_) => c.error(),
            }
        }
        Ok(r?)
    }

    /// flush: called at each close of a descriptor. Nothing is buffered here.
    ///
    /// # Errors
    /// EBADF for an unknown handle.
    pub fn flush(&self, fh: u64) -> Result<()> {
        self.handle(fh).map(|_| ())
    }

    /// fsync / fdatasync.
    ///
    /// # Errors
    /// The OS error.
    pub fn fsync(&self, fh: u64, datasync: bool) -> Result<()> {
        let h = self.handle(fh)?;
        Ok(sys::fsync(&h.file, datasync)?)
    }

    /// release: the last close.
    pub fn release(&self, fh: u64) -> Option<Arc<Handle>> {
        self.handles.write().remove(&fh)
    }

    /// fallocate.
    ///
    /// # Errors
    /// The OS error.
    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> Result<()> {
        let h = self.handle(fh)?;
        Ok(sys::fallocate(&h.file, mode, offset, len)?)
    }

    /// lseek, for SEEK_DATA and SEEK_HOLE.
    ///
    /// # Errors
    /// The OS error.
    pub fn lseek(&self, fh: u64, offset: i64, whence: i32) -> Result<i64> {
        let h = self.handle(fh)?;
        Ok(sys::lseek(&h.file, offset, whence)?)
    }

    /// copy_file_range between two open files.
    ///
    /// # Errors
    /// The OS error.
    pub fn copy_file_range(
        &self,
        fh_in: u64,
        off_in: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
        flags: u32,
    ) -> Result<usize> {
        let a = self.handle(fh_in)?;
        let b = self.handle(fh_out)?;
        Ok(sys::copy_file_range(
            &a.file, off_in, &b.file, off_out, len, flags,
        )?)
    }

    /// opendir. The listing is read at the first readdir (an `opendir` answered from the kernel's
    /// cache of listings costs no directory read) and kept until release, so offsets stay stable.
    ///
    /// # Errors
    /// NotADirectory for a declared link.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        let (comps, node) = if ino == ROOT_INO {
            let table = self.table.snapshot();
            (Vec::new(), self.node(&table, &[])?)
        } else {
            self.node_of(ino)?
        };
        if let Node::Link { .. } = node {
            return Err(Error::NotADirectory);
        }
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let dir = OpenDir {
            comps,
            node,
            listing: parking_lot::Mutex::new(None),
        };
        self.dirs.write().insert(fh, Arc::new(dir));
        Ok(fh)
    }

    /// The listing of the directory `node` at virtual path `comps`.
    fn list(&self, comps: &[OsString], node: &Node) -> Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        let declared = match node {
            Node::Synthetic { declared, .. } => declared.clone(),
            Node::Real(r) => {
                let rd = sys::at_path(&r.path, |p| std::fs::read_dir(p)).map_err(|e| {
                    if e.raw_os_error() == Some(libc::ENOTDIR) {
                        Error::NotADirectory
                    } else {
                        Error::Os(e)
                    }
                })?;
                for item in rd {
                    let item = item?;
                    let name = item.file_name();
                    if r.declared.contains(&name) {
                        continue;
                    }
                    let kind = item.file_type().map(|t| {
                        use std::os::unix::fs::FileTypeExt;
                        if t.is_dir() {
                            Kind::Dir
                        } else if t.is_symlink() {
                            Kind::Symlink
                        } else if t.is_fifo() {
                            Kind::Fifo
                        } else if t.is_socket() {
                            Kind::Socket
                        } else if t.is_char_device() {
                            Kind::CharDev
                        } else if t.is_block_device() {
                            Kind::BlockDev
                        } else {
                            Kind::File
                        }
                    });
                    let ino = {
                        use std::os::unix::fs::DirEntryExt;
                        item.ino()
                    };
                    entries.push(DirEntry {
                        name,
                        kind: kind.unwrap_or(Kind::File),
                        ino,
                    });
                }
                r.declared.clone()
            }
            Node::Link { .. } => return Err(Error::NotADirectory),
        };
        if !declared.is_empty() {
            let table = self.table.snapshot();
            for name in declared {
                let mut c = comps.to_vec();
                c.push(name.clone());
                // One broken entry never breaks the listing: it is left out and logged.
                let kind = match self.node(&table, &c) {
                    Ok(Node::Link { .. }) => Kind::Symlink,
                    Ok(Node::Synthetic { .. }) => Kind::Dir,
                    Ok(Node::Real(r)) => match self.stat_real(&r) {
                        Ok(m) => Kind::from_mode(m.mode()),
                        Err(Error::Os(e)) if r.entry.is_none() && not_found_is(&e) => Kind::Dir,
                        Err(e) => {
                            log::debug!("leaving {} out of a listing: {e}", r.path.display());
                            continue;
                        }
                    },
                    Err(_) => continue,
                };
                entries.push(DirEntry { name, kind, ino: 0 });
            }
        }
        Ok(entries)
    }

    /// The listing of an open directory, read at the first call.
    ///
    /// # Errors
    /// EBADF for an unknown handle; the OS error of reading the real directory.
    pub fn dir_entries(&self, fh: u64) -> Result<Arc<Vec<DirEntry>>> {
        let dir = self
            .dirs
            .read()
            .get(&fh)
            .cloned()
            .ok_or(Error::Os(std::io::Error::from_raw_os_error(libc::EBADF)))?;
        let mut listing = dir.listing.lock();
        if let Some(l) = &*listing {
            return Ok(l.clone());
        }
        let l = Arc::new(self.list(&dir.comps, &dir.node)?);
        *listing = Some(l.clone());
        Ok(l)
    }

    /// releasedir.
    pub fn releasedir(&self, fh: u64) {
        self.dirs.write().remove(&fh);
    }

    /// fsyncdir.
    ///
    /// # Errors
    /// The OS error.
    pub fn fsyncdir(&self, ino: u64, datasync: bool) -> Result<()> {
        let (_, node) = self.node_of_or_root(ino)?;
        if let Node::Real(r) = node {
            let f = sys::open(&r.path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
            sys::fsync(&f, datasync)?;
        }
        Ok(())
    }

    fn node_of_or_root(&self, ino: u64) -> Result<(Vec<OsString>, Node)> {
        if ino == ROOT_INO {
            let table = self.table.snapshot();
            return Ok((Vec::new(), self.node(&table, &[])?));
        }
        self.node_of(ino)
    }

    /// statfs of the real filesystem under the node.
    ///
    /// # Errors
    /// The OS error.
    pub fn statfs(&self, ino: u64) -> Result<StatFs> {
        let path = match self.node_of_or_root(ino) {
            Ok((_, Node::Real(r))) => r.path,
            _ => {
                let table = self.table.snapshot();
                table
                    .base()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("/"))
            }
        };
        Ok(sys::statvfs(&path)?)
    }

    /// The node an xattr call applies to, or, for a file unlinked while open (fgetxattr after
    /// unlink), one of its open descriptors.
    fn xattr_target(&self, ino: u64) -> Result<XattrAt> {
        match self.node_of_or_root(ino) {
            Ok((_, node)) => Ok(XattrAt::Node(node)),
            Err(Error::NotFound) => self
                .open_handle_of(ino)
                .map(XattrAt::Open)
                .ok_or(Error::NotFound),
            Err(e) => Err(e),
        }
    }

    /// getxattr; `user.redirfs.target` answers where the node really lives.
    ///
    /// # Errors
    /// ENODATA when absent; the OS error otherwise.
    pub fn getxattr(&self, ino: u64, name: &OsStr, size: u32) -> Result<Vec<u8>> {
        let at = self.xattr_target(ino)?;
        if name == TARGET_XATTR {
            let v = match at {
                XattrAt::Node(Node::Link { text, .. }) => text.into_os_string().into_vec(),
                XattrAt::Node(Node::Real(r)) => r.path.into_os_string().into_vec(),
                XattrAt::Node(Node::Synthetic { .. }) | XattrAt::Open(_) => return Err(no_data()),
            };
            return xattr_reply(v, size);
        }
        match at {
            XattrAt::Node(Node::Real(r)) => Ok(sys::getxattr(&r.path, name, size as usize)?),
            XattrAt::Open(h) => Ok(sys::fgetxattr(&h.file, name, size as usize)?),
            XattrAt::Node(_) => Err(no_data()),
        }
    }

    /// listxattr: the real object's attributes only. `user.redirfs.target` answers when asked by
    /// name but is not listed: programs that copy every listed attribute (`cp -a`, `rsync -X`,
    /// `tar --xattrs`) would otherwise stamp a stale location on their copies, and fail to set it
    /// when copying into the mount.
    ///
    /// # Errors
    /// The OS error.
    pub fn listxattr(&self, ino: u64, size: u32) -> Result<Vec<u8>> {
        let list = match self.xattr_target(ino)? {
            XattrAt::Node(Node::Real(r)) => {
                let n = sys::listxattr(&r.path, 0)?.len();
                if n == 0 {
                    Vec::new()
                } else {
                    sys::listxattr(&r.path, n)?
                }
            }
            XattrAt::Open(h) => {
                let n = sys::flistxattr(&h.file, 0)?.len();
                if n == 0 {
                    Vec::new()
                } else {
                    sys::flistxattr(&h.file, n)?
                }
            }
            XattrAt::Node(_) => Vec::new(),
        };
        xattr_reply(list, size)
    }

    /// setxattr.
    ///
    /// # Errors
    /// EPERM for `user.redirfs.target`; the OS error otherwise.
    pub fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        if name == TARGET_XATTR {
            return Err(Error::Os(std::io::Error::from_raw_os_error(libc::EPERM)));
        }
        match self.xattr_target(ino)? {
            XattrAt::Node(Node::Real(r)) if r.read_only => Err(Error::ReadOnly),
            XattrAt::Node(Node::Real(r)) => Ok(sys::setxattr(&r.path, name, value, flags)?),
            XattrAt::Open(h) => Ok(sys::fsetxattr(&h.file, name, value, flags)?),
            XattrAt::Node(_) => Err(Error::Os(std::io::Error::from_raw_os_error(libc::EPERM))),
        }
    }

    /// removexattr.
    ///
    /// # Errors
    /// EPERM for `user.redirfs.target`; the OS error otherwise.
    pub fn removexattr(&self, ino: u64, name: &OsStr) -> Result<()> {
        if name == TARGET_XATTR {
            return Err(Error::Os(std::io::Error::from_raw_os_error(libc::EPERM)));
        }
        match self.xattr_target(ino)? {
            XattrAt::Node(Node::Real(r)) if r.read_only => Err(Error::ReadOnly),
            XattrAt::Node(Node::Real(r)) => Ok(sys::removexattr(&r.path, name)?),
            XattrAt::Open(h) => Ok(sys::fremovexattr(&h.file, name)?),
            XattrAt::Node(_) => Err(no_data()),
        }
    }

    /// access.
    ///
    /// # Errors
    /// EACCES or EROFS as the real object would answer.
    pub fn access(&self, ino: u64, mask: i32) -> Result<()> {
        match self.node_of_or_root(ino)?.1 {
            Node::Real(r) => {
                if mask & libc::W_OK != 0 && r.read_only {
                    return Err(Error::ReadOnly);
                }
                Ok(sys::access(&r.path, mask)?)
            }
            Node::Synthetic { .. } if mask & libc::W_OK != 0 => Err(Error::ReadOnly),
            Node::Synthetic { .. } | Node::Link { .. } => Ok(()),
        }
    }
}

/// The mode a regular file keeps once a write by `w` has dropped its privileges, by Linux's rules
/// for a caller without CAP_FSETID: set-user-ID goes; set-group-ID goes when the file is
/// group-executable, or when `w` is not in the file's group. `None` when nothing changes.
fn mode_without_privileges(meta: &Metadata, w: Writer) -> Option<u32> {
    if !meta.file_type().is_file() {
        return None;
    }
    let mode = meta.mode() & 0o7777;
    let mut kept = mode & !libc::S_ISUID;
    if mode & libc::S_ISGID != 0
        && (mode & libc::S_IXGRP != 0
            || (meta.gid() != w.gid && !sys::process_in_group(w.pid, meta.gid())))
    {
        kept &= !libc::S_ISGID;
    }
    (kept != mode).then_some(kept)
}

/// Drops the privileges of the open file `f` as a write by `w` would.
fn kill_suidgid(f: &File, w: Writer) -> Result<()> {
    if let Some(mode) = mode_without_privileges(&f.metadata()?, w) {
        sys::fchmod(f, mode)?;
    }
    Ok(())
}

fn no_data() -> Error {
    Error::Os(std::io::Error::from_raw_os_error(libc::ENODATA))
}

fn xattr_reply(v: Vec<u8>, size: u32) -> Result<Vec<u8>> {
    if size == 0 {
        return Ok(vec![0u8; v.len()]);
    }
    if v.len() > size as usize {
        return Err(Error::Os(std::io::Error::from_raw_os_error(libc::ERANGE)));
    }
    Ok(v)
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
fn real_node(table: &Table, r: place::Real<'_>) -> RealNode {
    RealNode {
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

/// An editor's atomic save onto a transparent file entry: `src` replaces `target`. Across
/// filesystems it copies beside the target first, so the replacement stays atomic there.
fn replace_target(src: &Path, target: &Path) -> Result<()> {
    match sys::rename(src, target, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let dir = target.parent().ok_or(Error::CrossDevice)?;
            let tmp = dir.join(format!(
                ".{}.redirfs-save-{}",
                target
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let result = (|| -> std::io::Result<()> {
                sys::at_path(src, |p| std::fs::copy(p, &tmp))?;
                let f = File::open(&tmp)?;
                f.sync_all()?;
                sys::rename(&tmp, target, 0)?;
                sys::unlink(src)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result.map_err(Error::Os)
        }
        Err(e) => Err(Error::Os(e)),
    }
}

/// The text to show for a symlink stored at `r.path` holding `text`: unchanged unless it is
/// relative and climbs above the root of its real tree, in which case the absolute real path.
fn rewrite_link(r: &RealNode, text: &Path) -> PathBuf {
    if text.is_absolute() || r.root.as_os_str().is_empty() {
        return text.to_path_buf();
    }
    let Some(dir) = r.path.parent() else {
        return text.to_path_buf();
    };
    let Ok(rel) = dir.strip_prefix(&r.root) else {
        return text.to_path_buf();
    };
    let mut depth = rel.components().count() as i64;
    for c in text.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return crate::decl::normalize_lexically(&dir.join(text));
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    text.to_path_buf()
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
