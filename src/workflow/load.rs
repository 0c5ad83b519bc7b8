//! Text → YAML nodes → raw serde types, turning every problem on the way into
//! a diagnostic at its token. Hostile input (binary, huge, deeply nested,
//! anchors) is refused here with a diagnostic, before it can cost anything.

use std::path::Path;
use std::rc::Rc;

use crate::workflow::IndexMap;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Marker, Node};
use serde::de::DeserializeOwned;

use super::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use super::expr::Programs;
use super::raw::{
    OVERRIDES_KEYS, PLATFORM_KEYS, RawOverridesHeader, RawPlatformHeader, RawState,
    RawWorkflowHeader, STATE_KEYS, Sp, WORKFLOW_KEYS,
};
use super::source::{FileId, Sources, Span};
use crate::Error;

mod convert;
mod machine;

use convert::Convert;
pub use machine::RawMachine;

/// Workflow files are small; anything larger is a mistake or an attack.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Block nesting (columns of indentation and `- ` prefixes) the loader accepts.
/// The YAML parser recurses per level; this keeps it far from the stack's end.
pub const MAX_BLOCK_COLUMNS: usize = 120;

/// Flow nesting (`[`, `{`) the loader accepts.
pub const MAX_FLOW_DEPTH: usize = 32;

/// Everything the loader needs to say where something is.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub sources: &'a Sources,
    pub file: FileId,
    /// Expressions parsed so far in this run.
    pub programs: &'a Programs,
}

impl Ctx<'_> {
    /// The span of the token starting at `marker`, in the file the marker
    /// was read from: a workflow a profile overrides mixes the states of
    /// several files.
    pub fn span(&self, marker: Option<Marker>) -> Span {
        let file = marker
            .map(|m| FileId(m.source()))
            .filter(|f| f.0 < self.sources.len())
            .unwrap_or(self.file);
        let f = self.sources.get(file);
        let start = marker.map_or(0, |m| f.offset_of(m.line(), m.column()));
        Span {
            file,
            range: start..start + f.token_len(start),
        }
    }

    /// The same context, for the file `span` is in.
    pub fn at(self, span: &Span) -> Self {
        Self {
            file: span.file,
            ..self
        }
    }

    pub fn span_of<T>(&self, sp: &Sp<T>) -> Span {
        self.span(sp.marker())
    }

    /// A span of `len` bytes at a byte offset of the file.
    pub fn span_bytes(&self, start: usize, len: usize) -> Span {
        let f = self.sources.get(self.file);
        let start = f.floor(start);
        Span {
            file: self.file,
            range: start..f.floor(start + len).max(start),
        }
    }

    pub fn text(&self) -> &str {
        self.sources.get(self.file).text()
    }
}

/// A scalar node as text with its place; `None` for a mapping or a list.
pub fn scalar(node: &Node) -> Option<Sp<String>> {
    node.as_scalar()
        .map(|s| Sp::new(s.span().start().copied(), s.as_str().to_string()))
}

/// Reads a file into `sources`. I/O failures are errors (the path is wrong);
/// content problems are diagnostics, and the file is still registered so they
/// can point into it.
pub fn read(
    sources: &mut Sources,
    path: &Path,
    diags: &mut Diagnostics,
) -> Result<Option<FileId>, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let overlaid = sources.overlay().get(path).is_some();
    let (bytes, size) = if let Some(bytes) = sources.overlay().get(path) {
        (bytes.to_vec(), bytes.len() as u64)
    } else {
        // Size and kind first: a FIFO or /dev/zero is never read.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        // Sized from the metadata: an empty buffer is read into 32 bytes,
        // then 64, 128…, a system call and a copy each.
        let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES as u64) as usize + 1);
        use std::io::Read;
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        (bytes, meta.len())
    };
    if bytes.len() > MAX_FILE_BYTES {
        let file = sources.add(path.to_path_buf(), String::new());
        diags.push(
            Diagnostic::new(
                Rule::FileTooLarge,
                Span { file, range: 0..0 },
                format!(
                    "file is {} bytes; workflow files may have at most {MAX_FILE_BYTES}",
                    // Text given in place of a file (stdin) is read only one
                    // byte past the limit: its true size is not known.
                    if overlaid {
                        format!("more than {MAX_FILE_BYTES}")
                    } else {
                        size.max(bytes.len() as u64).to_string()
                    }
                ),
            )
            .help("split the workflow into smaller ones and `call` them"),
        );
        return Ok(None);
    }
    match String::from_utf8(bytes) {
        // A byte-order mark (editors on Windows write one) is not content.
        Ok(text) => Ok(Some(sources.add(
            path.to_path_buf(),
            match text.strip_prefix('\u{feff}') {
                Some(rest) => rest.to_string(),
                None => text,
            },
        ))),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = sources.add(path.to_path_buf(), text);
            diags.push(
                // The lossy text has U+FFFD (3 bytes) where the bad byte was.
                Diagnostic::new(
                    Rule::NotUtf8,
                    Span {
                        file,
                        range: at..at + '\u{FFFD}'.len_utf8(),
                    },
                    "file is not valid UTF-8",
                )
                .label("invalid byte here")
                .help("save the file as UTF-8 text"),
            );
            Ok(None)
        }
    }
}

