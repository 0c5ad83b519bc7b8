//! The block structure of a YAML file, line by line: which key each line
//! holds and which key it sits under. An editor's buffer is broken YAML half
//! the time (a key half typed, a value not yet written), and a parser gives
//! up on it; the outline still answers "where is the cursor" from the
//! indentation, which is what the language's files are written in.

/// A piece of one line: its text without quotes, and its byte columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

impl Token {
    fn new(line: usize, raw: &str, start: usize) -> Token {
        let end = start + raw.len();
        let unquoted = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')));
        match unquoted {
            Some(inner) => Token {
                text: inner.to_string(),
                line,
                start: start + 1,
                end: end - 1,
            },
            None => Token {
                text: raw.to_string(),
                line,
                start,
                end,
            },
        }
    }

    pub fn contains(&self, col: usize) -> bool {
        self.start <= col && col <= self.end
    }
}

/// One line that holds a key, or a list item.
#[derive(Debug, Clone)]
pub struct Entry {
    pub line: usize,
    /// Columns of leading spaces.
    pub indent: usize,
    /// `- ` starts the line.
    pub dash: bool,
    pub key: Option<Token>,
    /// What follows the key (or the dash), without a trailing comment;
    /// `None` when nothing does.
    pub value: Option<Token>,
    pub parent: Option<usize>,
    /// The column the entry's content starts at, past a dash: where the
    /// keys of its mapping are.
    pub content: usize,
}

impl Entry {
    /// The value opens a block scalar (`|`, `>-`): the lines under it are
    /// text.
    fn opens_block(&self) -> bool {
        self.value
            .as_ref()
            .is_some_and(|v| v.text.starts_with('|') || v.text.starts_with('>'))
    }
}

#[derive(Debug, Default)]
pub struct Outline {
    pub entries: Vec<Entry>,
    /// The entry on each line, if any.
    by_line: Vec<Option<usize>>,
    /// The entries under each entry, and at the top: every look-up walks
    /// these, so a request stays linear in the file's size.
    kids: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

impl Outline {
    pub fn parse(text: &str) -> Outline {
        let mut out = Outline::default();
        let mut stack: Vec<usize> = Vec::new();
        let mut block: Option<usize> = None;
        for (no, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            out.by_line.push(None);
            let indent = line.len() - line.trim_start_matches(' ').len();
            let rest = &line[indent..];
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            if let Some(b) = block {
                if indent > b {
                    continue;
                }
                block = None;
            }
            if rest.starts_with("---") || rest.starts_with("...") {
                continue;
            }
            let Some(mut entry) = entry(no, line, indent) else {
                continue;
            };
            while let Some(&top) = stack.last() {
                let p = &out.entries[top];
                if p.content < entry.indent
                    || (entry.dash && !p.dash && p.indent == entry.indent && p.value.is_none())
                {
                    break;
                }
                stack.pop();
            }
            entry.parent = stack.last().copied();
            let index = out.entries.len();
            match entry.parent {
                Some(p) => out.kids[p].push(index),
                None => out.roots.push(index),
            }
            out.kids.push(Vec::new());
            if entry.opens_block() {
                block = Some(entry.content);
            }
            out.by_line[no] = Some(out.entries.len());
            stack.push(out.entries.len());
            out.entries.push(entry);
        }
        out
    }

    pub fn at_line(&self, line: usize) -> Option<usize> {
        self.by_line.get(line).copied().flatten()
    }

    /// The keys from the top of the file down to `entry`'s own.
    pub fn path(&self, entry: usize) -> Vec<&str> {
        let mut keys = Vec::new();
        let mut at = Some(entry);
        while let Some(i) = at {
            if let Some(k) = &self.entries[i].key {
                keys.push(k.text.as_str());
            }
            at = self.entries[i].parent;
        }
        keys.reverse();
        keys
    }

