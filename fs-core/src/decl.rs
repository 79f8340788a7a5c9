//! Declarations: the YAML file a user writes, validated into a [`Declaration`].
//!
//! Data flow: text -> [`crate::yaml`] nodes (with positions) -> this module's checks, which collect
//! every problem at once -> a [`Declaration`] holding normalized, absolute values.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::hash::Hash;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Invalid, Severity};
use crate::table::{fold_case, NameCase};
use crate::vpath::{VPath, VPathError};
use crate::yaml::{self, is_null, Loc, Node, Value};
use rustc_hash::FxHashMap;

/// The only declaration format version this build reads.
pub const FORMAT_VERSION: u64 = 1;

/// How a redirection shows in the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presentation {
    /// A native symbolic link whose text is the absolute target: the kernel follows it.
    Symlink,
    /// The entry is the target itself: everything beneath passes through to it.
    Transparent,
    /// A directory link: an NTFS junction on Windows, a directory symlink elsewhere.
    Junction,
}

impl Presentation {
    /// The spelling in a declaration.
    pub fn as_str(self) -> &'static str {
        match self {
            Presentation::Symlink => "symlink",
            Presentation::Transparent => "transparent",
            Presentation::Junction => "junction",
        }
    }

    /// Whether the kernel leaves the mount at this entry (so nothing can be nested beneath it).
    pub fn is_link(self) -> bool {
        matches!(self, Presentation::Symlink | Presentation::Junction)
    }
}

impl fmt::Display for Presentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entry does when its target is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnMissing {
    /// Show the entry anyway, as a link to the absent target (like a dangling symlink).
    Dangling,
    /// Leave the entry out of the mount until the target appears.
    Hide,
    /// Refuse to load the declaration.
    Error,
}

impl OnMissing {
    /// The spelling in a declaration.
    pub fn as_str(self) -> &'static str {
        match self {
            OnMissing::Dangling => "dangling",
            OnMissing::Hide => "hide",
            OnMissing::Error => "error",
        }
    }
}

impl fmt::Display for OnMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the overlay appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mountpoint {
    /// A directory (absolute).
    Dir(PathBuf),
    /// A Windows drive letter (`L:`), upper case.
    Drive(char),
}

impl fmt::Display for Mountpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mountpoint::Dir(p) => write!(f, "{}", p.display()),
            Mountpoint::Drive(c) => write!(f, "{c}:"),
        }
    }
}

/// Mount-wide options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Refuse every write through the mount.
    pub read_only: bool,
    /// Let users other than the one who mounted use the mount (permissions still apply).
    pub allow_other: bool,
}

/// One validated redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalized virtual path inside the mount.
    pub path: VPath,
    /// The absolute target, lexically normalized (symlinks in it are left for the kernel).
    pub target: PathBuf,
    /// How the entry shows.
    pub presentation: Presentation,
    /// What happens when the target is absent.
    pub on_missing: OnMissing,
    /// Refuse writes beneath this entry.
    pub read_only: bool,
    /// Where the entry starts in the file (its first key).
    pub loc: Loc,
}

/// A validated declaration.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// The declaration file, absolute.
    pub file: PathBuf,
    /// Where the overlay appears.
    pub mountpoint: Mountpoint,
    /// The directory whose own contents show through, if any.
    pub base: Option<PathBuf>,
    /// Mount-wide options.
    pub options: Options,
    /// The redirections, in file order.
    pub entries: Vec<Entry>,
    /// How the mount it was checked for compares names: with [`NameCase::Insensitive`], paths
    /// that differ only in case were refused as duplicates. Build its [`crate::Table`] with the
    /// same rule.
    pub case: NameCase,
    /// Warnings and notes found while validating.
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a declaration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file was read and is invalid.
    Invalid(Invalid),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { file, source } => {
                write!(f, "cannot read {}: {source}", file.display())
            }
            LoadError::Invalid(inv) => inv.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Invalid(inv) => Some(inv),
        }
    }
}

/// Reads and validates a declaration file for a mount of this platform ([`NameCase::host`]).
///
/// # Errors
/// [`LoadError::Io`] when the file cannot be read, [`LoadError::Invalid`] with every problem found.
pub fn load_file(file: &Path) -> Result<Declaration, LoadError> {
    load_file_for(file, NameCase::host())
}

/// Reads and validates a declaration file for a mount that compares names by `case`: a
/// declaration meant for Windows is checked with [`NameCase::Insensitive`] on any OS.
///
/// # Errors
/// [`LoadError::Io`] when the file cannot be read, [`LoadError::Invalid`] with every problem found.
pub fn load_file_for(file: &Path, case: NameCase) -> Result<Declaration, LoadError> {
    let abs = absolute(file).map_err(|source| LoadError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let bytes = std::fs::read(&abs).map_err(|source| LoadError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() + 1;
            let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let mut d = Diagnostics::new(file, "");
            d.error(
                Loc { line, col },
                "the file is not valid UTF-8",
                "save the declaration as UTF-8 text",
            );
            return Err(LoadError::Invalid(Invalid {
                diagnostics: d.into_vec(),
            }));
        }
    };
    parse_str_for(file, &abs, &text, case).map_err(LoadError::Invalid)
}

