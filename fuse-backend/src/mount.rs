//! Mounting and unmounting, with failures explained.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs_core::decl::{Declaration, Mountpoint};
use fs_core::overlay::Overlay;
use fs_core::{NameCase, Table};
use fuser::{Config, MountOption, SessionACL};

use crate::fs::{FuseOverlay, Tuning};
use crate::fusermount::{self, HelperError};

/// Why a mount failed, in terms a user can act on.
#[derive(Debug)]
pub enum MountError {
    /// `/dev/fuse` is missing or cannot be opened.
    NoFuseDevice(io::Error),
    /// `/dev/fuse` is closed to this user (EACCES, EPERM), and so fusermount3, which opens it with
    /// the user's own permissions, could not mount either.
    FuseDeviceDenied(io::Error),
    /// The mountpoint does not exist.
    MountpointMissing(PathBuf),
    /// The mountpoint is not a directory.
    MountpointNotDir(PathBuf),
    /// Something is mounted there already.
    AlreadyMounted(PathBuf),
    /// The declaration names a Windows drive letter.
    DriveLetter(char),
    /// The kernel refused (EPERM, EACCES).
    NotPermitted(PathBuf, io::Error),
    /// fusermount3, through which users mount, cannot be run (not installed).
    FusermountMissing(io::Error),
    /// fusermount3 refused to mount; what it said.
    FusermountRefused(PathBuf, String),
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
            MountError::FuseDeviceDenied(e) => write!(
                f,
                "cannot open /dev/fuse ({e}): it is closed to you here, and fusermount3 opens it with your own permissions, so it cannot mount for you either: mount as root, or have the administrator open /dev/fuse to users (`chmod 0666 /dev/fuse`, its usual mode)"
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
            MountError::FusermountMissing(e) => write!(
                f,
                "cannot run fusermount3 ({e}), through which users mount: install fuse3 (`apt-get install fuse3`), or mount as root"
            ),
            MountError::FusermountRefused(p, said) => write!(
                f,
                "fusermount3 refused to mount on {}: {said}{}",
                p.display(),
                refusal_hint(said)
            ),
            MountError::Other(p, e) => write!(f, "cannot mount on {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for MountError {}

/// What to do about a refusal of fusermount3, recognised by its message.
fn refusal_hint(said: &str) -> &'static str {
    if said.contains("user_allow_other") {
        ": `allow_other: true` lets a user's mount serve other users only where /etc/fuse.conf has a line `user_allow_other` (the administrator adds it); else remove allow_other from the declaration, or mount as root"
    } else if said.contains("could not determine username") {
        ": fusermount3 needs your user id to have a name in the user database (/etc/passwd or NSS)"
    } else if said.contains("not owned by user") || said.contains("no write access") {
        ": mount on a directory you own, or may write to"
    } else if said.contains("is forbidden") {
        ": fusermount3 lets users mount only over common filesystems (ext4, xfs, btrfs, tmpfs, NFS...): choose a mountpoint on one"
    } else if said.contains("too many FUSE filesystems") {
        ": unmount some, or have the administrator raise `mount_max` in /etc/fuse.conf"
    } else if said.contains("Operation not permitted") {
        ": fusermount3 must be setuid root, as fuse3 installs it (`ls -l $(command -v fusermount3)` shows `-rwsr-xr-x root`)"
    } else {
        ""
    }
}

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
    /// Set when fusermount3 mounted: fuser's session then has no mount of its own to undo, so
    /// this unmounts through fusermount3 if the session ends (or is dropped) while mounted.
    helper: Option<HelperGuard>,
}

/// A mount made by fusermount3, undone by it.
#[derive(Debug)]
struct HelperMount {
    mountpoint: PathBuf,
    /// A duplicate of the session's /dev/fuse descriptor: it tells whether the connection is still
    /// mounted, so that a mount made later at the same place is never unmounted by mistake.
    device: OwnedFd,
}

impl HelperMount {
    fn unmount(&self, lazy: bool) -> io::Result<()> {
        if !fusermount::connected(self.device.as_fd()) {
            return Ok(());
        }
        unmount(&self.mountpoint, lazy)
    }
}

/// Unmounts (lazily) a helper's mount still up when it is dropped.
#[derive(Debug)]
struct HelperGuard(Arc<HelperMount>);

impl Drop for HelperGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.unmount(true) {
            log::warn!("cannot unmount {}: {e}", self.0.mountpoint.display());
        }
    }
}

/// Unmounts a [`Mounted`] from another thread (a signal handler's).
#[derive(Debug)]
pub struct Unmounter(UnmountBy);

#[derive(Debug)]
enum UnmountBy {
    /// fuser mounted (as root) and unmounts.
    Session(fuser::SessionUnmounter),
    /// fusermount3 mounted and unmounts.
    Helper(Arc<HelperMount>),
}