    pub fn children(&self, entry: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        match entry {
            Some(e) => self.kids[e].iter().copied(),
            None => self.roots.iter().copied(),
        }
    }

    /// The entry at `path` (keys from the top).
    pub fn find(&self, path: &[&str]) -> Option<usize> {
        let mut at = None;
        for key in path {
            at = Some(
                self.children(at)
                    .find(|&i| self.entries[i].key.as_ref().is_some_and(|k| k.text == *key))?,
            );
        }
        at
    }

    /// The keys of the mapping under `path`, with their entries.
    pub fn keys_under(&self, path: &[&str]) -> Vec<(usize, &Token)> {
        let Some(parent) = self.find(path) else {
            return Vec::new();
        };
        self.children(Some(parent))
            .filter_map(|i| self.entries[i].key.as_ref().map(|k| (i, k)))
            .collect()
    }

    /// The scalar value of the top-level `key`.
    pub fn top(&self, key: &str) -> Option<&str> {
        let i = self.find(&[key])?;
        self.entries[i].value.as_ref().map(|v| v.text.as_str())
    }

    /// The entry a new line at `indent` would belong to: the key being
    /// typed on a line that is not an entry yet.
    pub fn parent_for(&self, line: usize, indent: usize) -> Option<usize> {
        let mut at = (0..self.entries.len())
            .rev()
            .find(|&i| self.entries[i].line < line)?;
        loop {
            let e = &self.entries[at];
            if e.content < indent {
                return Some(at);
            }
            at = e.parent?;
        }
    }
}

/// Reads one line as `[- ][key:][ value][ # comment]`.
fn entry(no: usize, line: &str, indent: usize) -> Option<Entry> {
    let mut col = indent;
    let mut dash = false;
    if line[col..].starts_with("- ") || &line[col..] == "-" {
        dash = true;
        col += 1;
        col += line[col..].len() - line[col..].trim_start_matches(' ').len();
    }
    let rest = &line[col..];
    let (key, after) = match key_of(rest) {
        Some(len) => {
            let raw = rest[..len].trim_end();
            (
                Some(Token::new(no, raw, col)),
                col + len + 1, // past the colon
            )
        }
        None if dash => (None, col),
        None => return None,
    };
    let tail = &line[after.min(line.len())..];
    let lead = tail.len() - tail.trim_start().len();
    let body = strip_comment(tail.trim_start());
    let value = (!body.is_empty()).then(|| Token::new(no, body, after + lead));
    Some(Entry {
        line: no,
        indent,
        dash,
        key,
        value,
        parent: None,
        content: col,
    })
}

/// The length of a key at the start of `s` (up to its colon), if `s` is
/// `key:` followed by a space or the end. Keys of the language are plain
/// words, dotted names (`agent.login`) or quoted.
fn key_of(s: &str) -> Option<usize> {
    let len = if let Some(q @ ('"' | '\'')) = s.chars().next() {
        s[1..].find(q)? + 2
    } else {
        s.find(|c: char| !(c.is_alphanumeric() || "_-./$".contains(c)))
            .unwrap_or(s.len())
    };
    if len == 0 {
        return None;
    }
    let after = &s[len..];
    (after.starts_with(':') && (after.len() == 1 || after[1..].starts_with([' ', '\t'])))
        .then_some(len)
}

/// A value without its trailing comment (`#` after a space, outside quotes).
fn strip_comment(s: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev == ' ' || prev == '\t' => return s[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    s.trim_end()
}

/// The `key: value` pairs of a flow mapping (`{ ok: done, error: failed }`)
/// written as `token`, each with its columns; nested brackets are skipped.
pub fn flow_pairs(token: &Token) -> Vec<(Token, Token)> {
    let Some(inner) = inside(&token.text, '{', '}') else {
        return Vec::new();
    };
    split_top(inner, token.start + 1)
        .into_iter()
        .filter_map(|(part, at)| {
            let len = key_of(part)?;
            let key = Token::new(token.line, part[..len].trim_end(), at);
            let rest = &part[len + 1..];
            let lead = rest.len() - rest.trim_start().len();
            let value = Token::new(token.line, rest.trim(), at + len + 1 + lead);
            Some((key, value))
        })
        .collect()
}

/// The items of a flow sequence (`[a, b]`) written as `token`.
pub fn flow_items(token: &Token) -> Vec<Token> {
    let Some(inner) = inside(&token.text, '[', ']') else {
        return Vec::new();
    };
    split_top(inner, token.start + 1)
        .into_iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, at)| Token::new(token.line, p, at))
        .collect()
}