/// Validates declaration `text` for a mount of this platform ([`NameCase::host`]). `shown` is the
/// file name used in messages; `file` its absolute path, against whose directory relative paths
/// resolve.
///
/// # Errors
/// Every problem found, when any is an error.
pub fn parse_str(shown: &Path, file: &Path, text: &str) -> Result<Declaration, Invalid> {
    parse_str_for(shown, file, text, NameCase::host())
}

/// [`parse_str`] for a mount that compares names by `case`.
///
/// # Errors
/// Every problem found, when any is an error.
pub fn parse_str_for(
    shown: &Path,
    file: &Path,
    text: &str,
    case: NameCase,
) -> Result<Declaration, Invalid> {
    let mut d = Diagnostics::new(shown, text);
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let decl = Checker {
        d: &mut d,
        dir,
        case,
    }
    .check(text, file);
    let has_errors = d.has_errors();
    let diagnostics = d.into_vec();
    match decl {
        Some(mut decl) if !has_errors => {
            decl.diagnostics = diagnostics;
            Ok(decl)
        }
        _ => Err(Invalid { diagnostics }),
    }
}

const TOP_KEYS: &[&str] = &["version", "mountpoint", "base", "options", "redirections"];
const OPTION_KEYS: &[&str] = &["read_only", "allow_other"];
const ENTRY_KEYS: &[&str] = &["path", "target", "as", "on_missing", "read_only"];
const AS_VALUES: &[&str] = &["symlink", "transparent", "junction"];
const ON_MISSING_VALUES: &[&str] = &["dangling", "hide", "error"];

struct Checker<'a> {
    d: &'a mut Diagnostics,
    dir: PathBuf,
    /// How the mount compares names.
    case: NameCase,
}

/// The most keys a mapping of the declaration knows.
const MAX_KEYS: usize = 5;
const _: () = assert!(
    TOP_KEYS.len() <= MAX_KEYS && OPTION_KEYS.len() <= MAX_KEYS && ENTRY_KEYS.len() <= MAX_KEYS
);

/// The known keys of one mapping, with where each stands and its value, by the key's index in
/// the list of known keys. A mapping has a handful of keys: an array beats a map, and allocates
/// nothing per entry.
struct Fields<'n> {
    known: &'static [&'static str],
    found: [Option<(Loc, &'n Node)>; MAX_KEYS],
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        let i = self.known.iter().position(|k| *k == key)?;
        self.found.get(i).copied().flatten().map(|(_, v)| v)
    }
}

/// A raw entry: what the user wrote, each value with its position.
struct RawEntry<'n> {
    loc: Loc,
    path: Option<&'n Node>,
    target: Option<&'n Node>,
    presentation: Option<&'n Node>,
    on_missing: Option<&'n Node>,
    read_only: Option<&'n Node>,
}

