//! `REPARSE_DATA_BUFFER`s for symbolic links and mount points (junctions), built and parsed byte
//! for byte.
//!
//! The documented layout (MS-FSCC 2.1.2.4 and 2.1.2.5), all integers little-endian:
//!
//! ```text
//! offset  size  field
//!      0     4  ReparseTag
//!      4     2  ReparseDataLength   bytes after this 8-byte header
//!      6     2  Reserved            0 at rest
//!      8     2  SubstituteNameOffset  \  byte offsets and lengths inside PathBuffer,
//!     10     2  SubstituteNameLength   |  lengths without any terminator
//!     12     2  PrintNameOffset        |
//!     14     2  PrintNameLength       /
//!     16     4  Flags               symbolic links only; SYMLINK_FLAG_RELATIVE = 1
//!  16/20     -  PathBuffer          UTF-16LE
//! ```
//!
//! As Windows writes them: a symbolic link's PathBuffer holds the print name, then the substitute
//! name, without terminators; a mount point's holds the substitute name and the print name, each
//! followed by a UTF-16 NUL. Names never contain forward slashes.

use std::fmt;

use crate::names::WinTarget;

/// `IO_REPARSE_TAG_SYMLINK`.
pub const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;
/// `IO_REPARSE_TAG_MOUNT_POINT` (junctions).
pub const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// `SYMLINK_FLAG_RELATIVE`: the substitute name is relative to the link's directory.
pub const SYMLINK_FLAG_RELATIVE: u32 = 1;
/// The tag, length and reserved fields.
pub const HEADER_LEN: usize = 8;
/// `MAXIMUM_REPARSE_DATA_BUFFER_SIZE`.
pub const MAX_BUFFER_LEN: usize = 16 * 1024;

const SYMLINK_FIXED: usize = 12;
const MOUNT_POINT_FIXED: usize = 8;

/// A reparse point this file system shows or reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReparsePoint {
    /// `IO_REPARSE_TAG_SYMLINK`.
    Symlink {
        /// The path the I/O manager follows (`\??\D:\path` when absolute).
        substitute: String,
        /// The path shown to people (`D:\path`).
        print: String,
        /// `SYMLINK_FLAG_RELATIVE`.
        relative: bool,
    },
    /// `IO_REPARSE_TAG_MOUNT_POINT`.
    MountPoint {
        /// The path the I/O manager follows (`\??\D:\path`).
        substitute: String,
        /// The path shown to people (`D:\path`).
        print: String,
    },
}

/// Why a buffer could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReparseError {
    /// Shorter than its header or fixed fields, or than `ReparseDataLength` says.
    Truncated,
    /// A tag other than the two above.
    UnknownTag(u32),
    /// A name lies outside the PathBuffer or has an odd length or offset.
    BadName,
    /// A name is not valid UTF-16.
    Encoding,
    /// The names do not fit in `MAXIMUM_REPARSE_DATA_BUFFER_SIZE`.
    TooLong,
    /// The output buffer is too small; the whole point needs this many bytes.
    BufferTooSmall(usize),
}

impl fmt::Display for ReparseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReparseError::Truncated => f.write_str("reparse buffer is truncated"),
            ReparseError::UnknownTag(t) => write!(f, "unsupported reparse tag {t:#010x}"),
            ReparseError::BadName => {
                f.write_str("reparse buffer names lie outside the path buffer")
            }
            ReparseError::Encoding => f.write_str("reparse buffer names are not valid UTF-16"),
            ReparseError::TooLong => f.write_str("reparse target is too long"),
            ReparseError::BufferTooSmall(n) => write!(f, "reparse buffer needs {n} bytes"),
        }
    }
}

impl std::error::Error for ReparseError {}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ReparseError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(ReparseError::Truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ReparseError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(ReparseError::Truncated)
}

fn fit(n: usize) -> Result<u16, ReparseError> {
    u16::try_from(n).map_err(|_| ReparseError::TooLong)
}