/// How every file is parsed: a duplicate key is an error (by default the last
/// silently wins), and quoting is kept (`"0"` stays text, `0` is a number).
fn loader_options() -> LoaderOptions {
    LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true)
        .toplevel_mapping()
}

/// A YAML document as JSON, read the way the loader reads it; for checking
/// files against the JSON Schemas.
pub fn yaml_to_json(text: &str) -> Option<serde_json::Value> {
    marked_yaml::parse_yaml_with_options(0, text, loader_options())
        .ok()
        .map(|n| to_json(&n))
}

/// Parses a registered file's text into YAML nodes. Returns the top-level
/// mapping, or `None` with diagnostics.
pub fn parse(cx: Ctx<'_>, diags: &mut Diagnostics) -> Option<MarkedMappingNode> {
    let blank = cx
        .text()
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        diags.push(
            Diagnostic::new(Rule::InvalidValue, cx.span_bytes(0, 0), "the file is empty")
                .label("nothing here")
                .help("a workflow file starts with `workflow: <name>`; a platform manifest with `platform: <name>`"),
        );
        return None;
    }
    if let Some(d) = nesting_guard(cx) {
        diags.push(d);
        return None;
    }
    if let Some(d) = second_document(cx) {
        diags.push(d);
        return None;
    }
    let options = loader_options();
    match marked_yaml::parse_yaml_with_options(cx.file.0, cx.text(), options) {
        Ok(Node::Mapping(m)) => Some(m),
        Ok(_) => not_a_mapping(cx, diags),
        Err(e) => {
            diags.push(load_error(cx, e));
            None
        }
    }
}

fn not_a_mapping(cx: Ctx<'_>, diags: &mut Diagnostics) -> Option<MarkedMappingNode> {
    diags.push(Diagnostic::new(
        Rule::InvalidValue,
        cx.span_bytes(0, 0),
        "the file must be a YAML mapping",
    ));
    None
}

