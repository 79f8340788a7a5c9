//! Virtual paths: "/"-separated paths inside the mount, normalized.

use std::fmt;

/// A normalized virtual path: components without `.`, `..`, empty parts or NUL bytes.
/// The empty path is the mount's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VPath {
    components: Vec<String>,
}

/// Why a virtual path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VPathError {
    /// Nothing left after normalization (``, `/`, `.`).
    Empty,
    /// Starts with `/`.
    Absolute,
    /// Has a `..` component.
    ParentComponent,
    /// Has a NUL byte.
    Nul,
    /// Has a backslash, which is a separator on Windows and a name character elsewhere.
    Backslash,
}

impl fmt::Display for VPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VPathError::Empty => "is empty",
            VPathError::Absolute => "is absolute",
            VPathError::ParentComponent => "climbs with `..`",
            VPathError::Nul => "contains a NUL byte",
            VPathError::Backslash => "contains a backslash",
        })
    }
}

impl VPath {
    /// The root of the mount.
    pub fn root() -> VPath {
        VPath::default()
    }

    /// Normalizes a declared path: `//`, `.` and a trailing `/` go; `..`, absolute, empty and NUL
    /// are refused.
    ///
    /// # Errors
    /// The first reason the path is refused.
    pub fn parse_declared(text: &str) -> Result<VPath, VPathError> {
        if text.contains('\0') {
            return Err(VPathError::Nul);
        }
        if text.contains('\\') {
            return Err(VPathError::Backslash);
        }
        let vp = VPath::parse_lenient(text)?;
        if text.starts_with('/') {
            // `/` alone (or `/./`) names the root: empty, not an absolute path to rewrite.
            return Err(if vp.is_root() {
                VPathError::Empty
            } else {
                VPathError::Absolute
            });
        }
        if vp.is_root() {
            return Err(VPathError::Empty);
        }
        Ok(vp)
    }

    /// Normalizes a path a user asks about (`explain`): a leading `/` means the mount's root, and the
    /// root itself is allowed.
    ///
    /// # Errors
    /// `..` and NUL are refused.
    pub fn parse_lenient(text: &str) -> Result<VPath, VPathError> {
        if text.contains('\0') {
            return Err(VPathError::Nul);
        }
        let mut components = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(VPathError::ParentComponent),
                p => components.push(p.to_owned()),
            }
        }
        Ok(VPath { components })
    }

    /// Builds a path from components that are already valid names.
    pub fn from_components<I: IntoIterator<Item = S>, S: Into<String>>(parts: I) -> VPath {
        VPath {
            components: parts.into_iter().map(Into::into).collect(),
        }
    }

    /// The components.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// Whether `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &VPath) -> bool {
        self.components.starts_with(&other.components)
    }

    /// The path one level up (the root's parent is the root).
    pub fn parent(&self) -> VPath {
        let mut c = self.components.clone();
        c.pop();
        VPath { components: c }
    }

    /// The last component, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.components.is_empty() {
            return f.write_str("/");
        }
        f.write_str(&self.components.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes() {
        let p = VPath::parse_declared("a//b/./c/").expect("valid");
        assert_eq!(p.to_string(), "a/b/c");
    }

    #[test]
    fn refuses() {
        assert_eq!(VPath::parse_declared(""), Err(VPathError::Empty));
        assert_eq!(VPath::parse_declared("./"), Err(VPathError::Empty));
        assert_eq!(VPath::parse_declared("/a"), Err(VPathError::Absolute));
        assert_eq!(
            VPath::parse_declared("a/../b"),
            Err(VPathError::ParentComponent)
        );
        assert_eq!(VPath::parse_declared("a\0b"), Err(VPathError::Nul));
        assert_eq!(VPath::parse_declared("a\\b"), Err(VPathError::Backslash));
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(s in "[a-c./]{0,12}") {
            if let Ok(p) = VPath::parse_declared(&s) {
                let again = VPath::parse_declared(&p.to_string());
                prop_assert_eq!(again, Ok(p.clone()));
                for c in p.components() {
                    prop_assert!(!c.is_empty() && c != "." && c != ".." && !c.contains('/'));
                }
            }
        }

        #[test]
        fn extra_separators_and_dots_do_not_matter(parts in proptest::collection::vec("[a-z]{1,3}", 1..5)) {
            let plain = parts.join("/");
            let noisy = format!("./{}/", parts.join("//./"));
            prop_assert_eq!(VPath::parse_declared(&plain), VPath::parse_declared(&noisy));
        }
    }
}
