//! Mounting and unmounting, with failures explained.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs_core::decl::{Declaration, Mountpoint};
use fs_core::overlay::Overlay;
use fs_core::{NameCase, Table};
use fuser::{Config, MountOption, SessionACL};

use crate::fs::{FuseOverlay, Tuning};

/// Why a mount failed, in terms a user can act on.
#[derive(Debug)]
pub enum MountError {
    /// `/dev/fuse` is missing or cannot be opened.
    NoFuseDevice(io::Error),
    /// The mountpoint does not exist.
    MountpointMissing(PathBuf),
    /// The mountpoint is not a directory.
    MountpointNotDir(PathBuf),
    /// Something is mounted there already.
    AlreadyMounted(PathBuf),
    /// The declaration names a Windows drive letter.
    DriveLetter(char),
    /// The kernel or fusermount3 refused.
    NotPermitted(PathBuf, io::Error),
    /// Anything else.
    Other(PathBuf, io::Error),
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::NoFuseDevice(e) => write!(
                f,
                "cannot use /dev/fuse ({e}): load the FUSE module (`modprobe fuse`) and install fuse3 (`apt-get install fuse3`)"
            ),
            MountError::MountpointMissing(p) => write!(
                f,
                "the mountpoint {} does not exist: create it (`mkdir -p {}`)",
                p.display(),
                p.display()
            ),
            MountError::MountpointNotDir(p) => {
                write!(f, "the mountpoint {} is not a directory", p.display())
            }
            MountError::AlreadyMounted(p) => write!(
                f,
                "something is already mounted on {}: unmount it first (`redirfs umount {}`)",
                p.display(),
                p.display()
            ),
            MountError::DriveLetter(c) => write!(
                f,
                "the mountpoint `{c}:` is a Windows drive letter: on this system use a directory"
            ),
            MountError::NotPermitted(p, e) => write!(
                f,
                "not permitted to mount on {} ({e}): mount as root, or install fuse3 so that fusermount3 can mount for users (allow_other needs `user_allow_other` in /etc/fuse.conf)",
                p.display()
            ),
            MountError::Other(p, e) => write!(f, "cannot mount on {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for MountError {}

/// Builds the table a declaration gives on one mount: an in-place base (base = mountpoint) is
/// reached through the descriptor opened before mounting.
#[derive(Debug, Clone)]
pub struct TableMaker {
    mountpoint: PathBuf,
    base_beneath: Option<PathBuf>,
}

impl TableMaker {
    /// The table for `decl`.
    pub fn table(&self, decl: &Declaration) -> Table {
        table_for(decl, &self.mountpoint, self.base_beneath.as_deref())
    }
}

/// A mounted overlay, not yet serving.
pub struct Mounted {
    session: fuser::Session<FuseOverlay>,
    overlay: Arc<Overlay>,
    mountpoint: PathBuf,
    /// Keeps the base reachable beneath an in-place overlay.
    _base_dir: Option<File>,
    /// For an in-place overlay, the path through which the daemon reaches the base.
    base_beneath: Option<PathBuf>,
    passthrough: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for Mounted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mounted")
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

impl Mounted {
    /// The overlay, for reloads and status.
    pub fn overlay(&self) -> &Arc<Overlay> {
        &self.overlay
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Something that unmounts from another thread (a signal handler thread).
    pub fn unmounter(&mut self) -> fuser::SessionUnmounter {
        self.session.unmount_callable()
    }

    /// Something that invalidates kernel caches from another thread.
    pub fn notifier(&self) -> fuser::Notifier {
        self.session.notifier()
    }

    /// Whether file I/O goes through kernel passthrough now (set once the kernel has accepted it
    /// at init, cleared if it later refuses a backing file).
    pub fn passthrough(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.passthrough.clone()
    }

    /// Builds tables for this mount (for reloads).
    pub fn table_maker(&self) -> TableMaker {
        TableMaker {
            mountpoint: self.mountpoint.clone(),
            base_beneath: self.base_beneath.clone(),
        }
    }

    /// Serves requests until unmounted.
    ///
    /// # Errors
    /// The session's I/O error.
    pub fn run(self) -> io::Result<()> {
        let base = self._base_dir;
        let r = self.session.run();
        drop(base);
        r
    }
}

/// Whether a FUSE filesystem is mounted exactly at `mp` (mounting over another kind of mount,
/// e.g. an in-place overlay over an NFS folder, is fine).
fn fuse_mounted_at(mp: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mp.to_string_lossy().replace(' ', "\\040");
    text.lines().any(|l| {
        let mut halves = l.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            return false;
        };
        left.split(' ').nth(4) == Some(want.as_str()) && right.starts_with("fuse")
    })
}

/// Mounts `decl` at its mountpoint. A stale mountpoint left by a killed daemon ("transport
/// endpoint is not connected") is cleared first.
///
/// # Errors
/// A [`MountError`] saying what to do.
pub fn mount(decl: &Declaration, tuning: Tuning) -> Result<Mounted, MountError> {
    let mp = match &decl.mountpoint {
        Mountpoint::Dir(p) => p.clone(),
        Mountpoint::Drive(c) => return Err(MountError::DriveLetter(*c)),
    };
    // Root opens /dev/fuse itself; other users mount through the setuid fusermount3, which
    // opens it for them, so for them the device only has to exist.
    let device = if fs_core::sys::geteuid() == 0 {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map(drop)
    } else {
        std::fs::metadata("/dev/fuse").map(drop)
    };
    if let Err(e) = device {
        return Err(MountError::NoFuseDevice(e));
    }
    match std::fs::metadata(&mp) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(MountError::MountpointNotDir(mp)),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            log::warn!(
                "{} is a stale mount of a daemon that died; clearing it",
                mp.display()
            );
            unmount(&mp, true).map_err(|e| MountError::Other(mp.clone(), e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(MountError::MountpointMissing(mp))
        }
        Err(e) => return Err(MountError::Other(mp, e)),
    }
    if fuse_mounted_at(&mp) {
        return Err(MountError::AlreadyMounted(mp));
    }
    let mut base_dir = None;
    let mut base_beneath = None;
    if let Some(b) = decl.base.as_ref().filter(|b| is_in_place(b, &mp)) {
        // The base lies beneath the mount: reach it through a descriptor opened before mounting.
        let f = File::open(b).map_err(|e| MountError::Other(mp.clone(), e))?;
        use std::os::fd::AsRawFd;
        base_beneath = Some(PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())));
        base_dir = Some(f);
    }
    let overlay = Arc::new(Overlay::new(table_for(decl, &mp, base_beneath.as_deref())));
    let fs = FuseOverlay::new(overlay.clone(), tuning);
    let passthrough = fs.passthrough_flag();
    let mut options = vec![
        MountOption::FSName(format!("redirfs:{}", decl.file.display())),
        // fuser's direct (root) mount drops Subtype; the kernel takes it as a mount option, so
        // /proc/mounts says fuse.redirfs either way (fusermount3 turns Subtype into the same).
        if fs_core::sys::geteuid() == 0 {
            MountOption::CUSTOM("subtype=redirfs".to_string())
        } else {
            MountOption::Subtype("redirfs".to_string())
        },
        MountOption::DefaultPermissions,
        MountOption::NoDev,
    ];
    if decl.options.read_only {
        options.push(MountOption::RO);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if decl.options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads =
        Some(std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)));
    config.clone_fd = true;
    let session = fuser::Session::new(fs, &mp, &config).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => MountError::NotPermitted(mp.clone(), e),
        _ if e.kind() == io::ErrorKind::NotFound => MountError::NotPermitted(mp.clone(), e),
        _ => MountError::Other(mp.clone(), e),
    })?;
    Ok(Mounted {
        session,
        overlay,
        mountpoint: mp,
        _base_dir: base_dir,
        base_beneath,
        passthrough,
    })
}

fn is_in_place(base: &Path, mountpoint: &Path) -> bool {
    base == mountpoint || std::fs::canonicalize(base).ok() == std::fs::canonicalize(mountpoint).ok()
}

fn table_for(decl: &Declaration, mountpoint: &Path, base_beneath: Option<&Path>) -> Table {
    match (&decl.base, base_beneath) {
        (Some(b), Some(beneath)) if is_in_place(b, mountpoint) => {
            let mut d = decl.clone();
            d.base = Some(beneath.to_path_buf());
            Table::new(&d, NameCase::Sensitive)
        }
        _ => Table::new(decl, NameCase::Sensitive),
    }
}

/// Unmounts `mountpoint` (lazily: detach now, finish when no longer busy).
///
/// # Errors
/// The OS error, or fusermount3's failure.
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    if fs_core::sys::geteuid() == 0 {
        return fs_core::sys::umount(mountpoint, lazy);
    }
    let mut cmd = std::process::Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg(mountpoint).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
