//! A YAML document as a tree of nodes that remember where they stand in the file.
//!
//! serde-based loaders stop at the first problem and forget positions once a value is built; a
//! declaration's diagnostics need every problem at once, each with its line and column, so the
//! declaration loader walks this tree instead.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

mod fast;

/// A position in a text file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Loc {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl Loc {
    fn from_marker(m: Marker) -> Loc {
        Loc {
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }
}

/// One node of a YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// Where the node starts.
    pub loc: Loc,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar with its text; `quoted` is true when written in quotes (so never a number or bool).
    Scalar {
        /// The scalar's text.
        text: String,
        /// Whether the scalar was quoted.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Node, Node)>),
    /// An alias (`*name`): declarations do not use anchors, so the loader rejects it.
    Alias,
}

impl Node {
    /// A short name of this node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar { text, quoted } => {
                if *quoted {
                    "a string"
                } else if is_null(text) {
                    "null"
                } else if text == "true" || text == "false" {
                    "a boolean"
                } else if text.parse::<f64>().is_ok() {
                    "a number"
                } else {
                    "a string"
                }
            }
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Alias => "an alias",
        }
    }
}

/// Whether an unquoted scalar is YAML's null.
pub fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// A syntax error, with where the parser stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub loc: Loc,
    /// The parser's description.
    pub message: String,
}

#[derive(Default)]
struct Builder {
    // Open containers: a node under construction, and for maps a pending key.
    stack: Vec<(Node, Option<Node>)>,
    docs: Vec<Node>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        let mut node = node;
                        // An empty value (`key:` and nothing after it) is marked by the parser at
                        // the next token, often on a later line; a reader looks for it at its key.
                        if matches!(&node.value, Value::Scalar { text, quoted: false } if text.is_empty())
                        {
                            node.loc = key.loc;
                        }
                        entries.push((key, node));
                    }
                },
                Value::Scalar { .. } | Value::Alias => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let loc = Loc::from_marker(mark);
        match ev {
            Event::Scalar(text, style, _, _) => self.push_value(Node {
                value: Value::Scalar {
                    text,
                    quoted: style != TScalarStyle::Plain,
                },
                loc,
            }),
            Event::Alias(_) => self.push_value(Node {
                value: Value::Alias,
                loc,
            }),
            Event::SequenceStart(..) => self.stack.push((
                Node {
                    value: Value::Seq(Vec::new()),
                    loc,
                },
                None,
            )),
            Event::MappingStart(..) => self.stack.push((
                Node {
                    value: Value::Map(Vec::new()),
                    loc,
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((mut node, _)) = self.stack.pop() {
                    // The parser marks a block mapping where its first key ends; its first key
                    // is where a reader sees it start.
                    if let Value::Map(entries) = &node.value {
                        if let Some((k, _)) = entries.first() {
                            node.loc = node.loc.min(k.loc);
                        }
                    }
                    self.push_value(node);
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// How deep collections may nest. A declaration needs four levels; the limit keeps a malformed
/// or hostile file from exhausting the stack (the parser's own loader, and dropping the tree,
/// recurse once per level).
pub const MAX_DEPTH: usize = 64;

/// Parses `text` into its documents.
///
/// The block-style YAML declarations are written in is read by a fast reader of its own; anything
/// else (and every error) by yaml-rust2. Both give the same nodes.
///
/// # Errors
/// Returns the first syntax error (YAML cannot be read on past one), or the place where
/// collections nest deeper than [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    match fast::parse(text) {
        Some(docs) => Ok(docs),
        None => parse_with_yaml_rust2(text),
    }
}

/// The first tab on line `line` (1-based) or after it.
fn first_tab_from(text: &str, line: usize) -> Option<Loc> {
    text.lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .find_map(|(i, l)| {
            l.find('\t').map(|b| Loc {
                line: i + 1,
                col: l[..b].chars().count() + 1,
            })
        })
}

/// [`parse`] through yaml-rust2's events, for any YAML.
fn parse_with_yaml_rust2(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Pull events one at a time rather than through `Parser::load`, which recurses per level.
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            let loc = Loc::from_marker(*e.marker());
            let message = e.info().to_string();
            // yaml-rust2 reports a tab where it stopped: past it, or at the end of the line
            // before it. Point at the tab itself.
            let loc = if message.contains("tab") {
                first_tab_from(text, loc.line).unwrap_or(loc)
            } else {
                loc
            };
            SyntaxError { loc, message }
        })?;
        match ev {
            Event::StreamEnd => break,
            Event::SequenceStart(..) | Event::MappingStart(..)
                if builder.stack.len() >= MAX_DEPTH =>
            {
                return Err(SyntaxError {
                    loc: Loc::from_marker(mark),
                    message: format!("collections nest deeper than {MAX_DEPTH} levels"),
                });
            }
            ev => builder.on_event(ev, mark),
        }
    }
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs = parse("a: 1\nb:\n  - x\n").expect("valid yaml");
        let Value::Map(entries) = &docs[0].value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.loc, Loc { line: 1, col: 1 });
        assert_eq!(entries[0].1.loc, Loc { line: 1, col: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].loc, Loc { line: 3, col: 5 });
        assert_eq!(docs[0].loc, Loc { line: 1, col: 1 });
    }

    #[test]
    fn syntax_error_has_location() {
        let err = parse("a: [1,\n").expect_err("invalid");
        assert_eq!(err.loc.line, 2);
    }

    #[test]
    fn quoted_scalars_are_strings() {
        let docs = parse("a: \"true\"\nb: true\n").expect("valid yaml");
        let Value::Map(entries) = &docs[0].value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].1.type_name(), "a string");
        assert_eq!(entries[1].1.type_name(), "a boolean");
    }
}
