//! The fuser `Filesystem` over an fs-core [`Overlay`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs_core::creds::as_caller;
use fs_core::overlay::{Attr, Caller, Class, Handle, Kind, Overlay, SetAttr, Writer};
use fs_core::sys::SetTime;
use fs_core::Error;
use fuser::{
    AccessFlags, BackingId, BsdFileFlags, CopyFileRangeFlags, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};
use parking_lot::Mutex;

use crate::errno::errno_of;

/// Cache lifetimes and kernel features.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Attribute and entry lifetime for real objects, which others may change behind the mount.
    pub real_ttl: Duration,
    /// Lifetime for declared links and synthetic directories: they change only on reload, which
    /// invalidates them explicitly.
    pub declared_ttl: Duration,
    /// Lifetime of a cached "no such name".
    pub negative_ttl: Duration,
    /// Ask the kernel for passthrough I/O of open files (needs CAP_SYS_ADMIN, kernel >= 6.9).
    pub passthrough: bool,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            real_ttl: Duration::from_secs(1),
            declared_ttl: Duration::from_secs(24 * 3600),
            negative_ttl: Duration::from_secs(1),
            passthrough: true,
        }
    }
}

/// One backing file per inode while any handle of it is open: the kernel requires all
/// passthrough opens of an inode to share it, and refuses (EIO) an open without passthrough
/// while the inode has one. The kernel opens its own backing file per open file, with that
/// open's flags, from the backing's path, so one backing serves every access mode.
#[derive(Debug)]
struct Backing {
    id: BackingId,
    users: usize,
}

/// The overlay as a FUSE filesystem.
#[derive(Debug)]
pub struct FuseOverlay {
    overlay: Arc<Overlay>,
    tuning: Tuning,
    passthrough: Arc<AtomicBool>,
    backings: Mutex<HashMap<u64, Backing>>,
    /// fh -> inode, for handles that hold a passthrough backing.
    backed: Mutex<HashMap<u64, u64>>,
    /// The kernel agreed to FUSE_HANDLE_KILLPRIV_V2: clearing set-user-ID and set-group-ID after
    /// unprivileged writes, truncates and chowns is the daemon's job.
    killpriv: bool,
}

fn kind(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDev => FileType::CharDevice,
        Kind::BlockDev => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(st) => match st.duration_since(UNIX_EPOCH) {
            Ok(d) => SetTime::At(d.as_secs() as i64, i64::from(d.subsec_nanos())),
            Err(e) => {
                // fuser 0.18 turns the kernel's (tv_sec < 0, tv_nsec) into EPOCH - (-tv_sec, tv_nsec)
                // instead of EPOCH + tv_sec + tv_nsec: read the kernel's pair back out of it.
                let d = e.duration();
                SetTime::At(-(d.as_secs() as i64), i64::from(d.subsec_nanos()))
            }
        },
    })
}

/// The kernel's `__FMODE_EXEC` in FUSE open flags: the file is opened for execve.
const FMODE_EXEC: i32 = 0x20;

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

/// Runs a request body; a panic becomes EIO (the dropped reply sends it) instead of killing the
/// worker thread.
fn guarded(op: &str, body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        log::error!("{op}: internal error (panic); answered EIO");
    }
}

impl FuseOverlay {
    /// Wraps an overlay.
    pub fn new(overlay: Arc<Overlay>, tuning: Tuning) -> FuseOverlay {
        FuseOverlay {
            overlay,
            tuning,
            passthrough: Arc::new(AtomicBool::new(false)),
            backings: Mutex::new(HashMap::new()),
            backed: Mutex::new(HashMap::new()),
            killpriv: false,
        }
    }

    /// The overlay.
    pub fn overlay(&self) -> &Arc<Overlay> {
        &self.overlay
    }

    /// A shared view of whether passthrough I/O is on (it can go off when the kernel refuses it).
    pub fn passthrough_flag(&self) -> Arc<AtomicBool> {
        self.passthrough.clone()
    }

    /// Whether the kernel accepted passthrough I/O.
    pub fn passthrough_active(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }

    fn ttl(&self, a: &Attr) -> Duration {
        match a.class {
            Class::Real => self.tuning.real_ttl,
            Class::Declared => self.tuning.declared_ttl,
        }
    }