impl Unmounter {
    /// Unmounts, not lazily; does nothing once unmounted.
    ///
    /// # Errors
    /// The OS error (EBUSY while a program uses the mount), or fusermount3's refusal.
    pub fn unmount(&mut self) -> io::Result<()> {
        match &mut self.0 {
            UnmountBy::Session(u) => u.unmount(),
            UnmountBy::Helper(h) => h.unmount(false),
        }
    }
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
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(match &self.helper {
            Some(h) => UnmountBy::Helper(h.0.clone()),
            None => UnmountBy::Session(self.session.unmount_callable()),
        })
    }

    /// What invalidates the kernel's caches after a reload, from any thread.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator {
            notifier: self.session.notifier(),
            overlay: self.overlay.clone(),
        }
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
        let helper = self.helper;
        let r = self.session.run();
        // As fuser does for its own mounts: a session that ended while mounted is unmounted.
        drop(helper);
        drop(base);
        r
    }
}

/// Whether a FUSE filesystem is mounted exactly at `mp` (mounting over another kind of mount,
/// e.g. an in-place overlay over an NFS folder, is fine).
fn fuse_mounted_at(mp: &Path) -> bool {
    mounted_types_at(mp).iter().any(|t| t.starts_with("fuse"))
}

/// The filesystem types mounted exactly at `mp` (an absolute path), from /proc/self/mountinfo.
pub(crate) fn mounted_types_at(mp: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let want = mp.to_string_lossy().replace(' ', "\\040");
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (left.split(' ').nth(4) == Some(want.as_str()))
                .then(|| right.split(' ').next().unwrap_or_default().to_string())
        })
        .collect()
}

/// Mounts `decl` at its mountpoint. A stale mountpoint left by a killed daemon ("transport
/// endpoint is not connected") is cleared first.
///
/// # Errors
/// A [`MountError`] saying what to do.
pub fn mount(decl: &Declaration, tuning: Tuning) -> Result<Mounted, MountError> {
    mount_with(decl, tuning, &[])
}

/// The kernel mount flags [`mount_with`] applies, by their mount(8) names.
pub const KERNEL_FLAGS: &[&str] = &[
    "nosuid", "noexec", "exec", "noatime", "atime", "sync", "async", "dirsync",
];

fn kernel_flag(name: &str) -> Option<MountOption> {
    Some(match name {
        "nosuid" => MountOption::NoSuid,
        "noexec" => MountOption::NoExec,
        "exec" => MountOption::Exec,
        "noatime" => MountOption::NoAtime,
        "atime" => MountOption::Atime,
        "sync" => MountOption::Sync,
        "async" => MountOption::Async,
        "dirsync" => MountOption::DirSync,
        _ => return None,
    })
}

/// [`mount`], adding kernel mount flags named in [`KERNEL_FLAGS`] (others are ignored: check
/// them against that list first).
///
/// # Errors
/// A [`MountError`] saying what to do.
pub fn mount_with(
    decl: &Declaration,
    tuning: Tuning,
    flags: &[String],
) -> Result<Mounted, MountError> {
    let mp = match &decl.mountpoint {
        Mountpoint::Dir(p) => p.clone(),
        Mountpoint::Drive(c) => return Err(MountError::DriveLetter(*c)),
    };
    // Root mounts directly. Other users mount through fusermount3, the setuid helper, which lends
    // them mount(2) but opens /dev/fuse with their own permissions; so does root denied the device
    // (a container's device policy), though the helper can then rarely do better.
    let denied = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => None,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => Some(e),
        Err(e) => return Err(MountError::NoFuseDevice(e)),
    };
    // (fusermount3 is Linux's; elsewhere fuser mounts as it can.)
    let through_helper =
        cfg!(target_os = "linux") && (fs_core::sys::geteuid() != 0 || denied.is_some());
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
        if through_helper {
            MountOption::Subtype("redirfs".to_string())
        } else {
            MountOption::CUSTOM("subtype=redirfs".to_string())
        },
        MountOption::DefaultPermissions,
        MountOption::NoDev,
    ];
    if decl.options.read_only {
        options.push(MountOption::RO);
    }
    options.extend(flags.iter().filter_map(|f| kernel_flag(f)));
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if decl.options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads =
        Some(std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)));
    // Each worker's descriptor is a fresh open of /dev/fuse (FUSE_DEV_IOC_CLONE).
    config.clone_fd = denied.is_none();
    let (session, helper) = if through_helper {
        let fd = mount_with_helper(&mp, &config, denied)?;
        let device = fd
            .try_clone()
            .map_err(|e| MountError::Other(mp.clone(), e))?;
        // From here on, a failure unmounts again.
        let guard = HelperGuard(Arc::new(HelperMount {
            mountpoint: mp.clone(),
            device,
        }));
        let acl = config.acl;
        let session = fuser::Session::from_fd(fs, fd, acl, config)
            .map_err(|e| MountError::Other(mp.clone(), e))?;
        (session, Some(guard))
    } else {
        let session =
            fuser::Session::new(fs, &mp, &config).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => MountError::NotPermitted(mp.clone(), e),
                _ if e.kind() == io::ErrorKind::NotFound => MountError::NotPermitted(mp.clone(), e),
                _ => MountError::Other(mp.clone(), e),
            })?;
        (session, None)
    };
    Ok(Mounted {
        session,
        overlay,
        mountpoint: mp,
        _base_dir: base_dir,
        base_beneath,
        passthrough,
        helper,
    })
}