fn name(path: &[u8], offset: u16, len: u16) -> Result<String, ReparseError> {
    let (o, l) = (usize::from(offset), usize::from(len));
    if o % 2 != 0 || l % 2 != 0 {
        return Err(ReparseError::BadName);
    }
    let bytes = path.get(o..o + l).ok_or(ReparseError::BadName)?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| ReparseError::Encoding)
}

impl ReparsePoint {
    /// An absolute symbolic link to `target`: `\??\D:\path` / `D:\path`, or
    /// `\??\UNC\server\share\path` / `\\server\share\path`.
    pub fn symlink_to(target: &WinTarget) -> ReparsePoint {
        ReparsePoint::Symlink {
            substitute: target.substitute_name(),
            print: target.print_name(),
            relative: false,
        }
    }

    /// A junction to `target`. Junctions only reach local volumes: callers check
    /// [`WinTarget::is_unc`] first (see [`crate::policy::plan_link`]).
    pub fn mount_point_to(target: &WinTarget) -> ReparsePoint {
        ReparsePoint::MountPoint {
            substitute: target.substitute_name(),
            print: target.print_name(),
        }
    }

    /// The reparse tag.
    pub fn tag(&self) -> u32 {
        match self {
            ReparsePoint::Symlink { .. } => IO_REPARSE_TAG_SYMLINK,
            ReparsePoint::MountPoint { .. } => IO_REPARSE_TAG_MOUNT_POINT,
        }
    }

    /// The substitute name.
    pub fn substitute(&self) -> &str {
        match self {
            ReparsePoint::Symlink { substitute, .. }
            | ReparsePoint::MountPoint { substitute, .. } => substitute,
        }
    }

    /// The print name.
    pub fn print(&self) -> &str {
        match self {
            ReparsePoint::Symlink { print, .. } | ReparsePoint::MountPoint { print, .. } => print,
        }
    }

    /// The whole `REPARSE_DATA_BUFFER`.
    ///
    /// # Errors
    /// [`ReparseError::TooLong`] when the names do not fit in 16 KiB.
    pub fn encode(&self) -> Result<Vec<u8>, ReparseError> {
        let mut out = Vec::new();
        match self {
            ReparsePoint::Symlink {
                substitute,
                print,
                relative,
            } => {
                let (sub, prt) = (utf16le(substitute), utf16le(print));
                let data_len = fit(SYMLINK_FIXED + prt.len() + sub.len())?;
                out.extend_from_slice(&IO_REPARSE_TAG_SYMLINK.to_le_bytes());
                out.extend_from_slice(&data_len.to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
                out.extend_from_slice(&fit(prt.len())?.to_le_bytes()); // SubstituteNameOffset
                out.extend_from_slice(&fit(sub.len())?.to_le_bytes()); // SubstituteNameLength
                out.extend_from_slice(&0u16.to_le_bytes()); // PrintNameOffset
                out.extend_from_slice(&fit(prt.len())?.to_le_bytes()); // PrintNameLength
                let flags = if *relative { SYMLINK_FLAG_RELATIVE } else { 0 };
                out.extend_from_slice(&flags.to_le_bytes());
                out.extend_from_slice(&prt);
                out.extend_from_slice(&sub);
            }
            ReparsePoint::MountPoint { substitute, print } => {
                let (sub, prt) = (utf16le(substitute), utf16le(print));
                let data_len = fit(MOUNT_POINT_FIXED + sub.len() + 2 + prt.len() + 2)?;
                out.extend_from_slice(&IO_REPARSE_TAG_MOUNT_POINT.to_le_bytes());
                out.extend_from_slice(&data_len.to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes()); // SubstituteNameOffset
                out.extend_from_slice(&fit(sub.len())?.to_le_bytes()); // SubstituteNameLength
                out.extend_from_slice(&fit(sub.len() + 2)?.to_le_bytes()); // PrintNameOffset
                out.extend_from_slice(&fit(prt.len())?.to_le_bytes()); // PrintNameLength
                out.extend_from_slice(&sub);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&prt);
                out.extend_from_slice(&[0, 0]);
            }
        }
        if out.len() > MAX_BUFFER_LEN {
            return Err(ReparseError::TooLong);
        }
        Ok(out)
    }