fn load_error(cx: Ctx<'_>, e: LoadError) -> Diagnostic {
    match e {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => {
            let what = if cx.text().trim().is_empty() {
                "the file is empty"
            } else {
                "the file must be a YAML mapping"
            };
            Diagnostic::new(Rule::InvalidValue, cx.span(Some(m)), what)
                .label("expected `key: value` lines here")
                .help("a workflow file starts with `workflow: <name>`; a platform manifest with `platform: <name>`")
        }
        LoadError::UnexpectedAnchor(m) => Diagnostic::new(
            Rule::YamlAnchor,
            cx.span(Some(m)),
            "YAML anchors and aliases are not allowed",
        )
        .label("anchor")
        .help("write the value out, or move shared steps into a workflow and `call` it"),
        LoadError::UnexpectedTag(m) => Diagnostic::new(
            Rule::YamlAnchor,
            cx.span(Some(m)),
            "YAML tags are not allowed",
        )
        .label("tag")
        .help("remove the `!tag`; values are plain scalars, lists and mappings"),
        LoadError::MappingKeyMustBeScalar(m) => Diagnostic::new(
            Rule::YamlSyntax,
            cx.span(Some(m)),
            "mapping keys must be plain names",
        )
        .label("complex key"),
        LoadError::DuplicateKey(inner) => {
            let key = &inner.key;
            let prev = &inner.prev_key;
            Diagnostic::new(
                Rule::DuplicateKey,
                cx.span(key.span().start().copied()),
                format!("key `{}` appears twice in one mapping", key.as_str()),
            )
            .label("second definition")
            .related(cx.span(prev.span().start().copied()), "first defined here")
            .help("YAML keeps only one of them; rename or merge the two")
        }
        LoadError::ScanError(m, e) => {
            let f = cx.sources.get(cx.file);
            let text = f.text();
            let msg = e.to_string();
            let info = msg
                .split(" at byte")
                .next()
                .and_then(|m| m.split(" at line").next())
                .unwrap_or(&msg)
                .to_string();
            let at = f.offset_of(m.line(), m.column());
            // An error at the end of the file is about what is left open:
            // point at the last thing written rather than past it.
            let end = text.trim_end().len();
            let (at, label) = if at >= end && end > 0 {
                (
                    f.floor(end - 1),
                    "the file ends here with something still open",
                )
            } else {
                (at, "here")
            };
            let len = text[at..].chars().next().map_or(0, char::len_utf8);
            Diagnostic::new(
                Rule::YamlSyntax,
                cx.span_bytes(at, len),
                format!("malformed YAML: {info}"),
            )
            .label(label)
            .help("check indentation and that every `[`, `{` and quote is closed")
        }
    }
}

/// A file is one YAML document: a `---` (or `...`) after content starts
/// another, which the parser would silently drop.
fn second_document(cx: Ctx<'_>) -> Option<Diagnostic> {
    // Most files have no marker at all: found without reading line by line.
    let text = cx.text();
    let marker_at = |i: usize| text[i..].starts_with("---") || text[i..].starts_with("...");
    if !marker_at(0) && !text.contains("\n---") && !text.contains("\n...") {
        return None;
    }
    let mut offset = 0;
    let mut content = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        let marker = ["---", "..."].iter().any(|m| {
            bare.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        });
        if marker && content {
            return Some(
                Diagnostic::new(
                    Rule::YamlSyntax,
                    cx.span_bytes(offset, 3),
                    "a second YAML document in one file",
                )
                .label("a new document starts here")
                .help("a file holds one workflow, machine or manifest: move what follows into a file of its own"),
            );
        }
        let t = bare.trim_start();
        if !marker && !t.is_empty() && !t.starts_with('#') {
            content = true;
        }
        offset += line.len();
    }
    None
}

/// Estimates nesting from the text alone: block depth needs indentation or
/// `- ` prefixes, flow depth needs brackets. Over-estimating only refuses
/// absurd files; under-estimating is impossible for the block case.
fn nesting_guard(cx: Ctx<'_>) -> Option<Diagnostic> {
    let text = cx.text();
    let opens = |bytes: &[u8]| memchr::memchr2(b'[', b'{', bytes).is_some();
    // Flow nested deeper than the limit needs more brackets than it, and
    // block nesting a line longer than it: most lines need no closer look.
    let flow_possible = memchr::memchr2_iter(b'[', b'{', text.as_bytes())
        .nth(MAX_FLOW_DEPTH)
        .is_some();
    let mut offset = 0;
    let mut flow = 0usize;
    for line in lines(text) {
        let bytes = line.as_bytes();
        // Outside a flow collection, a line that opens none leaves none open.
        let scan_flow = flow_possible && (flow > 0 || opens(bytes));
        if bytes.len() <= MAX_BLOCK_COLUMNS && !scan_flow {
            offset += line.len();
            continue;
        }
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b' ' => i += 1,
                b'-' | b'?' | b':' if bytes.get(i + 1).is_some_and(|b| *b == b' ') => i += 2,
                _ => break,
            }
        }
        if i > MAX_BLOCK_COLUMNS {
            return Some(
                Diagnostic::new(
                    Rule::TooDeep,
                    cx.span_bytes(offset, i.min(line.len())),
                    format!("nesting deeper than {MAX_BLOCK_COLUMNS} columns"),
                )
                .label("nested too deep")
                .help("workflow files are shallow; flatten the structure"),
            );
        }
        let (mut quote, mut esc) = (None, false);
        let flow_part = if scan_flow { bytes } else { &[] };
        for (j, b) in flow_part.iter().enumerate().skip(i) {
            match (quote, *b) {
                (Some(b'"'), b'\\') if !esc => {
                    esc = true;
                    continue;
                }
                (Some(q), c) if c == q && !esc => quote = None,
                (None, b'"' | b'\'') => quote = Some(*b),
                (None, b'#') if j == 0 || bytes[j - 1] == b' ' => break,
                (None, b'[' | b'{') => {
                    flow += 1;
                    if flow > MAX_FLOW_DEPTH {
                        return Some(
                            Diagnostic::new(
                                Rule::TooDeep,
                                cx.span_bytes(offset + j, 1),
                                format!("more than {MAX_FLOW_DEPTH} nested `[` or `{{`"),
                            )
                            .label("nested too deep")
                            .help("workflow files are shallow; flatten the structure"),
                        );
                    }
                }
                (None, b']' | b'}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            esc = false;
        }
        offset += line.len();
    }
    None
}

