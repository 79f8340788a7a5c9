//! Names and paths between Windows and the core.
//!
//! WinFsp hands the file system names relative to the volume root, in UTF-16, separated by `\`
//! (`\` alone is the root). The core works on UTF-8 components. Declared targets are written by
//! people (`D:/data`, `D:\data\`, `\\server\share`) and must reach Windows in one canonical form:
//! backslashes only, `\??\`-prefixed for the NT namespace (reparse points), plain for Win32 calls.

use std::fmt;
use std::path::Path;

use fs_core::{Declaration, Error, Mountpoint};

/// The longest component NTFS accepts, in UTF-16 units.
pub const MAX_COMPONENT_UNITS: usize = 255;

/// Why a name is not valid on Windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// Nothing, `.` or `..`.
    Empty,
    /// Not valid UTF-16 (an unpaired surrogate) or not valid UTF-8.
    Encoding,
    /// A character Windows refuses in names: a control character or one of `<>:"/\|?*`.
    InvalidChar(char),
    /// A DOS device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`-`COM9`, `LPT1`-`LPT9`), with or
    /// without an extension.
    Reserved,
    /// Ends with `.` or a space, which Win32 strips silently.
    TrailingDotOrSpace,
    /// Longer than [`MAX_COMPONENT_UNITS`].
    TooLong,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("is empty, `.` or `..`"),
            NameError::Encoding => f.write_str("is not valid Unicode"),
            NameError::InvalidChar(c) if c.is_control() => {
                write!(f, "contains the control character U+{:04X}", u32::from(*c))
            }
            NameError::InvalidChar(c) => {
                write!(f, "contains `{c}`, which Windows refuses in names")
            }
            NameError::Reserved => f.write_str("is a reserved DOS device name"),
            NameError::TrailingDotOrSpace => f.write_str("ends with a dot or a space"),
            NameError::TooLong => write!(f, "is longer than {MAX_COMPONENT_UNITS} UTF-16 units"),
        }
    }
}

impl std::error::Error for NameError {}

const INVALID_CHARS: &[char] = &['<', '>', ':', '"', '/', '\\', '|', '?', '*'];
const RESERVED: &[&str] = &["CON", "PRN", "AUX", "NUL"];

/// Checks one name component against Windows' rules.
///
/// # Errors
/// The first rule the name breaks.
pub fn check_component(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(NameError::Empty);
    }
    if let Some(c) = name
        .chars()
        .find(|c| (*c as u32) < 0x20 || INVALID_CHARS.contains(c))
    {
        return Err(NameError::InvalidChar(c));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(NameError::TrailingDotOrSpace);
    }
    if name.encode_utf16().count() > MAX_COMPONENT_UNITS {
        return Err(NameError::TooLong);
    }
    if is_reserved(name) {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// `CON`, `con.txt`, `COM1`, `LPT¹`...: the part before the first dot, without trailing spaces,
/// compared without case.
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_uppercase();
    if RESERVED.contains(&upper.as_str()) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    if prefix != "COM" && prefix != "LPT" {
        return false;
    }
    let rest: Vec<char> = chars.collect();
    matches!(rest.as_slice(), ['1'..='9'] | ['¹' | '²' | '³'])
}

/// Splits a WinFsp file name (`\`, `\a\b`) into UTF-8 components.
///
/// # Errors
/// [`Error::InvalidName`] for invalid UTF-16, `.`/`..` components, and stream syntax (`a:s`):
/// the mount has no named streams.
pub fn split_file_name(name: &[u16]) -> Result<Vec<String>, Error> {
    let text = String::from_utf16(name).map_err(|_| Error::InvalidName)?;
    let mut out = Vec::new();
    for part in text.split('\\') {
        match part {
            "" => {}
            "." | ".." => return Err(Error::InvalidName),
            p if p.contains(':') => return Err(Error::InvalidName),
            p => out.push(p.to_owned()),
        }
    }
    Ok(out)
}

/// Joins components into a WinFsp-style name relative to some root: `a\b` (no leading `\`;
/// empty for the root itself).
pub fn join_relative<S: AsRef<str>>(components: &[S]) -> String {
    let mut out = String::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            out.push('\\');
        }
        out.push_str(c.as_ref());
    }
    out
}

/// UTF-16 without a terminator.
pub fn to_wide(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
}

