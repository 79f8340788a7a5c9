//! The Windows backend of redirfs: the overlay served through [WinFsp](https://winfsp.dev).
//!
//! Everything that can be decided without Windows lives in platform-neutral modules that build
//! and are unit-tested on every OS:
//!
//! - [`names`]: WinFsp file names (`\dir\file`, UTF-16) to core components, Windows name rules
//!   (invalid characters, reserved device names), declared targets to NT and Win32 forms, and
//!   the mountpoint argument.
//! - [`reparse`]: building and parsing `REPARSE_DATA_BUFFER`s (symbolic links and mount points)
//!   byte for byte.
//! - [`attr`]: `FILE_ATTRIBUTE_*` values and Unix time to `FILETIME` and back.
//! - [`status`]: `fs_core::Error` to `NTSTATUS`, with an exhaustive match.
//! - [`policy`]: what a path is in the overlay (link, transparent entry, synthetic directory,
//!   real object), how a link entry shows (symlink or junction, with the junction fallback), what
//!   may be deleted, renamed, created or written, and how a directory listing is merged.
//! - [`guard`]: no panic crosses a WinFsp callback.
//!
//! The `cfg(windows)` layer (`mount`, `MountHandle`, [`MountOptions`]) only translates: it
//! implements winfsp's `FileSystemContext` by asking [`policy`] what to do and calling the wrappers
//! in its `sys` module, the only place with `unsafe`.
//!
//! WinFsp does not support hard links: a mount reports one link per file and refuses to create
//! more.

// `unsafe` only in `windows::sys`, which allows it for itself.
#![deny(unsafe_code)]

pub mod attr;
pub mod guard;
pub mod names;
pub mod policy;
pub mod reparse;
pub mod status;

pub use policy::JunctionMode;

#[cfg(windows)]
mod windows;

#[cfg(windows)]
pub use windows::{mount, wait_for_ctrl_c, MountError, MountHandle};

/// How a mount is set up, beyond what the declaration says.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// How `junction` entries show; see [`JunctionMode`].
    pub junction_mode: JunctionMode,
    /// How long Windows may cache file information, in milliseconds. `0` asks WinFsp every time,
    /// which suits targets that change behind the mount's back.
    pub file_info_timeout_ms: u32,
    /// The volume label shown by Explorer and `vol` (at most 32 UTF-16 units).
    pub volume_label: String,
}

impl Default for MountOptions {
    fn default() -> MountOptions {
        MountOptions {
            junction_mode: JunctionMode::default(),
            file_info_timeout_ms: 1000,
            volume_label: "redirfs".to_string(),
        }
    }
}
