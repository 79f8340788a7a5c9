//! The namespace: lookups, forgetting, making and removing names, renames and hard links.

use super::*;

/// Which looked-up objects keep a descriptor (identity) from their lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    All,
    Dirs,
}

impl Overlay {
    /// Looks `name` up in `parent` and counts a lookup on the result.
    ///
    /// # Errors
    /// NotFound when the name does not exist; the OS error of the real stat otherwise.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        self.lookup_counted(parent, name, Hold::All)
    }

    /// [`Overlay::lookup`] for an entry of a listing (READDIRPLUS): a walk sees every file
    /// once, so files keep no descriptor until a program looks one up by name (directories
    /// do, for the walk beneath them).
    ///
    /// # Errors
    /// As [`Overlay::lookup`].
    pub fn lookup_listed(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        self.lookup_counted(parent, name, Hold::Dirs)
    }

    fn lookup_counted(&self, parent: u64, name: &OsStr, hold: Hold) -> Result<Attr> {
        check_name(name)?;
        let mut comps = self.components(parent)?;
        comps.push(name.to_owned());
        let table = self.table.snapshot();
        let node = self.node_via(&table, &comps, Via::Parent(parent))?;
        drop(table);
        let counters = node.counters().cloned();
        let result = self.intern_view(parent, name, &comps, &node, true, hold);
        if let Some(c) = counters {
            c.hit();
            if let Err(e) = &result {
                c.failed(e);
            }
        }
        result
    }

    fn intern_view(
        &self,
        parent: u64,
        name: &OsStr,
        comps: &[OsString],
        node: &View,
        count: bool,
        hold: Hold,
    ) -> Result<Attr> {
        match node {
            // A name looked up by a program: opened (O_PATH) once, its status read through
            // that descriptor, which it then keeps as its identity.
            View::Real(r) if hold == Hold::All => {
                let flags = libc::O_PATH | if r.tree_root { 0 } else { libc::O_NOFOLLOW };
                let fd = Self::open_real(r, flags).map_err(walked)?;
                let meta = Meta::from(&beneath::stat_at(fd.as_fd(), b"", false)?);
                let ino = self.intern(Self::key_for(&meta, &r.tree), parent, name, count)?;
                if (meta.is_dir() || meta.is_file()) && !self.held.lock().holds(ino) {
                    self.keep(ino, r, fd.into(), &meta);
                }
                Ok(real_attr(ino, &meta))
            }
            View::Real(r) => {
                let meta = self.stat_real(r)?;
                let ino = self.intern(Self::key_for(&meta, &r.tree), parent, name, count)?;
                if meta.is_dir() && !self.held.lock().holds(ino) {
                    self.hold(ino, r, &meta);
                }
                Ok(real_attr(ino, &meta))
            }
            View::Link { .. } | View::Synthetic { .. } => {
                let is_link = matches!(node, View::Link { .. });
                let ino = self.intern(Key::Virtual(comps, is_link), parent, name, count)?;
                self.attr_of(ino, node)
            }
        }
    }

    /// Keeps a descriptor of the regular file `r` names as the inode `ino`, if it still is the
    /// file `meta` describes.
    pub(super) fn hold(&self, ino: u64, r: &RealView, meta: &Meta) {
        let flags = libc::O_PATH | if r.tree_root { 0 } else { libc::O_NOFOLLOW };
        let Ok(f) = Self::open_real(r, flags) else {
            return;
        };
        if beneath::identity(&f).ok() == Some((meta.dev, meta.ino)) {
            self.keep(ino, r, f.into(), meta);
        }
    }

    /// Keeps `fd`, open on the object `r` names, as the identity of `ino`, and its file handle
    /// where the daemon may open by handle (CAP_DAC_READ_SEARCH).
    fn keep(&self, ino: u64, r: &RealView, fd: OwnedFd, meta: &Meta) {
        let mut held = self.held.lock();
        if crate::creds::switching() {
            held.identify(ino, &fd, &r.anchor, meta.is_dir(), &r.tree);
        }
        held.hold(ino, fd, meta.is_dir(), &r.tree);
    }

    /// Drops `n` lookups of `ino`; the inode goes at zero.
    pub fn forget(&self, ino: u64, n: u64) {
        // The table shrinks after a big forget: give the memory back, outside the lock, so the
        // daemon's size follows what the kernel holds.
        let (shrunk, gone) = {
            let mut inodes = self.inodes.write();
            let shrunk = inodes.forget(ino, n);
            (shrunk, !inodes.contains(ino))
        };
        if gone {
            self.held.lock().drop_ino(ino);
        }
        if shrunk {
            sys::release_free_memory();
        }
    }

    /// The directory a new `name` is made in, as the decision layer places it.
    fn new_name(&self, parent: u64, name: &OsStr) -> Result<(Vec<OsString>, RealView, AtPath)> {
        let comps = self.components(parent)?;
        let table = self.table.snapshot();
        match place::creation(&table, &Local, &comps, name.as_bytes())? {
            Creation::In(r) => {
                let dir = self.real_node_via(&table, r, Via::Itself(parent))?;
                let path = dir.dir()?.join(name);
                Ok((comps, dir, path))
            }
            Creation::Declared => Err(Error::Exists),
        }
    }

    /// Gives a new object to the caller when the overlay runs as root for other users.
    pub(super) fn own(&self, path: &Path, dir: &RealView, caller: Caller) -> Result<()> {
        // A daemon that acts as its callers made the object theirs already.
        if !self.privileged || caller.uid == 0 || crate::creds::switching() {
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
        self.intern_view(parent, name, &c, &node, true, Hold::All)
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
    fn parent_for_removal(&self, parent: u64, name: &OsStr, what: &str) -> Result<RealView> {
        let comps = self.components(parent)?;
        let table = self.table.snapshot();
        let dir = place::removal(&table, &Local, &comps, name.as_bytes(), what)?;
        self.real_node_via(&table, dir, Via::Itself(parent))
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
        beneath::unlink_at(dir.dir()?.fd(), name.as_bytes(), false)?;
        self.drop_alias(parent, name);
        Ok(())
    }

    /// rmdir.
    ///
    /// # Errors
    /// DeclaredEntry for a declared entry; the OS error otherwise.
    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let dir = self.parent_for_removal(parent, name, "remove")?;
        beneath::unlink_at(dir.dir()?.fd(), name.as_bytes(), true)?;
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
                let (from, to) = (
                    self.real_node_via(&table, from, Via::Itself(parent))?,
                    self.real_node_via(&table, to, Via::Itself(newparent))?,
                );
                drop(table);
                let (from, to) = (from.dir()?, to.dir()?);
                sys::rename(&from.join(name), &to.join(newname), flags)?;
                if flags & libc::RENAME_EXCHANGE != 0 {
                    self.inodes
                        .write()
                        .exchange(parent, name, newparent, newname);
                } else {
                    self.move_alias(parent, name, newparent, newname);
                }
            }
            RenamePlan::ReplaceTarget { from, entry } => {
                let target = entry.target.clone();
                let from = self.real_node_via(&table, from, Via::Itself(parent))?;
                drop(table);
                let from = from.dir()?;
                replace_target(&from.join(name), &target)?;
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
        let (src, dir) = (
            self.real_node(&table, src.clone())?,
            self.real_node_via(&table, dir, Via::Itself(newparent))?,
        );
        drop(table);
        sys::link(&src.path, &dir.dir()?.join(newname))?;
        self.created(newparent, newname, &dir_comps)
    }
}