    fn entry(&self, reply: ReplyEntry, r: Result<Attr, Error>) {
        match r {
            Ok(a) => reply.entry(&self.ttl(&a), &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    fn empty(reply: ReplyEmpty, r: Result<(), Error>) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    /// Registers handle `fh` as a user of its inode's backing: the existing one, or a new one
    /// from `open_backing`. Returns whether the handle is backed; while it is, the backing stays
    /// in `self.backings` under `h.ino`.
    fn attach_backing(
        &self,
        fh: u64,
        h: &Handle,
        open_backing: impl FnOnce(&std::fs::File) -> std::io::Result<BackingId>,
    ) -> bool {
        let mut backings = self.backings.lock();
        // An inode with a backing stays in passthrough until its last handle is released, whatever
        // the new open's access mode and even if passthrough was switched off meanwhile.
        let b = match backings.entry(h.ino) {
            std::collections::hash_map::Entry::Occupied(b) => b.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                if !self.passthrough_active() {
                    return false;
                }
                match open_backing(&h.file) {
                    Ok(id) => slot.insert(Backing { id, users: 0 }),
                    Err(e) => {
                        if self.passthrough.swap(false, Ordering::Relaxed) {
                            log::warn!("the kernel refused passthrough I/O ({e}); serving file I/O from the daemon");
                        }
                        return false;
                    }
                }
            }
        };
        b.users += 1;
        self.backed.lock().insert(fh, h.ino);
        true
    }

    fn drop_backing(&self, fh: u64) {
        let Some(ino) = self.backed.lock().remove(&fh) else {
            return;
        };
        let mut backings = self.backings.lock();
        if let Some(b) = backings.get_mut(&ino) {
            b.users = b.users.saturating_sub(1);
            if b.users == 0 {
                backings.remove(&ino);
            }
        }
    }
}

/// Whether a SETATTR under FUSE_HANDLE_KILLPRIV_V2 asks the daemon to drop set-user-ID and
/// set-group-ID. The kernel says so with FATTR_KILL_SUIDGID on truncates by callers without
/// CAP_FSETID, which fuser 0.18 does not pass on: a truncate by anyone but root stands for it.
/// When a write, fallocate or chown(-1, -1) must drop them, the kernel's `file_remove_privs`
/// sends a SETATTR that changes nothing at all (with KILLPRIV_V2 it leaves the mode to the
/// daemon): that is the only SETATTR that comes empty.
fn kills_privileges(set: &SetAttr, uid: u32) -> bool {
    let empty = set.mode.is_none()
        && set.uid.is_none()
        && set.gid.is_none()
        && set.size.is_none()
        && set.atime.is_none()
        && set.mtime.is_none();
    empty || (set.size.is_some() && set.mode.is_none() && uid != 0)
}

fn writer(req: &Request) -> Writer {
    Writer {
        gid: req.gid(),
        pid: req.pid(),
    }
}

/// No FLUSH request at each close(): the daemon buffers nothing (writes reach the real file
/// before they are answered, or go to it directly under passthrough, and there is no writeback
/// cache), so a flush would only cost the closing program a round trip. Locks are the kernel's.
const NO_FLUSH: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

impl Filesystem for FuseOverlay {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        fs_core::sys::set_umask(0);
        // HANDLE_KILLPRIV_V2: the kernel then marks the superblock SB_NOSEC and stops asking for
        // security.capability before every write (one GETXATTR round trip per write() otherwise,
        // passthrough writes included); in exchange the daemon clears set-user-ID and set-group-ID
        // itself (see `write` and `setattr`). AUTO_INVAL_DATA: the kernel drops a file's cached
        // pages when it sees its size or mtime change, which lets opens keep the cache
        // (FOPEN_KEEP_CACHE) and directory listings be cached (FOPEN_CACHE_DIR).
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_MAX_PAGES
            | InitFlags::FUSE_HANDLE_KILLPRIV_V2
            | InitFlags::FUSE_AUTO_INVAL_DATA;
        let available = config.capabilities() & wanted;
        if available != wanted {
            log::info!("kernel lacks {:?}", wanted - available);
        }
        match config.add_capabilities(available) {
            Ok(()) => self.killpriv = available.contains(InitFlags::FUSE_HANDLE_KILLPRIV_V2),
            Err(refused) => log::info!("kernel refused {refused:?}"),
        }
        if self.tuning.passthrough
            && config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH)
            && fs_core::sys::geteuid() == 0
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.passthrough.store(true, Ordering::Relaxed);
            log::info!("kernel passthrough I/O on");
        }
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded("lookup", || match self.overlay.lookup(parent.0, name) {
            Err(Error::NotFound) => {
                // A cached negative entry: inode 0 with a lifetime.
                let a = FileAttr {
                    ino: INodeNo(0),
                    size: 0,
                    blocks: 0,
                    atime: SystemTime::UNIX_EPOCH,
                    mtime: SystemTime::UNIX_EPOCH,
                    ctime: SystemTime::UNIX_EPOCH,
                    crtime: SystemTime::UNIX_EPOCH,
                    kind: FileType::RegularFile,
                    perm: 0,
                    nlink: 0,
                    uid: 0,
                    gid: 0,
                    rdev: 0,
                    blksize: 0,
                    flags: 0,
                };
                reply.entry(&self.tuning.negative_ttl, &a, Generation(0));
            }
            r => self.entry(reply, r),
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        guarded("forget", || self.overlay.forget(ino.0, nlookup));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded("getattr", || {
            match self.overlay.getattr(ino.0, fh.map(|f| f.0)) {
                Ok(a) => reply.attr(&self.ttl(&a), &file_attr(&a)),
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded("setattr", || {
            let mut set = SetAttr {
                mode,
                uid,
                gid,
                size,
                atime: set_time(atime),
                mtime: set_time(mtime),
                kill_suidgid: None,
            };
            if self.killpriv && kills_privileges(&set, req.uid()) {
                set.kill_suidgid = Some(writer(req));
            }
            match as_caller(caller(req), || {
                self.overlay.setattr(ino.0, fh.map(|f| f.0), &set)
            }) {
                Ok(a) => reply.attr(&self.ttl(&a), &file_attr(&a)),
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        guarded("readlink", || match self.overlay.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno_of(&e)),
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        guarded("mknod", || {
            let who = caller(req);
            let r = as_caller(who, || {
                self.overlay
                    .mknod(parent.0, name, mode, u64::from(rdev), who)
            });
            self.entry(reply, r);
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        guarded("mkdir", || {
            let who = caller(req);
            let r = as_caller(who, || self.overlay.mkdir(parent.0, name, mode, who));
            self.entry(reply, r);
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded("unlink", || {
            let r = as_caller(caller(req), || self.overlay.unlink(parent.0, name));
            Self::empty(reply, r);
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded("rmdir", || {
            let r = as_caller(caller(req), || self.overlay.rmdir(parent.0, name));
            Self::empty(reply, r);
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        guarded("symlink", || {
            let who = caller(req);
            let r = as_caller(who, || {
                self.overlay.symlink(parent.0, link_name, target, who)
            });
            self.entry(reply, r);
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        guarded("rename", || {
            let r = as_caller(caller(req), || {
                self.overlay
                    .rename(parent.0, name, newparent.0, newname, flags.bits())
            });
            Self::empty(reply, r);
        });
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        guarded("link", || {
            let r = as_caller(caller(req), || {
                self.overlay.link(ino.0, newparent.0, newname)
            });
            self.entry(reply, r);
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded("open", || {
            // An open for execve (__FMODE_EXEC) needs only execute permission, which the kernel
            // has checked (default_permissions): the caller may lack the read permission an
            // O_RDONLY open as them would demand, so the daemon opens it as itself.
            let opened = if flags.0 & FMODE_EXEC != 0 {
                self.overlay.open(ino.0, flags.0 & !FMODE_EXEC)
            } else {
                as_caller(caller(req), || self.overlay.open(ino.0, flags.0))
            };
            match opened {
                Ok((fh, h)) => {
                    let fopen = NO_FLUSH;
                    let backed = self.attach_backing(fh, &h, |f| reply.open_backing(f));
                    let backings = self.backings.lock();
                    match backings.get(&h.ino) {
                        Some(b) if backed => reply.opened_passthrough(FileHandle(fh), fopen, &b.id),
                        // Served by the daemon: keep the kernel's page cache across opens, as a local
                        // file's; FUSE_AUTO_INVAL_DATA drops it when the file changes behind the mount.
                        _ => reply.opened(FileHandle(fh), fopen | FopenFlags::FOPEN_KEEP_CACHE),
                    }
                }
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        guarded("read", || match self.overlay.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno_of(&e)),
        });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let kill = (self.killpriv && write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID))
            .then(|| writer(req));
        guarded("write", || {
            match self.overlay.write(fh.0, offset, data, kill) {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        guarded("flush", || Self::empty(reply, self.overlay.flush(fh.0)));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        guarded("release", || {
            self.drop_backing(fh.0);
            self.overlay.release(fh.0);
            reply.ok();
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        guarded("fsync", || {
            Self::empty(reply, self.overlay.fsync(fh.0, datasync))
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        guarded("opendir", || {
            match as_caller(caller(req), || self.overlay.opendir(ino.0)) {
                // The kernel keeps listings in the directory's page cache and serves later reads of
                // it without asking: changes through the mount and reloads invalidate it, and with
                // FUSE_AUTO_INVAL_DATA a changed mtime (a change behind the mount) drops it too.
                Ok(fh) => reply.opened(
                    FileHandle(fh),
                    FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
                ),
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        guarded("readdir", || {
            let entries = match as_caller(caller(req), || self.overlay.dir_entries(fh.0)) {
                Ok(e) => e,
                Err(e) => return reply.error(errno_of(&e)),
            };
            let dots = [(".", ino.0), ("..", ino.0)];
            let total = entries.len() as u64 + 2;
            for i in offset..total {
                let full = if i < 2 {
                    let (n, ino) = dots[i as usize];
                    reply.add(INodeNo(ino), i + 1, FileType::Directory, n)
                } else {
                    let e = &entries[(i - 2) as usize];
                    reply.add(INodeNo(e.ino.max(1)), i + 1, kind(e.kind), &e.name)
                };
                if full {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        guarded("readdirplus", || {
            let entries = match as_caller(caller(req), || self.overlay.dir_entries(fh.0)) {
                Ok(e) => e,
                Err(e) => return reply.error(errno_of(&e)),
            };
            let total = entries.len() as u64 + 2;
            for i in offset..total {
                if i < 2 {
                    // The kernel takes no lookup reference for "." and "..".
                    let dir = match self.overlay.getattr(ino.0, None) {
                        Ok(a) => a,
                        Err(e) => return reply.error(errno_of(&e)),
                    };
                    let name = if i == 0 { "." } else { ".." };
                    if reply.add(
                        ino,
                        i + 1,
                        name,
                        &Duration::ZERO,
                        &file_attr(&dir),
                        Generation(0),
                    ) {
                        break;
                    }
                    continue;
                }
                let e = &entries[(i - 2) as usize];
                // A name that vanished since opendir is skipped, not an error for the listing.
                let Ok(a) = self.overlay.lookup_listed(ino.0, &e.name) else {
                    continue;
                };
                if reply.add(
                    INodeNo(a.ino),
                    i + 1,
                    &e.name,
                    &self.ttl(&a),
                    &file_attr(&a),
                    Generation(0),
                ) {
                    // Not added: give the lookup back.
                    self.overlay.forget(a.ino, 1);
                    break;
                }
            }
            reply.ok();
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        guarded("releasedir", || {
            self.overlay.releasedir(fh.0);
            reply.ok();
        });
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        guarded("fsyncdir", || {
            Self::empty(reply, self.overlay.fsyncdir(ino.0, datasync))
        });
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        guarded("statfs", || match self.overlay.statfs(ino.0) {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(errno_of(&e)),
        });
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        guarded("setxattr", || {
            let r = as_caller(caller(req), || {
                self.overlay.setxattr(ino.0, name, value, flags)
            });
            Self::empty(reply, r);
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        guarded("getxattr", || {
            match self.overlay.getxattr(ino.0, name, size) {
                Ok(v) if size == 0 => reply.size(v.len() as u32),
                Ok(v) => reply.data(&v),
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        guarded("listxattr", || match self.overlay.listxattr(ino.0, size) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(errno_of(&e)),
        });
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded("removexattr", || {
            let r = as_caller(caller(req), || self.overlay.removexattr(ino.0, name));
            Self::empty(reply, r);
        });
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        guarded("access", || {
            Self::empty(reply, self.overlay.access(ino.0, mask.bits()));
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        guarded("create", || {
            let who = caller(req);
            match as_caller(who, || {
                self.overlay.create(parent.0, name, mode, flags, who)
            }) {
                Ok((a, fh, h)) => {
                    let ttl = self.ttl(&a);
                    let attr = file_attr(&a);
                    let backed = self.attach_backing(fh, &h, |f| reply.open_backing(f));
                    let backings = self.backings.lock();
                    match backings.get(&h.ino) {
                        Some(b) if backed => reply.created_passthrough(
                            &ttl,
                            &attr,
                            Generation(0),
                            FileHandle(fh),
                            NO_FLUSH,
                            &b.id,
                        ),
                        _ => reply.created(
                            &ttl,
                            &attr,
                            Generation(0),
                            FileHandle(fh),
                            NO_FLUSH | FopenFlags::FOPEN_KEEP_CACHE,
                        ),
                    }
                }
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        guarded("fallocate", || {
            Self::empty(reply, self.overlay.fallocate(fh.0, offset, length, mode));
        });
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        guarded("lseek", || match self.overlay.lseek(fh.0, offset, whence) {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(errno_of(&e)),
        });
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        guarded("copy_file_range", || {
            match self.overlay.copy_file_range(
                fh_in.0,
                offset_in,
                fh_out.0,
                offset_out,
                len,
                flags.bits() as u32,
            ) {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(errno_of(&e)),
            }
        });
    }
}
