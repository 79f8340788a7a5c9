//! A fast reader for the block-style YAML declarations are written in.
//!
//! yaml-rust2 reads any YAML, one character and one token at a time; a 100,000-entry declaration
//! spends most of its load time there. Declarations use a small part of YAML: block mappings and
//! sequences, one-line plain and quoted scalars, comments and `---`. This reader handles exactly
//! that part, line by line, and builds the same nodes at the same positions as
//! [`super::parse_with_yaml_rust2`] does.
//!
//! It never reports an error: at anything it does not fully understand (anchors, aliases, tags,
//! flow collections, block scalars, multi-line scalars, tabs, an empty document, unusual
//! indentation, and everything invalid) it gives up, and the caller reads the text again with
//! yaml-rust2, which has the final word and the error messages. Giving up is always correct;
//! accepting is only allowed where the result is known to be identical (a differential property
//! test below holds it to that).

use super::{Loc, Node, Value};

/// The reader gave up: the text is read again by yaml-rust2.
struct Bail;

type R<T> = Result<T, Bail>;

/// How deep this reader nests before giving up. Below [`super::MAX_DEPTH`], so that the
/// "nest deeper than" error always comes from the one place that reports it.
const MAX_DEPTH: usize = 32;

/// Longer keys give up: yaml-rust2 forgets a key that started more than 1024 characters before
/// its `:`, and reports an error there.
const MAX_KEY_BYTES: usize = 256;

/// A line with content (blank and comment-only lines are skipped).
#[derive(Clone, Copy)]
struct Line<'t> {
    /// 1-based line number.
    no: usize,
    /// The line without its line break.
    text: &'t str,
    /// Leading spaces.
    indent: usize,
    /// Whether `text` is ASCII, so that byte offsets are columns.
    ascii: bool,
    /// A `---` line.
    doc_start: bool,
}

impl Line<'_> {
    fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The position of the character at byte `off`.
    fn loc(&self, off: usize) -> Loc {
        let col = if self.ascii {
            off
        } else {
            self.text.get(..off).map_or(off, |s| s.chars().count())
        };
        Loc {
            line: self.no,
            col: col + 1,
        }
    }

    /// Whether a block sequence entry (`-` then a space or the end of the line) is at `off`.
    fn dash_at(&self, off: usize) -> bool {
        let b = self.bytes();
        b.get(off) == Some(&b'-') && matches!(b.get(off + 1), None | Some(b' '))
    }
}

struct Reader<'t> {
    text: &'t str,
    /// Byte offset of the next line not read yet.
    pos: usize,
    /// Number of the next line not read yet.
    next_no: usize,
    /// The next content line, once looked at (`None` inside: the end of the text).
    peeked: Option<Option<Line<'t>>>,
}

/// Reads `text`'s documents, or gives up (`None`) when yaml-rust2 must read it.
pub(super) fn parse(text: &str) -> Option<Vec<Node>> {
    let mut r = Reader {
        text,
        pos: 0,
        next_no: 1,
        peeked: None,
    };
    r.documents().ok()
}

impl<'t> Reader<'t> {
    fn documents(&mut self) -> R<Vec<Node>> {
        let mut docs = Vec::new();
        // After `---`, a document must follow: an empty one (a null) is left to yaml-rust2.
        let mut started = false;
        while let Some(line) = self.next()? {
            if line.doc_start {
                if started {
                    return Err(Bail);
                }
                started = true;
                continue;
            }
            docs.push(self.node(line, line.indent, 1)?);
            started = false;
            match self.peek()? {
                None => {}
                Some(l) if l.doc_start => {}
                // Content left of the root node.
                Some(_) => return Err(Bail),
            }
        }
        if started {
            return Err(Bail);
        }
        Ok(docs)
    }

