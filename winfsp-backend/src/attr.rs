//! File attributes and times as Windows reports them.
//!
//! `FILETIME` counts 100-nanosecond intervals since 1601-01-01 UTC; Unix time counts seconds
//! since 1970-01-01 UTC. The two epochs are 11 644 473 600 seconds apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `FILE_ATTRIBUTE_READONLY`.
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
/// `FILE_ATTRIBUTE_HIDDEN`.
pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x2;
/// `FILE_ATTRIBUTE_SYSTEM`.
pub const FILE_ATTRIBUTE_SYSTEM: u32 = 0x4;
/// `FILE_ATTRIBUTE_DIRECTORY`.
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
/// `FILE_ATTRIBUTE_ARCHIVE`.
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;
/// `FILE_ATTRIBUTE_NORMAL`: only valid alone.
pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
/// `FILE_ATTRIBUTE_REPARSE_POINT`.
pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
/// `INVALID_FILE_ATTRIBUTES`: WinFsp's "leave the attributes as they are".
pub const INVALID_FILE_ATTRIBUTES: u32 = u32::MAX;

/// Seconds between 1601-01-01 and 1970-01-01.
pub const EPOCH_DIFFERENCE_SECS: u64 = 11_644_473_600;
const TICKS_PER_SEC: u64 = 10_000_000;

/// What Windows reports about a file: the fields of WinFsp's `FSP_FSCTL_FILE_INFO`, filled by
/// the Windows layer from the real file or made up for declared objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Info {
    /// `FILE_ATTRIBUTE_*`.
    pub attributes: u32,
    /// The reparse tag when `attributes` has `FILE_ATTRIBUTE_REPARSE_POINT`, else 0.
    pub reparse_tag: u32,
    /// Bytes allocated on disk.
    pub allocation_size: u64,
    /// The end of file.
    pub file_size: u64,
    /// `FILETIME`s.
    pub creation_time: u64,
    /// `FILETIME`.
    pub last_access_time: u64,
    /// `FILETIME`.
    pub last_write_time: u64,
    /// `FILETIME`.
    pub change_time: u64,
    /// The file index (NTFS file reference), 0 when made up.
    pub index_number: u64,
}

impl Info {
    /// A made-up object: a synthetic directory or a link entry, with all times `time`.
    pub fn made_up(attributes: u32, reparse_tag: u32, time: u64) -> Info {
        Info {
            attributes,
            reparse_tag,
            creation_time: time,
            last_access_time: time,
            last_write_time: time,
            change_time: time,
            ..Info::default()
        }
    }
}

/// How many bytes a constrained write (one that must not extend the file, as the cache manager's
/// paging writes) may write at `offset` into a file of `file_size` bytes.
pub fn constrained_len(offset: u64, len: usize, file_size: u64) -> usize {
    if offset >= file_size {
        return 0;
    }
    let room = file_size - offset;
    usize::try_from(room).map_or(len, |room| len.min(room))
}

/// What an object is, for its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// The attributes of an object the overlay makes up (a synthetic directory, a link entry).
///
/// A reparse point carries `FILE_ATTRIBUTE_REPARSE_POINT` and, when it stands for a directory,
/// `FILE_ATTRIBUTE_DIRECTORY` too; a file with nothing else set is `FILE_ATTRIBUTE_NORMAL`.
pub fn attributes(kind: Kind, read_only: bool, reparse: bool) -> u32 {
    let mut a = 0;
    if kind == Kind::Dir {
        a |= FILE_ATTRIBUTE_DIRECTORY;
    }
    // READONLY on a directory means "customized folder" to Explorer, not "read-only".
    if read_only && kind == Kind::File {
        a |= FILE_ATTRIBUTE_READONLY;
    }
    if reparse {
        a |= FILE_ATTRIBUTE_REPARSE_POINT;
    }
    if a == 0 {
        a = FILE_ATTRIBUTE_NORMAL;
    }
    a
}

/// The attributes to put in a `FILE_BASIC_INFO` for a set-attributes request:
/// `INVALID_FILE_ATTRIBUTES` leaves them alone (0 in `FILE_BASIC_INFO`), and 0 clears them all
/// (which `FILE_BASIC_INFO` spells `FILE_ATTRIBUTE_NORMAL`).
pub fn basic_info_attributes(requested: u32) -> u32 {
    match requested {
        INVALID_FILE_ATTRIBUTES => 0,
        0 => FILE_ATTRIBUTE_NORMAL,
        a => a,
    }
}

/// The attributes to set when a file is overwritten or superseded, or `None` to leave them:
/// a supersede replaces them; an overwrite adds the requested ones to those present.
pub fn overwrite_attributes(requested: u32, replace: bool, current: u32) -> Option<u32> {
    if replace {
        return Some(basic_info_attributes(requested));
    }
    if requested == 0 || requested == INVALID_FILE_ATTRIBUTES {
        return None;
    }
    let merged = requested | current;
    (merged != current).then_some(merged)
}

/// Unix time (seconds and nanoseconds since 1970) to `FILETIME`. Times before 1601 become 0,
/// the earliest `FILETIME`.
pub fn unix_to_filetime(secs: i64, nanos: u32) -> u64 {
    let Some(since_1601) = secs.checked_add(EPOCH_DIFFERENCE_SECS as i64) else {
        return u64::MAX;
    };
    if since_1601 < 0 {
        return 0;
    }
    (since_1601 as u64)
        .saturating_mul(TICKS_PER_SEC)
        .saturating_add(u64::from(nanos / 100))
}