/// The lines of `text`, each with its `\n`, as `split_inclusive('\n')`
/// gives them: without its per-line set-up, which costs more than the
/// short lines of a workflow file.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        rest = after;
        Some(line)
    })
}

/// Reports keys of `map` that are not in `known` (all of them, with a "did you
/// mean"), and returns the mapping without them so deserialization can go on.
pub fn known_keys(
    cx: Ctx<'_>,
    map: MarkedMappingNode,
    known: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) -> MarkedMappingNode {
    known_keys_and_rest(cx, map, known, what, diags).0
}

/// Like [`known_keys`], also returning the values of the unknown keys.
pub fn known_keys_and_rest(
    cx: Ctx<'_>,
    mut map: MarkedMappingNode,
    known: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) -> (MarkedMappingNode, Vec<Node>) {
    let unknown: Vec<MarkedScalarNode> = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut rest = Vec::with_capacity(unknown.len());
    for k in unknown {
        diags.push(unknown_key(cx, &k, known, what));
        rest.extend(map.remove(&k));
    }
    (map, rest)
}

/// Reports the keys of `map` that are not in `known`, as [`known_keys`]
/// does, but leaves the mapping as it is: code that then reads only known
/// keys of it needs no copy of it without the others.
pub fn check_keys(
    cx: Ctx<'_>,
    map: &MarkedMappingNode,
    known: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) {
    for k in map.keys().filter(|k| !known.contains(&k.as_str())) {
        diags.push(unknown_key(cx, k, known, what));
    }
}

fn unknown_key(cx: Ctx<'_>, k: &MarkedScalarNode, known: &[&str], what: &str) -> Diagnostic {
    Diagnostic::new(
        Rule::UnknownKey,
        key_span(cx, k),
        format!("unknown key `{}` in {what}", k.as_str()),
    )
    .label("not a key of the language")
    .help(
        did_you_mean(k.as_str(), known.iter().copied())
            .unwrap_or_else(|| format!("{what} keys are: {}", known.join(", "))),
    )
}

pub fn key_span(cx: Ctx<'_>, k: &MarkedScalarNode) -> Span {
    cx.span(k.span().start().copied())
}

/// Deserializes one node, turning serde's error into a diagnostic at the
/// offending token. `anchor` is where to point when serde has no position
/// (a missing key: at the mapping's own key).
pub fn from_node<T: DeserializeOwned>(
    cx: Ctx<'_>,
    node: &Node,
    anchor: Span,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<T> {
    // Tracking the path to each value, for a diagnostic to name it, costs
    // as much as the rest of deserializing: only a node that fails is read
    // again with it.
    if let Ok(v) = T::deserialize(marked_yaml::spanned_serde::NodeDeserializer::new(node)) {
        return Some(v);
    }
    match marked_yaml::from_node::<T>(node) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(serde_diagnostic(cx, e, anchor, what));
            None
        }
    }
}

