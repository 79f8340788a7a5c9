//! `fs_core::Error` to `NTSTATUS`.
//!
//! The match on [`Error`] is exhaustive, so a new core error cannot silently become a generic
//! status. An [`Error::Os`] carries a raw code whose meaning depends on where it was made: on
//! Windows a Win32 error (`GetLastError`), elsewhere an errno. A Win32 code is mapped through a
//! table and, when unknown, encoded losslessly as `NTSTATUS_FROM_WIN32` (facility 7), which
//! Windows turns back into the same Win32 code for the caller. An errno never travels as a
//! number: it goes through its `io::ErrorKind`.

use std::fmt;
use std::io;

use fs_core::Error;

/// An `NTSTATUS` value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NtStatus(pub i32);

macro_rules! statuses {
    ($($name:ident = $value:expr;)+) => {
        $(
            #[doc = concat!("`", stringify!($name), "`.")]
            pub const $name: NtStatus = NtStatus($value as u32 as i32);
        )+

        impl NtStatus {
            /// The symbolic name, when it is one of the constants here.
            pub fn name(self) -> Option<&'static str> {
                $(
                    if self == $name {
                        return Some(stringify!($name));
                    }
                )+
                None
            }
        }
    };
}

statuses! {
    STATUS_SUCCESS = 0x0000_0000u32;
    STATUS_BUFFER_OVERFLOW = 0x8000_0005u32;
    STATUS_UNSUCCESSFUL = 0xC000_0001u32;
    STATUS_INVALID_HANDLE = 0xC000_0008u32;
    STATUS_INVALID_PARAMETER = 0xC000_000Du32;
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010u32;
    STATUS_END_OF_FILE = 0xC000_0011u32;
    STATUS_ACCESS_DENIED = 0xC000_0022u32;
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023u32;
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033u32;
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034u32;
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035u32;
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003Au32;
    STATUS_OBJECT_PATH_SYNTAX_BAD = 0xC000_003Bu32;
    STATUS_DATA_ERROR = 0xC000_003Eu32;
    STATUS_SHARING_VIOLATION = 0xC000_0043u32;
    STATUS_FILE_LOCK_CONFLICT = 0xC000_0054u32;
    STATUS_DELETE_PENDING = 0xC000_0056u32;
    STATUS_PRIVILEGE_NOT_HELD = 0xC000_0061u32;
    STATUS_DISK_FULL = 0xC000_007Fu32;
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009Au32;
    STATUS_MEDIA_WRITE_PROTECTED = 0xC000_00A2u32;
    STATUS_DEVICE_NOT_READY = 0xC000_00A3u32;
    STATUS_IO_TIMEOUT = 0xC000_00B5u32;
    STATUS_FILE_IS_A_DIRECTORY = 0xC000_00BAu32;
    STATUS_NOT_SUPPORTED = 0xC000_00BBu32;
    STATUS_BAD_NETWORK_PATH = 0xC000_00BEu32;
    STATUS_BAD_NETWORK_NAME = 0xC000_00CCu32;
    STATUS_NOT_SAME_DEVICE = 0xC000_00D4u32;
    STATUS_CANT_WAIT = 0xC000_00D8u32;
    STATUS_INTERNAL_ERROR = 0xC000_00E5u32;
    STATUS_UNEXPECTED_IO_ERROR = 0xC000_00E9u32;
    STATUS_DIRECTORY_NOT_EMPTY = 0xC000_0101u32;
    STATUS_FILE_CORRUPT_ERROR = 0xC000_0102u32;
    STATUS_NOT_A_DIRECTORY = 0xC000_0103u32;
    STATUS_NAME_TOO_LONG = 0xC000_0106u32;
    STATUS_TOO_MANY_OPENED_FILES = 0xC000_011Fu32;
    STATUS_CANCELLED = 0xC000_0120u32;
    STATUS_CANNOT_DELETE = 0xC000_0121u32;
    STATUS_IO_DEVICE_ERROR = 0xC000_0185u32;
    STATUS_NOT_A_REPARSE_POINT = 0xC000_0275u32;
    STATUS_IO_REPARSE_TAG_INVALID = 0xC000_0276u32;
    STATUS_IO_REPARSE_DATA_INVALID = 0xC000_0278u32;
    STATUS_REPARSE_POINT_NOT_RESOLVED = 0xC000_0280u32;
    STATUS_FILE_TOO_LARGE = 0xC000_0904u32;
}