    /// The next content line, without consuming it.
    fn peek(&mut self) -> R<Option<Line<'t>>> {
        if let Some(l) = self.peeked {
            return Ok(l);
        }
        let l = self.read_line()?;
        self.peeked = Some(l);
        Ok(l)
    }

    /// The next content line, consumed.
    fn next(&mut self) -> R<Option<Line<'t>>> {
        let l = self.peek()?;
        self.peeked = None;
        Ok(l)
    }

    /// Reads raw lines up to the next one with content.
    fn read_line(&mut self) -> R<Option<Line<'t>>> {
        while self.pos < self.text.len() {
            let rest = self.text.get(self.pos..).ok_or(Bail)?;
            let (text, next) = match rest.find('\n') {
                // A CRLF line break is one; a lone CR is a line break to YAML, and left to
                // yaml-rust2 (below).
                Some(n) => {
                    let line = rest.get(..n).ok_or(Bail)?;
                    (line.strip_suffix('\r').unwrap_or(line), self.pos + n + 1)
                }
                None => (rest, self.text.len()),
            };
            self.pos = next;
            let no = self.next_no;
            self.next_no += 1;
            let b = text.as_bytes();
            // Tabs, NUL (the end of the stream to yaml-rust2), CR and other controls. (Counted
            // over the whole line, which compiles to a vector loop.)
            let controls = b
                .iter()
                .fold(0u32, |n, &c| n + u32::from(c < 0x20 || c == 0x7f));
            if controls != 0 {
                return Err(Bail);
            }
            let ascii = text.is_ascii();
            // U+FEFF (a byte order mark), C1 controls (U+0085 is a line break in YAML 1.1),
            // U+2028 and U+2029 (line and paragraph separators).
            if !ascii
                && text.chars().any(|c| {
                    matches!(
                        c,
                        '\u{feff}' | '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}'
                    )
                })
            {
                return Err(Bail);
            }
            let indent = b.iter().take_while(|&&c| c == b' ').count();
            match b.get(indent) {
                None | Some(b'#') => continue,
                _ => {}
            }
            let marker = |c: u8| {
                b.len() >= 3
                    && b[..3].iter().all(|&x| x == c)
                    && matches!(b.get(3), None | Some(b' '))
            };
            let doc_start = marker(b'-');
            // Content after `---`, and `...` (the end of a document), are left to yaml-rust2.
            if (doc_start && b[3..].iter().any(|&c| c != b' ')) || marker(b'.') {
                return Err(Bail);
            }
            return Ok(Some(Line {
                no,
                text,
                indent,
                ascii,
                doc_start,
            }));
        }
        Ok(None)
    }

    /// The block node whose first token is at byte `off` of `line` (already consumed), on a line
    /// of its own: a sequence or a mapping. A scalar alone on its line gives up (it might go on
    /// over the next lines).
    fn node(&mut self, line: Line<'t>, off: usize, depth: usize) -> R<Node> {
        self.node_or(line, off, depth, |_, _| Err(Bail))
    }

    /// A node that follows `- ` on `line`: a nested sequence, a mapping, or a scalar.
    fn inline_node(&mut self, line: Line<'t>, off: usize, depth: usize) -> R<Node> {
        self.node_or(line, off, depth, scalar_value)
    }

    /// A sequence or a mapping starting at byte `off` of `line`, else `otherwise`.
    fn node_or(
        &mut self,
        line: Line<'t>,
        off: usize,
        depth: usize,
        otherwise: impl FnOnce(&Line<'t>, usize) -> R<Node>,
    ) -> R<Node> {
        if depth > MAX_DEPTH {
            return Err(Bail);
        }
        if line.dash_at(off) {
            return self.sequence(line, off, line.loc(off), depth);
        }
        match key_at(&line, off)? {
            Some((key, after)) => self.mapping(line, off, key, after, depth),
            None => otherwise(&line, off),
        }
    }

    /// A block sequence whose first `-` is at byte `col` of `line` (already consumed). `mark` is
    /// where yaml-rust2 marks it: the `-`, or for a sequence at its key's indentation, the token
    /// after the first `-`. (Only spaces and `-` stand before a collection's `col`, so it is its
    /// column too, and lines' indentation compares with it.)
    fn sequence(&mut self, line: Line<'t>, col: usize, mark: Loc, depth: usize) -> R<Node> {
        let mut items = Vec::new();
        let mut line = line;
        loop {
            let content = skip_spaces(line.bytes(), col + 1);
            let item = if matches!(line.bytes().get(content), None | Some(b'#')) {
                // `-` alone: the item is on the next lines, further right.
                match self.peek()? {
                    Some(n) if !n.doc_start && n.indent > col => {
                        self.next()?;
                        self.node(n, n.indent, depth + 1)?
                    }
                    // An empty item: its position is the next token's, left to yaml-rust2.
                    _ => return Err(Bail),
                }
            } else {
                self.inline_node(line, content, depth + 1)?
            };
            items.push(item);
            match self.peek()? {
                Some(n) if !n.doc_start && n.indent == col && n.dash_at(col) => {
                    self.next()?;
                    line = n;
                }
                // A scalar's continuation, or an indentation error.
                Some(n) if !n.doc_start && n.indent > col => return Err(Bail),
                _ => break,
            }
        }
        Ok(Node {
            value: Value::Seq(items),
            loc: mark,
        })
    }

    /// A block mapping whose first key, `key`, is at byte `col` of `line` (already consumed);
    /// its `:` ends before byte `after`.
    fn mapping(
        &mut self,
        line: Line<'t>,
        col: usize,
        key: Node,
        after: usize,
        depth: usize,
    ) -> R<Node> {
        let loc = key.loc;
        let mut entries = Vec::with_capacity(4);
        let (mut line, mut key, mut after) = (line, key, after);
        loop {
            let value = self.value(line, after, col, key.loc, depth)?;
            entries.push((key, value));
            match self.peek()? {
                Some(n) if !n.doc_start && n.indent == col => {
                    self.next()?;
                    let Some((k, a)) = key_at(&n, col)? else {
                        return Err(Bail);
                    };
                    (line, key, after) = (n, k, a);
                }
                // A scalar's continuation, or an indentation error.
                Some(n) if !n.doc_start && n.indent > col => return Err(Bail),
                _ => break,
            }
        }
        Ok(Node {
            value: Value::Map(entries),
            loc,
        })
    }

    /// The value of the key at byte `col` of `line`, whose `:` ends before byte `after`.
    fn value(
        &mut self,
        line: Line<'t>,
        after: usize,
        col: usize,
        key_loc: Loc,
        depth: usize,
    ) -> R<Node> {
        let v = skip_spaces(line.bytes(), after);
        if !matches!(line.bytes().get(v), None | Some(b'#')) {
            return scalar_value(&line, v);
        }
        // Nothing after the `:`: the value is on the next lines, or empty.
        match self.peek()? {
            Some(n) if !n.doc_start && n.indent > col => {
                self.next()?;
                self.node(n, n.indent, depth + 1)
            }
            Some(n) if !n.doc_start && n.indent == col && n.dash_at(col) => {
                self.next()?;
                // yaml-rust2 marks a sequence at its key's indentation where the token after
                // the first `-` starts, or at the end of that line.
                let t = skip_spaces(n.bytes(), col + 1);
                let t = match n.bytes().get(t) {
                    Some(b'#') => n.text.len(),
                    _ => t,
                };
                self.sequence(n, col, n.loc(t), depth + 1)
            }
            // An empty value stands at its key (see `Builder::push_value`).
            _ => Ok(Node {
                value: Value::Scalar {
                    text: String::new(),
                    quoted: false,
                },
                loc: key_loc,
            }),
        }
    }
}