fn serde_diagnostic(
    cx: Ctx<'_>,
    e: marked_yaml::FromNodeError,
    anchor: Span,
    what: &str,
) -> Diagnostic {
    let path = e.path().filter(|p| !p.contains('?')).map(str::to_string);
    let at = e.start_mark().map(|m| cx.span(Some(m)));
    let where_ = path
        .as_deref()
        .map(|p| format!(" at `{p}`"))
        .unwrap_or_default();
    match e.into_inner() {
        marked_yaml::Error::UnknownFieldError(field, expected, _) => Diagnostic::new(
            Rule::UnknownKey,
            at.unwrap_or(anchor),
            // The path of an unknown key is the key itself: no need to say it twice.
            format!(
                "unknown key `{field}` in {what}{}",
                if path.as_deref() == Some(field.as_str()) {
                    ""
                } else {
                    &where_
                }
            ),
        )
        .label("not a key here")
        .help(
            did_you_mean(&field, expected.iter().copied())
                .unwrap_or_else(|| format!("expected one of: {}", expected.join(", "))),
        ),
        other => {
            let msg = other.to_string();
            if let Some(field) = msg
                .strip_prefix("missing field `")
                .and_then(|r| r.strip_suffix('`'))
            {
                let at_key = path.is_some() && at.is_some();
                Diagnostic::new(
                    Rule::MissingKey,
                    if at_key {
                        at.unwrap_or(anchor.clone())
                    } else {
                        anchor
                    },
                    format!("{what}{where_} is missing required key `{field}`"),
                )
                .label(format!("`{field}` is required here"))
                .help(format!("add `{field}: …`"))
            } else {
                let (label, help) = value_hint(&msg);
                Diagnostic::new(
                    Rule::InvalidValue,
                    at.unwrap_or(anchor),
                    format!("invalid value in {what}{where_}: {}", tidy(&msg)),
                )
                .label(label)
                .help(help)
            }
        }
    }
}

fn tidy(msg: &str) -> String {
    msg.replace("newtype variant", "mapping")
        .replace("unit variant", "plain word")
}

fn value_hint(msg: &str) -> (&'static str, &'static str) {
    if msg.contains("unknown variant") {
        (
            "not one of the allowed values",
            "use one of the values listed in the message",
        )
    } else if msg.contains("invalid type") {
        (
            "wrong type",
            "see the language reference (docs/workflow-language.md) for this key's form",
        )
    } else {
        (
            "invalid",
            "see the language reference (docs/workflow-language.md) for this key's form",
        )
    }
}

/// A workflow file as loaded: the header and each state on its own. A state
/// that failed to load keeps its name (`None`), so transitions to it are not
/// reported as undefined on top of its own error.
#[derive(Debug)]
pub struct RawWorkflow {
    pub file: FileId,
    pub header: Option<RawWorkflowHeader>,
    /// Shared, so that a profile's overrides reuse the states they keep.
    pub states: IndexMap<Sp<String>, Rc<LoadedState>>,
    /// Where `states:` is written, for "no states" diagnostics.
    pub states_key: Option<Span>,
}

/// One state as loaded.
#[derive(Debug)]
pub struct LoadedState {
    /// `None` when the state could not be deserialized.
    pub raw: Option<RawState>,
    /// The state had keys the language does not know (reported).
    pub unknown_keys: bool,
    /// What the state's transition keys name, read from the YAML directly, so
    /// a state that failed to load still leads somewhere for the graph checks.
    pub written_targets: Vec<Sp<String>>,
    /// Scalars under unknown keys (`otherwize: failed`): likely targets too,
    /// used only when they name a state.
    pub stray: Vec<Sp<String>>,
}

/// Scalars under the transition keys of a state mapping.
fn written_targets(map: &MarkedMappingNode) -> Vec<Sp<String>> {
    let mut out: Vec<Sp<String>> = ["next", "otherwise"]
        .iter()
        .filter_map(|k| map.get_node(k))
        .filter_map(scalar)
        .collect();
    if let Some(on) = map.get_mapping("on") {
        out.extend(on.values().filter_map(scalar));
    }
    if let Some(choice) = map.get_sequence("choice") {
        out.extend(
            choice
                .iter()
                .filter_map(|b| b.as_mapping())
                .filter_map(|b| b.get_node("next"))
                .filter_map(scalar),
        );
    }
    out
}