/// The declared entries whose names Windows cannot show, with the reason: a declaration written
/// for Linux may use `aux` or `a:b` as a name.
pub fn invalid_declared_names(decl: &Declaration) -> Vec<(String, NameError)> {
    let mut out = Vec::new();
    for entry in &decl.entries {
        for comp in entry.path.components() {
            if let Err(e) = check_component(comp) {
                out.push((entry.path.to_string(), e));
                break;
            }
        }
    }
    out
}

/// Where a declared target lives, as Windows sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// On a drive letter: `D:\path`.
    Drive(char),
    /// On a network share: `\\server\share\path`.
    Unc {
        /// The server name.
        server: String,
        /// The share name.
        share: String,
    },
}

/// A declared target in canonical Windows form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinTarget {
    kind: TargetKind,
    /// Components beneath the drive root or the share.
    components: Vec<String>,
}

/// Why a target cannot be used on Windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not an absolute Windows path (`D:\...` or `\\server\share\...`).
    NotAbsolute,
    /// A UNC path without both a server and a share.
    IncompleteUnc,
    /// Not valid Unicode.
    Encoding,
    /// A component Windows refuses.
    BadComponent(String, NameError),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::NotAbsolute => f.write_str(
                "is not an absolute Windows path (`D:\\...` or `\\\\server\\share\\...`)",
            ),
            TargetError::IncompleteUnc => f.write_str("is a UNC path without a server and a share"),
            TargetError::Encoding => f.write_str("is not valid Unicode"),
            TargetError::BadComponent(c, e) => write!(f, "has a component `{c}` that {e}"),
        }
    }
}

impl std::error::Error for TargetError {}

impl WinTarget {
    /// Parses `D:\a`, `d:/a/`, `\\server\share\a`, `//server/share`, `\\?\D:\a`,
    /// `\\?\UNC\server\share\a` and `\??\D:\a`. Forward slashes become backslashes, repeated
    /// separators and `.` go, `..` is resolved lexically and never climbs above the drive root or
    /// the share.
    ///
    /// # Errors
    /// Anything that is not an absolute Windows path.
    pub fn parse(text: &str) -> Result<WinTarget, TargetError> {
        let t = text.replace('/', "\\");
        let (kind, rest) = if let Some(rest) = t
            .strip_prefix("\\\\?\\UNC\\")
            .or_else(|| t.strip_prefix("\\??\\UNC\\"))
        {
            Self::unc(rest)?
        } else if let Some(rest) = t
            .strip_prefix("\\\\?\\")
            .or_else(|| t.strip_prefix("\\??\\"))
            .or_else(|| t.strip_prefix("\\\\.\\"))
        {
            Self::drive(rest)?
        } else if let Some(rest) = t.strip_prefix("\\\\") {
            Self::unc(rest)?
        } else {
            Self::drive(&t)?
        };
        let mut components: Vec<String> = Vec::new();
        for part in rest.split('\\') {
            match part {
                "" | "." => {}
                ".." => {
                    components.pop();
                }
                p => {
                    check_component(p).map_err(|e| TargetError::BadComponent(p.to_owned(), e))?;
                    components.push(p.to_owned());
                }
            }
        }
        Ok(WinTarget { kind, components })
    }

    /// Parses a declared target path.
    ///
    /// # Errors
    /// As [`WinTarget::parse`]; [`TargetError::Encoding`] when the path is not Unicode.
    pub fn from_path(path: &Path) -> Result<WinTarget, TargetError> {
        WinTarget::parse(path.to_str().ok_or(TargetError::Encoding)?)
    }