/// An editor's atomic save onto a transparent file entry: `src` replaces `target`. Across
/// filesystems it copies beside the target first, so the replacement stays atomic there: into a
/// new file of a name nobody can have planted anything at (`O_CREAT | O_EXCL` never follows a
/// link, and a taken name is skipped), made with the caller's credentials like the rest of the
/// request.
fn replace_target(src: &Path, target: &Path) -> Result<()> {
    match sys::rename(src, target, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        other => return other.map_err(Error::Os),
    }
    let dir = target.parent().ok_or(Error::CrossDevice)?;
    let stem = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut from = sys::open(src, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
    let mode = from.metadata()?.mode() & 0o7777;
    let (tmp, mut to) = (0..16)
        .find_map(|_| {
            let tmp = dir.join(format!(".{stem}.redirfs-save-{:016x}", unguessable()));
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            match sys::open(&tmp, flags, mode) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => None,
                r => Some(r.map(|f| (tmp, f))),
            }
        })
        .unwrap_or_else(|| Err(std::io::Error::from_raw_os_error(libc::EEXIST)))?;
    let result = (|| -> std::io::Result<()> {
        std::io::copy(&mut from, &mut to)?;
        sys::fchmod(&to, mode)?;
        to.sync_all()?;
        sys::rename(&tmp, target, 0)?;
        sys::unlink(src)
    })();
    if result.is_err() {
        let _ = sys::unlink(&tmp);
    }
    result.map_err(Error::Os)
}

/// 64 bits no other process can predict: the standard library's per-process random hash keys,
/// over the time and a counter.
fn unguessable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
