//! Diagnostics about a declaration file, written for people, like a compiler's.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::yaml::Loc;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational: the declaration is valid and does what it says, but a reader may not expect it.
    Note,
    /// The declaration is valid but probably not what was meant.
    Warning,
    /// The declaration is invalid: nothing is mounted or reloaded.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found in a declaration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The declaration file.
    pub file: PathBuf,
    /// Where in the file.
    pub loc: Loc,
    /// What is wrong, quoting the offending value.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The text of the offending line, for the caret display.
    pub source_line: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.loc.line,
            self.loc.col,
            self.severity,
            self.message
        )?;
        if let Some(line) = &self.source_line {
            let num = self.loc.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_pad: String = line
                .chars()
                .take(self.loc.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n {pad} |\n {num} | {line}\n {pad} | {caret_pad}^")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Collects the diagnostics of one file, in the order they are found.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: PathBuf,
    source: String,
    /// Where each line of `source` starts, found when the first diagnostic needs it (most
    /// declarations have none, and splitting 100,000 entries' lines costs).
    line_starts: Vec<usize>,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// A collector for `file`, whose text is `source`.
    pub fn new(file: &Path, source: &str) -> Diagnostics {
        Diagnostics {
            file: file.to_path_buf(),
            source: source.to_owned(),
            line_starts: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Line `n` (1-based) of the source, as [`str::lines`] gives it.
    fn line(&mut self, n: usize) -> Option<&str> {
        if self.line_starts.is_empty() && !self.source.is_empty() {
            self.line_starts = std::iter::once(0)
                .chain(
                    self.source
                        .bytes()
                        .enumerate()
                        .filter(|&(_, b)| b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .filter(|&start| start < self.source.len())
                .collect();
        }
        let i = n.checked_sub(1)?;
        let start = *self.line_starts.get(i)?;
        let end = self
            .line_starts
            .get(i + 1)
            .copied()
            .unwrap_or(self.source.len());
        let line = self.source.get(start..end)?;
        // As `str::lines`: a `\n` ends a line, and a `\r` just before it goes with it.
        Some(match line.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => line,
        })
    }

    /// Records a diagnostic.
    pub fn push(&mut self, severity: Severity, loc: Loc, message: String, help: Option<String>) {
        let source_line = self.line(loc.line).map(str::to_owned);
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            loc,
            message,
            help,
            source_line,
        });
    }

    /// Records an error.
    pub fn error(&mut self, loc: Loc, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Error, loc, message.into(), Some(help.into()));
    }

    /// Records a warning.
    pub fn warning(&mut self, loc: Loc, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Warning, loc, message.into(), Some(help.into()));
    }

    /// Records a note.
    pub fn note(&mut self, loc: Loc, message: impl Into<String>) {
        self.push(Severity::Note, loc, message.into(), None);
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The diagnostics, sorted by position (stable, so one position keeps the order found).
    pub fn into_vec(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.loc);
        self.items
    }
}

/// The failure of loading a declaration: every diagnostic found (at least one error).
#[derive(Debug, Clone)]
pub struct Invalid {
    /// All diagnostics, errors and the warnings found beside them.
    pub diagnostics: Vec<Diagnostic>,
}

impl Invalid {
    /// The number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        let n = self.error_count();
        write!(
            f,
            "{n} error{} in the declaration",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Invalid {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn source_lines_are_those_of_str_lines(text in "[a\r\n]{0,12}", n in 0usize..16) {
            let mut d = Diagnostics::new(Path::new("f"), &text);
            let expected = n.checked_sub(1).and_then(|i| text.lines().nth(i));
            prop_assert_eq!(d.line(n), expected);
        }
    }
}