/// Whether a flow collection written as `text` closes on its line and holds
/// no other inside it: the ones the outline reads whole.
pub fn flat_flow(text: &str) -> bool {
    let (mut depth, mut deepest, mut quote) = (0i32, 0i32, None);
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '{' | '[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, '}' | ']') => depth -= 1,
            _ => {}
        }
    }
    depth == 0 && deepest == 1
}

/// The text between a collection's brackets, if `text` is one.
fn inside(text: &str, open: char, close: char) -> Option<&str> {
    text.strip_prefix(open)?.strip_suffix(close)
}

/// Splits at commas outside brackets and quotes; each part trimmed, with
/// the column it starts at.
fn split_top(s: &str, base: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '{' | '[' | '(') => depth += 1,
            (None, '}' | ']' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(trimmed(s, start, i, base));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(trimmed(s, start, s.len(), base));
    out
}

fn trimmed(s: &str, from: usize, to: usize, base: usize) -> (&str, usize) {
    let part = &s[from..to];
    let lead = part.len() - part.trim_start().len();
    (part.trim(), base + from + lead)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &str = "\
workflow: w
states:
  a:
    op: agent.logout   # why
    on: { ok: b, error: c }
    description: >-
      text: that looks
      like: keys
  b:
    choice:
      - when: >-
          x
        next: c
    otherwise: a
  c:
    respond: ok
";

    #[test]
    fn keys_know_where_they_sit() {
        let o = Outline::parse(W);
        let op = o.at_line(3).unwrap();
        assert_eq!(o.path(op), ["states", "a", "op"]);
        assert_eq!(o.entries[op].value.as_ref().unwrap().text, "agent.logout");
        // The key after a list item's folded value is the item's.
        let next = o.at_line(12).unwrap();
        assert_eq!(o.path(next), ["states", "b", "choice", "next"]);
        let other = o.at_line(13).unwrap();
        assert_eq!(o.path(other), ["states", "b", "otherwise"]);
        // A folded scalar's lines are text, not keys.
        assert_eq!(o.at_line(6), None);
        assert_eq!(
            o.keys_under(&["states"])
                .iter()
                .map(|(_, k)| k.text.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(o.top("workflow"), Some("w"));
    }

    #[test]
    fn flow_mappings_and_sequences_split_with_columns() {
        let o = Outline::parse(W);
        let on = &o.entries[o.at_line(4).unwrap()];
        let pairs = flow_pairs(on.value.as_ref().unwrap());
        let line = W.lines().nth(4).unwrap();
        let (k, v) = &pairs[1];
        assert_eq!((k.text.as_str(), v.text.as_str()), ("error", "c"));
        assert_eq!(&line[v.start..v.end], "c");
        let items = flow_items(&Token::new(0, "[x, \"y z\"]", 8));
        assert_eq!(items[1].text, "y z");
        assert_eq!((items[1].start, items[1].end), (13, 16));
    }

    #[test]
    fn a_key_being_typed_finds_its_parent() {
        let text = "states:\n  a:\n    args:\n      cha\n";
        let o = Outline::parse(text);
        let p = o.parent_for(3, 6).unwrap();
        assert_eq!(o.path(p), ["states", "a", "args"]);
    }
}