    fn drive(rest: &str) -> Result<(TargetKind, &str), TargetError> {
        let mut chars = rest.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(c), Some(':'), None | Some('\\')) if c.is_ascii_alphabetic() => {
                Ok((TargetKind::Drive(c.to_ascii_uppercase()), chars.as_str()))
            }
            _ => Err(TargetError::NotAbsolute),
        }
    }

    fn unc(rest: &str) -> Result<(TargetKind, &str), TargetError> {
        let mut parts = rest.splitn(3, '\\');
        let server = parts.next().unwrap_or("");
        let share = parts.next().unwrap_or("");
        if server.is_empty() || share.is_empty() || server == "?" || server == "." {
            return Err(TargetError::IncompleteUnc);
        }
        for p in [server, share] {
            check_component(p).map_err(|e| TargetError::BadComponent(p.to_owned(), e))?;
        }
        Ok((
            TargetKind::Unc {
                server: server.to_owned(),
                share: share.to_owned(),
            },
            parts.next().unwrap_or(""),
        ))
    }

    /// Drive or share.
    pub fn kind(&self) -> &TargetKind {
        &self.kind
    }

    /// Whether the target is on a network share.
    pub fn is_unc(&self) -> bool {
        matches!(self.kind, TargetKind::Unc { .. })
    }

    /// The path people read and Win32 opens: `D:\path`, `D:\` or `\\server\share\path`.
    pub fn print_name(&self) -> String {
        let mut out = match &self.kind {
            TargetKind::Drive(c) => format!("{c}:"),
            TargetKind::Unc { server, share } => format!("\\\\{server}\\{share}"),
        };
        for c in &self.components {
            out.push('\\');
            out.push_str(c);
        }
        if self.components.is_empty() && matches!(self.kind, TargetKind::Drive(_)) {
            out.push('\\');
        }
        out
    }

    /// The NT path the I/O manager follows: `\??\D:\path` or `\??\UNC\server\share\path`.
    pub fn substitute_name(&self) -> String {
        match &self.kind {
            TargetKind::Drive(_) => format!("\\??\\{}", self.print_name()),
            TargetKind::Unc { .. } => {
                let print = self.print_name();
                format!("\\??\\UNC\\{}", &print[2..])
            }
        }
    }
}