impl NtStatus {
    /// The value as unsigned, the way Windows documentation prints it.
    pub fn as_u32(self) -> u32 {
        self.0 as u32
    }

    /// Whether this is a success or informational status (severity 0 or 1).
    pub fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// `NTSTATUS_FROM_WIN32`: a Win32 error carried in facility 7, which `RtlNtStatusToDosError`
    /// turns back into the same code.
    pub fn from_win32_facility(code: u32) -> NtStatus {
        if code == 0 {
            return STATUS_SUCCESS;
        }
        NtStatus((0xC007_0000 | (code & 0xFFFF)) as i32)
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#010X})", self.as_u32()),
            None => write!(f, "NTSTATUS {:#010X}", self.as_u32()),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What the raw code in an `io::Error` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawOs {
    /// A Win32 error code (`GetLastError`): what Windows' standard library stores.
    Win32,
    /// An errno: what Unix standard libraries store.
    Errno,
}

/// How raw codes are read on this build's target.
pub const NATIVE_RAW: RawOs = if cfg!(windows) {
    RawOs::Win32
} else {
    RawOs::Errno
};

/// The status for a core error, reading raw OS codes the way this target writes them.
pub fn status_of(e: &Error) -> NtStatus {
    status_of_as(e, NATIVE_RAW)
}

/// The status for a core error, with raw OS codes read as `raw`.
pub fn status_of_as(e: &Error, raw: RawOs) -> NtStatus {
    match e {
        Error::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        Error::NotADirectory => STATUS_NOT_A_DIRECTORY,
        Error::IsADirectory => STATUS_FILE_IS_A_DIRECTORY,
        Error::Exists => STATUS_OBJECT_NAME_COLLISION,
        Error::NotEmpty => STATUS_DIRECTORY_NOT_EMPTY,
        // A whole read-only volume is refused by WinFsp itself (STATUS_MEDIA_WRITE_PROTECTED);
        // what reaches us is a read-only entry or a synthetic directory: "Access is denied".
        Error::ReadOnly => STATUS_ACCESS_DENIED,
        Error::DeclaredEntry => STATUS_ACCESS_DENIED,
        // MoveFileEx with MOVEFILE_COPY_ALLOWED then copies and deletes, as across volumes.
        Error::CrossDevice => STATUS_NOT_SAME_DEVICE,
        Error::InvalidName => STATUS_OBJECT_NAME_INVALID,
        Error::InvalidArgument => STATUS_INVALID_PARAMETER,
        Error::Unsupported => STATUS_NOT_SUPPORTED,
        Error::NotPermitted => STATUS_ACCESS_DENIED,
        Error::Os(io) => io_status(io, raw),
    }
}

/// The status for an `io::Error`.
pub fn io_status(e: &io::Error, raw: RawOs) -> NtStatus {
    match (e.raw_os_error(), raw) {
        (Some(code), RawOs::Win32) => win32_status(code as u32),
        // The standard library decodes errno into a kind on every Unix.
        (Some(_), RawOs::Errno) | (None, _) => kind_status(e.kind()),
    }
}

/// The status for a Win32 error code; unknown codes keep their value in facility 7.
pub fn win32_status(code: u32) -> NtStatus {
    match code {
        0 => STATUS_UNEXPECTED_IO_ERROR, // an error that says "success" is a bug somewhere
        1 => STATUS_INVALID_DEVICE_REQUEST, // ERROR_INVALID_FUNCTION
        2 => STATUS_OBJECT_NAME_NOT_FOUND, // ERROR_FILE_NOT_FOUND
        3 | 15 => STATUS_OBJECT_PATH_NOT_FOUND, // ERROR_PATH_NOT_FOUND, ERROR_INVALID_DRIVE
        4 => STATUS_TOO_MANY_OPENED_FILES, // ERROR_TOO_MANY_OPEN_FILES
        5 => STATUS_ACCESS_DENIED,       // ERROR_ACCESS_DENIED
        6 => STATUS_INVALID_HANDLE,      // ERROR_INVALID_HANDLE
        8 | 14 => STATUS_INSUFFICIENT_RESOURCES, // ERROR_NOT_ENOUGH_MEMORY, ERROR_OUTOFMEMORY
        17 => STATUS_NOT_SAME_DEVICE,    // ERROR_NOT_SAME_DEVICE
        19 => STATUS_MEDIA_WRITE_PROTECTED, // ERROR_WRITE_PROTECT
        21 => STATUS_DEVICE_NOT_READY,   // ERROR_NOT_READY
        32 => STATUS_SHARING_VIOLATION,  // ERROR_SHARING_VIOLATION
        33 => STATUS_FILE_LOCK_CONFLICT, // ERROR_LOCK_VIOLATION
        38 => STATUS_END_OF_FILE,        // ERROR_HANDLE_EOF
        39 | 112 => STATUS_DISK_FULL,    // ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL
        50 => STATUS_NOT_SUPPORTED,      // ERROR_NOT_SUPPORTED
        53 => STATUS_BAD_NETWORK_PATH,   // ERROR_BAD_NETPATH
        67 => STATUS_BAD_NETWORK_NAME,   // ERROR_BAD_NET_NAME
        80 | 183 => STATUS_OBJECT_NAME_COLLISION, // ERROR_FILE_EXISTS, ERROR_ALREADY_EXISTS
        87 => STATUS_INVALID_PARAMETER,  // ERROR_INVALID_PARAMETER
        122 => STATUS_BUFFER_TOO_SMALL,  // ERROR_INSUFFICIENT_BUFFER
        123 => STATUS_OBJECT_NAME_INVALID, // ERROR_INVALID_NAME
        145 => STATUS_DIRECTORY_NOT_EMPTY, // ERROR_DIR_NOT_EMPTY
        161 => STATUS_OBJECT_PATH_SYNTAX_BAD, // ERROR_BAD_PATHNAME
        206 => STATUS_NAME_TOO_LONG,     // ERROR_FILENAME_EXCED_RANGE
        234 => STATUS_BUFFER_OVERFLOW,   // ERROR_MORE_DATA
        267 => STATUS_NOT_A_DIRECTORY,   // ERROR_DIRECTORY
        303 => STATUS_DELETE_PENDING,    // ERROR_DELETE_PENDING
        336 => STATUS_FILE_IS_A_DIRECTORY, // ERROR_DIRECTORY_NOT_SUPPORTED
        1117 => STATUS_IO_DEVICE_ERROR,  // ERROR_IO_DEVICE
        1314 => STATUS_PRIVILEGE_NOT_HELD, // ERROR_PRIVILEGE_NOT_HELD
        1392 => STATUS_FILE_CORRUPT_ERROR, // ERROR_FILE_CORRUPT
        1921 => STATUS_REPARSE_POINT_NOT_RESOLVED, // ERROR_CANT_RESOLVE_FILENAME
        4390 => STATUS_NOT_A_REPARSE_POINT, // ERROR_NOT_A_REPARSE_POINT
        4392 => STATUS_IO_REPARSE_DATA_INVALID, // ERROR_INVALID_REPARSE_DATA
        4393 => STATUS_IO_REPARSE_TAG_INVALID, // ERROR_REPARSE_TAG_INVALID
        other => NtStatus::from_win32_facility(other),
    }
}

/// The status for an `HRESULT` (what the `windows` crate's errors carry): a Win32 error in
/// facility 7 goes through [`win32_status`]; an `NTSTATUS` wrapped with the N bit
/// (`HRESULT_FROM_NT`) is unwrapped; anything else is an unexpected I/O error.
pub fn hresult_status(hr: i32) -> NtStatus {
    let code = hr as u32;
    if code & 0x1000_0000 != 0 {
        return NtStatus((code & !0x1000_0000) as i32);
    }
    if code & 0xFFFF_0000 == 0x8007_0000 {
        return win32_status(code & 0xFFFF);
    }
    STATUS_UNEXPECTED_IO_ERROR
}

/// The status for an `io::ErrorKind` (errors without a raw code, or with an errno).
pub fn kind_status(kind: io::ErrorKind) -> NtStatus {
    use io::ErrorKind as K;
    match kind {
        K::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        K::PermissionDenied => STATUS_ACCESS_DENIED,
        K::AlreadyExists => STATUS_OBJECT_NAME_COLLISION,
        K::NotADirectory => STATUS_NOT_A_DIRECTORY,
        K::IsADirectory => STATUS_FILE_IS_A_DIRECTORY,
        K::DirectoryNotEmpty => STATUS_DIRECTORY_NOT_EMPTY,
        K::ReadOnlyFilesystem => STATUS_MEDIA_WRITE_PROTECTED,
        K::CrossesDevices => STATUS_NOT_SAME_DEVICE,
        K::StorageFull => STATUS_DISK_FULL,
        K::FileTooLarge => STATUS_FILE_TOO_LARGE,
        K::InvalidInput => STATUS_INVALID_PARAMETER,
        K::InvalidData => STATUS_DATA_ERROR,
        K::Unsupported => STATUS_NOT_SUPPORTED,
        K::OutOfMemory => STATUS_INSUFFICIENT_RESOURCES,
        K::ResourceBusy => STATUS_SHARING_VIOLATION,
        K::TimedOut => STATUS_IO_TIMEOUT,
        K::Interrupted => STATUS_CANCELLED,
        K::UnexpectedEof => STATUS_END_OF_FILE,
        K::WouldBlock => STATUS_CANT_WAIT,
        _ => STATUS_UNEXPECTED_IO_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(e: Error) -> NtStatus {
        status_of_as(&e, RawOs::Win32)
    }

    #[test]
    fn every_core_error() {
        assert_eq!(s(Error::NotFound), STATUS_OBJECT_NAME_NOT_FOUND);
        assert_eq!(s(Error::NotADirectory), STATUS_NOT_A_DIRECTORY);
        assert_eq!(s(Error::IsADirectory), STATUS_FILE_IS_A_DIRECTORY);
        assert_eq!(s(Error::Exists), STATUS_OBJECT_NAME_COLLISION);
        assert_eq!(s(Error::NotEmpty), STATUS_DIRECTORY_NOT_EMPTY);
        assert_eq!(s(Error::ReadOnly), STATUS_ACCESS_DENIED);
        assert_eq!(s(Error::DeclaredEntry), STATUS_ACCESS_DENIED);
        assert_eq!(s(Error::CrossDevice), STATUS_NOT_SAME_DEVICE);
        assert_eq!(s(Error::InvalidName), STATUS_OBJECT_NAME_INVALID);
        assert_eq!(s(Error::InvalidArgument), STATUS_INVALID_PARAMETER);
        assert_eq!(s(Error::Unsupported), STATUS_NOT_SUPPORTED);
        assert_eq!(s(Error::NotPermitted), STATUS_ACCESS_DENIED);
        assert_eq!(
            s(Error::Os(io::Error::from_raw_os_error(5))),
            STATUS_ACCESS_DENIED
        );
    }

    #[test]
    fn win32_codes() {
        let cases = [
            (2, STATUS_OBJECT_NAME_NOT_FOUND),
            (3, STATUS_OBJECT_PATH_NOT_FOUND),
            (5, STATUS_ACCESS_DENIED),
            (17, STATUS_NOT_SAME_DEVICE),
            (32, STATUS_SHARING_VIOLATION),
            (80, STATUS_OBJECT_NAME_COLLISION),
            (145, STATUS_DIRECTORY_NOT_EMPTY),
            (183, STATUS_OBJECT_NAME_COLLISION),
            (267, STATUS_NOT_A_DIRECTORY),
            (1314, STATUS_PRIVILEGE_NOT_HELD),
            (4390, STATUS_NOT_A_REPARSE_POINT),
        ];
        for (code, want) in cases {
            let e = Error::Os(io::Error::from_raw_os_error(code));
            assert_eq!(status_of_as(&e, RawOs::Win32), want, "Win32 error {code}");
        }
    }

    #[test]
    fn unknown_win32_codes_keep_their_value() {
        // ERROR_CANT_ACCESS_FILE (1920) is not in the table: it travels in facility 7.
        let st = win32_status(1920);
        assert_eq!(st.as_u32(), 0xC007_0780);
        assert!(!st.is_success());
        assert_eq!(win32_status(0), STATUS_UNEXPECTED_IO_ERROR);
    }

    #[test]
    fn errno_never_travels_as_a_number() {
        // The same raw numbers read as errno: ENOENT, EACCES, EEXIST, EXDEV on every Unix.
        for (errno, want) in [
            (2, STATUS_OBJECT_NAME_NOT_FOUND),
            (13, STATUS_ACCESS_DENIED),
            (17, STATUS_OBJECT_NAME_COLLISION),
            (18, STATUS_NOT_SAME_DEVICE),
        ] {
            let e = Error::Os(io::Error::from_raw_os_error(errno));
            if cfg!(unix) {
                assert_eq!(status_of_as(&e, RawOs::Errno), want, "errno {errno}");
            }
            let st = status_of_as(&e, RawOs::Errno);
            assert_ne!(st, NtStatus::from_win32_facility(errno as u32));
            assert_ne!(st.0, errno);
        }
    }

    #[test]
    fn errors_without_a_code_go_by_kind() {
        let e = Error::Os(io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert_eq!(status_of(&e), STATUS_OBJECT_NAME_NOT_FOUND);
        let e = Error::Os(io::Error::other("odd"));
        assert_eq!(status_of(&e), STATUS_UNEXPECTED_IO_ERROR);
        assert_eq!(
            kind_status(io::ErrorKind::DirectoryNotEmpty),
            STATUS_DIRECTORY_NOT_EMPTY
        );
        assert_eq!(
            kind_status(io::ErrorKind::CrossesDevices),
            STATUS_NOT_SAME_DEVICE
        );
    }

    #[test]
    fn hresults() {
        // HRESULT_FROM_WIN32(ERROR_ACCESS_DENIED)
        assert_eq!(hresult_status(0x8007_0005u32 as i32), STATUS_ACCESS_DENIED);
        // HRESULT_FROM_NT(STATUS_OBJECT_NAME_NOT_FOUND)
        assert_eq!(
            hresult_status(0xD000_0034u32 as i32),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
        // E_FAIL
        assert_eq!(
            hresult_status(0x8000_4005u32 as i32),
            STATUS_UNEXPECTED_IO_ERROR
        );
    }

    #[test]
    fn native_reading_matches_the_target() {
        assert_eq!(NATIVE_RAW == RawOs::Win32, cfg!(windows));
    }

    #[test]
    fn names_and_values() {
        assert_eq!(STATUS_ACCESS_DENIED.as_u32(), 0xC000_0022);
        assert_eq!(STATUS_ACCESS_DENIED.name(), Some("STATUS_ACCESS_DENIED"));
        assert_eq!(
            format!("{:?}", STATUS_OBJECT_NAME_NOT_FOUND),
            "STATUS_OBJECT_NAME_NOT_FOUND (0xC0000034)"
        );
        assert_eq!(format!("{:?}", NtStatus(0x1234)), "NTSTATUS 0x00001234");
        assert!(STATUS_SUCCESS.is_success());
        assert!(
            STATUS_BUFFER_OVERFLOW.as_u32() >> 30 == 2,
            "a warning, not an error"
        );
    }
}
