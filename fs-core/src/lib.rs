//! redirfs's platform-neutral core.
//!
//! Data flow, one module per arrow: YAML text -> [`yaml`] (nodes with positions) -> [`decl`]
//! (validated [`decl::Declaration`], every problem collected as a [`diag::Diagnostic`]) ->
//! [`table`] (the redirection trie that resolves virtual paths) -> the backends' overlays.
//!
//! fs-core knows nothing of FUSE or WinFsp.

#![deny(unsafe_code)]

#[cfg(unix)]
pub mod beneath;
#[cfg(unix)]
pub mod creds;
pub mod decl;
pub mod diag;
pub mod diff;
pub mod error;
pub mod explain;
#[cfg(unix)]
mod inodes;
pub mod names;
#[cfg(unix)]
pub mod overlay;
pub mod place;
#[cfg(unix)]
pub mod sys;
pub mod table;
pub mod vpath;
pub mod yaml;

pub use decl::{load_file, Declaration, Entry, LoadError, Mountpoint, OnMissing, Presentation};
pub use diag::{Diagnostic, Invalid, Severity};
pub use error::Error;
pub use names::NameCase;
pub use table::{Resolved, SharedTable, Table};
pub use vpath::VPath;