fn skip_spaces(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Whether a plain scalar may not start with `c`: YAML's indicators. (`-`, `?` and `:` may start
/// one when a non-space follows; that is left to yaml-rust2.)
fn is_indicator(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    )
}

/// How a one-line plain scalar ended.
enum PlainEnd {
    /// At `: ` or a `:` ending the line; the `:` is at this byte.
    Colon(usize),
    /// At a comment or the end of the line.
    Line,
}

/// A plain scalar starting at byte `off` (which is no indicator): where its text ends (trailing
/// spaces excluded) and what ended it.
fn plain(b: &[u8], off: usize) -> (usize, PlainEnd) {
    let mut end = off;
    let mut i = off;
    while let Some(&c) = b.get(i) {
        match c {
            b':' if matches!(b.get(i + 1), None | Some(b' ')) => return (end, PlainEnd::Colon(i)),
            b'#' if i > 0 && b[i - 1] == b' ' => return (end, PlainEnd::Line),
            b' ' => {}
            _ => end = i + 1,
        }
        i += 1;
    }
    (end, PlainEnd::Line)
}

/// A quoted scalar whose opening quote is at byte `off`: its text and the byte after the closing
/// quote. One line only.
fn quoted(text: &str, off: usize) -> R<(String, usize)> {
    let b = text.as_bytes();
    let single = b.get(off) == Some(&b'\'');
    let mut out = String::new();
    let mut run = off + 1;
    let mut i = off + 1;
    loop {
        let Some(&c) = b.get(i) else {
            // Unclosed on this line: multi-line, or an error.
            return Err(Bail);
        };
        match c {
            b'\'' if single => {
                out.push_str(text.get(run..i).ok_or(Bail)?);
                if b.get(i + 1) == Some(&b'\'') {
                    out.push('\'');
                    i += 2;
                    run = i;
                    continue;
                }
                return Ok((out, i + 1));
            }
            b'"' if !single => {
                out.push_str(text.get(run..i).ok_or(Bail)?);
                return Ok((out, i + 1));
            }
            b'\\' if !single => {
                out.push_str(text.get(run..i).ok_or(Bail)?);
                let e = *b.get(i + 1).ok_or(Bail)?;
                let simple = match e {
                    b'0' => Some('\0'),
                    b'a' => Some('\x07'),
                    b'b' => Some('\x08'),
                    b't' => Some('\t'),
                    b'n' => Some('\n'),
                    b'v' => Some('\x0b'),
                    b'f' => Some('\x0c'),
                    b'r' => Some('\r'),
                    b'e' => Some('\x1b'),
                    b' ' => Some(' '),
                    b'"' => Some('"'),
                    b'/' => Some('/'),
                    b'\\' => Some('\\'),
                    b'N' => Some('\u{85}'),
                    b'_' => Some('\u{a0}'),
                    b'L' => Some('\u{2028}'),
                    b'P' => Some('\u{2029}'),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(ch);
                    i += 2;
                } else {
                    let digits = match e {
                        b'x' => 2,
                        b'u' => 4,
                        b'U' => 8,
                        _ => return Err(Bail),
                    };
                    let hex = text.get(i + 2..i + 2 + digits).ok_or(Bail)?;
                    if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                        return Err(Bail);
                    }
                    let code = u32::from_str_radix(hex, 16).map_err(|_| Bail)?;
                    out.push(char::from_u32(code).ok_or(Bail)?);
                    i += 2 + digits;
                }
                run = i;
            }
            _ => i += 1,
        }
    }
}

