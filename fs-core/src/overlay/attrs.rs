//! Attributes: stat, chmod/chown/truncate/utimens, readlink, statfs and access.

use super::*;

impl Overlay {
    /// The attributes of `ino` (through the open file `fh` when given).
    ///
    /// # Errors
    /// The OS error of the real stat.
    pub fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<Attr> {
        if let Some(h) = fh.and_then(|fh| self.handle(fh).ok()) {
            return Ok(real_attr(ino, &meta_of(&h.file)?));
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
                Some(h) => Ok(real_attr(ino, &meta_of(&h.file)?)),
                None => Err(Error::NotFound),
            },
            Err(e) => Err(e),
        }
    }

    /// chmod, chown, truncate and utimens.
    ///
    /// # Errors
    /// ReadOnly on read-only nodes; the OS error otherwise.
    pub fn setattr(&self, ino: u64, fh: Option<u64>, set: &SetAttr) -> Result<Attr> {
        let mut h = fh.and_then(|fh| self.handle(fh).ok());
        let decided = self.components(ino).and_then(|comps| {
            let table = self.table.snapshot();
            let r = place::writable(&place::classify(&table, &Local, &comps))?.clone();
            self.real_node_via(&table, r, Via::Itself(ino))
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
        // A change by name acts on the object the kernel asked about: opened (O_PATH) from its
        // verified parent without following a symlink, and only if it is still `ino`. Mode and
        // size go through `/proc/self/fd/N`, which reaches exactly that inode; owner and times
        // through the name, which their calls do not follow.
        let object = match (&h, &r) {
            (None, Some(r))
                if set.mode.is_some() || set.size.is_some() || set.kill_suidgid.is_some() =>
            {
                let held = self.held.lock().get(ino);
                match held {
                    Some(fd) => Some(File::from(fd.try_clone()?)),
                    None => Some(self.open_verified(ino, r, libc::O_PATH)?),
                }
            }
            _ => None,
        };
        let object_path = object.as_ref().map(beneath::fd_path);
        let at = match (&h, &r) {
            (Some(h), _) => At::Fd(&h.file),
            (None, Some(r)) => At::Path(&r.path),
            (None, None) => return Err(Error::NotFound),
        };
        let exact = match (at, &object_path) {
            (At::Path(_), Some(p)) => At::Path(p),
            (at, _) => at,
        };
        if let Some(mode) = set.mode {
            match exact {
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
            match exact {
                At::Fd(f) => f.set_len(size)?,
                At::Path(p) => sys::truncate(p, size)?,
            }
        }
        if let (Some(w), None) = (set.kill_suidgid, set.mode) {
            // The kernel's own privilege on a local disk: the writer need not own the file.
            crate::creds::as_daemon(|| -> Result<()> {
                match at {
                    At::Fd(f) => kill_suidgid(f, w)?,
                    At::Path(_) => {
                        if let (Some(o), Some(p)) = (&object, &object_path) {
                            if let Some(mode) = mode_without_privileges(&meta_of(o)?, w) {
                                sys::chmod(p, mode)?;
                            }
                        }
                    }
                }
                Ok(())
            })?;
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
            return Ok(real_attr(ino, &meta_of(f)?));
        }
        match r {
            Some(r) => self.attr_of(ino, &View::Real(Box::new(r))),
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
            View::Link { text, .. } => Ok(text.into_os_string().into_vec()),
            View::Synthetic { .. } => Err(Error::InvalidArgument),
            View::Real(r) => {
                if r.entry.is_some() {
                    return Err(Error::InvalidArgument);
                }
                let text = sys::at_path(&r.path, |p| std::fs::read_link(p))?;
                Ok(rewrite_link(&r, &text).into_os_string().into_vec())
            }
        }
    }

    /// statfs of the real filesystem under the node.
    ///
    /// # Errors
    /// The OS error.
    pub fn statfs(&self, ino: u64) -> Result<StatFs> {
        match self.node_of_or_root(ino) {
            // The view holds the descriptor its path goes through.
            Ok((_, View::Real(r))) => Ok(sys::statvfs(&r.path)?),
            _ => {
                let table = self.table.snapshot();
                let path = table
                    .base()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("/"));
                Ok(sys::statvfs(&path)?)
            }
        }
    }

    /// access.
    ///
    /// # Errors
    /// EACCES or EROFS as the real object would answer.
    pub fn access(&self, ino: u64, mask: i32) -> Result<()> {
        match self.node_of_or_root(ino)?.1 {
            View::Real(r) => {
                if mask & libc::W_OK != 0 && r.read_only {
                    return Err(Error::ReadOnly);
                }
                Ok(sys::access(&r.path, mask)?)
            }
            View::Synthetic { .. } if mask & libc::W_OK != 0 => Err(Error::ReadOnly),
            View::Synthetic { .. } | View::Link { .. } => Ok(()),
        }
    }
}

/// The mode a regular file keeps once a write by `w` has dropped its privileges, by Linux's rules
/// for a caller without CAP_FSETID: set-user-ID goes; set-group-ID goes when the file is
/// group-executable, or when `w` is not in the file's group. `None` when nothing changes.
fn mode_without_privileges(meta: &Meta, w: Writer) -> Option<u32> {
    if !meta.is_file() {
        return None;
    }
    let mode = meta.mode & 0o7777;
    let mut kept = mode & !libc::S_ISUID;
    if mode & libc::S_ISGID != 0
        && (mode & libc::S_IXGRP != 0
            || (meta.gid != w.gid && !sys::process_in_group(w.pid, meta.gid)))
    {
        kept &= !libc::S_ISGID;
    }
    (kept != mode).then_some(kept)
}

/// Drops the privileges of the open file `f` as a write by `w` would.
pub(super) fn kill_suidgid(f: &File, w: Writer) -> Result<()> {
    if let Some(mode) = mode_without_privileges(&meta_of(f)?, w) {
        sys::fchmod(f, mode)?;
    }
    Ok(())
}

/// The text to show for a symlink stored at `r.path` holding `text`: unchanged unless it is
/// relative and climbs above the root of its real tree, in which case the absolute real path.
fn rewrite_link(r: &RealView, text: &Path) -> PathBuf {
    if text.is_absolute() || r.root.as_os_str().is_empty() {
        return text.to_path_buf();
    }
    // The directory that holds the link, where it really is now (its descriptor knows), so `..`
    // climbs from there as it does on disk, not from the declared spelling of the root.
    let Ok(dir) = std::fs::read_link(beneath::fd_path(&*r.anchor)) else {
        return text.to_path_buf();
    };
    let Ok(rel) = dir.strip_prefix(&r.root_real) else {
        return text.to_path_buf();
    };
    let mut depth = rel.components().count() as i64;
    for c in text.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return crate::names::normalize_lexically(&dir.join(text));
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    text.to_path_buf()
}
