//! Mounting on Windows: checks the declaration for what Windows cannot show, plans the link
//! entries (logging every fallback once), and starts a WinFsp host.

mod fs;
// The only module with `unsafe` (the crate denies it everywhere else).
#[allow(unsafe_code)]
mod sys;

use std::fmt;
use std::sync::{Condvar, Mutex, PoisonError};

use fs_core::{Declaration, NameCase, Presentation, Table};
use winfsp::host::{FileSystemHost, FineGuard, VolumeParams};

use crate::attr;
use crate::names::{self, NameError, TargetError, WinTarget};
use crate::policy::plan_link;
use crate::status::{hresult_status, NtStatus};
use crate::MountOptions;

/// Why a mount did not start.
#[derive(Debug)]
pub enum MountError {
    /// WinFsp's DLL could not be loaded: WinFsp is not installed.
    WinFspMissing,
    /// Declared names Windows refuses.
    InvalidNames(Vec<(String, NameError)>),
    /// A target that is not an absolute Windows path.
    BadTarget {
        /// The entry's virtual path.
        entry: String,
        /// What is wrong.
        error: TargetError,
    },
    /// The mountpoint is neither a drive letter nor an absolute local directory.
    Mountpoint(TargetError),
    /// The declaration was checked for a case-sensitive mount, where paths that differ only in
    /// case are distinct entries; on a WinFsp mount they would be one, the later silently
    /// winning.
    CaseSensitiveDeclaration,
    /// A WinFsp step failed.
    Host {
        /// What was being done.
        step: &'static str,
        /// The status WinFsp returned.
        status: NtStatus,
    },
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::WinFspMissing => f.write_str(
                "WinFsp is not installed (winfsp-x64.dll could not be loaded): install it from https://winfsp.dev or with `winget install WinFsp.WinFsp`",
            ),
            MountError::InvalidNames(names) => {
                f.write_str("the declaration uses names Windows cannot show:")?;
                for (path, e) in names {
                    write!(f, "\n  `{path}` {e}")?;
                }
                Ok(())
            }
            MountError::BadTarget { entry, error } => write!(f, "`{entry}`: the target {error}"),
            MountError::Mountpoint(e) => write!(f, "the mountpoint {e}"),
            MountError::CaseSensitiveDeclaration => f.write_str(
                "the declaration was checked for a case-sensitive mount; a WinFsp mount ignores case, so load it with `NameCase::Insensitive` (as `redirfs mount` does), which refuses paths that differ only in case",
            ),
            MountError::Host { step, status } => write!(f, "WinFsp could not {step}: {status}"),
        }
    }
}

impl std::error::Error for MountError {}

fn host_error(step: &'static str) -> impl Fn(windows::core::Error) -> MountError {
    move |e| MountError::Host {
        step,
        status: hresult_status(e.code().0),
    }
}

/// A running mount; dropping it unmounts.
pub struct MountHandle {
    host: FileSystemHost<fs::Drive, FineGuard>,
    mountpoint: String,
}

impl fmt::Debug for MountHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountHandle")
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

impl MountHandle {
    /// Where the overlay appears (`L:` or a directory).
    pub fn mountpoint(&self) -> &str {
        &self.mountpoint
    }

    /// Stops serving and removes the drive letter or directory.
    pub fn unmount(self) {
        drop(self);
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        self.host.stop();
        self.host.unmount();
    }
}

fn volume_params(decl: &Declaration, opts: &MountOptions) -> VolumeParams {
    let mut vp = VolumeParams::new();
    let serial = decl
        .file
        .to_string_lossy()
        .bytes()
        .fold(0x811C_9DC5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    vp.sector_size(4096)
        .sectors_per_allocation_unit(1)
        .max_component_length(names::MAX_COMPONENT_UNITS as u16)
        .volume_creation_time(attr::system_time_to_filetime(std::time::SystemTime::now()))
        .volume_serial_number(serial)
        .file_info_timeout(opts.file_info_timeout_ms)
        .case_sensitive_search(false)
        .case_preserved_names(true)
        .unicode_on_disk(true)
        .persistent_acls(true)
        .reparse_points(true)
        .reparse_points_access_check(false)
        .named_streams(false)
        .extended_attributes(false)
        .read_only_volume(decl.options.read_only)
        .post_cleanup_when_modified_only(true)
        .flush_and_purge_on_cleanup(true)
        .pass_query_directory_pattern(false)
        .filesystem_name("redirfs");
    vp
}

/// Checks `decl` for Windows and mounts it; the overlay is served until the handle drops.
///
/// # Errors
/// [`MountError`]: a declaration not checked for case-insensitive names, names or targets
/// Windows cannot use, WinFsp missing, or a WinFsp failure.
pub fn mount(decl: &Declaration, opts: &MountOptions) -> Result<MountHandle, MountError> {
    if decl.case != NameCase::Insensitive {
        return Err(MountError::CaseSensitiveDeclaration);
    }
    let bad = names::invalid_declared_names(decl);
    if !bad.is_empty() {
        return Err(MountError::InvalidNames(bad));
    }
    let mountpoint = names::mountpoint_arg(&decl.mountpoint).map_err(MountError::Mountpoint)?;
    for entry in &decl.entries {
        WinTarget::from_path(&entry.target).map_err(|error| MountError::BadTarget {
            entry: entry.path.to_string(),
            error,
        })?;
        if entry.presentation == Presentation::Transparent {
            continue;
        }
        let is_dir = std::fs::metadata(&entry.target).ok().map(|m| m.is_dir());
        if let Ok(plan) = plan_link(entry, is_dir, opts.junction_mode) {
            if let Some(why) = plan.fallback {
                log::warn!("`{}` (line {}): {why}", entry.path, entry.loc.line);
            }
        }
    }
    if decl.options.allow_other {
        log::info!("`allow_other` has no effect on Windows: the mount follows each file's ACL");
    }
    winfsp::winfsp_init().map_err(|_| MountError::WinFspMissing)?;
    let overlay =
        fs::Drive::new(Table::new(decl, NameCase::Insensitive), opts).map_err(|status| {
            MountError::Host {
                step: "build the overlay's security descriptor",
                status,
            }
        })?;
    let mut host = FileSystemHost::<fs::Drive, FineGuard>::new(volume_params(decl, opts), overlay)
        .map_err(host_error("create the file system"))?;
    host.mount(mountpoint.clone()).map_err(host_error(
        "mount (a drive letter in use, or a directory that exists?)",
    ))?;
    if let Err(e) = host.start() {
        host.unmount();
        return Err(host_error("start the dispatcher")(e));
    }
    log::info!("mounted {} on {mountpoint}", decl.file.display());
    Ok(MountHandle { host, mountpoint })
}

static STOP: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// A plain `extern "system"` function: a safe one converts to the handler pointer the console
/// wants, so no `unsafe` is needed outside `sys`.
extern "system" fn on_console_event(_event: u32) -> windows::core::BOOL {
    let (flag, cv) = &STOP;
    *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
    cv.notify_all();
    windows::core::BOOL(1)
}

/// Blocks until Ctrl+C, Ctrl+Break or the console closing.
///
/// # Errors
/// The console handler could not be installed.
pub fn wait_for_ctrl_c() -> std::io::Result<()> {
    sys::set_console_ctrl_handler(Some(on_console_event), true)?;
    let (flag, cv) = &STOP;
    let mut stop = flag.lock().unwrap_or_else(PoisonError::into_inner);
    while !*stop {
        stop = cv.wait(stop).unwrap_or_else(PoisonError::into_inner);
    }
    Ok(())
}