/// The key at byte `off` of `line`, if the line holds `key:` there: the key and the byte after
/// its `:`. `None` when the text there is no key (it may be a scalar).
fn key_at(line: &Line<'_>, off: usize) -> R<Option<(Node, usize)>> {
    let b = line.bytes();
    let Some(&first) = b.get(off) else {
        return Ok(None);
    };
    let (text, quoted_key, colon) = if first == b'\'' || first == b'"' {
        let (text, end) = quoted(line.text, off)?;
        if b.get(end) != Some(&b':') || !matches!(b.get(end + 1), None | Some(b' ')) {
            return Ok(None);
        }
        (text, true, end)
    } else if is_indicator(first) {
        return Ok(None);
    } else {
        match plain(b, off) {
            (end, PlainEnd::Colon(colon)) => (
                line.text.get(off..end).ok_or(Bail)?.to_owned(),
                false,
                colon,
            ),
            (_, PlainEnd::Line) => return Ok(None),
        }
    };
    if colon - off > MAX_KEY_BYTES {
        return Err(Bail);
    }
    let key = Node {
        value: Value::Scalar {
            text,
            quoted: quoted_key,
        },
        loc: line.loc(off),
    };
    Ok(Some((key, colon + 1)))
}

/// A scalar that fills the rest of `line` from byte `off` (but for a comment).
fn scalar_value(line: &Line<'_>, off: usize) -> R<Node> {
    let b = line.bytes();
    let first = *b.get(off).ok_or(Bail)?;
    let (text, quoted_value) = if first == b'\'' || first == b'"' {
        let (text, end) = quoted(line.text, off)?;
        let rest = skip_spaces(b, end);
        match b.get(rest) {
            None => {}
            Some(b'#') if rest > end => {}
            _ => return Err(Bail),
        }
        (text, true)
    } else if is_indicator(first) {
        return Err(Bail);
    } else {
        match plain(b, off) {
            (end, PlainEnd::Line) => (line.text.get(off..end).ok_or(Bail)?.to_owned(), false),
            // `a: b: c` is an error.
            (_, PlainEnd::Colon(_)) => return Err(Bail),
        }
    };
    Ok(Node {
        value: Value::Scalar {
            text,
            quoted: quoted_value,
        },
        loc: line.loc(off),
    })
}