impl Checker<'_> {
    fn check(mut self, text: &str, file: &Path) -> Option<Declaration> {
        let docs = match yaml::parse(text) {
            Ok(docs) => docs,
            Err(e) => {
                self.d.error(
                    e.loc,
                    format!("invalid YAML: {}", e.message),
                    "fix the YAML syntax here (indentation, a missing `:` or an unclosed quote or bracket)",
                );
                return None;
            }
        };
        let Some(root) = docs.first() else {
            self.d.error(
                Loc { line: 1, col: 1 },
                "the declaration is empty",
                "start the file with `version: 1`, then `mountpoint:` and `redirections:` (see docs/declarations.md)",
            );
            return None;
        };
        for extra in docs.iter().skip(1) {
            self.d.error(
                extra.loc,
                "a second YAML document in the declaration",
                "keep one declaration per file: remove the `---` and what follows, or move it to its own file",
            );
        }
        let map = self.mapping(root, "the declaration")?;
        let fields = self.fields(map, TOP_KEYS, "at the top level");

        let version_ok = match fields.get("version") {
            None => {
                self.d.error(
                    root.loc,
                    "missing `version`",
                    "add `version: 1` as the first line",
                );
                false
            }
            Some(v) => match &v.value {
                Value::Scalar {
                    text,
                    quoted: false,
                } if text.parse::<u64>() == Ok(FORMAT_VERSION) => true,
                Value::Scalar {
                    text,
                    quoted: false,
                } if text.parse::<u64>().is_ok() => {
                    self.d.error(
                        v.loc,
                        format!("unsupported declaration version `{text}`"),
                        "this redirfs reads `version: 1`; upgrade redirfs or write the declaration in version 1",
                    );
                    false
                }
                Value::Alias => {
                    self.alias(v);
                    false
                }
                _ => {
                    self.d.error(
                        v.loc,
                        format!("`version` must be the number 1, found {}", describe(v)),
                        "write `version: 1`",
                    );
                    false
                }
            },
        };

        let mountpoint = match fields.get("mountpoint") {
            None => {
                self.d.error(
                    root.loc,
                    "missing `mountpoint`",
                    "add `mountpoint: /path/where/the/overlay/appears` (on Windows: `mountpoint: \"L:\"`)",
                );
                None
            }
            Some(n) => self.mountpoint(n),
        };
        let base = fields
            .get("base")
            .and_then(|n| self.base(n, mountpoint.as_ref()));
        let options = fields
            .get("options")
            .map(|n| self.options(n))
            .unwrap_or_default();

        let raw_entries = match fields.get("redirections") {
            None => {
                self.d.warning(
                    root.loc,
                    "no `redirections`: the mount only shows the base",
                    "add `redirections:` with a list of `- path: ... target: ...` entries",
                );
                Vec::new()
            }
            Some(n) => self.raw_entries(n),
        };
        let entries = self.entries(&raw_entries, mountpoint.as_ref(), base.as_deref());

        let mountpoint = mountpoint?;
        if !version_ok {
            return None;
        }
        Some(Declaration {
            file: file.to_path_buf(),
            mountpoint,
            base,
            options,
            entries,
            case: self.case,
            diagnostics: Vec::new(),
        })
    }

    fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            Value::Alias => {
                self.alias(node);
                None
            }
            _ => {
                self.d.error(
                    node.loc,
                    format!(
                        "{what} must be a mapping of `key: value` lines, found {}",
                        describe(node)
                    ),
                    "write one `key: value` per line (see docs/declarations.md)",
                );
                None
            }
        }
    }

    fn alias(&mut self, node: &Node) {
        self.d.error(
            node.loc,
            "YAML aliases (`*name`) are not supported in declarations",
            "write the value out in full",
        );
    }

    /// Splits a mapping into known keys; unknown, duplicate and non-string keys are errors.
    fn fields<'n>(
        &mut self,
        map: &'n [(Node, Node)],
        known: &'static [&'static str],
        place: &str,
    ) -> Fields<'n> {
        let mut out = Fields {
            known,
            found: [None; MAX_KEYS],
        };
        for (k, v) in map {
            let key = match &k.value {
                Value::Scalar { text, .. } => text.as_str(),
                _ => {
                    self.d.error(
                        k.loc,
                        format!("a key must be a plain name, found {}", describe(k)),
                        format!("use one of: {}", known.join(", ")),
                    );
                    continue;
                }
            };
            let Some((index, &name)) = known.iter().enumerate().find(|(_, n)| **n == key) else {
                let help = match closest(key, known) {
                    Some(s) => format!(
                        "did you mean `{s}`? Valid keys {place}: {}",
                        known.join(", ")
                    ),
                    None => format!("valid keys {place}: {}", known.join(", ")),
                };
                self.d
                    .error(k.loc, format!("unknown key `{key}` {place}"), help);
                continue;
            };
            let Some(slot) = out.found.get_mut(index) else {
                continue;
            };
            if let Some((first, _)) = slot {
                self.d.error(
                    k.loc,
                    format!("key `{name}` appears twice (first at line {})", first.line),
                    "keep one of the two",
                );
                continue;
            }
            *slot = Some((k.loc, v));
        }
        out
    }

    fn string<'n>(&mut self, node: &'n Node, key: &str, help: &str) -> Option<&'n str> {
        match &node.value {
            Value::Scalar { text, quoted } if *quoted || !is_null(text) => {
                if text.is_empty() {
                    self.d
                        .error(node.loc, format!("`{key}` is empty"), help.to_string());
                    return None;
                }
                if text.contains('\0') {
                    self.d.error(
                        node.loc,
                        format!("`{key}` contains a NUL character"),
                        "remove the `\\0` from the path",
                    );
                    return None;
                }
                Some(text)
            }
            Value::Alias => {
                self.alias(node);
                None
            }
            _ => {
                self.d.error(
                    node.loc,
                    format!("`{key}` must be a string, found {}", describe(node)),
                    help.to_string(),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar {
                text,
                quoted: false,
            } if text == "true" => Some(true),
            Value::Scalar {
                text,
                quoted: false,
            } if text == "false" => Some(false),
            Value::Alias => {
                self.alias(node);
                None
            }
            _ => {
                self.d.error(
                    node.loc,
                    format!("`{key}` must be true or false, found {}", describe(node)),
                    format!("write `{key}: true` or `{key}: false`"),
                );
                None
            }
        }
    }

    fn choice<'c>(&mut self, node: &Node, key: &str, values: &[&'c str]) -> Option<&'c str> {
        // A valid value, without building the help that only an invalid one needs.
        if let Value::Scalar { text, .. } = &node.value {
            if let Some(v) = values.iter().find(|v| **v == text) {
                return Some(v);
            }
        }
        let text = self.string(node, key, &format!("write one of: {}", values.join(", ")))?;
        if let Some(v) = values.iter().find(|v| **v == text) {
            return Some(v);
        }
        let help = match closest(text, values) {
            Some(s) => format!(
                "did you mean `{s}`? `{key}` takes one of: {}",
                values.join(", ")
            ),
            None => format!("`{key}` takes one of: {}", values.join(", ")),
        };
        self.d
            .error(node.loc, format!("unknown `{key}` value `{text}`"), help);
        None
    }

    fn mountpoint(&mut self, node: &Node) -> Option<Mountpoint> {
        let text = self.string(
            node,
            "mountpoint",
            "write the directory where the overlay appears, e.g. `mountpoint: /opt/legacy-app`",
        )?;
        if let Some(c) = drive_letter(text) {
            return Some(Mountpoint::Drive(c));
        }
        Some(Mountpoint::Dir(self.resolve(text)))
    }

    fn base(&mut self, node: &Node, mountpoint: Option<&Mountpoint>) -> Option<PathBuf> {
        let text = self.string(
            node,
            "base",
            "write the directory whose contents show through, or remove `base`",
        )?;
        let base = self.resolve(text);
        match std::fs::metadata(&base) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                self.d.error(
                    node.loc,
                    format!("base `{}` is not a directory", base.display()),
                    "point `base` at a directory",
                );
                return None;
            }
            Err(e) => {
                self.d.error(
                    node.loc,
                    format!("base `{}` cannot be used: {}", base.display(), plain_io(&e)),
                    "create the directory, fix the path, or remove `base` for a mount of redirections only",
                );
                return None;
            }
        }
        if let Some(Mountpoint::Dir(mp)) = mountpoint {
            let (b, m) = (canonical(&base), canonical(mp));
            if b != m && b.starts_with(&m) {
                self.d.error(
                    node.loc,
                    format!(
                        "base `{}` lies inside the mountpoint `{}`: the mount would show itself",
                        base.display(),
                        mp.display()
                    ),
                    "move the base out of the mountpoint, or set `base` equal to `mountpoint` for an in-place overlay",
                );
                return None;
            }
            if b != m && m.starts_with(&b) {
                self.d.error(
                    node.loc,
                    format!(
                        "the mountpoint `{}` lies inside base `{}`: the base would show the mount inside itself",
                        mp.display(),
                        base.display()
                    ),
                    "mount outside the base, or set `base` equal to `mountpoint` for an in-place overlay",
                );
                return None;
            }
        }
        Some(base)
    }

    fn options(&mut self, node: &Node) -> Options {
        let mut options = Options::default();
        let Some(map) = self.mapping(node, "`options`") else {
            return options;
        };
        let fields = self.fields(map, OPTION_KEYS, "in `options`");
        if let Some(n) = fields.get("read_only") {
            options.read_only = self.boolean(n, "read_only").unwrap_or(false);
        }
        if let Some(n) = fields.get("allow_other") {
            options.allow_other = self.boolean(n, "allow_other").unwrap_or(false);
        }
        options
    }

    fn raw_entries<'n>(&mut self, node: &'n Node) -> Vec<RawEntry<'n>> {
        let items = match &node.value {
            Value::Seq(items) => items,
            Value::Scalar {
                text,
                quoted: false,
            } if is_null(text) => return Vec::new(),
            Value::Alias => {
                self.alias(node);
                return Vec::new();
            }
            _ => {
                self.d.error(
                    node.loc,
                    format!("`redirections` must be a list, found {}", describe(node)),
                    "write each redirection as a list item: `- path: data` with `target: /elsewhere` under it",
                );
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(map) = self.mapping(item, "a redirection") else {
                continue;
            };
            let f = self.fields(map, ENTRY_KEYS, "in a redirection");
            let raw = RawEntry {
                loc: item.loc,
                path: f.get("path"),
                target: f.get("target"),
                presentation: f.get("as"),
                on_missing: f.get("on_missing"),
                read_only: f.get("read_only"),
            };
            if raw.path.is_none() {
                self.d.error(
                    item.loc,
                    "redirection without `path`",
                    "add `path: NAME`, the virtual path inside the mount",
                );
            }
            if raw.target.is_none() {
                self.d.error(
                    item.loc,
                    "redirection without `target`",
                    "add `target: /where/the/data/lives`",
                );
            }
            out.push(raw);
        }
        out
    }

    fn entries(
        &mut self,
        raw: &[RawEntry<'_>],
        mountpoint: Option<&Mountpoint>,
        base: Option<&Path>,
    ) -> Vec<Entry> {
        // What the user wrote first, value by value; the filesystem is asked afterwards, once per
        // distinct target.
        let pending: Vec<Pending<'_>> = raw.iter().map(|r| self.pending(r)).collect();
        let loops = match mountpoint {
            Some(Mountpoint::Dir(mp)) => Some((mp.as_path(), Canon::default().resolve_dir(mp))),
            _ => None,
        };
        let (facts, fact_of) = target_facts(&pending, loops.as_ref().map(|(_, m)| m.as_path()));
        let mut candidates: Vec<Candidate> = Vec::with_capacity(pending.len());
        for (p, fact) in pending.into_iter().zip(fact_of) {
            let presentation = p.presentation.unwrap_or(Presentation::Symlink);
            let on_missing = p.on_missing.unwrap_or(OnMissing::Dangling);
            let target = match (p.target, fact.and_then(|i| facts.get(i))) {
                (Some((target, loc)), Some(f)) => match (f.a_loop, &loops) {
                    (Some(a_loop), Some((mp, _))) => {
                        self.a_loop(&target, loc, mp, a_loop);
                        None
                    }
                    _ => {
                        self.target_state(&target, loc, &f.stat, presentation, on_missing);
                        Some(target)
                    }
                },
                _ => None,
            };
            let (Some((path, path_loc)), Some(target)) = (p.path, target) else {
                continue;
            };
            let useless_read_only = match p.read_only_node {
                Some(n) if presentation.is_link() && p.read_only == Some(true) => Some(n.loc),
                _ => None,
            };
            candidates.push(Candidate {
                entry: Entry {
                    path,
                    target,
                    presentation,
                    on_missing,
                    read_only: p.read_only.unwrap_or(false),
                    loc: p.loc,
                },
                path_loc,
                useless_read_only,
            });
        }
        let (duplicate_of, beneath) = relations(&candidates, self.case);
        for (c, first) in candidates.iter().zip(&duplicate_of) {
            if let Some(first) = first.and_then(|f| candidates.get(f)) {
                self.duplicate(c, first);
            }
        }
        let kept: Vec<&Candidate> = candidates
            .iter()
            .zip(&duplicate_of)
            .filter_map(|(c, dup)| dup.is_none().then_some(c))
            .collect();
        // What each kept entry masks in the base.
        let masked: Vec<Option<PathBuf>> = match base {
            Some(base) => map_in_parallel(&kept, |_: &mut (), c| {
                let shadowed = c
                    .entry
                    .path
                    .components()
                    .iter()
                    .fold(base.to_path_buf(), |p, n| p.join(n));
                std::fs::symlink_metadata(&shadowed)
                    .is_ok()
                    .then_some(shadowed)
            }),
            None => Vec::new(),
        };
        for (k, c) in kept.iter().enumerate() {
            let (path, presentation) = (&c.entry.path, c.entry.presentation);
            if let Some(loc) = c.useless_read_only {
                self.d.warning(
                    loc,
                    format!("`read_only` has no effect on a `{presentation}` entry"),
                    "the kernel follows the link out of the mount, so the target's own permissions apply; use `as: transparent` to enforce read-only",
                );
            }
            if let Some(Some(shadowed)) = masked.get(k) {
                self.d.note(
                    c.path_loc,
                    format!(
                        "`{path}` masks `{}`, which exists in the base: the declared entry wins",
                        shadowed.display()
                    ),
                );
            }
        }
        // Nesting: an entry beneath a link can never be reached. The nearest link is named.
        for (c, link) in candidates.iter().zip(&beneath) {
            let Some(link) = link.and_then(|l| candidates.get(l)) else {
                continue;
            };
            let (path, link) = (&c.entry.path, &link.entry);
            self.d.error(
                c.path_loc,
                format!(
                    "`{path}` lies beneath `{}`, a {} entry (line {}): the kernel leaves the mount at the link, so this entry can never be reached",
                    link.path, link.presentation, link.loc.line
                ),
                format!(
                    "make `{}` a `transparent` entry, or move this entry out from beneath it",
                    link.path
                ),
            );
        }
        candidates
            .into_iter()
            .zip(duplicate_of)
            .filter_map(|(c, dup)| dup.is_none().then_some(c.entry))
            .collect()
    }

    /// One entry's values, each checked on its own.
    fn pending<'n>(&mut self, r: &RawEntry<'n>) -> Pending<'n> {
        Pending {
            loc: r.loc,
            path: r.path.and_then(|n| self.entry_path(n).map(|p| (p, n.loc))),
            target: r
                .target
                .and_then(|n| self.target_path(n).map(|t| (t, n.loc))),
            presentation: r
                .presentation
                .and_then(|n| self.choice(n, "as", AS_VALUES))
                .map(|v| match v {
                    "transparent" => Presentation::Transparent,
                    "junction" => Presentation::Junction,
                    _ => Presentation::Symlink,
                }),
            on_missing: r
                .on_missing
                .and_then(|n| self.choice(n, "on_missing", ON_MISSING_VALUES))
                .map(|v| match v {
                    "hide" => OnMissing::Hide,
                    "error" => OnMissing::Error,
                    _ => OnMissing::Dangling,
                }),
            read_only: r.read_only.and_then(|n| self.boolean(n, "read_only")),
            read_only_node: r.read_only,
        }
    }

    /// Reports `c`, whose path was declared before by `first`.
    fn duplicate(&mut self, c: &Candidate, first: &Candidate) {
        let (path, first_path) = (&c.entry.path, &first.entry.path);
        let line = first.path_loc.line;
        if path == first_path {
            self.d.error(
                c.path_loc,
                format!("path `{path}` is declared twice (first at line {line})"),
                "keep one of the two entries, or give this one another path",
            );
        } else {
            self.d.error(
                c.path_loc,
                format!(
                    "path `{path}` is declared twice (first at line {line}, as `{first_path}`): names that differ only in case are one name on a case-insensitive mount"
                ),
                "keep one of the two entries, or give this one a path that differs in more than case",
            );
        }
    }

    fn entry_path(&mut self, node: &Node) -> Option<VPath> {
        let text = self.string(
            node,
            "path",
            "write the virtual path inside the mount, e.g. `path: data`",
        )?;
        match VPath::parse_declared(text) {
            Ok(p) => Some(p),
            Err(e) => {
                let help = match e {
                    VPathError::Absolute => format!(
                        "write it relative to the mount's root: `{}`",
                        text.trim_start_matches('/')
                    ),
                    VPathError::ParentComponent => {
                        "a virtual path cannot climb out of the mount: remove the `..`".to_string()
                    }
                    VPathError::Empty => {
                        "name a file or folder inside the mount; the root itself is `base`"
                            .to_string()
                    }
                    VPathError::Nul => "remove the NUL character".to_string(),
                    VPathError::Backslash => format!(
                        "separate components with `/` on every OS: `{}`",
                        text.replace('\\', "/")
                    ),
                };
                self.d.error(node.loc, format!("path `{text}` {e}"), help);
                None
            }
        }
    }

    /// The target as an absolute path.
    fn target_path(&mut self, node: &Node) -> Option<PathBuf> {
        let text = self.string(
            node,
            "target",
            "write where the data lives: an absolute path, or one relative to this file",
        )?;
        Some(if is_windows_absolute(text) {
            PathBuf::from(text)
        } else {
            self.resolve(text)
        })
    }

    /// Reports `target`, which leads back into the mountpoint `mp`.
    fn a_loop(&mut self, target: &Path, loc: Loc, mp: &Path, a_loop: Loop) {
        match a_loop {
            Loop::InsideMountpoint => self.d.error(
                loc,
                format!(
                    "target `{}` lies inside the mountpoint `{}`: a loop",
                    target.display(),
                    mp.display()
                ),
                "point the redirection at data outside the mount (use the base's own path for data in the base)",
            ),
            Loop::HoldsMountpoint => self.d.error(
                loc,
                format!(
                    "the mountpoint `{}` lies inside target `{}`: a loop",
                    mp.display(),
                    target.display()
                ),
                "point the redirection at a directory that does not contain the mountpoint",
            ),
        }
    }

    /// Reports a target that cannot be reached, or a junction to something not a directory;
    /// `stat` is whether the target is a directory.
    fn target_state(
        &mut self,
        target: &Path,
        loc: Loc,
        stat: &io::Result<bool>,
        presentation: Presentation,
        on_missing: OnMissing,
    ) {
        match stat {
            Ok(is_dir) => {
                if presentation == Presentation::Junction && !is_dir {
                    self.d.error(
                        loc,
                        format!(
                            "a junction must point to a directory; `{}` is not one",
                            target.display()
                        ),
                        "use `as: symlink` (or `transparent`) for a file",
                    );
                }
            }
            Err(e) => {
                let windows = if is_windows_absolute(&target.to_string_lossy()) && !cfg!(windows) {
                    " (it is a Windows path: only a Windows mount can reach it)"
                } else {
                    ""
                };
                let msg = format!(
                    "target `{}` cannot be reached: {}{windows}",
                    target.display(),
                    plain_io(e)
                );
                match on_missing {
                    OnMissing::Error => self.d.error(
                        loc,
                        msg,
                        "create the target or fix the path; `on_missing: dangling` or `hide` accept an absent target",
                    ),
                    OnMissing::Dangling => self.d.warning(
                        loc,
                        msg,
                        "the entry shows as a dangling link until the target appears",
                    ),
                    OnMissing::Hide => self.d.warning(
                        loc,
                        msg,
                        "the entry stays hidden until the target appears",
                    ),
                }
            }
        }
    }

    fn resolve(&self, text: &str) -> PathBuf {
        if is_normal_absolute(text) {
            return PathBuf::from(text);
        }
        normalize_lexically(&self.dir.join(text))
    }
}

