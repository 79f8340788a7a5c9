//! `redirfs mount` on Windows: serves a declaration through WinFsp in this process until Ctrl+C,
//! then unmounts.

use std::path::PathBuf;
use std::process::ExitCode;

use fs_core::NameCase;
use winfsp_backend::{JunctionMode, MountOptions};

/// Exit status: the mount could not start (WinFsp missing, drive letter in use...).
const EXIT_MOUNT: u8 = 3;

/// `redirfs mount` on Windows.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  redirfs mount app.yaml\n  redirfs mount --junctions symlink app.yaml\n\nThe overlay is served until Ctrl+C. Needs WinFsp (https://winfsp.dev); see docs/windows.md.\nExit status: 0 unmounted cleanly, 1 invalid declaration, 2 usage or I/O error, 3 mount failed."
)]
pub struct MountArgs {
    /// The declaration file.
    pub file: PathBuf,
    /// How `junction` entries show: native, resolve-as-symlink or symlink.
    #[arg(long, value_name = "MODE", default_value_t = JunctionMode::Native)]
    pub junctions: JunctionMode,
    /// How long Windows may cache file information, in milliseconds (0: ask every time).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub cache_ms: u32,
}

/// Mounts, serves until Ctrl+C, unmounts.
pub fn mount(args: &MountArgs) -> ExitCode {
    // WinFsp compares names case-insensitively: `Data` and `data` are one entry.
    let decl = match crate::check::load(&args.file, NameCase::Insensitive) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let opts = MountOptions {
        junction_mode: args.junctions,
        file_info_timeout_ms: args.cache_ms,
        ..MountOptions::default()
    };
    let handle = match winfsp_backend::mount(&decl, &opts) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("redirfs: {}: {e}", args.file.display());
            return ExitCode::from(EXIT_MOUNT);
        }
    };
    eprintln!(
        "redirfs: {} mounted on {}; press Ctrl+C to unmount",
        args.file.display(),
        handle.mountpoint()
    );
    let waited = winfsp_backend::wait_for_ctrl_c();
    handle.unmount();
    match waited {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redirfs: cannot wait for Ctrl+C: {e}");
            ExitCode::from(EXIT_MOUNT)
        }
    }
}
