//! The declaration's schema: keys, types and values, read from YAML nodes into entries, every
//! problem collected with its location.

use super::*;

pub(super) const TOP_KEYS: &[&str] = &["version", "mountpoint", "base", "options", "redirections"];

pub(super) const OPTION_KEYS: &[&str] = &["read_only", "allow_other"];

pub(super) const ENTRY_KEYS: &[&str] = &["path", "target", "as", "on_missing", "read_only"];

pub(super) const AS_VALUES: &[&str] = &["symlink", "transparent", "junction"];

pub(super) const ON_MISSING_VALUES: &[&str] = &["dangling", "hide", "error"];

pub(super) struct Checker<'a> {
    pub(super) d: &'a mut Diagnostics,
    pub(super) dir: PathBuf,
    /// How the mount compares names.
    pub(super) case: NameCase,
}

/// The most keys a mapping of the declaration knows.
pub(super) const MAX_KEYS: usize = 5;

const _: () = assert!(
    TOP_KEYS.len() <= MAX_KEYS && OPTION_KEYS.len() <= MAX_KEYS && ENTRY_KEYS.len() <= MAX_KEYS
);

/// The known keys of one mapping, with where each stands and its value, by the key's index in
/// the list of known keys. A mapping has a handful of keys: an array beats a map, and allocates
/// nothing per entry.
pub(super) struct Fields<'n> {
    pub(super) known: &'static [&'static str],
    pub(super) found: [Option<(Loc, &'n Node)>; MAX_KEYS],
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        let i = self.known.iter().position(|k| *k == key)?;
        self.found.get(i).copied().flatten().map(|(_, v)| v)
    }
}

/// A raw entry: what the user wrote, each value with its position.
pub(super) struct RawEntry<'n> {
    pub(super) loc: Loc,
    pub(super) path: Option<&'n Node>,
    pub(super) target: Option<&'n Node>,
    pub(super) presentation: Option<&'n Node>,
    pub(super) on_missing: Option<&'n Node>,
    pub(super) read_only: Option<&'n Node>,
}

impl Checker<'_> {
    pub(super) fn check(mut self, text: &str, file: &Path) -> Option<Declaration> {
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
                "start the file with `version: 1`, then `mountpoint:` and `redirections:` (see redirfs.yaml(5))",
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

    pub(super) fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
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
                    "write one `key: value` per line (see redirfs.yaml(5))",
                );
                None
            }
        }
    }

    pub(super) fn alias(&mut self, node: &Node) {
        self.d.error(
            node.loc,
            "YAML aliases (`*name`) are not supported in declarations",
            "write the value out in full",
        );
    }

    /// Splits a mapping into known keys; unknown, duplicate and non-string keys are errors.
    pub(super) fn fields<'n>(
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

    pub(super) fn string<'n>(&mut self, node: &'n Node, key: &str, help: &str) -> Option<&'n str> {
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

    pub(super) fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
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

    pub(super) fn choice<'c>(
        &mut self,
        node: &Node,
        key: &str,
        values: &[&'c str],
    ) -> Option<&'c str> {
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

    pub(super) fn mountpoint(&mut self, node: &Node) -> Option<Mountpoint> {
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

    pub(super) fn base(&mut self, node: &Node, mountpoint: Option<&Mountpoint>) -> Option<PathBuf> {
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

    pub(super) fn options(&mut self, node: &Node) -> Options {
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

    pub(super) fn raw_entries<'n>(&mut self, node: &'n Node) -> Vec<RawEntry<'n>> {
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

    pub(super) fn entries(
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
        let (duplicate_of, beneath) = entry_relations(&candidates, self.case);
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
    pub(super) fn pending<'n>(&mut self, r: &RawEntry<'n>) -> Pending<'n> {
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

    pub(super) fn entry_path(&mut self, node: &Node) -> Option<VPath> {
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
}

/// One entry's values, checked one by one, before the filesystem is asked about its target.
pub(super) struct Pending<'n> {
    pub(super) loc: Loc,
    pub(super) path: Option<(VPath, Loc)>,
    pub(super) target: Option<(PathBuf, Loc)>,
    pub(super) presentation: Option<Presentation>,
    pub(super) on_missing: Option<OnMissing>,
    pub(super) read_only: Option<bool>,
    pub(super) read_only_node: Option<&'n Node>,
}

pub(super) fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar {
            text,
            quoted: false,
        } if text.is_empty() => "nothing".to_string(),
        Value::Scalar { text, .. } => format!("{} `{text}`", node.type_name()),
        _ => node.type_name().to_string(),
    }
}

pub(super) fn plain_io(e: &io::Error) -> Cow<'static, str> {
    match e.kind() {
        io::ErrorKind::NotFound => Cow::Borrowed("it does not exist"),
        io::ErrorKind::PermissionDenied => Cow::Borrowed("permission denied"),
        _ => Cow::Owned(e.to_string()),
    }
}

/// The nearest known name, for "did you mean".
pub(super) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
