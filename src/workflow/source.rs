//! The files a run has read, and the mapping from YAML markers and expression
//! offsets to byte spans that diagnostics point at.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Index of a file in a [`Sources`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub(crate) usize);

/// A byte range in one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub range: Range<usize>,
}

/// One source file, with its line starts precomputed so that markers
/// (line, column) and byte offsets convert both ways in O(log n).
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Byte offset of a 1-based line and 1-based column counted in characters,
    /// as marked-yaml reports them. Out-of-range positions clamp to the text.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let index = line.saturating_sub(1);
        let Some(&start) = self.line_starts.get(index) else {
            return self.text.len();
        };
        // The line ends before the next one's start, at its `\n`.
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |next| next - 1);
        let line_text = &self.text[start..end];
        // Before a column of plain ASCII, characters are bytes.
        let chars = column.saturating_sub(1);
        if line_text
            .as_bytes()
            .get(..chars)
            .is_some_and(<[u8]>::is_ascii)
        {
            return start + chars;
        }
        let in_line = line_text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_text.len(), |(i, _)| i);
        start + in_line
    }

    /// The nearest char boundary at or before `offset`, so that spans from any
    /// source (a lossy decode, an expression offset) can never split a char.
    pub fn floor(&self, offset: usize) -> usize {
        self.text.floor_char_boundary(offset)
    }

    /// 1-based (line, column) of a byte offset, column counted in characters.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor(offset);
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    /// Length in bytes of the scalar token written at `offset`: a quoted string
    /// with its quotes, or a plain scalar up to a comment, a flow indicator or the
    /// end of the line. Diagnostics underline exactly this.
    pub fn token_len(&self, offset: usize) -> usize {
        let rest = &self.text[self.floor(offset)..];
        let line = &rest[..memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len())];
        // Every character that ends a token is ASCII, and no byte of a
        // longer character is: the line is read byte by byte.
        let bytes = line.as_bytes();
        match bytes.first() {
            None => 0,
            Some(&q @ (b'"' | b'\'')) => {
                let mut escaped = false;
                for (i, &c) in bytes.iter().enumerate().skip(1) {
                    if q == b'"' && c == b'\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    if c == q && !escaped {
                        return i + 1;
                    }
                    escaped = false;
                }
                line.len()
            }
            Some(_) => {
                // Most bytes of a line end nothing: one look-up each skips
                // them (an expression's line is long).
                const MAY_END: [bool; 256] = {
                    let mut t = [false; 256];
                    let mut i = 0;
                    while i < 5 {
                        t[b"#,]}:"[i] as usize] = true;
                        i += 1;
                    }
                    t
                };
                let ends = |i: usize, c: u8| match c {
                    b'#' => i > 0 && bytes[i - 1] == b' ',
                    b':' => bytes.get(i + 1).is_none_or(|b| *b == b' '),
                    _ => true,
                };
                let end = bytes
                    .iter()
                    .enumerate()
                    .position(|(i, &c)| MAY_END[c as usize] && ends(i, c))
                    .unwrap_or(line.len());
                line[..end].trim_end().len().max(1.min(line.len()))
            }
        }
    }
}

/// Where `needle` (not empty) occurs in `hay`, leftmost first and not
/// overlapping, as `str::match_indices` finds them: without its searcher's
/// set-up, which costs more than the short searches of a span.
pub(crate) fn occurrences<'h>(hay: &'h str, needle: &'h str) -> impl Iterator<Item = usize> + 'h {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let mut at = 0;
    std::iter::from_fn(move || {
        let (&first, _) = needle.split_first()?;
        while at + needle.len() <= hay.len() {
            let i = at
                + hay[at..=hay.len() - needle.len()]
                    .iter()
                    .position(|b| *b == first)?;
            if hay[i..].starts_with(needle) {
                at = i + needle.len();
                return Some(i);
            }
            at = i + 1;
        }
        None
    })
}

/// Texts that stand in for files: a buffer an editor has not saved, or a
/// file read from stdin. The rest of its folder is still read from disk, so
/// a workflow is checked against the platform it belongs to.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    files: std::collections::HashMap<PathBuf, Vec<u8>>,
}

