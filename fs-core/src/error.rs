//! The core's error type. Each backend maps it with an exhaustive match: to an errno for FUSE, to
//! an NTSTATUS for WinFsp, so no error silently turns into a generic one.

use std::fmt;
use std::io;

/// An error from an overlay operation.
#[derive(Debug)]
pub enum Error {
    /// No such file or directory.
    NotFound,
    /// A component that must be a directory is not one.
    NotADirectory,
    /// A directory where a file was expected.
    IsADirectory,
    /// The name exists already.
    Exists,
    /// The directory is not empty.
    NotEmpty,
    /// Writes are refused here: a read-only mount or entry, or a synthetic directory.
    ReadOnly,
    /// The operation would change a declared redirection entry itself (delete, rename, replace):
    /// entries are changed in the declaration, never through the mount.
    DeclaredEntry,
    /// The two names lie on different real filesystems or redirections.
    CrossDevice,
    /// The name is not valid here.
    InvalidName,
    /// The argument does not fit the object (e.g. readlink on a non-link).
    InvalidArgument,
    /// The operation is not supported on this object.
    Unsupported,
    /// The operation is not permitted on this kind of object (e.g. a hard link to a synthetic
    /// directory).
    NotPermitted,
    /// An error from the operating system, with its raw code.
    Os(io::Error),
}

impl Error {
    /// Whether this says only that the name does not exist (ENOENT): an ordinary answer to a
    /// probe, not a failure.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound => true,
            Error::Os(e) => e.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// The error of the last failed system call.
    pub fn last_os_error() -> Error {
        Error::Os(io::Error::last_os_error())
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Os(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("not found"),
            Error::NotADirectory => f.write_str("not a directory"),
            Error::IsADirectory => f.write_str("is a directory"),
            Error::Exists => f.write_str("already exists"),
            Error::NotEmpty => f.write_str("directory not empty"),
            Error::ReadOnly => f.write_str("read-only"),
            Error::DeclaredEntry => {
                f.write_str("a declared redirection entry cannot be changed through the mount")
            }
            Error::CrossDevice => f.write_str("crosses devices or redirections"),
            Error::InvalidName => f.write_str("invalid name"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::Unsupported => f.write_str("not supported"),
            Error::NotPermitted => f.write_str("operation not permitted"),
            Error::Os(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// Result of an overlay operation.
pub type Result<T> = std::result::Result<T, Error>;