#[cfg(test)]
mod tests {
    //! The fast reader against yaml-rust2: whenever it accepts a text, it must give exactly the
    //! nodes yaml-rust2 gives; and it must accept the block style declarations are written in.

    use super::super::parse_with_yaml_rust2;
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// The fast reader either gives up or agrees with yaml-rust2.
    fn agrees(text: &str) -> Result<bool, TestCaseError> {
        match parse(text) {
            None => Ok(false),
            Some(fast) => {
                prop_assert_eq!(Ok(fast), parse_with_yaml_rust2(text), "text: {:?}", text);
                Ok(true)
            }
        }
    }

    /// The fast reader accepts `text`, and agrees with yaml-rust2.
    fn accepted(text: &str) -> Result<(), TestCaseError> {
        prop_assert!(agrees(text)?, "the fast reader gave up on {:?}", text);
        Ok(())
    }

    #[test]
    fn declarations_as_people_write_them_are_read_fast() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mounts/examples");
        let mut n = 0;
        for f in std::fs::read_dir(&examples).expect("examples") {
            let text = std::fs::read_to_string(f.expect("entry").path()).expect("read");
            accepted(&text).expect("agrees");
            n += 1;
        }
        assert!(n >= 4);
        for text in [
            "version: 1\nmountpoint: \"L:\"\nredirections:\n  - path: data\n    target: D:\\archive\\legacy-data\n  - path: reports\n    target: '\\\\fileserver\\reports'\n  - path: logs\n    target: \"E:\\\\logs\"\n",
            "---\nversion: 1\nredirections:\n- path: a   # trailing\n  target: b\n-   path: 'c d'\n    target: \"é\"\n",
            "a:\r\n- x\r\n-\r\n  b: 1\r\n",
            "version: 1\n---\nversion: 2\n",
            "a: 1\nb:\nc:\n  - - x\n    - y\n  -\n    # comment\n    d: \"\"\n",
            "  indented: root\n  second: key\n",
            "",
            "  \n\n",
            "# only a comment\n",
            "k : v\n\"q\": 'it''s'\n'a:b': a:b\nx: a#b # c\ny: \"\\x41\\u00e9\\0\\/\"\n",
        ] {
            accepted(text).expect("agrees");
        }
    }

    #[test]
    fn what_it_does_not_know_is_left_to_yaml_rust2() {
        for text in [
            "---\n",
            "a: 1\n---\n",
            "--- a: 1\n",
            "a: 1\n...\n",
            "%YAML 1.2\n---\na: 1\n",
            "\u{feff}a: 1\n",
            "a: &x 1\nb: *x\n",
            "a: !tag 1\n",
            "a: [1, 2]\n",
            "a: {b: 1}\n",
            "a: |\n  text\n",
            "a: >-\n  text\n",
            "a: one\n  two\n",
            "- one\n  two\n",
            "a:\tb\n",
            "a: b\r\n\rc: d\n",
            "a: b\r",
            "a: \"one\n  two\"\n",
            "a: 'one\n  two'\n",
            "a: \"\\q\"\n",
            "a: \"\\x4\"\n",
            "a: \"\\ud800\"\n",
            "a: b: c\n",
            "a: L:\n",
            "-\n- x\n",
            "just text\n",
            "42\n",
            "? a\n: b\n",
            "a:\n    b: 1\n  c: 2\n",
            "  a: 1\nb: 2\n",
            "a: 1\n- x\n",
            "a: \"x\" y\n",
            "a: \"x\"# c\n",
            "a: x\u{85}y\n",
            "a: -1\n",
        ] {
            assert!(parse(text).is_none(), "accepted {text:?}");
        }
        let long_key = format!("{}: 1\n", "k".repeat(300));
        assert!(parse(&long_key).is_none());
        let deep: String = (0..40).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
        assert!(parse(&deep).is_none());
    }

    /// A tree to write out as block YAML; scalars and keys are written as they stand.
    #[derive(Debug, Clone)]
    enum Tree {
        Scalar(&'static str),
        Map(Vec<(&'static str, Tree)>),
        Seq(Vec<Tree>),
    }

    /// Scalars in the fast reader's part of YAML.
    const SCALARS: &[&str] = &[
        "data",
        "a/b",
        "./a//b/",
        "/abs/x y",
        "C:\\data",
        "é",
        "Straße",
        "1",
        "1.0",
        "true",
        "~",
        "null",
        "a:b",
        "a#b",
        "x -y",
        "e10",
        "a,b",
        "a]b",
        "x?",
        "a  b",
        "'it''s'",
        "'C:\\x'",
        "''",
        "'#'",
        "' a '",
        "\"a\"",
        "\"a\\\"b\"",
        "\"\\x41\\u00e9\\U0001F600\"",
        "\"é\"",
        "\"\\t\\n\\r\\e\\ \\N\\_\\L\\P\"",
        "\"a\\0b\"",
        "\"L:\"",
        "\"\"",
        "\"E:\\\\logs\"",
    ];

    /// Scalars around that part: each makes the fast reader give up, or tests the edge.
    const ODD_SCALARS: &[&str] = &[
        "",
        "&a x",
        "*a",
        "!t x",
        "[a, b]",
        "{a: b}",
        "|",
        ">-",
        "- x",
        "-x",
        "?x",
        ":x",
        "a: b",
        "@x",
        "`x",
        "%x",
        "#c",
        "'unterminated",
        "\"unterminated",
        "a #c",
        "\"\\q\"",
        "\"\\x4\"",
        "\"\\ud800\"",
        "...",
        "---",
        "a\tb",
        "\u{feff}x",
        "x\u{85}y",
        "a:",
        "'a'b",
        "\"a\" b",
        "\"a\"#c",
        "x\ry",
        "x\0",
    ];

    const KEYS: &[&str] = &[
        "version", "path", "target", "a b", "\"q\"", "'s'", "'it''s'", "k:x", "é", "x-y", "1",
    ];

    const ODD_KEYS: &[&str] = &[
        "? k",
        "[a]",
        "-k",
        "&a k",
        "*a",
        "!t k",
        "k ",
        "\"k\" ",
        "'k'x",
        "k #c",
        "...",
        "---",
        "",
        "\"\\q\"",
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
    ];

    /// Trees of scalars and keys from the fast reader's part of YAML, and one in `1 + odds` from
    /// around it (`odds` 0: never).
    fn tree(odds: u32) -> impl Strategy<Value = Tree> {
        let pick = move |good: &'static [&'static str], odd: &'static [&'static str]| {
            if odds == 0 {
                select(good).boxed()
            } else {
                prop_oneof![odds => select(good), 1 => select(odd)].boxed()
            }
        };
        let leaf = pick(SCALARS, ODD_SCALARS).prop_map(Tree::Scalar);
        let keys = pick(KEYS, ODD_KEYS);
        let collections = leaf.prop_recursive(5, 40, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec((keys.clone(), inner.clone()), 1..4).prop_map(Tree::Map),
                proptest::collection::vec(inner, 1..4).prop_map(Tree::Seq),
            ]
        });
        // The root is a collection: a root scalar may go on over lines, and is left to
        // yaml-rust2.
        collections.prop_filter("a collection", |t| !matches!(t, Tree::Scalar(_)))
    }

    /// Writes trees as block YAML, each layout decision taken from `choices`.
    struct Writer<'c> {
        out: String,
        choices: &'c [u8],
        next: usize,
        newline: &'static str,
        /// Empty sequence items and scalars alone on their line are left out: the fast reader
        /// gives up on them.
        in_subset: bool,
    }

    impl Writer<'_> {
        fn choose(&mut self, n: u8) -> u8 {
            let c = self
                .choices
                .get(self.next % self.choices.len().max(1))
                .copied();
            self.next += 1;
            c.unwrap_or(0) % n.max(1)
        }

        fn pad(&mut self, col: usize) {
            self.out.extend(std::iter::repeat_n(' ', col));
        }

        fn end_line(&mut self, col: usize) {
            if self.choose(6) == 0 {
                self.out.push_str(" # note");
            }
            self.out.push_str(self.newline);
            match self.choose(10) {
                0 => self.out.push_str(self.newline),
                1 => {
                    let at = usize::from(self.choose(4)) + col.saturating_sub(2);
                    self.pad(at);
                    self.out.push_str("# a comment line");
                    self.out.push_str(self.newline);
                }
                2 => {
                    self.pad(col + 3);
                    self.out.push_str(self.newline);
                }
                _ => {}
            }
        }

        fn step(&mut self) -> usize {
            1 + usize::from(self.choose(4))
        }

        fn spaces(&mut self) -> usize {
            let n = 1 + usize::from(self.choose(3) / 2);
            self.pad(n);
            n
        }

        /// `t` at column `col`; `inline` when the line is already written up to `col`.
        fn node(&mut self, t: &Tree, col: usize, inline: bool) {
            match t {
                Tree::Scalar(s) => {
                    if !inline {
                        self.pad(col);
                    }
                    self.out.push_str(s);
                    self.end_line(col);
                }
                Tree::Map(entries) => {
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if !(inline && i == 0) {
                            self.pad(col);
                        }
                        self.out.push_str(k);
                        self.out.push(':');
                        self.value(v, col);
                    }
                }
                Tree::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !(inline && i == 0) {
                            self.pad(col);
                        }
                        self.out.push('-');
                        self.item(item, col);
                    }
                }
            }
        }

        /// The value after `key:` at column `col`.
        fn value(&mut self, v: &Tree, col: usize) {
            match v {
                Tree::Scalar("") => self.end_line(col),
                Tree::Scalar(s) => {
                    self.spaces();
                    self.out.push_str(s);
                    self.end_line(col);
                }
                Tree::Seq(_) if self.choose(2) == 0 => {
                    self.end_line(col);
                    self.node(v, col, false);
                }
                _ => {
                    self.end_line(col);
                    let step = self.step();
                    self.node(v, col + step, false);
                }
            }
        }

        /// The item after `-` at column `col`.
        fn item(&mut self, v: &Tree, col: usize) {
            match v {
                Tree::Scalar(s) if s.is_empty() && self.in_subset => {
                    self.out.push_str(" ~");
                    self.end_line(col);
                }
                Tree::Scalar(_) if self.in_subset || self.choose(4) != 0 => {
                    let n = self.spaces();
                    self.node(v, col + 1 + n, true);
                }
                _ if self.choose(2) == 0 && !matches!(v, Tree::Scalar(_)) => {
                    let n = self.spaces();
                    self.node(v, col + 1 + n, true);
                }
                _ => {
                    self.end_line(col);
                    let step = self.step();
                    self.node(v, col + step, false);
                }
            }
        }
    }

    /// Documents: trees separated by `---`, perhaps with a leading one, LF or CRLF line breaks.
    fn render(docs: &[Tree], choices: &[u8], in_subset: bool) -> String {
        let mut w = Writer {
            out: String::new(),
            choices,
            next: 0,
            newline: "\n",
            in_subset,
        };
        if w.choose(4) == 0 {
            w.newline = "\r\n";
        }
        for (i, t) in docs.iter().enumerate() {
            if i > 0 || w.choose(3) == 0 {
                w.out.push_str("---");
                w.out.push_str(w.newline);
            }
            let col = usize::from(w.choose(5) / 4);
            w.node(t, col, false);
        }
        if w.choose(5) == 0 {
            // No line break at the end.
            let trimmed = w.out.trim_end_matches(['\r', '\n']).len();
            w.out.truncate(trimmed);
        }
        w.out
    }

    fn documents(odds: u32) -> impl Strategy<Value = Vec<Tree>> {
        proptest::collection::vec(tree(odds), 1..3)
    }

    /// An edit of a text: at a fraction of its length, insert or delete.
    fn edits() -> impl Strategy<Value = Vec<(f64, Option<char>)>> {
        proptest::collection::vec(
            (
                0.0..1.0f64,
                proptest::option::of(select(vec![
                    ' ', ' ', ':', '-', '#', '\'', '"', '\n', '\t', '\r', '\\', '&', '[', '{', '|',
                    'x', '\u{feff}', '\u{85}',
                ])),
            ),
            1..4,
        )
    }

    fn edit(text: &str, edits: &[(f64, Option<char>)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(at, c) in edits {
            let i = ((chars.len() as f64) * at) as usize;
            match c {
                Some(c) => chars.insert(i.min(chars.len()), c),
                None if i < chars.len() => {
                    chars.remove(i);
                }
                None => {}
            }
        }
        chars.into_iter().collect()
    }

    fn mixed(good: &'static [&'static str], odd: &'static [&'static str]) -> Vec<&'static str> {
        good.iter().chain(odd).copied().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Block YAML in the fast reader's part is read by it, as yaml-rust2 reads it.
        #[test]
        fn block_yaml_is_read_fast_and_alike(
            docs in documents(0),
            choices in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            accepted(&render(&docs, &choices, true))?;
        }

        /// Around that part (odd scalars and keys, layouts it gives up on), whatever the fast
        /// reader accepts, it reads as yaml-rust2 does.
        #[test]
        fn yaml_around_the_subset_is_read_alike_or_left_to_yaml_rust2(
            docs in documents(40),
            choices in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            agrees(&render(&docs, &choices, false))?;
        }

        /// The same after random edits: stray spaces, colons, quotes, tabs, line breaks.
        #[test]
        fn edited_yaml_is_read_alike_or_left_to_yaml_rust2(
            docs in documents(0),
            choices in proptest::collection::vec(any::<u8>(), 1..64),
            edits in edits(),
        ) {
            agrees(&edit(&render(&docs, &choices, true), &edits))?;
        }

        #[test]
        fn yaml_symbol_soup_is_read_alike_or_left_to_yaml_rust2(
            text in "[-:{}\\[\\],&*!|>'\"#%@` \t\r\na-c1.~?/\\\\]{0,80}",
        ) {
            agrees(&text)?;
        }

        #[test]
        fn lines_of_keys_and_values_are_read_alike_or_left_to_yaml_rust2(
            lines in proptest::collection::vec(
                (
                    0usize..5,
                    any::<bool>(),
                    select(mixed(KEYS, ODD_KEYS)),
                    select(mixed(SCALARS, ODD_SCALARS)),
                ),
                0..12,
            ),
        ) {
            let text: String = lines
                .iter()
                .map(|(indent, dash, k, v)| {
                    format!("{}{}{k}: {v}\n", " ".repeat(*indent), if *dash { "- " } else { "" })
                })
                .collect();
            agrees(&text)?;
        }
    }
}
