//! Declarations: the YAML file a user writes, validated into a [`Declaration`].
//!
//! Data flow: text -> [`crate::yaml`] nodes (with positions) -> this module's checks, which collect
//! every problem at once -> a [`Declaration`] holding normalized, absolute values.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Invalid, Severity};
use crate::vpath::{VPath, VPathError};
use crate::yaml::{self, is_null, Loc, Node, Value};

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

/// Reads and validates a declaration file.
///
/// # Errors
/// [`LoadError::Io`] when the file cannot be read, [`LoadError::Invalid`] with every problem found.
pub fn load_file(file: &Path) -> Result<Declaration, LoadError> {
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
    parse_str(file, &abs, &text).map_err(LoadError::Invalid)
}

/// Validates declaration `text`. `shown` is the file name used in messages; `file` its absolute
/// path, against whose directory relative paths resolve.
///
/// # Errors
/// Every problem found, when any is an error.
pub fn parse_str(shown: &Path, file: &Path, text: &str) -> Result<Declaration, Invalid> {
    let mut d = Diagnostics::new(shown, text);
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let decl = Checker {
        d: &mut d,
        dir,
        canonical_dirs: HashMap::new(),
        last_lstat: None,
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
    /// Canonical forms of directories seen so far (see [`Checker::canonical_target`]).
    canonical_dirs: HashMap<PathBuf, PathBuf>,
    /// The `lstat` of the last target resolved, which spares checking it a second `stat`.
    last_lstat: Option<(PathBuf, io::Result<std::fs::Metadata>)>,
}

/// The known keys of one mapping, with their values, in file order. A mapping has a handful of
/// keys, so a list searched in order beats a hash map.
struct Fields<'n>(Vec<(&'static str, Loc, &'n Node)>);

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&&'n Node> {
        self.0.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| v)
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
        known: &[&'static str],
        place: &str,
    ) -> Fields<'n> {
        let mut out = Fields(Vec::with_capacity(map.len()));
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
            let Some(&name) = known.iter().find(|n| **n == key) else {
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
            if let Some((_, first, _)) = out.0.iter().find(|(n, _, _)| *n == name) {
                self.d.error(
                    k.loc,
                    format!("key `{name}` appears twice (first at line {})", first.line),
                    "keep one of the two",
                );
                continue;
            }
            out.0.push((name, k.loc, v));
        }
        out
    }

    fn string(&mut self, node: &Node, key: &str, help: &str) -> Option<String> {
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
                Some(text.clone())
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
        let text = self.string(node, key, &format!("write one of: {}", values.join(", ")))?;
        if let Some(v) = values.iter().find(|v| **v == text) {
            return Some(v);
        }
        let help = match closest(&text, values) {
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
        if let Some(c) = drive_letter(&text) {
            return Some(Mountpoint::Drive(c));
        }
        Some(Mountpoint::Dir(self.resolve(&text)))
    }

    fn base(&mut self, node: &Node, mountpoint: Option<&Mountpoint>) -> Option<PathBuf> {
        let text = self.string(
            node,
            "base",
            "write the directory whose contents show through, or remove `base`",
        )?;
        let base = self.resolve(&text);
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
        let mut out = Vec::new();
        for item in items {
            let Some(map) = self.mapping(item, "a redirection") else {
                continue;
            };
            let f = self.fields(map, ENTRY_KEYS, "in a redirection");
            let raw = RawEntry {
                loc: item.loc,
                path: f.get("path").copied(),
                target: f.get("target").copied(),
                presentation: f.get("as").copied(),
                on_missing: f.get("on_missing").copied(),
                read_only: f.get("read_only").copied(),
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
        // Each entry with a usable path and target: (entry, where its path is, where a
        // `read_only: true` that has no effect is).
        let mut candidates: Vec<(Entry, Loc, Option<Loc>)> = Vec::with_capacity(raw.len());
        for r in raw {
            let path = r.path.and_then(|n| self.entry_path(n).map(|p| (p, n.loc)));
            let target = r
                .target
                .and_then(|n| self.target(n, mountpoint).map(|t| (t, n.loc)));
            let presentation = r
                .presentation
                .and_then(|n| self.choice(n, "as", AS_VALUES))
                .map(|v| match v {
                    "transparent" => Presentation::Transparent,
                    "junction" => Presentation::Junction,
                    _ => Presentation::Symlink,
                });
            let on_missing = r
                .on_missing
                .and_then(|n| self.choice(n, "on_missing", ON_MISSING_VALUES))
                .map(|v| match v {
                    "hide" => OnMissing::Hide,
                    "error" => OnMissing::Error,
                    _ => OnMissing::Dangling,
                });
            let read_only = r.read_only.and_then(|n| self.boolean(n, "read_only"));
            if let Some((target, target_loc)) = &target {
                self.target_state(
                    target,
                    *target_loc,
                    presentation.unwrap_or(Presentation::Symlink),
                    on_missing.unwrap_or(OnMissing::Dangling),
                );
            }
            let (Some((path, path_loc)), Some((target, _))) = (path, target) else {
                continue;
            };
            let presentation = presentation.unwrap_or(Presentation::Symlink);
            let on_missing = on_missing.unwrap_or(OnMissing::Dangling);
            let useless_read_only = match r.read_only {
                Some(n) if presentation.is_link() && read_only == Some(true) => Some(n.loc),
                _ => None,
            };
            candidates.push((
                Entry {
                    path,
                    target,
                    presentation,
                    on_missing,
                    read_only: read_only.unwrap_or(false),
                    loc: r.loc,
                },
                path_loc,
                useless_read_only,
            ));
        }
        // Duplicates: the first declaration of a path stands.
        let mut duplicate = vec![false; candidates.len()];
        {
            let mut first: HashMap<&[String], Loc> = HashMap::with_capacity(candidates.len());
            for (i, (e, path_loc, _)) in candidates.iter().enumerate() {
                match first.entry(e.path.components()) {
                    std::collections::hash_map::Entry::Occupied(o) => {
                        self.d.error(
                            *path_loc,
                            format!(
                                "path `{}` is declared twice (first at line {})",
                                e.path,
                                o.get().line
                            ),
                            "keep one of the two entries, or give this one another path",
                        );
                        duplicate[i] = true;
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(*path_loc);
                    }
                }
            }
        }
        let mut entries: Vec<(Entry, Loc)> = Vec::with_capacity(candidates.len());
        for ((entry, path_loc, useless_read_only), dup) in candidates.into_iter().zip(duplicate) {
            if dup {
                continue;
            }
            let (path, presentation) = (&entry.path, entry.presentation);
            if let Some(loc) = useless_read_only {
                self.d.warning(
                    loc,
                    format!("`read_only` has no effect on a `{presentation}` entry"),
                    "the kernel follows the link out of the mount, so the target's own permissions apply; use `as: transparent` to enforce read-only",
                );
            }
            if let Some(base) = base {
                let shadowed = path
                    .components()
                    .iter()
                    .fold(base.to_path_buf(), |p, c| p.join(c));
                if std::fs::symlink_metadata(&shadowed).is_ok() {
                    self.d.note(
                        path_loc,
                        format!(
                            "`{path}` masks `{}`, which exists in the base: the declared entry wins",
                            shadowed.display()
                        ),
                    );
                }
            }
            entries.push((entry, path_loc));
        }
        // Nesting: an entry beneath a link can never be reached. The nearest link is named.
        let links: HashMap<&[String], &Entry> = entries
            .iter()
            .filter(|(e, _)| e.presentation.is_link())
            .map(|(e, _)| (e.path.components(), e))
            .collect();
        let mut unreachable = Vec::new();
        if !links.is_empty() {
            for (e, path_loc) in &entries {
                let comps = e.path.components();
                if let Some(link) = (1..comps.len()).rev().find_map(|n| links.get(&comps[..n])) {
                    unreachable.push((*path_loc, e.path.clone(), (*link).clone()));
                }
            }
        }
        for (loc, path, link) in unreachable {
            self.d.error(
                loc,
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
        entries.into_iter().map(|(e, _)| e).collect()
    }

    fn entry_path(&mut self, node: &Node) -> Option<VPath> {
        let text = self.string(
            node,
            "path",
            "write the virtual path inside the mount, e.g. `path: data`",
        )?;
        match VPath::parse_declared(&text) {
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

    fn target(&mut self, node: &Node, mountpoint: Option<&Mountpoint>) -> Option<PathBuf> {
        let text = self.string(
            node,
            "target",
            "write where the data lives: an absolute path, or one relative to this file",
        )?;
        let target = if is_windows_absolute(&text) {
            PathBuf::from(&text)
        } else {
            self.resolve(&text)
        };
        if let Some(Mountpoint::Dir(mp)) = mountpoint {
            let (t, m) = (self.canonical_target(&target), self.canonical_dir(mp));
            if t.starts_with(&m) {
                self.d.error(
                    node.loc,
                    format!(
                        "target `{}` lies inside the mountpoint `{}`: a loop",
                        target.display(),
                        mp.display()
                    ),
                    "point the redirection at data outside the mount (use the base's own path for data in the base)",
                );
                return None;
            }
            if m.starts_with(&t) {
                self.d.error(
                    node.loc,
                    format!(
                        "the mountpoint `{}` lies inside target `{}`: a loop",
                        mp.display(),
                        target.display()
                    ),
                    "point the redirection at a directory that does not contain the mountpoint",
                );
                return None;
            }
        }
        Some(target)
    }

    fn target_state(
        &mut self,
        target: &Path,
        loc: Loc,
        presentation: Presentation,
        on_missing: OnMissing,
    ) {
        // What `stat` would say, from the `lstat` the loop check made when it tells.
        let stat = match self.last_lstat.take() {
            Some((p, Ok(m))) if p == target && !m.file_type().is_symlink() => Ok(m),
            Some((p, Err(e))) if p == target => Err(e),
            _ => std::fs::metadata(target),
        };
        match stat {
            Ok(m) => {
                if presentation == Presentation::Junction && !m.is_dir() {
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
                let msg = format!(
                    "target `{}` cannot be reached: {}",
                    target.display(),
                    plain_io(&e)
                );
                let windows = if is_windows_absolute(&target.to_string_lossy()) && !cfg!(windows) {
                    " (it is a Windows path: only a Windows mount can reach it)"
                } else {
                    ""
                };
                match on_missing {
                    OnMissing::Error => self.d.error(
                        loc,
                        format!("{msg}{windows}"),
                        "create the target or fix the path; `on_missing: dangling` or `hide` accept an absent target",
                    ),
                    OnMissing::Dangling => self.d.warning(
                        loc,
                        format!("{msg}{windows}"),
                        "the entry shows as a dangling link until the target appears",
                    ),
                    OnMissing::Hide => self.d.warning(
                        loc,
                        format!("{msg}{windows}"),
                        "the entry stays hidden until the target appears",
                    ),
                }
            }
        }
    }

    fn resolve(&self, text: &str) -> PathBuf {
        normalize_lexically(&self.dir.join(text))
    }

    /// [`canonical`], resolving each parent directory once per declaration: entries' targets
    /// share parents, and resolving a path from scratch costs a `readlink` per component.
    fn canonical_target(&mut self, path: &Path) -> PathBuf {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if path.is_absolute() => {
                let candidate = self.canonical_dir(parent).join(name);
                let lstat = std::fs::symlink_metadata(&candidate);
                let c = match &lstat {
                    Ok(m) if m.file_type().is_symlink() => canonical(&candidate),
                    _ => candidate,
                };
                self.last_lstat = Some((path.to_path_buf(), lstat));
                c
            }
            _ => canonical(path),
        }
    }

    fn canonical_dir(&mut self, dir: &Path) -> PathBuf {
        if let Some(c) = self.canonical_dirs.get(dir) {
            return c.clone();
        }
        let c = self.canonical_target(dir);
        self.canonical_dirs.insert(dir.to_path_buf(), c.clone());
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

fn plain_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "it does not exist".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
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
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            return rest.iter().rev().fold(c, |p, n| p.join(n));
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
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