/// One entry's values, checked one by one, before the filesystem is asked about its target.
struct Pending<'n> {
    loc: Loc,
    path: Option<(VPath, Loc)>,
    target: Option<(PathBuf, Loc)>,
    presentation: Option<Presentation>,
    on_missing: Option<OnMissing>,
    read_only: Option<bool>,
    read_only_node: Option<&'n Node>,
}

/// How a target leads back into the mount.
#[derive(Debug, Clone, Copy)]
enum Loop {
    /// The target lies inside the mountpoint.
    InsideMountpoint,
    /// The mountpoint lies inside the target.
    HoldsMountpoint,
}

/// An entry with a usable path and target, before duplicates and nesting are looked at.
struct Candidate {
    entry: Entry,
    /// Where its path is.
    path_loc: Loc,
    /// Where a `read_only: true` that has no effect is.
    useless_read_only: Option<Loc>,
}

/// For each candidate, the index of the first candidate before it with the same path, if any;
/// and for each that is no such duplicate, the index of the nearest link entry it lies beneath,
/// if any. Names compare by `case`, as the mount compares them.
fn relations(candidates: &[Candidate], case: NameCase) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let is_link: Vec<bool> = candidates
        .iter()
        .map(|c| c.entry.presentation.is_link())
        .collect();
    match case {
        NameCase::Sensitive => {
            let paths: Vec<&[String]> = candidates
                .iter()
                .map(|c| c.entry.path.components())
                .collect();
            path_relations(&paths, &is_link)
        }
        NameCase::Insensitive => {
            // Folded as the table folds names when it looks them up.
            let folded: Vec<Vec<Cow<'_, [u8]>>> = candidates
                .iter()
                .map(|c| {
                    let names = c.entry.path.components().iter();
                    names.map(|n| fold_case(n.as_bytes())).collect()
                })
                .collect();
            let paths: Vec<&[Cow<'_, [u8]>]> = folded.iter().map(Vec::as_slice).collect();
            path_relations(&paths, &is_link)
        }
    }
}