/// Mounts `mp` through fusermount3 with `config`'s options; `denied` is this process's own
/// failure to open /dev/fuse, if it failed.
fn mount_with_helper(
    mp: &Path,
    config: &Config,
    denied: Option<io::Error>,
) -> Result<OwnedFd, MountError> {
    let mut options: Vec<String> = config.mount_options.iter().map(helper_option).collect();
    if matches!(config.acl, SessionACL::All | SessionACL::RootAndOwner) {
        options.push("allow_other".to_string());
    }
    let err = match fusermount::mount(mp, &fusermount::join(&options)) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    if let Some(denied) = denied {
        log::info!("{} could not mount either: {err:?}", fusermount::PROGRAM);
        return Err(MountError::FuseDeviceDenied(denied));
    }
    Err(match err {
        HelperError::Spawn(e) => MountError::FusermountMissing(e),
        HelperError::Io(e) => MountError::Other(mp.to_path_buf(), e),
        HelperError::Refused { status, stderr } if stderr.is_empty() => {
            MountError::FusermountRefused(mp.to_path_buf(), format!("it exited with {status}"))
        }
        HelperError::Refused { stderr, .. } => {
            MountError::FusermountRefused(mp.to_path_buf(), stderr)
        }
    })
}

/// One mount option in fusermount3's `-o` syntax.
fn helper_option(o: &MountOption) -> String {
    let s = match o {
        MountOption::FSName(n) => return format!("fsname={}", fusermount::escape(n)),
        MountOption::Subtype(t) => return format!("subtype={}", fusermount::escape(t)),
        MountOption::CUSTOM(c) => return c.clone(),
        MountOption::AutoUnmount => "auto_unmount",
        MountOption::DefaultPermissions => "default_permissions",
        MountOption::Dev => "dev",
        MountOption::NoDev => "nodev",
        MountOption::Suid => "suid",
        MountOption::NoSuid => "nosuid",
        MountOption::RO => "ro",
        MountOption::RW => "rw",
        MountOption::Exec => "exec",
        MountOption::NoExec => "noexec",
        MountOption::Atime => "atime",
        MountOption::NoAtime => "noatime",
        MountOption::DirSync => "dirsync",
        MountOption::Sync => "sync",
        MountOption::Async => "async",
    };
    s.to_string()
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

/// Unmounts `mountpoint` (`lazy`: detach now, finish when no longer busy): umount2(2) as root,
/// else through fusermount3, which unmounts the user's own FUSE mounts.
///
/// # Errors
/// The OS error, or fusermount3's failure (with the errno umount2 would give where it says one).
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    if fs_core::sys::geteuid() == 0 {
        return fs_core::sys::umount(mountpoint, lazy);
    }
    fusermount::unmount(mountpoint, lazy)
}

/// Drops the kernel's cached names and attributes along changed virtual paths (after a reload).
pub struct Invalidator {
    notifier: fuser::Notifier,
    overlay: Arc<Overlay>,
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator").finish_non_exhaustive()
    }
}

impl fs_core::table::Invalidate for Invalidator {
    fn invalidate(&self, paths: &[fs_core::VPath]) {
        for path in paths {
            let comps: Vec<std::ffi::OsString> = path
                .components()
                .iter()
                .map(std::ffi::OsString::from)
                .collect();
            // Only what the kernel holds can be stale; ENOENT answers mean it held nothing.
            for i in 0..comps.len() {
                if let Some(parent) = self.overlay.known_inode(&comps[..i]) {
                    let _ = self.notifier.inval_entry(fuser::INodeNo(parent), &comps[i]);
                }
            }
            if let Some(ino) = self.overlay.known_inode(&comps) {
                let _ = self.notifier.inval_inode(fuser::INodeNo(ino), 0, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_options_are_fusermount3_syntax() {
        let opts: Vec<String> = [
            MountOption::FSName("redirfs:/etc/a,b.yaml".into()),
            MountOption::Subtype("redirfs".into()),
            MountOption::DefaultPermissions,
            MountOption::NoDev,
            MountOption::RO,
        ]
        .iter()
        .map(helper_option)
        .collect();
        assert_eq!(
            opts.join(","),
            "fsname=redirfs:/etc/a\\,b.yaml,subtype=redirfs,default_permissions,nodev,ro"
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e = MountError::FusermountRefused(
            PathBuf::from("/m"),
            "fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf".into(),
        );
        let text = e.to_string();
        assert!(
            text.contains("user_allow_other") && text.contains("remove allow_other"),
            "{text}"
        );
        let e = MountError::FusermountMissing(io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().contains("apt-get install fuse3"));
    }
}