    /// Writes the buffer into `out`, returning the bytes written.
    ///
    /// # Errors
    /// [`ReparseError::BufferTooSmall`] with the size needed, or [`ReparseError::TooLong`].
    pub fn write_into(&self, out: &mut [u8]) -> Result<usize, ReparseError> {
        let bytes = self.encode()?;
        let dst = out
            .get_mut(..bytes.len())
            .ok_or(ReparseError::BufferTooSmall(bytes.len()))?;
        dst.copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    /// Parses a symbolic link or mount point buffer.
    ///
    /// # Errors
    /// Any inconsistency between the lengths, offsets and the bytes present; other tags.
    pub fn decode(buf: &[u8]) -> Result<ReparsePoint, ReparseError> {
        let tag = u32_at(buf, 0)?;
        let data_len = usize::from(u16_at(buf, 4)?);
        let data = buf
            .get(HEADER_LEN..HEADER_LEN + data_len)
            .ok_or(ReparseError::Truncated)?;
        let fixed = match tag {
            IO_REPARSE_TAG_SYMLINK => SYMLINK_FIXED,
            IO_REPARSE_TAG_MOUNT_POINT => MOUNT_POINT_FIXED,
            other => return Err(ReparseError::UnknownTag(other)),
        };
        if data.len() < fixed {
            return Err(ReparseError::Truncated);
        }
        let (sub_off, sub_len) = (u16_at(data, 0)?, u16_at(data, 2)?);
        let (prt_off, prt_len) = (u16_at(data, 4)?, u16_at(data, 6)?);
        let path = &data[fixed..];
        let substitute = name(path, sub_off, sub_len)?;
        let print = name(path, prt_off, prt_len)?;
        Ok(match tag {
            IO_REPARSE_TAG_SYMLINK => ReparsePoint::Symlink {
                substitute,
                print,
                relative: u32_at(data, 8)? & SYMLINK_FLAG_RELATIVE != 0,
            },
            _ => ReparsePoint::MountPoint { substitute, print },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u8> {
        utf16le(s)
    }

    fn target(text: &str) -> WinTarget {
        WinTarget::parse(text).expect("valid target")
    }

    #[test]
    fn symlink_bytes() {
        let rp = ReparsePoint::symlink_to(&target("D:/data"));
        let bytes = rp.encode().expect("fits");
        let mut want = vec![
            0x0C, 0x00, 0x00, 0xA0, // IO_REPARSE_TAG_SYMLINK
            48, 0, // ReparseDataLength = 12 + 14 + 22
            0, 0, // Reserved
            14, 0, // SubstituteNameOffset: after the print name
            22, 0, // SubstituteNameLength: "\??\D:\data"
            0, 0, // PrintNameOffset
            14, 0, // PrintNameLength: "D:\data"
            0, 0, 0, 0, // Flags: absolute
        ];
        want.extend(w("D:\\data"));
        want.extend(w("\\??\\D:\\data"));
        assert_eq!(bytes, want);
        assert_eq!(bytes.len(), 56);
    }

    #[test]
    fn unc_symlink_bytes() {
        let rp = ReparsePoint::symlink_to(&target("\\\\srv\\share\\dir"));
        let bytes = rp.encode().expect("fits");
        let (prt, sub) = (w("\\\\srv\\share\\dir"), w("\\??\\UNC\\srv\\share\\dir"));
        assert_eq!(&bytes[0..4], &IO_REPARSE_TAG_SYMLINK.to_le_bytes());
        assert_eq!(
            u16::from_le_bytes([bytes[4], bytes[5]]) as usize,
            12 + prt.len() + sub.len()
        );
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]) as usize, prt.len());
        assert_eq!(
            u16::from_le_bytes([bytes[10], bytes[11]]) as usize,
            sub.len()
        );
        assert_eq!(&bytes[20..20 + prt.len()], &prt[..]);
        assert_eq!(&bytes[20 + prt.len()..], &sub[..]);
    }

    #[test]
    fn mount_point_bytes() {
        let rp = ReparsePoint::mount_point_to(&target("D:\\data"));
        let bytes = rp.encode().expect("fits");
        let mut want = vec![
            0x03, 0x00, 0x00, 0xA0, // IO_REPARSE_TAG_MOUNT_POINT
            48, 0, // ReparseDataLength = 8 + (22 + 2) + (14 + 2)
            0, 0, // Reserved
            0, 0, // SubstituteNameOffset
            22, 0, // SubstituteNameLength, without the NUL
            24, 0, // PrintNameOffset, after the substitute name's NUL
            14, 0, // PrintNameLength, without the NUL
        ];
        want.extend(w("\\??\\D:\\data"));
        want.extend([0, 0]);
        want.extend(w("D:\\data"));
        want.extend([0, 0]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn round_trips() {
        let points = [
            ReparsePoint::symlink_to(&target("C:\\Program Files\\App")),
            ReparsePoint::symlink_to(&target("\\\\server\\share")),
            ReparsePoint::mount_point_to(&target("E:\\")),
            ReparsePoint::Symlink {
                substitute: "..\\sibling".into(),
                print: "..\\sibling".into(),
                relative: true,
            },
            ReparsePoint::mount_point_to(&target("D:\\日本語\\ä")),
        ];
        for rp in points {
            let bytes = rp.encode().expect("fits");
            assert_eq!(ReparsePoint::decode(&bytes).expect("parses"), rp);
        }
    }

    #[test]
    fn parses_what_windows_writes() {
        // `mklink /D dot .` as fsutil shows it: print name first, relative flag set.
        let bytes = [
            0x0C, 0x00, 0x00, 0xA0, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00,
            0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2E, 0x00, 0x2E, 0x00,
        ];
        assert_eq!(
            ReparsePoint::decode(&bytes).expect("parses"),
            ReparsePoint::Symlink {
                substitute: ".".into(),
                print: ".".into(),
                relative: true
            }
        );
    }

    #[test]
    fn refuses_bad_buffers() {
        let good = ReparsePoint::symlink_to(&target("D:\\x"))
            .encode()
            .expect("fits");
        assert_eq!(
            ReparsePoint::decode(&good[..7]),
            Err(ReparseError::Truncated)
        );
        assert_eq!(
            ReparsePoint::decode(&good[..good.len() - 1]),
            Err(ReparseError::Truncated)
        );
        let mut other = good.clone();
        other[0..4].copy_from_slice(&0x8000_0017u32.to_le_bytes());
        assert_eq!(
            ReparsePoint::decode(&other),
            Err(ReparseError::UnknownTag(0x8000_0017))
        );
        let mut outside = good.clone();
        outside[10] = 200; // SubstituteNameLength past the end
        assert_eq!(ReparsePoint::decode(&outside), Err(ReparseError::BadName));
        let mut odd = good.clone();
        odd[8] = 1; // odd SubstituteNameOffset
        assert_eq!(ReparsePoint::decode(&odd), Err(ReparseError::BadName));
        // A lone high surrogate as the print name.
        let mut bad_utf16 = good;
        bad_utf16[20..22].copy_from_slice(&0xD800u16.to_le_bytes());
        assert_eq!(
            ReparsePoint::decode(&bad_utf16),
            Err(ReparseError::Encoding)
        );
    }

    #[test]
    fn write_into_reports_the_size_needed() {
        let rp = ReparsePoint::mount_point_to(&target("D:\\data"));
        let mut small = [0u8; 10];
        assert_eq!(
            rp.write_into(&mut small),
            Err(ReparseError::BufferTooSmall(56))
        );
        let mut big = [0xFFu8; 64];
        assert_eq!(rp.write_into(&mut big), Ok(56));
        assert_eq!(&big[..56], &rp.encode().expect("fits")[..]);
        assert_eq!(big[56], 0xFF);
    }

    #[test]
    fn refuses_names_over_16k() {
        let long = format!("D:\\{}", vec!["d".repeat(200); 50].join("\\"));
        let rp = ReparsePoint::symlink_to(&target(&long));
        assert_eq!(rp.encode(), Err(ReparseError::TooLong));
    }
}