/// What the filesystem says about one target.
struct TargetFacts {
    /// How it leads back into the mount, if it does (a loop makes `stat` moot).
    a_loop: Option<Loop>,
    /// What `stat` says: whether it is a directory, or why it cannot be reached.
    stat: io::Result<bool>,
}

impl TargetFacts {
    /// The facts about `target`; `mountpoint` is the canonical mountpoint directory, when the
    /// target is to be checked for loops.
    fn of(target: &Path, mountpoint: Option<&Path>, canon: &mut Canon) -> TargetFacts {
        let Some(m) = mountpoint else {
            return TargetFacts {
                a_loop: None,
                stat: std::fs::metadata(target).map(|m| m.is_dir()),
            };
        };
        // Both compared with symlinks resolved: a target may reach the mountpoint through one.
        let (t, lstat) = canon.target(target);
        let a_loop = if t.starts_with(m) {
            Some(Loop::InsideMountpoint)
        } else if m.starts_with(&t) {
            Some(Loop::HoldsMountpoint)
        } else {
            None
        };
        // What `stat` says, from the `lstat` the canonical form took when it tells.
        let stat = match lstat {
            Some(Ok(m)) if !m.file_type().is_symlink() => Ok(m.is_dir()),
            Some(Err(e)) => Err(e),
            _ if a_loop.is_some() => Ok(false),
            _ => std::fs::metadata(target).map(|m| m.is_dir()),
        };
        TargetFacts { a_loop, stat }
    }
}