impl Overlay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `bytes` in place of the file at `path`, which need not exist.
    pub fn insert(&mut self, path: &Path, bytes: impl Into<Vec<u8>>) {
        self.files.insert(overlay_key(path), bytes.into());
    }

    pub fn remove(&mut self, path: &Path) {
        self.files.remove(&overlay_key(path));
    }

    pub fn get(&self, path: &Path) -> Option<&[u8]> {
        if self.files.is_empty() {
            return None;
        }
        self.files.get(&overlay_key(path)).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether `path` is a file: overlaid, or a regular file on disk. What
    /// an unsaved manifest or a file given on stdin needs to count.
    pub fn is_file(&self, path: &Path) -> bool {
        self.get(path).is_some() || path.is_file()
    }

    /// The overlaid files directly in `dir` that are not on disk: a new
    /// file an editor has not saved yet still belongs to its folder.
    pub fn new_files_in(&self, dir: &Path) -> Vec<PathBuf> {
        if self.files.is_empty() {
            return Vec::new();
        }
        let key = overlay_key(&dir.join("_"));
        let resolved = key.parent().unwrap_or(&key);
        // Named as the folder is spelt, like the files read from it.
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| p.parent() == Some(resolved) && !p.exists())
            .filter_map(|p| p.file_name().map(|n| dir.join(n)))
            .collect();
        out.sort();
        out
    }
}

/// One key for every spelling of a path (`./a/w.yaml`, `a/../a/w.yaml`,
/// absolute): the folder resolved, the file name as written, since the
/// file itself may not exist.
pub(crate) fn overlay_key(path: &Path) -> PathBuf {
    let name = path.file_name();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = parent
        .canonicalize()
        .or_else(|_| std::path::absolute(parent))
        .unwrap_or_else(|_| parent.to_path_buf());
    match name {
        Some(n) => parent.join(n),
        None => parent,
    }
}

/// Every file read in one run. Diagnostics refer to files by [`FileId`].
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
    overlay: Overlay,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sources that read `overlay`'s texts in place of their files.
    pub fn with_overlay(overlay: Overlay) -> Self {
        Self {
            files: Vec::new(),
            overlay,
        }
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile::new(path, text));
        FileId(self.files.len() - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path).map(FileId)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new(PathBuf::from("t.yaml"), text.to_string())
    }

    #[test]
    fn an_overlay_finds_a_file_by_any_spelling_of_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        let mut o = Overlay::new();
        o.insert(&dir.path().join("p/../p/new.yaml"), "x: 1");
        assert_eq!(o.get(&dir.path().join("p/./new.yaml")), Some(&b"x: 1"[..]));
        assert_eq!(o.get(&dir.path().join("p/other.yaml")), None);
        assert_eq!(
            o.new_files_in(&dir.path().join("p")),
            vec![dir.path().join("p/new.yaml")]
        );
    }

    #[test]
    fn offsets_round_trip_through_line_and_column() {
        let f = file("a: 1\nbé: xyz\n");
        let off = f.offset_of(2, 5);
        assert_eq!(&f.text()[off..off + 3], "xyz");
        assert_eq!(f.line_col(off), (2, 5));
    }

    #[test]
    fn offsets_inside_a_char_are_floored() {
        let f = file("é: x\n");
        assert_eq!(f.line_col(1), (1, 1));
        assert_eq!(f.token_len(1), 2);
    }

    #[test]
    fn token_len_stops_at_comments_and_flow_indicators() {
        let f = file("next: foo  # why\nx: {next: bar, y: 1}\nq: \"a\\\"b\" rest\n");
        assert_eq!(f.token_len(6), 3);
        let bar = f.text().find("bar").unwrap();
        assert_eq!(f.token_len(bar), 3);
        let q = f.text().find('"').unwrap();
        assert_eq!(f.token_len(q), 6);
    }

    #[test]
    fn occurrences_are_what_match_indices_finds() {
        for (hay, needle) in [
            ("aaaa", "aa"),
            ("a.b.a.b", "a.b"),
            ("xyz", "q"),
            ("", "a"),
            ("éaé", "é"),
        ] {
            let std: Vec<usize> = hay.match_indices(needle).map(|(i, _)| i).collect();
            assert_eq!(
                super::occurrences(hay, needle).collect::<Vec<_>>(),
                std,
                "{hay} {needle}"
            );
        }
    }

    #[test]
    fn token_len_ends_with_its_line() {
        let f = file("a: \"open\nb: plain  \r\nc: key:\nd: end");
        assert_eq!(
            f.token_len(3),
            5,
            "an unclosed quote ends at its line's end"
        );
        let plain = f.text().find("plain").unwrap();
        assert_eq!(f.token_len(plain), 5, "trailing blanks are not the token's");
        let key = f.text().find("key").unwrap();
        assert_eq!(f.token_len(key), 3, "a colon at the line's end ends it");
        let end = f.text().find("end").unwrap();
        assert_eq!(f.token_len(end), 3, "the file's end ends it");
        assert_eq!(f.token_len(f.text().len()), 0);
    }
}
