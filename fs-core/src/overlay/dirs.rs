//! Directories: opening, listing (real names masked by declared ones) and syncing.

use super::*;

impl Overlay {
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
        if let View::Link { .. } = node {
            return Err(Error::NotADirectory);
        }
        let owner = crate::creds::acting_uid();
        self.quota.take(owner)?;
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let dir = OpenDir {
            ino,
            owner,
            comps,
            node,
            listing: parking_lot::Mutex::new(None),
            charged: AtomicU64::new(0),
        };
        self.dirs.write().insert(fh, Arc::new(dir));
        Ok(fh)
    }

    /// The listing of the directory `node` at virtual path `comps`.
    fn list(&self, comps: &[OsString], node: &View, budget: usize) -> Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let declared = match node {
            View::Synthetic { declared, .. } => declared.clone(),
            View::Real(r) => {
                // As for files: a directory replaced by a symlink is not followed (out of its
                // tree, or into this mount).
                let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
                let rd =
                    Self::open_real(r, flags).and_then(|d| std::fs::read_dir(beneath::fd_path(&d)));
                let rd = rd.map_err(|e| {
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
                    bytes += entry_bytes(&name);
                    if bytes > budget {
                        // Past what the opener may hold: stop reading now rather than build a
                        // listing only to refuse it.
                        return Err(Error::Os(std::io::Error::from_raw_os_error(libc::ENOMEM)));
                    }
                    entries.push(DirEntry {
                        name,
                        kind: kind.unwrap_or(Kind::File),
                        ino,
                    });
                }
                r.declared.clone()
            }
            View::Link { .. } => return Err(Error::NotADirectory),
        };
        if !declared.is_empty() {
            let table = self.table.snapshot();
            for name in declared {
                let mut c = comps.to_vec();
                c.push(name.clone());
                // One broken entry never breaks the listing: it is left out and logged.
                let kind = match self.node(&table, &c) {
                    Ok(View::Link { .. }) => Kind::Symlink,
                    Ok(View::Synthetic { .. }) => Kind::Dir,
                    Ok(View::Real(r)) => match self.stat_real(&r) {
                        Ok(m) => Kind::from_mode(m.mode),
                        Err(Error::Os(e)) if r.entry.is_none() && not_found_is(&e) => Kind::Dir,
                        Err(e) => {
                            log::debug!("leaving {} out of a listing: {e}", r.real.display());
                            continue;
                        }
                    },
                    Err(_) => continue,
                };
                entries.push(DirEntry { name, kind, ino: 0 });
            }
        }
        entries.shrink_to_fit();
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
        let stamp = self.stamp(&dir.node);
        if let Some(stamp) = stamp {
            let shared = self.listings.lock();
            if let Some(l) = shared
                .get(&dir.ino)
                .filter(|s| s.stamp == stamp)
                .and_then(|s| s.listing.upgrade())
            {
                drop(shared);
                self.charge(&dir, &l)?;
                *listing = Some(l.clone());
                return Ok(l);
            }
        }
        let budget = self.quota.remaining(dir.owner);
        let l = match self.list(&dir.comps, &dir.node, budget) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                sys::release_free_memory();
                return Err(e);
            }
        };
        self.charge(&dir, &l)?;
        if let (Some(stamp), true) = (stamp, l.len() >= SHARED_LISTING) {
            let mut shared = self.listings.lock();
            if shared.len() > 256 {
                shared.retain(|_, s| s.listing.strong_count() > 0);
            }
            shared.insert(
                dir.ino,
                Shared {
                    stamp,
                    listing: Arc::downgrade(&l),
                },
            );
        }
        *listing = Some(l.clone());
        Ok(l)
    }

    /// Charges the listing `l` to the owner of the open directory `dir`: each user's open
    /// directories hold at most [`LISTING_BYTES_PER_USER`] of listings (ENOMEM past that), so
    /// nobody can grow the daemon without bound by holding directories open.
    fn charge(&self, dir: &OpenDir, l: &[DirEntry]) -> Result<()> {
        let bytes = listing_bytes(l);
        if let Err(e) = self.quota.charge(dir.owner, bytes) {
            // The refused listing goes now: give its memory back too.
            sys::release_free_memory();
            return Err(e);
        }
        dir.charged.store(bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    /// What a listing of `node` depends on, when it can be shared at all.
    fn stamp(&self, node: &View) -> Option<Stamp> {
        let View::Real(r) = node else {
            return None;
        };
        let m = self.stat_real(r).ok()?;
        let table = self.table.snapshot();
        Some((table_id(&table), m.mtime.0, m.mtime.1, m.ctime.0, m.ctime.1))
    }

    /// releasedir.
    pub fn releasedir(&self, fh: u64) {
        let dir = self.dirs.write().remove(&fh);
        if let Some(d) = dir {
            self.quota.give_back(d.owner);
            let charged = usize::try_from(d.charged.load(Ordering::Relaxed)).unwrap_or(0);
            self.quota.refund(d.owner, charged);
            let last = d
                .listing
                .lock()
                .as_ref()
                .is_some_and(|l| l.len() >= SHARED_LISTING && Arc::strong_count(l) == 1);
            drop(d);
            if last {
                // A big listing went: give its memory back.
                sys::release_free_memory();
            }
        }
    }

    /// fsyncdir.
    ///
    /// # Errors
    /// The OS error.
    pub fn fsyncdir(&self, ino: u64, datasync: bool) -> Result<()> {
        let (_, node) = self.node_of_or_root(ino)?;
        if let View::Real(r) = node {
            let f = Self::open_real(&r, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
            sys::fsync(&f, datasync)?;
        }
        Ok(())
    }
}