/// Asks the filesystem about each distinct target once: the facts, and for each pending entry
/// the index of its target's. `mountpoint` as for [`TargetFacts::of`].
fn target_facts(
    pending: &[Pending<'_>],
    mountpoint: Option<&Path>,
) -> (Vec<TargetFacts>, Vec<Option<usize>>) {
    let mut index: FxHashMap<&OsStr, usize> =
        FxHashMap::with_capacity_and_hasher(pending.len(), Default::default());
    let mut distinct: Vec<&Path> = Vec::new();
    let fact_of = pending
        .iter()
        .map(|p| {
            let (t, _) = p.target.as_ref()?;
            Some(*index.entry(t.as_os_str()).or_insert_with(|| {
                distinct.push(t);
                distinct.len() - 1
            }))
        })
        .collect();
    let facts = map_in_parallel(&distinct, |canon: &mut Canon, t| {
        TargetFacts::of(t, mountpoint, canon)
    });
    (facts, fact_of)
}

/// [`relations`] of paths given as their components.
fn path_relations<T: Hash + Eq>(
    paths: &[&[T]],
    is_link: &[bool],
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut first: FxHashMap<&[T], usize> =
        FxHashMap::with_capacity_and_hasher(paths.len(), Default::default());
    let duplicate_of: Vec<Option<usize>> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| match first.entry(p) {
            std::collections::hash_map::Entry::Occupied(o) => Some(*o.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                None
            }
        })
        .collect();
    // `first` now holds every path that is no duplicate: keep its links.
    first.retain(|_, i| is_link.get(*i).copied().unwrap_or(false));
    let beneath = if first.is_empty() {
        vec![None; paths.len()]
    } else {
        paths
            .iter()
            .zip(&duplicate_of)
            .map(|(p, dup)| match dup {
                Some(_) => None,
                None => (1..p.len())
                    .rev()
                    .find_map(|n| p.get(..n).and_then(|prefix| first.get(prefix)).copied()),
            })
            .collect()
    };
    (duplicate_of, beneath)
}

