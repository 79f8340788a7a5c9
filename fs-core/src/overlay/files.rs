//! Open files: open, create, read, write, sync, allocate, seek and copy ranges.

use super::*;

impl Overlay {
    fn register(
        &self,
        file: File,
        ino: u64,
        counters: Option<Arc<EntryCounters>>,
    ) -> Result<(u64, Arc<Handle>)> {
        let owner = crate::creds::acting_uid();
        self.quota.take(owner)?;
        if let Some(c) = &counters {
            c.hit();
        }
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let h = Arc::new(Handle {
            file,
            ino,
            owner,
            counters,
        });
        self.handles.write().insert(fh, h.clone());
        Ok((fh, h))
    }

    /// open: the real file, opened with the caller's flags except O_DIRECT: requests reach the
    /// daemon in buffers with no alignment, which O_DIRECT would refuse (EINVAL). The kernel
    /// still gives the caller direct I/O, and with passthrough opens the backing file itself with
    /// the caller's flags.
    ///
    /// # Errors
    /// ReadOnly for writes to read-only nodes; the OS error otherwise.
    pub fn open(&self, ino: u64, flags: i32) -> Result<(u64, Arc<Handle>)> {
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let (_, node) = match self.node_of(ino) {
            Ok(n) => n,
            // The kernel's inode lost its last name (replaced by a rename through the mount):
            // a reader that resolved it first opens it, as natively; otherwise the kernel looks
            // the path up again rather than failing the open.
            Err(Error::NotFound) => match self.held.lock().get(ino) {
                Some(fd) if !writes => {
                    let file = sys::open(&beneath::fd_path(&*fd), open_flags(flags), 0)?;
                    return self.register(file, ino, None);
                }
                _ => return Err(stale()),
            },
            Err(e) => return Err(e),
        };
        let r = match node {
            View::Real(r) => r,
            View::Synthetic { .. } => return Err(Error::IsADirectory),
            View::Link { .. } => {
                return Err(Error::Os(std::io::Error::from_raw_os_error(libc::ELOOP)))
            }
        };
        if writes && r.read_only {
            return Err(Error::ReadOnly);
        }
        let flags = open_flags(flags);
        // The kernel opens an inode it resolved, never a symlink: the name opened without
        // following a symlink (it could reach another file, or this mount itself) if it still
        // holds that inode, or else the file held since the lookup.
        let opened = match self.open_verified(ino, &r, flags) {
            // The name no longer holds that file: the one held since the lookup is opened.
            Err(e) if is_stale(&e) => match self.held.lock().get(ino) {
                Some(fd) => sys::open(&beneath::fd_path(&*fd), flags, 0).map_err(Error::Os),
                None => Err(e),
            },
            opened => opened,
        };
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                if let Some(c) = &r.counters {
                    c.failed(&e);
                }
                return Err(e);
            }
        };
        self.register(file, ino, r.counters.clone())
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
            Creation::In(r) => self.real_node_via(&table, r, Via::Itself(parent))?,
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
        let at = dir.dir()?;
        let path = at.join(name);
        let file = beneath::open_at(
            at.fd(),
            name.as_bytes(),
            (flags | libc::O_CREAT | libc::O_NOFOLLOW) & !(libc::O_NOCTTY | libc::O_DIRECT),
            mode,
        )
        .map(File::from)
        .map_err(|e| match e.raw_os_error() {
            // A symlink planted at the name since the kernel found it free.
            Some(libc::ELOOP) => stale(),
            _ => Error::Os(e),
        })?;
        if let Err(e) = self.own(&path, &dir, caller) {
            log::warn!(
                "cannot give {} to uid {}: {e}",
                dir.real.join(name).display(),
                caller.uid
            );
        }
        let meta = meta_of(&file)?;
        let ino = self.intern(Self::key_for(&meta, &dir.tree), parent, name, true)?;
        if let Ok(fd) =
            beneath::open_at(at.fd(), name.as_bytes(), libc::O_PATH | libc::O_NOFOLLOW, 0)
        {
            if beneath::identity(&fd).ok() == Some((meta.dev, meta.ino)) {
                self.held.lock().hold(ino, fd, false, &dir.tree);
            }
        }
        let (fh, h) = self.register(file, ino, dir.counters.clone())?;
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
            super::attrs::kill_suidgid(&h.file, w)?;
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
        let h = self.handles.write().remove(&fh);
        if let Some(h) = &h {
            self.quota.give_back(h.owner);
        }
        h
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
}

/// The caller's open flags as the daemon opens with them: without O_DIRECT (requests reach the
/// daemon in unaligned buffers), and without what only applies to resolving or making a name.
fn open_flags(flags: i32) -> i32 {
    flags & !(libc::O_NOFOLLOW | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_DIRECT)
}

fn is_stale(e: &Error) -> bool {
    matches!(e, Error::Os(e) if e.raw_os_error() == Some(libc::ESTALE))
}