/// An overrides file as loaded: a profile's changes to an inherited
/// workflow.
#[derive(Debug)]
pub struct RawOverrides {
    pub file: FileId,
    pub header: Option<RawOverridesHeader>,
    /// States replacing the inherited ones of the same name, or added.
    pub states: IndexMap<Sp<String>, Rc<LoadedState>>,
}

/// A file of a platform folder as loaded: a workflow, a machine, or a
/// profile's overrides of a workflow.
#[derive(Debug)]
pub enum RawFile {
    Workflow(RawWorkflow),
    Machine(RawMachine),
    Overrides(RawOverrides),
}

/// Loads a file that `read` registered: a machine when its top has a
/// `machine` key, overrides with an `overrides` key, a workflow otherwise.
pub fn file(cx: Ctx<'_>, diags: &mut Diagnostics) -> Option<RawFile> {
    let top = parse(cx, diags)?;
    if top.contains_key("machine") {
        machine::machine(cx, top, diags).map(RawFile::Machine)
    } else if top.contains_key("overrides") {
        overrides(cx, top, diags).map(RawFile::Overrides)
    } else {
        workflow(cx, top, diags).map(RawFile::Workflow)
    }
}

/// Loads a workflow from its file's top-level mapping.
fn workflow(cx: Ctx<'_>, top: MarkedMappingNode, diags: &mut Diagnostics) -> Option<RawWorkflow> {
    let mut top = known_keys(cx, top, WORKFLOW_KEYS, "a workflow", diags);
    let file_span = top
        .keys()
        .next()
        .map_or_else(|| cx.span_bytes(0, 0), |k| key_span(cx, k));
    let states_entry = top.remove_entry("states");
    let header = from_node::<RawWorkflowHeader>(
        cx,
        &Node::Mapping(top),
        file_span.clone(),
        "the workflow",
        diags,
    );
    if states_entry.is_none() {
        diags.push(
            Diagnostic::new(Rule::MissingKey, file_span, "the workflow has no `states`")
                .label("`states` is required")
                .help("add `states:` with at least one state, keyed by name"),
        );
    }
    let (states, states_key) = states(cx, states_entry, diags);
    Some(RawWorkflow {
        file: cx.file,
        header,
        states,
        states_key,
    })
}

/// Loads an overrides file from its top-level mapping.
fn overrides(cx: Ctx<'_>, top: MarkedMappingNode, diags: &mut Diagnostics) -> Option<RawOverrides> {
    let mut top = known_keys(cx, top, OVERRIDES_KEYS, "an overrides file", diags);
    let file_span = top
        .keys()
        .next()
        .map_or_else(|| cx.span_bytes(0, 0), |k| key_span(cx, k));
    let states_entry = top.remove_entry("states");
    let header = from_node::<RawOverridesHeader>(
        cx,
        &Node::Mapping(top),
        file_span,
        "the overrides file",
        diags,
    );
    let (states, _) = states(cx, states_entry, diags);
    Some(RawOverrides {
        file: cx.file,
        header,
        states,
    })
}