/// `f` applied to every item, in order. Many items are spread over a few threads, each with its
/// own `S` (a cache): each call asks the filesystem, and a declaration may hold 100,000 entries.
fn map_in_parallel<T, R, S, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    S: Default,
    F: Fn(&mut S, &T) -> R + Sync,
{
    /// Fewer items than this per thread are not worth a thread.
    const PER_THREAD: usize = 1024;
    const MAX_THREADS: usize = 8;
    let run = |chunk: &[T]| -> Vec<R> {
        let mut state = S::default();
        chunk.iter().map(|t| f(&mut state, t)).collect()
    };
    let most = (items.len() / PER_THREAD).min(MAX_THREADS);
    if most < 2 {
        return run(items);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(most));
    if threads < 2 {
        return run(items);
    }
    let run = &run;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks(items.len().div_ceil(threads));
        let mine = chunks.next().unwrap_or(&[]);
        let others: Vec<_> = chunks
            .map(|chunk| {
                let handle = std::thread::Builder::new().spawn_scoped(scope, move || run(chunk));
                (chunk, handle)
            })
            .collect();
        let mut out = run(mine);
        for (chunk, handle) in others {
            // A thread that could not start (or died) leaves its share to this one.
            match handle.map(|h| h.join()) {
                Ok(Ok(results)) => out.extend(results),
                _ => out.extend(run(chunk)),
            }
        }
        out
    })
}

