//! fs-core errors to errno, exhaustively: fuser turns an `io::Error` without a raw OS code into
//! EIO, so every variant is named here.

use fs_core::Error;
use fuser::Errno;

/// The errno a program sees for `e`.
pub fn errno_of(e: &Error) -> Errno {
    match e {
        Error::NotFound => Errno::ENOENT,
        Error::NotADirectory => Errno::ENOTDIR,
        Error::IsADirectory => Errno::EISDIR,
        Error::Exists => Errno::EEXIST,
        Error::NotEmpty => Errno::ENOTEMPTY,
        Error::ReadOnly => Errno::EROFS,
        Error::DeclaredEntry => Errno::EPERM,
        Error::CrossDevice => Errno::EXDEV,
        Error::InvalidName => Errno::EINVAL,
        Error::InvalidArgument => Errno::EINVAL,
        Error::Unsupported => Errno::ENOTSUP,
        Error::NotPermitted => Errno::EPERM,
        Error::Os(io) => match io.raw_os_error() {
            Some(code) if code > 0 => Errno::from_i32(code),
            _ => {
                log::warn!("an error without an OS code reached the kernel as EIO: {io}");
                Errno::EIO
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_os_codes_and_maps_core_errors() {
        let e = Error::Os(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(errno_of(&e).code(), libc::ENOSPC);
        assert_eq!(errno_of(&Error::DeclaredEntry).code(), libc::EPERM);
        assert_eq!(errno_of(&Error::CrossDevice).code(), libc::EXDEV);
        assert_eq!(errno_of(&Error::ReadOnly).code(), libc::EROFS);
        assert_eq!(errno_of(&Error::NotPermitted).code(), libc::EPERM);
        let plain = Error::Os(std::io::Error::other("no code"));
        assert_eq!(errno_of(&plain).code(), libc::EIO);
    }
}
