//! `redirfs generate-assets DIR`: the man pages and shell completions the Debian package ships,
//! generated from the command line itself so they cannot drift from `--help`.
//!
//! It is read before clap parses, not declared as a subcommand: a hidden subcommand would still
//! show in the generated completions.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::{Cli, EXIT_USAGE};

/// Sections appended to redirfs(1): what `--help` cannot say in a line.
const MAIN_EXTRA: &str = r#".SH "MOUNT HELPER"
With fuse3 installed, mount(8) mounts \fBfuse.redirfs\fR entries: it runs fuse3's
\fBmount.fuse3\fR(8), which runs
.PP
.RS
\fBredirfs\fR \fIDECLARATION\fR \fIMOUNTPOINT\fR \fB\-o\fR \fIOPTIONS\fR
.RE
.PP
redirfs recognises this form (two operands, the first an existing file) and mounts the declaration
as \fBredirfs mount\fR does. The mountpoint must be the declaration's own, and the declaration stays
the source of truth for options: \fB\-o ro\fR without \fBread_only: true\fR in the file is refused.
.PP
.RS
.nf
mount \-t fuse.redirfs /etc/redirfs/ledger.yaml /opt/ledger
# /etc/fstab
/etc/redirfs/ledger.yaml  /opt/ledger  fuse.redirfs  defaults,nofail,_netdev  0  0
.fi
.RE
.SH SIGNALS
\fBSIGHUP\fR reloads the declaration (validated in full first; an invalid file leaves the running
mapping serving). \fBSIGINT\fR and \fBSIGTERM\fR unmount and exit 0.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter (\fBwarn\fR by default; \fBinfo\fR says more).
.TP
\fBREDIRFS_RUNTIME_DIR\fR
Where the daemon keeps its control socket and log (default \fB$XDG_RUNTIME_DIR/redirfs\fR, or
\fB/run/redirfs\fR as root).
.SH FILES
.TP
\fB/etc/redirfs/\fR
Declarations mounted by \fBredirfs mount \-\-all /etc/redirfs\fR and by the systemd unit
\fBredirfs@NAME.service\fR, which mounts \fB/etc/redirfs/NAME.yaml\fR.
.TP
\fB/usr/share/doc/redirfs/\fR
The lifecycle guide (reload, status, signals, systemd, fstab) and example declarations.
.SH "EXIT STATUS"
0 success, 1 invalid declaration, 2 usage or I/O error.
.SH "SEE ALSO"
\fBredirfs.yaml\fR(5), \fBmount.fuse3\fR(8), \fBfusermount3\fR(1), \fBfstab\fR(5)
"#;

/// `Some` when the command line is `redirfs generate-assets ...`: runs it and returns its status.
pub fn from_args() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first()? != "generate-assets" {
        return None;
    }
    Some(match &args[1..] {
        [dir] => generate(Path::new(dir)),
        _ => {
            eprintln!("usage: redirfs generate-assets DIR   (writes DIR/man and DIR/completions)");
            ExitCode::from(EXIT_USAGE)
        }
    })
}

/// Writes DIR/man/*.1 (redirfs(1) and one page per subcommand) and DIR/completions/ (bash,
/// zsh, fish).
pub fn generate(dir: &Path) -> ExitCode {
    match write_all(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redirfs: generate-assets {}: {e}", dir.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;

    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    page(&man, cmd.clone(), MAIN_EXTRA)?;
    let see_also = ".SH \"SEE ALSO\"\n\\fBredirfs\\fR(1), \\fBredirfs.yaml\\fR(5)\n";
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(&man, sub.clone(), see_also)?;
    }

    for (shell, name) in [
        (Shell::Bash, "redirfs"),
        (Shell::Zsh, "_redirfs"),
        (Shell::Fish, "redirfs.fish"),
    ] {
        let mut out = std::fs::File::create(completions.join(name))?;
        clap_complete::generate(shell, &mut cmd, "redirfs", &mut out);
        out.flush()?;
    }
    Ok(())
}

/// One page: what clap_mangen renders from the command, then `extra` (roff).
fn page(dir: &Path, cmd: clap::Command, extra: &str) -> std::io::Result<()> {
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let man = clap_mangen::Man::new(cmd)
        .source(format!("redirfs {version}"))
        .manual("redirfs manual");
    let mut out = std::fs::File::create(dir.join(man.get_filename()))?;
    man.render(&mut out)?;
    out.write_all(extra.as_bytes())?;
    out.flush()
}