/// Canonical forms of paths, for the loop checks. Each directory is resolved once per
/// declaration: entries' targets share parents, and resolving a path from scratch costs a
/// `readlink` per component.
#[derive(Default)]
struct Canon {
    /// By the directory's text: the paths asked about are normalized.
    dirs: FxHashMap<OsString, PathBuf>,
}

impl Canon {
    /// The canonical form of `path` (see [`canonical`]), and the `lstat` of `path` (through its
    /// canonical parent) when one was taken.
    fn target(&mut self, path: &Path) -> (PathBuf, Option<io::Result<std::fs::Metadata>>) {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if path.is_absolute() => {
                let candidate = match self.dir(parent) {
                    Some(dir) => dir.join(name),
                    None => canonical(parent).join(name),
                };
                let lstat = std::fs::symlink_metadata(&candidate);
                let c = match &lstat {
                    Ok(m) if m.file_type().is_symlink() => canonical(&candidate),
                    _ => candidate,
                };
                (c, Some(lstat))
            }
            _ => (canonical(path), None),
        }
    }

    /// The canonical form of directory `dir` (always known once asked for).
    fn dir(&mut self, dir: &Path) -> Option<&Path> {
        if !self.dirs.contains_key(dir.as_os_str()) {
            self.resolve_dir(dir);
        }
        self.dirs.get(dir.as_os_str()).map(PathBuf::as_path)
    }

    /// Resolves directory `dir` from its nearest known ancestor down (in a loop: a path may have
    /// thousands of components).
    fn resolve_dir(&mut self, dir: &Path) -> PathBuf {
        // No system resolves a path this long, and remembering every ancestor of one would take
        // memory quadratic in its length: it is resolved whole.
        const LONG: usize = 4096;
        if dir.as_os_str().len() > LONG {
            let c = canonical(dir);
            self.dirs.insert(dir.as_os_str().to_owned(), c.clone());
            return c;
        }
        let mut todo = Vec::new();
        let mut cur = dir;
        let mut c = loop {
            if let Some(c) = self.dirs.get(cur.as_os_str()) {
                break c.clone();
            }
            match (cur.parent(), cur.file_name()) {
                (Some(parent), Some(_)) if cur.is_absolute() => {
                    todo.push(cur);
                    cur = parent;
                }
                _ => {
                    let c = canonical(cur);
                    self.dirs.insert(cur.as_os_str().to_owned(), c.clone());
                    break c;
                }
            }
        };
        for d in todo.into_iter().rev() {
            let candidate = c.join(d.file_name().unwrap_or_default());
            c = match std::fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => canonical(&candidate),
                _ => candidate,
            };
            self.dirs.insert(d.as_os_str().to_owned(), c.clone());
        }
        c
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar {
            text,
            quoted: false,
        } if text.is_empty() => "nothing".to_string(),
        Value::Scalar { text, .. } => format!("{} `{text}`", node.type_name()),
        _ => node.type_name().to_string(),
    }
}

fn plain_io(e: &io::Error) -> Cow<'static, str> {
    match e.kind() {
        io::ErrorKind::NotFound => Cow::Borrowed("it does not exist"),
        io::ErrorKind::PermissionDenied => Cow::Borrowed("permission denied"),
        _ => Cow::Owned(e.to_string()),
    }
}

/// `L:` or `L:\` or `L:/`: a drive letter mountpoint.
pub fn drive_letter(text: &str) -> Option<char> {
    let mut chars = text.chars();
    let c = chars.next()?;
    if !c.is_ascii_alphabetic() || chars.next() != Some(':') {
        return None;
    }
    match chars.as_str() {
        "" | "\\" | "/" => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// `C:\...`, `C:/...` or `\\server\share`: absolute on Windows.
pub fn is_windows_absolute(text: &str) -> bool {
    let b = text.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || text.starts_with("\\\\")
}

/// Whether `text` is an absolute path that [`normalize_lexically`] leaves as it is: names after
/// single `/`s, none of them `.` or `..`. (Most targets are; they skip building a path twice.)
fn is_normal_absolute(text: &str) -> bool {
    cfg!(unix)
        && text.len() > 1
        && text.starts_with('/')
        && text
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Removes `.` and resolves `..` without touching the filesystem.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The canonical path when it exists; otherwise the canonical form of its nearest existing
/// ancestor with the rest appended. Used only to compare paths for loops.
fn canonical(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = path;
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            return rest.iter().rev().fold(c, |p, n| p.join(n));
        }
        match (cur.file_name(), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(normalize_lexically(path))
    } else {
        Ok(normalize_lexically(&std::env::current_dir()?.join(path)))
    }
}

/// The nearest known name, for "did you mean".
fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Declaration {
    /// Warnings among the diagnostics.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}
