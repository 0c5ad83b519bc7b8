//! `hisflow lsp`: a language server over stdio. The validator's diagnostics
//! as the integrator types (the whole platform folder checked, unsaved
//! buffers in place of their files), go-to-definition, completion, hover
//! and rename of states.
//!
//! It answers from two sources: the validator, for diagnostics, and a
//! line outline of each file, for everything the cursor asks about, because
//! a file being edited is seldom valid YAML.

pub mod assist;
pub mod index;
pub mod locate;
pub mod navigate;
pub mod outline;
pub mod uri;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use serde_json::{Value, json};

use self::index::Docs;
use self::locate::{File, Slot};
use self::outline::Token;
use crate::workflow::validate::MANIFEST;
use crate::{Severity, Sources};

/// How long typing must pause before the folder is validated again.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("language server protocol: {0}")]
    Protocol(#[from] lsp_server::ProtocolError),
    #[error("language server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the protocol on stdin and stdout until the client exits.
pub fn run_stdio() -> Result<(), LspError> {
    let (conn, io) = Connection::stdio();
    serve(&conn)?;
    drop(conn);
    io.join()?;
    Ok(())
}

/// Serves the protocol on `conn` until the client shuts it down.
pub fn serve(conn: &Connection) -> Result<(), LspError> {
    let (id, _params) = conn.initialize_start()?;
    conn.initialize_finish(
        id,
        json!({
            "capabilities": {
                "textDocumentSync": { "openClose": true, "change": 1, "save": { "includeText": false } },
                "definitionProvider": true,
                "hoverProvider": true,
                "completionProvider": { "triggerCharacters": [".", " "] },
                "renameProvider": { "prepareProvider": true },
            },
            "serverInfo": { "name": "hisflow", "version": env!("CARGO_PKG_VERSION") },
        }),
    )?;
    let mut server = Server::default();
    // After `shutdown` only `exit` ends the loop; a client may ask to shut
    // down twice (one per buffer it detaches), which is answered, not an
    // error.
    let mut shutting_down = false;
    loop {
        let msg = match server.due {
            Some(due) => {
                match conn
                    .receiver
                    .recv_timeout(due.saturating_duration_since(Instant::now()))
                {
                    Ok(m) => m,
                    Err(e) if e.is_timeout() => {
                        server.validate(conn);
                        continue;
                    }
                    Err(_) => return Ok(()),
                }
            }
            None => match conn.receiver.recv() {
                Ok(m) => m,
                Err(_) => return Ok(()),
            },
        };
        match msg {
            Message::Request(req) if req.method == "shutdown" => {
                shutting_down = true;
                send(conn, Response::new_ok(req.id, Value::Null).into());
            }
            Message::Request(req) if shutting_down => send(
                conn,
                Response::new_err(
                    req.id,
                    ErrorCode::InvalidRequest as i32,
                    "the server is shutting down".into(),
                )
                .into(),
            ),
            Message::Request(req) => {
                let resp = server.request(req);
                send(conn, resp.into());
            }
            Message::Notification(n) if n.method == "exit" => return Ok(()),
            Message::Notification(n) => server.notify(n),
            Message::Response(_) => {}
        }
    }
}

fn send(conn: &Connection, msg: Message) {
    // The client went away: the receiving loop ends on its own.
    let _ = conn.sender.send(msg);
}

#[derive(Default)]
struct Server {
    docs: Docs,
    /// Folders to validate when typing pauses.
    pending: BTreeSet<PathBuf>,
    due: Option<Instant>,
    /// The files each folder's last validation published diagnostics for,
    /// to clear those that have none now.
    published: HashMap<PathBuf, BTreeSet<PathBuf>>,
}

impl Server {
    fn notify(&mut self, n: Notification) {
        let doc = &n.params["textDocument"];
        let Some(path) = doc["uri"].as_str().and_then(uri::to_path) else {
            return;
        };
        let delay = match n.method.as_str() {
            "textDocument/didOpen" => {
                let Some(text) = doc["text"].as_str() else {
                    return;
                };
                self.docs.open.insert(path.clone(), text.to_string());
                Duration::ZERO
            }
            "textDocument/didChange" => {
                // Full sync: the last change is the whole text.
                let Some(text) = n.params["contentChanges"]
                    .as_array()
                    .and_then(|c| c.last())
                    .and_then(|c| c["text"].as_str())
                else {
                    return;
                };
                self.docs.open.insert(path.clone(), text.to_string());
                DEBOUNCE
            }
            "textDocument/didSave" => Duration::ZERO,
            "textDocument/didClose" => {
                self.docs.open.remove(&path);
                Duration::ZERO
            }
            _ => return,
        };
        if let Some(dir) = folder_of(&path) {
            // An editor starts the server for every YAML file; a folder is
            // validated only for hisflow's own files.
            if !self.published.contains_key(&dir) && !ours(&self.docs, &path) {
                return;
            }
            self.pending.insert(dir);
            let at = Instant::now() + delay;
            // A change pushes the deadline back; an open or save brings it
            // forward.
            self.due = Some(match (self.due, delay.is_zero()) {
                (Some(d), true) => d.min(at),
                _ => at,
            });
        }
    }

    /// Validates the pending folders and publishes their diagnostics.
    fn validate(&mut self, conn: &Connection) {
        self.due = None;
        let mut dirs = std::mem::take(&mut self.pending);
        // A platform that extends a changed one changes with it.
        let open: BTreeSet<PathBuf> = self
            .docs
            .open
            .keys()
            .filter_map(|p| folder_of(p))
            .filter(|f| self.published.contains_key(f) || f.join(MANIFEST).is_file())
            .collect();
        for f in open {
            if !dirs.contains(&f)
                && index::chain(&self.docs, &f)
                    .iter()
                    .skip(1)
                    .any(|c| dirs.contains(c))
            {
                dirs.insert(f);
            }
        }
        for dir in dirs {
            let by_file = diagnostics(&self.docs, &dir);
            let before = self.published.remove(&dir).unwrap_or_default();
            for path in before.iter().filter(|p| !by_file.contains_key(*p)) {
                publish(conn, path, Vec::new());
            }
            let mut now = BTreeSet::new();
            for (path, diags) in by_file {
                publish(conn, &path, diags);
                now.insert(path);
            }
            self.published.insert(dir, now);
        }
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let doc = &req.params["textDocument"];
        let known = [
            "textDocument/definition",
            "textDocument/hover",
            "textDocument/completion",
            "textDocument/prepareRename",
            "textDocument/rename",
        ];
        if !known.contains(&req.method.as_str()) {
            return Response::new_err(
                id,
                ErrorCode::MethodNotFound as i32,
                format!("{} is not served", req.method),
            );
        }
        // A buffer that is no file (`untitled:`) has nothing to say.
        let Some(path) = doc["uri"].as_str().and_then(uri::to_path) else {
            return Response::new_ok(id, Value::Null);
        };
        let Some(file) = File::new(&self.docs, &path) else {
            return Response::new_ok(id, Value::Null);
        };
        let line = req.params["position"]["line"].as_u64().unwrap_or(0) as usize;
        let character = req.params["position"]["character"].as_u64().unwrap_or(0) as usize;
        let col = byte_col(file.line(line), character);
        let result = match req.method.as_str() {
            "textDocument/definition" => navigate::definition(&file, line, col)
                .map(|place| location(&self.docs, &place.path, &place.token))
                .unwrap_or(Value::Null),
            "textDocument/hover" => assist::hover(&file, line, col)
                .map(|(at, text)| {
                    json!({
                        "contents": { "kind": "markdown", "value": text },
                        "range": range(file.line(line), &at.token),
                    })
                })
                .unwrap_or(Value::Null),
            "textDocument/completion" => match assist::complete(&file, line, col) {
                Some((at, items)) => completion(&file, &at, items),
                None => Value::Null,
            },
            "textDocument/prepareRename" => match file.at(line, col) {
                Some(at) if matches!(at.slot, Slot::StateKey | Slot::StateTarget) => {
                    json!({ "range": range(file.line(line), &at.token), "placeholder": at.token.text })
                }
                _ => Value::Null,
            },
            "textDocument/rename" => {
                let new = req.params["newName"].as_str().unwrap_or_default();
                match navigate::rename(&file, line, col, new) {
                    Ok(files) => {
                        let mut changes = serde_json::Map::new();
                        for (path, tokens) in files {
                            let text = self.docs.text(&path).unwrap_or_default();
                            let lines: Vec<&str> = text.split('\n').collect();
                            let edits: Vec<Value> = tokens
                                .iter()
                                .map(|t| {
                                    let line = lines.get(t.line).copied().unwrap_or("");
                                    json!({ "range": range(line, t), "newText": new })
                                })
                                .collect();
                            changes.insert(uri::from_path(&path), Value::Array(edits));
                        }
                        json!({ "changes": changes })
                    }
                    Err(e) => {
                        return Response::new_err(
                            id,
                            ErrorCode::RequestFailed as i32,
                            e.to_string(),
                        );
                    }
                }
            }
            _ => {
                return Response::new_err(
                    id,
                    ErrorCode::MethodNotFound as i32,
                    format!("{} is not served", req.method),
                );
            }
        };
        Response::new_ok(id, result)
    }
}

/// The folder whose validation covers `path`: a platform folder for its
/// own files and its scenarios.
fn folder_of(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    if dir.ends_with(crate::scenario::SCENARIOS)
        && let Some(platform) = dir.parent()
        && platform.join(MANIFEST).is_file()
    {
        return Some(platform.to_path_buf());
    }
    Some(dir.to_path_buf())
}

/// Whether `path` is one of hisflow's files: an editor starts the server
/// for every YAML file, and a Compose or CI file is not hisflow's to judge.
fn ours(docs: &Docs, path: &Path) -> bool {
    let platform = path
        .parent()
        .is_some_and(|d| d.join(MANIFEST).is_file() || docs.open.contains_key(&d.join(MANIFEST)));
    platform
        || docs.text(path).is_some_and(|t| {
            match index::kind(&outline::Outline::parse(&t)) {
                index::Kind::Unknown => false,
                // Other tools' files start with `platform:` too.
                index::Kind::Platform => path.file_name().is_some_and(|n| n == MANIFEST),
                _ => true,
            }
        })
}

/// The folder's diagnostics as the protocol has them, by file. A platform
/// folder is validated as `hisflow validate` validates its manifest: its
/// files, the platforms it extends and its scenarios, and no subfolder.
/// Elsewhere only hisflow's own files of the folder are checked.
fn diagnostics(docs: &Docs, dir: &Path) -> BTreeMap<PathBuf, Vec<Value>> {
    let mut overlay = crate::Overlay::new();
    for (path, text) in &docs.open {
        overlay.insert(path, text.as_bytes());
    }
    let mut out: BTreeMap<PathBuf, Vec<Value>> = BTreeMap::new();
    let manifest = dir.join(MANIFEST);
    let platform = manifest.is_file() || docs.open.contains_key(&manifest);
    let paths: Vec<PathBuf> = if platform {
        vec![manifest]
    } else {
        index::yaml_files(dir, docs)
            .into_iter()
            .filter(|p| ours(docs, p))
            .collect()
    };
    if paths.is_empty() {
        return out;
    }
    let Ok(mut report) = crate::validate_paths_with(&paths, overlay) else {
        // A folder that went away: nothing to say about its files.
        return out;
    };
    if platform {
        // Scenario files are checked against their platform, as `validate`
        // does.
        let _ = crate::scenario::check_report(&mut report);
    }
    report.diagnostics.suppress(&report.sources, &[]);
    let sources = &report.sources;
    for d in report.diagnostics.iter() {
        let file = sources.get(d.span.file);
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(h);
        }
        let related: Vec<Value> = d
            .related
            .iter()
            .map(|r| {
                json!({
                    "location": {
                        "uri": uri::from_path(&absolute(sources.get(r.span.file).path())),
                        "range": span_range(sources, &r.span),
                    },
                    "message": r.label,
                })
            })
            .collect();
        out.entry(absolute(file.path())).or_default().push(json!({
            "range": span_range(sources, &d.span),
            "severity": match d.severity { Severity::Error => 1, Severity::Warning => 2 },
            "code": d.rule.code(),
            "codeDescription": { "href": d.rule.url() },
            "source": "hisflow",
            "message": message,
            "relatedInformation": related,
        }));
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn publish(conn: &Connection, path: &Path, diagnostics: Vec<Value>) {
    send(
        conn,
        Notification::new(
            "textDocument/publishDiagnostics".into(),
            json!({ "uri": uri::from_path(path), "diagnostics": diagnostics }),
        )
        .into(),
    );
}

fn completion(file: &File<'_>, at: &locate::At, items: Vec<assist::Item>) -> Value {
    let kind = match at.slot {
        Slot::StateTarget | Slot::StateKey | Slot::Flow => 20, // EnumMember
        Slot::Workflow | Slot::Extends => 9,                   // Module
        Slot::Operation => 3,                                  // Function
        Slot::Argument { .. } => 5,                            // Field
        Slot::Event | Slot::Trigger => 23,                     // Event
        Slot::ErrorCode => 21,                                 // Constant
        Slot::Setting => 10,                                   // Property
    };
    let line = file.line(at.token.line);
    let items: Vec<Value> = items
        .into_iter()
        .map(|i| {
            let mut item = json!({
                "label": i.label,
                "kind": kind,
                "textEdit": { "range": range(line, &at.token), "newText": i.label },
            });
            if let Some(d) = i.detail {
                item["detail"] = json!(d);
            }
            if let Some(d) = i.doc {
                item["documentation"] = json!({ "kind": "markdown", "value": d });
            }
            item
        })
        .collect();
    json!({ "isIncomplete": false, "items": items })
}

fn location(docs: &Docs, path: &Path, token: &Token) -> Value {
    let text = docs.text(path).unwrap_or_default();
    let line = text.split('\n').nth(token.line).unwrap_or("");
    json!({ "uri": uri::from_path(path), "range": range(line, token) })
}

/// A token's range, its columns counted in UTF-16 code units as the
/// protocol counts them by default.
fn range(line: &str, t: &Token) -> Value {
    json!({
        "start": { "line": t.line, "character": utf16(line, t.start) },
        "end": { "line": t.line, "character": utf16(line, t.end) },
    })
}

fn span_range(sources: &Sources, span: &crate::Span) -> Value {
    let f = sources.get(span.file);
    let pos = |offset: usize| {
        let (line, _) = f.line_col(offset);
        let start = f.offset_of(line, 1);
        let text = &f.text()[start..f.floor(offset).max(start)];
        json!({ "line": line - 1, "character": text.encode_utf16().count() })
    };
    json!({ "start": pos(span.range.start), "end": pos(span.range.end) })
}

fn utf16(line: &str, byte: usize) -> usize {
    let byte = byte.min(line.len());
    let byte = (0..=byte)
        .rev()
        .find(|&b| line.is_char_boundary(b))
        .unwrap_or(0);
    line[..byte].encode_utf16().count()
}

/// The byte column of a UTF-16 `character` in `line`.
fn byte_col(line: &str, character: usize) -> usize {
    let mut units = 0;
    for (i, c) in line.char_indices() {
        if units >= character {
            return i;
        }
        units += c.len_utf16();
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_convert_between_bytes_and_utf16() {
        let line = "a: é𝄞x";
        let x = line.find('x').unwrap();
        assert_eq!(utf16(line, x), 6);
        assert_eq!(byte_col(line, 6), x);
        assert_eq!(byte_col(line, 99), line.len());
    }
}