/// The states under a `states:` key, each loaded on its own, and where the
/// key is written.
fn states(
    cx: Ctx<'_>,
    entry: Option<(MarkedScalarNode, Node)>,
    diags: &mut Diagnostics,
) -> (IndexMap<Sp<String>, Rc<LoadedState>>, Option<Span>) {
    let mut states = IndexMap::default();
    let Some((key, node)) = entry else {
        return (states, None);
    };
    let states_key = Some(key_span(cx, &key));
    match node {
        Node::Mapping(mut map) => {
            for (name, node) in std::mem::take(&mut *map) {
                let state = match node {
                    Node::Mapping(m) => {
                        let written_targets = written_targets(&m);
                        // `on:` with nothing under it is a transition lost
                        // (a line deleted), never meant.
                        if let Some((k, v)) = m.iter().find(|(k, _)| k.as_str() == "on")
                            && v.as_scalar().is_some_and(|s| s.as_str().trim().is_empty())
                        {
                            diags.push(
                                Diagnostic::new(
                                    Rule::InvalidValue,
                                    key_span(cx, k),
                                    "`on` lists no outcomes",
                                )
                                .label("nothing under it")
                                .help("map each outcome to a state, e.g. `on: { ok: done }`, or drop `on` and use `next:` or `otherwise:`"),
                            );
                        }
                        let (kept, rest) = known_keys_and_rest(cx, m, STATE_KEYS, "a state", diags);
                        let kept = Node::Mapping(kept);
                        // What serde would need to report an error is
                        // worked out only when it does.
                        let raw = RawState::convert(&kept).or_else(|| {
                            from_node::<RawState>(
                                cx,
                                &kept,
                                key_span(cx, &name),
                                &format!("state `{}`", name.as_str()),
                                diags,
                            )
                        });
                        LoadedState {
                            raw,
                            unknown_keys: !rest.is_empty(),
                            written_targets,
                            stray: rest
                                .iter()
                                .filter_map(|n| n.as_scalar())
                                .map(|s| Sp::new(s.span().start().copied(), s.as_str().to_string()))
                                .collect(),
                        }
                    }
                    _ => {
                        diags.push(
                            Diagnostic::new(Rule::InvalidValue, cx.span(node.span().start().copied()), format!("state `{}` must be a mapping", name.as_str()))
                                .label("expected `op:`, `choice:`, `foreach:`, `call:`, `emit:` or `respond:` here")
                                .help("a state is a mapping such as `{ op: agent.logout, on: { ok: done } }`"),
                        );
                        LoadedState {
                            raw: None,
                            unknown_keys: false,
                            written_targets: Vec::new(),
                            stray: Vec::new(),
                        }
                    }
                };
                states.insert(
                    Sp::new(name.span().start().copied(), name.as_str().to_string()),
                    Rc::new(state),
                );
            }
        }
        other => diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                cx.span(other.span().start().copied()),
                "`states` must be a mapping of state names to states",
            )
            .label("not a mapping")
            .help("write `states:` followed by indented `<name>: { … }` entries"),
        ),
    }
    (states, states_key)
}

/// A platform manifest as loaded. Settings stay YAML nodes: their types come
/// from how they are written (`true`, `3`, `'3'`), which serde would flatten.
#[derive(Debug)]
pub struct RawPlatform {
    pub file: FileId,
    pub header: Option<RawPlatformHeader>,
    pub settings: IndexMap<Sp<String>, Node>,
    /// `declare:` as written: settings' types and error codes.
    pub declare: Option<Node>,
    /// `adapter.switch:` as written: how the simulated switch behaves when
    /// it stands in for this platform's.
    pub switch: Option<Node>,
}

/// Loads a platform manifest that `read` registered.
pub fn platform(cx: Ctx<'_>, diags: &mut Diagnostics) -> Option<RawPlatform> {
    let top = parse(cx, diags)?;
    let mut top = known_keys(cx, top, PLATFORM_KEYS, "a platform manifest", diags);
    let settings_node = top.remove("settings");
    let declare = top.remove("declare");
    // The simulated switch's description stays a node: the adapter checks
    // it, and its values are typed as written.
    let switch = match top.get_mut("adapter") {
        Some(Node::Mapping(a)) => a.remove("switch"),
        _ => None,
    };
    let anchor = top
        .keys()
        .next()
        .map_or_else(|| cx.span_bytes(0, 0), |k| key_span(cx, k));
    let header = from_node::<RawPlatformHeader>(
        cx,
        &Node::Mapping(top),
        anchor,
        "the platform manifest",
        diags,
    );
    let mut settings = IndexMap::default();
    match settings_node {
        None => {}
        Some(Node::Mapping(m)) => {
            for (k, v) in m.iter() {
                settings.insert(
                    Sp::new(k.span().start().copied(), k.as_str().to_string()),
                    v.clone(),
                );
            }
        }
        Some(other) => diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                cx.span(other.span().start().copied()),
                "`settings` must be a mapping",
            )
            .label("not a mapping")
            .help("write `settings:` followed by indented `<name>: <value>` entries"),
        ),
    }
    Some(RawPlatform {
        file: cx.file,
        header,
        settings,
        declare,
        switch,
    })
}

/// A setting as written: plain scalars are typed (`true`, `3`, `2.5`, `null`),
/// quoted ones stay text.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" | "~" | "" => Value::Null,
                _ => text
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| text.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| Value::String(text.to_string())),
            }
        }
        Node::Sequence(seq) => Value::Array(seq.iter().map(to_json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}
