//! Extended attributes, including `user.redirfs.target`.

use super::*;

impl Overlay {
    /// The node an xattr call applies to, or, for a file unlinked while open (fgetxattr after
    /// unlink), one of its open descriptors.
    fn xattr_target(&self, ino: u64) -> Result<XattrAt> {
        match self.node_of_or_root(ino) {
            Ok((_, node)) => Ok(XattrAt::View(node)),
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
                XattrAt::View(View::Link { text, .. }) => text.into_os_string().into_vec(),
                XattrAt::View(View::Real(r)) => r.real.into_os_string().into_vec(),
                XattrAt::View(View::Synthetic { .. }) | XattrAt::Open(_) => return Err(no_data()),
            };
            return xattr_reply(v, size);
        }
        match at {
            XattrAt::View(View::Real(r)) => Ok(sys::getxattr(&r.path, name, size as usize)?),
            XattrAt::Open(h) => Ok(sys::fgetxattr(&h.file, name, size as usize)?),
            XattrAt::View(_) => Err(no_data()),
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
            XattrAt::View(View::Real(r)) => {
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
            XattrAt::View(_) => Vec::new(),
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
            XattrAt::View(View::Real(r)) if r.read_only => Err(Error::ReadOnly),
            XattrAt::View(View::Real(r)) => Ok(sys::setxattr(&r.path, name, value, flags)?),
            XattrAt::Open(h) => Ok(sys::fsetxattr(&h.file, name, value, flags)?),
            XattrAt::View(_) => Err(Error::Os(std::io::Error::from_raw_os_error(libc::EPERM))),
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
            XattrAt::View(View::Real(r)) if r.read_only => Err(Error::ReadOnly),
            XattrAt::View(View::Real(r)) => Ok(sys::removexattr(&r.path, name)?),
            XattrAt::Open(h) => Ok(sys::fremovexattr(&h.file, name)?),
            XattrAt::View(_) => Err(no_data()),
        }
    }
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
