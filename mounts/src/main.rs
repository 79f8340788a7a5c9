//! `redirfs`: mount overlay drives whose entries redirect to data kept elsewhere.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fs_core::NameCase;

#[cfg(unix)]
mod assets;
mod check;
#[cfg(unix)]
mod control;
#[cfg(unix)]
mod daemon;
#[cfg(unix)]
mod demo;
#[cfg(unix)]
mod mount;
#[cfg(unix)]
mod runtime;
#[cfg(windows)]
mod windows;

/// Exit status: the declaration is invalid.
const EXIT_INVALID: u8 = 1;
/// Exit status: usage or I/O error (clap uses 2 for usage errors too).
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "redirfs",
    version,
    about = "Overlay drives whose entries redirect to data kept elsewhere",
    long_about = "redirfs mounts an overlay drive: a YAML declaration maps virtual paths inside the \
mount to real targets, shown as native symlinks or transparently, over an optional base directory \
whose own contents pass through. Legacy programs keep their paths while their data lives elsewhere.",
    after_help = "Examples:\n  redirfs check app.yaml\n  redirfs explain app.yaml data/reports/2020.csv\n\nThe declaration format: redirfs.yaml(5) (man 5 redirfs.yaml)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate declaration files and report every problem with its line and column.
    #[command(
        after_help = "Examples:\n  redirfs check /etc/redirfs/*.yaml\n  redirfs check --case-insensitive win.yaml   # a declaration meant for Windows\n\nExit status: 0 valid, 1 invalid, 2 usage or I/O error."
    )]
    Check {
        /// Declaration files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        names: Names,
    },
    /// Say which rule a virtual path falls under, what it resolves to, and why.
    #[command(after_help = "Example:\n  redirfs explain app.yaml data/2020/report.csv")]
    Explain {
        /// The declaration file.
        file: PathBuf,
        /// A path inside the mount, relative to its root (a leading `/` is allowed).
        path: String,
        #[command(flatten)]
        names: Names,
    },
    /// Mount a declaration; returns once the mount is ready (the daemon stays in the background).
    #[cfg(unix)]
    #[command(
        after_help = "Examples:\n  redirfs mount app.yaml\n  redirfs mount --foreground app.yaml   # for systemd and debugging\n\nThe daemon logs to $XDG_RUNTIME_DIR/redirfs/ (or /run/redirfs as root); RUST_LOG=info says more."
    )]
    Mount {
        /// The declaration file.
        #[arg(required_unless_present = "all")]
        file: Option<PathBuf>,
        /// Mount every declaration (*.yaml, *.yml) in this folder, e.g. /etc/redirfs.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "foreground"])]
        all: Option<PathBuf>,
        /// Serve in this process instead of starting a daemon.
        #[arg(long, short = 'f')]
        foreground: bool,
        /// Serve file I/O from the daemon even where the kernel offers passthrough.
        #[arg(long)]
        no_passthrough: bool,
        /// Do not watch the declaration file: reload only on SIGHUP or `redirfs reload`.
        #[arg(long)]
        no_watch: bool,
    },
    /// Mount a declaration through WinFsp and serve it until Ctrl+C.
    #[cfg(windows)]
    Mount(windows::MountArgs),
    /// Unmount an overlay.
    #[cfg(unix)]
    #[command(
        after_help = "Examples:\n  redirfs umount /opt/legacy-app\n  redirfs umount --lazy /opt/legacy-app   # detach now, finish when no longer busy"
    )]
    Umount {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// Detach now even if busy.
        #[arg(long, short = 'l')]
        lazy: bool,
    },
    /// Show the mounts this user runs: declaration, pid, uptime, reloads, and per entry its
    /// target, whether it exists, hits, bytes and errors.
    #[cfg(unix)]
    #[command(after_help = "Examples:\n  redirfs status\n  redirfs status /opt/legacy-app --json")]
    Status {
        /// One mount (all of this user's when omitted).
        mountpoint: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Reload a mount's declaration now: validated in full first; an invalid file leaves the
    /// running mapping serving and exits 1 with the errors.
    #[cfg(unix)]
    #[command(
        after_help = "Examples:\n  redirfs reload /opt/legacy-app\n  redirfs reload --dry-run /opt/legacy-app   # print what would change"
    )]
    Reload {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print what a reload would change (same as `reload --dry-run`).
    #[cfg(unix)]
    #[command(after_help = "Example:\n  redirfs diff /opt/legacy-app")]
    Diff {
        /// The mountpoint.
        mountpoint: PathBuf,
    },
    /// Run the built-in demo: a legacy program reads and writes its data through a redirection.
    #[cfg(unix)]
    #[command(
        after_help = "Example:\n  redirfs demo            # builds a sandbox in a temporary folder, mounts, runs, unmounts\n  redirfs demo --keep     # leaves the mount up to look around"
    )]
    Demo {
        /// Build the sandbox here instead of a new temporary folder.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the mount up after the demo (until Ctrl-C).
        #[arg(long)]
        keep: bool,
    },
}

/// How `check` and `explain` compare names.
#[derive(clap::Args, Debug)]
struct Names {
    /// Compare names as a Windows mount does, ignoring case: paths that differ only in case
    /// (`Data` and `data`) are one path, so declaring both is an error, and `explain` resolves
    /// them alike. The default on Windows; on Linux and macOS, use it to check a declaration
    /// meant for Windows.
    #[arg(long)]
    case_insensitive: bool,
}

impl Names {
    fn case(&self) -> NameCase {
        if self.case_insensitive {
            NameCase::Insensitive
        } else {
            NameCase::host()
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,fuser=error"))
        .format_timestamp(None)
        .init();
    #[cfg(unix)]
    if let Some(code) = mount::helper_mode() {
        return code;
    }
    #[cfg(unix)]
    if let Some(code) = assets::from_args() {
        return code;
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, names } => check::check(&files, names.case()),
        Command::Explain { file, path, names } => check::explain(&file, &path, names.case()),
        #[cfg(unix)]
        Command::Mount {
            file,
            all,
            foreground,
            no_passthrough,
            no_watch,
        } => match (file, all) {
            (_, Some(dir)) => mount::mount_all(
                &dir,
                mount::Serve {
                    no_passthrough,
                    no_watch,
                },
            ),
            (Some(file), None) => mount::mount(
                &file,
                foreground,
                mount::Serve {
                    no_passthrough,
                    no_watch,
                },
            ),
            (None, None) => ExitCode::from(EXIT_USAGE),
        },
        #[cfg(unix)]
        Command::Status { mountpoint, json } => control::status(mountpoint.as_deref(), json),
        #[cfg(unix)]
        Command::Reload {
            mountpoint,
            dry_run,
        } => control::reload(&mountpoint, dry_run),
        #[cfg(unix)]
        Command::Diff { mountpoint } => control::reload(&mountpoint, true),
        #[cfg(windows)]
        Command::Mount(args) => windows::mount(&args),
        #[cfg(unix)]
        Command::Umount { mountpoint, lazy } => mount::umount(&mountpoint, lazy),
        #[cfg(unix)]
        Command::Demo { dir, keep } => demo::demo(dir.as_deref(), keep),
    }
}