/// The argument WinFsp mounts on: `L:` for a drive letter, a backslashed absolute path for a
/// directory (which WinFsp creates, and which must not exist yet).
///
/// # Errors
/// A directory mountpoint that is not an absolute path on a drive.
pub fn mountpoint_arg(mountpoint: &Mountpoint) -> Result<String, TargetError> {
    match mountpoint {
        Mountpoint::Drive(c) => Ok(format!("{}:", c.to_ascii_uppercase())),
        Mountpoint::Dir(p) => {
            let t = WinTarget::from_path(p)?;
            if t.is_unc() {
                return Err(TargetError::NotAbsolute);
            }
            Ok(t.print_name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn splits_winfsp_names() {
        let w = |s: &str| to_wide(s);
        assert_eq!(
            split_file_name(&w("\\")).expect("root"),
            Vec::<String>::new()
        );
        assert_eq!(
            split_file_name(&w("\\Data\\Reports\\2020.csv")).expect("path"),
            vec!["Data", "Reports", "2020.csv"]
        );
        assert_eq!(
            split_file_name(&w("\\ä\\日本")).expect("unicode"),
            vec!["ä", "日本"]
        );
        assert!(matches!(
            split_file_name(&w("\\a\\..\\b")),
            Err(Error::InvalidName)
        ));
        assert!(matches!(
            split_file_name(&w("\\file:stream")),
            Err(Error::InvalidName)
        ));
        // An unpaired surrogate cannot become UTF-8.
        assert!(matches!(
            split_file_name(&[u16::from(b'\\'), 0xD800]),
            Err(Error::InvalidName)
        ));
    }

    #[test]
    fn joins_relative() {
        assert_eq!(join_relative::<&str>(&[]), "");
        assert_eq!(join_relative(&["a", "b", "c.txt"]), "a\\b\\c.txt");
    }

    #[test]
    fn component_rules() {
        assert_eq!(check_component("report.csv"), Ok(()));
        assert_eq!(check_component("CONSOLE"), Ok(()));
        assert_eq!(check_component("COM10"), Ok(()));
        assert_eq!(check_component("LPT0"), Ok(()));
        assert_eq!(check_component(""), Err(NameError::Empty));
        assert_eq!(check_component(".."), Err(NameError::Empty));
        for c in [
            '<', '>', ':', '"', '/', '\\', '|', '?', '*', '\u{1}', '\u{1f}',
        ] {
            assert_eq!(
                check_component(&format!("a{c}b")),
                Err(NameError::InvalidChar(c)),
                "{c:?}"
            );
        }
        for n in [
            "CON",
            "con",
            "Nul.txt",
            "aux.tar.gz",
            "COM1",
            "lpt9",
            "COM¹",
            "LPT³",
            "NUL .txt",
        ] {
            assert_eq!(check_component(n), Err(NameError::Reserved), "{n}");
        }
        assert_eq!(check_component("name."), Err(NameError::TrailingDotOrSpace));
        assert_eq!(check_component("name "), Err(NameError::TrailingDotOrSpace));
        assert_eq!(check_component(&"x".repeat(255)), Ok(()));
        assert_eq!(check_component(&"x".repeat(256)), Err(NameError::TooLong));
        // Counted in UTF-16 units: a character outside the BMP takes two.
        assert_eq!(check_component(&"😀".repeat(128)), Err(NameError::TooLong));
    }

    #[test]
    fn drive_targets() {
        for text in [
            "D:\\data\\app",
            "d:/data/app",
            "D:\\data\\\\app\\",
            "D:\\data\\.\\x\\..\\app",
        ] {
            let t = WinTarget::parse(text).expect(text);
            assert_eq!(t.kind(), &TargetKind::Drive('D'));
            assert_eq!(t.print_name(), "D:\\data\\app", "{text}");
            assert_eq!(t.substitute_name(), "\\??\\D:\\data\\app", "{text}");
        }
        let root = WinTarget::parse("e:").expect("drive root");
        assert_eq!(root.print_name(), "E:\\");
        assert_eq!(root.substitute_name(), "\\??\\E:\\");
        assert_eq!(
            WinTarget::parse("C:\\..\\..\\x")
                .expect("clamped")
                .print_name(),
            "C:\\x"
        );
        for verbatim in ["\\\\?\\D:\\data", "\\??\\D:\\data"] {
            assert_eq!(
                WinTarget::parse(verbatim).expect(verbatim).print_name(),
                "D:\\data"
            );
        }
    }

    #[test]
    fn unc_targets() {
        for text in [
            "\\\\server\\share\\dir",
            "//server/share/dir/",
            "\\\\?\\UNC\\server\\share\\dir",
        ] {
            let t = WinTarget::parse(text).expect(text);
            assert!(t.is_unc());
            assert_eq!(t.print_name(), "\\\\server\\share\\dir", "{text}");
            assert_eq!(
                t.substitute_name(),
                "\\??\\UNC\\server\\share\\dir",
                "{text}"
            );
        }
        let share = WinTarget::parse("\\\\srv\\s").expect("share root");
        assert_eq!(share.print_name(), "\\\\srv\\s");
        assert_eq!(share.substitute_name(), "\\??\\UNC\\srv\\s");
        assert_eq!(
            WinTarget::parse("\\\\server"),
            Err(TargetError::IncompleteUnc)
        );
        assert_eq!(
            WinTarget::parse("\\\\server\\"),
            Err(TargetError::IncompleteUnc)
        );
    }

    #[test]
    fn refuses_relative_and_bad_targets() {
        assert_eq!(WinTarget::parse("data\\x"), Err(TargetError::NotAbsolute));
        assert_eq!(WinTarget::parse("/opt/data"), Err(TargetError::NotAbsolute));
        assert_eq!(WinTarget::parse("D:data"), Err(TargetError::NotAbsolute));
        assert!(matches!(
            WinTarget::parse("D:\\a|b"),
            Err(TargetError::BadComponent(_, NameError::InvalidChar('|')))
        ));
        assert!(matches!(
            WinTarget::parse("D:\\dir\\CON"),
            Err(TargetError::BadComponent(_, NameError::Reserved))
        ));
    }

    #[test]
    fn never_forward_slashes() {
        let t = WinTarget::parse("D:/a/b/c").expect("valid");
        assert!(!t.print_name().contains('/'));
        assert!(!t.substitute_name().contains('/'));
    }

    #[test]
    fn mountpoints() {
        assert_eq!(
            mountpoint_arg(&Mountpoint::Drive('l')).expect("drive"),
            "L:"
        );
        assert_eq!(
            mountpoint_arg(&Mountpoint::Dir(PathBuf::from("C:/mnt/app/"))).expect("dir"),
            "C:\\mnt\\app"
        );
        assert_eq!(
            mountpoint_arg(&Mountpoint::Dir(PathBuf::from("\\\\srv\\share\\m"))),
            Err(TargetError::NotAbsolute)
        );
        assert_eq!(
            mountpoint_arg(&Mountpoint::Dir(PathBuf::from("/mnt/app"))),
            Err(TargetError::NotAbsolute)
        );
    }

    #[test]
    fn finds_declared_names_windows_refuses() {
        let text = "version: 1\nmountpoint: \"L:\"\nredirections:\n  - path: ok/data\n    target: D:\\data\n  - path: logs/aux\n    target: D:\\logs\n  - path: \"a:b\"\n    target: D:\\ab\n";
        let decl = fs_core::decl::parse_str(Path::new("t.yaml"), Path::new("/t.yaml"), text)
            .expect("valid declaration");
        let bad = invalid_declared_names(&decl);
        assert_eq!(
            bad,
            vec![
                ("logs/aux".to_string(), NameError::Reserved),
                ("a:b".to_string(), NameError::InvalidChar(':')),
            ]
        );
    }
}