/// `FILETIME` to Unix time: seconds (negative before 1970) and nanoseconds.
pub fn filetime_to_unix(ft: u64) -> (i64, u32) {
    let secs = (ft / TICKS_PER_SEC) as i64 - EPOCH_DIFFERENCE_SECS as i64;
    let nanos = ((ft % TICKS_PER_SEC) * 100) as u32;
    (secs, nanos)
}

/// A `SystemTime` as `FILETIME`.
pub fn system_time_to_filetime(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => unix_to_filetime(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            // Round down: 0.5 s before 1970 is -1 s + 0.5 s.
            let (mut secs, mut nanos) = (-(d.as_secs() as i64), d.subsec_nanos());
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            unix_to_filetime(secs, nanos)
        }
    }
}

/// `FILETIME` as a `SystemTime`.
pub fn filetime_to_system_time(ft: u64) -> SystemTime {
    let (secs, nanos) = filetime_to_unix(ft);
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    }
}

/// Rounds a size up to whole allocation units, as file systems report `AllocationSize`.
pub fn allocation_size(size: u64, unit: u64) -> u64 {
    if unit == 0 {
        return size;
    }
    size.div_ceil(unit).saturating_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values() {
        assert_eq!(attributes(Kind::File, false, false), FILE_ATTRIBUTE_NORMAL);
        assert_eq!(attributes(Kind::File, true, false), FILE_ATTRIBUTE_READONLY);
        assert_eq!(
            attributes(Kind::Dir, false, false),
            FILE_ATTRIBUTE_DIRECTORY
        );
        assert_eq!(attributes(Kind::Dir, true, false), FILE_ATTRIBUTE_DIRECTORY);
        assert_eq!(attributes(Kind::Dir, false, true), 0x410);
        assert_eq!(attributes(Kind::File, false, true), 0x400);
        assert_eq!(attributes(Kind::File, true, true), 0x401);
    }

    #[test]
    fn set_attribute_requests() {
        assert_eq!(basic_info_attributes(INVALID_FILE_ATTRIBUTES), 0);
        assert_eq!(basic_info_attributes(0), FILE_ATTRIBUTE_NORMAL);
        assert_eq!(
            basic_info_attributes(FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_ARCHIVE),
            0x22
        );
        assert_eq!(overwrite_attributes(0x2, true, 0x21), Some(0x2));
        assert_eq!(
            overwrite_attributes(0, true, 0x21),
            Some(FILE_ATTRIBUTE_NORMAL)
        );
        assert_eq!(overwrite_attributes(0, false, 0x21), None);
        assert_eq!(overwrite_attributes(0x20, false, 0x21), None);
        assert_eq!(overwrite_attributes(0x2, false, 0x20), Some(0x22));
    }

    #[test]
    fn filetime_epochs() {
        assert_eq!(unix_to_filetime(0, 0), 116_444_736_000_000_000);
        assert_eq!(filetime_to_unix(116_444_736_000_000_000), (0, 0));
        assert_eq!(unix_to_filetime(-11_644_473_600, 0), 0);
        assert_eq!(
            unix_to_filetime(-11_644_473_601, 0),
            0,
            "before 1601 clamps"
        );
        assert_eq!(filetime_to_unix(0), (-11_644_473_600, 0));
        // 2020-01-01T00:00:00Z, as `Get-Date ... .ToFileTimeUtc()` gives it.
        assert_eq!(unix_to_filetime(1_577_836_800, 0), 132_223_104_000_000_000);
    }

    #[test]
    fn filetime_keeps_100ns_resolution() {
        assert_eq!(unix_to_filetime(1, 123_456_789), 116_444_736_011_234_567);
        assert_eq!(filetime_to_unix(116_444_736_011_234_567), (1, 123_456_700));
        assert_eq!(
            filetime_to_unix(unix_to_filetime(-1, 500_000_000)),
            (-1, 500_000_000)
        );
    }

    #[test]
    fn system_time_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 987_654_300);
        assert_eq!(filetime_to_system_time(system_time_to_filetime(t)), t);
        let before = UNIX_EPOCH - Duration::new(86_400, 500_000_000);
        let ft = system_time_to_filetime(before);
        assert_eq!(filetime_to_unix(ft), (-86_401, 500_000_000));
        assert_eq!(filetime_to_system_time(ft), before);
    }

    #[test]
    fn constrained_writes_never_extend() {
        assert_eq!(constrained_len(0, 10, 100), 10);
        assert_eq!(constrained_len(95, 10, 100), 5);
        assert_eq!(constrained_len(100, 10, 100), 0);
        assert_eq!(constrained_len(200, 10, 100), 0);
    }

    #[test]
    fn made_up_info() {
        let i = Info::made_up(attributes(Kind::Dir, false, true), 0xA000_0003, 42);
        assert_eq!(i.attributes, 0x410);
        assert_eq!((i.creation_time, i.change_time, i.file_size), (42, 42, 0));
    }

    #[test]
    fn allocation_units() {
        assert_eq!(allocation_size(0, 4096), 0);
        assert_eq!(allocation_size(1, 4096), 4096);
        assert_eq!(allocation_size(4096, 4096), 4096);
        assert_eq!(allocation_size(4097, 4096), 8192);
        assert_eq!(allocation_size(5, 0), 5);
    }
}
