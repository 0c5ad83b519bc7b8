//! `hisflow lsp` driven as an editor drives it: a client speaking the
//! protocol over the server's stdin and stdout.

mod common;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lsp_server::{Message, Notification, Request, RequestId};
use serde_json::{Value, json};

use common::root;

struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: mpsc::Receiver<Message>,
    next_id: i32,
    /// Notifications read while waiting for something else.
    notes: Vec<Notification>,
}

impl Client {
    fn start(dir: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hisflow"))
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hisflow lsp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Ok(Some(m)) = Message::read(&mut r) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            incoming,
            next_id: 0,
            notes: Vec::new(),
        };
        let caps = c.request(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": {} }),
        );
        assert_eq!(caps["serverInfo"]["name"], "hisflow");
        assert_eq!(caps["capabilities"]["definitionProvider"], true);
        c.notify("initialized", json!({}));
        c
    }

    fn send(&mut self, msgs: &[Message]) {
        // One write: the server reads them as one burst.
        let mut buf = Vec::new();
        for m in msgs {
            m.clone().write(&mut buf).unwrap();
        }
        self.stdin.write_all(&buf).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&[Notification::new(method.into(), params).into()]);
    }

    fn recv(&mut self) -> Message {
        self.incoming
            .recv_timeout(Duration::from_secs(60))
            .expect("the server answers within a minute")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.try_request(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn try_request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.send(&[Request::new(id.clone(), method.into(), params).into()]);
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => {
                    return r.response_result.map_err(|e| e.message);
                }
                Message::Notification(n) => self.notes.push(n),
                _ => {}
            }
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        if let Some(i) = self.notes.iter().position(|n| is_for(n, uri)) {
            let n = self.notes.remove(i);
            return n.params["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            if let Message::Notification(n) = self.recv() {
                if is_for(&n, uri) {
                    return n.params["diagnostics"].as_array().unwrap().clone();
                }
                self.notes.push(n);
            }
        }
    }

    fn open(&mut self, path: &Path, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri(path), "languageId": "yaml", "version": 1, "text": text } }),
        );
    }

    /// The whole new text of an open document, as full sync sends it.
    fn change(&mut self, path: &Path, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri(path), "version": version }, "contentChanges": [{ "text": text }] }),
        );
    }

    fn rename(
        &mut self,
        path: &Path,
        (line, character): (usize, usize),
        new: &str,
    ) -> Result<Value, String> {
        self.try_request(
            "textDocument/rename",
            json!({ "textDocument": { "uri": uri(path) }, "position": { "line": line, "character": character }, "newName": new }),
        )
    }

    fn at(&mut self, method: &str, path: &Path, (line, character): (usize, usize)) -> Value {
        self.request(
            method,
            json!({ "textDocument": { "uri": uri(path) }, "position": { "line": line, "character": character } }),
        )
    }

    fn shutdown(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

/// `text` with a rename's `edits` applied, last first as an editor does;
/// each must cover `old`.
fn apply(text: &str, edits: &[Value], old: &str, new: &str) -> String {
    let at = |e: &Value, end: &str, k: &str| e["range"][end][k].as_u64().unwrap() as usize;
    let mut sorted: Vec<&Value> = edits.iter().collect();
    sorted
        .sort_by_key(|e| std::cmp::Reverse((at(e, "start", "line"), at(e, "start", "character"))));
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for e in sorted {
        let (l, s, t) = (
            at(e, "start", "line"),
            at(e, "start", "character"),
            at(e, "end", "character"),
        );
        assert_eq!(&lines[l][s..t], old);
        lines[l].replace_range(s..t, new);
    }
    lines.join("\n")
}

fn is_for(n: &Notification, uri: &str) -> bool {
    n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri
}

fn uri(path: &Path) -> String {
    hisflow::lsp::uri::from_path(path)
}

/// The line and column of the `nth` occurrence of `needle` in `text`,
/// plus `offset` columns.
fn find(text: &str, needle: &str, nth: usize, offset: usize) -> (usize, usize) {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` occurs {} times", nth + 1))
        .0;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, col + offset)
}

fn workspace() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    for p in ["reference", "cisco-uccx", "avaya-cm"] {
        common::copy_tree(&root().join("workflows").join(p), &d.path().join(p));
    }
    let base = d.path().canonicalize().unwrap();
    (d, base)
}

#[test]
fn diagnostics_follow_the_buffer_and_clear_when_it_is_fixed() {
    let (_d, ws) = workspace();
    let path = ws.join("reference/go_ready.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen("next: done", "next: donee", 1);
    let mut c = Client::start(&ws);

    c.open(&path, &broken);
    let diags = c.diagnostics(&uri(&path));
    let d = diags
        .iter()
        .find(|d| d["code"] == "hisflow::undefined-target")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    let (line, col) = find(&broken, "donee", 0, 0);
    assert_eq!(
        d["range"]["start"],
        json!({ "line": line, "character": col })
    );
    assert_eq!(
        d["range"]["end"],
        json!({ "line": line, "character": col + 5 })
    );
    assert_eq!(d["severity"], 1);
    assert!(
        d["codeDescription"]["href"]
            .as_str()
            .unwrap()
            .ends_with("docs/rules.md#undefined-target")
    );
    // Only the buffer is broken: the file on disk was not what was checked.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // Typing: ten changes in one burst are validated once, at the end.
    let mut burst = Vec::new();
    for (v, t) in (2..12).map(|v| (v, if v < 11 { &broken } else { &text })) {
        burst.push(
            Notification::new(
                "textDocument/didChange".into(),
                json!({
                    "textDocument": { "uri": uri(&path), "version": v },
                    "contentChanges": [{ "text": t }],
                }),
            )
            .into(),
        );
    }
    c.send(&burst);
    assert_eq!(c.diagnostics(&uri(&path)), Vec::<Value>::new());
    // Nothing else was published for the file meanwhile.
    let hover = c.at("textDocument/hover", &path, find(&text, "  done:", 0, 3));
    assert!(!hover.is_null());
    assert!(
        !c.notes.iter().any(|n| is_for(n, &uri(&path))),
        "a publish per keystroke: {:?}",
        c.notes
    );
    c.shutdown();
}

#[test]
fn definitions_lead_to_states_workflows_settings_and_platforms() {
    let (_d, ws) = workspace();
    let logout = ws.join("reference/logout.yaml");
    let text = std::fs::read_to_string(&logout).unwrap();
    let mut c = Client::start(&ws);
    c.open(&logout, &text);

    // A transition target → the state.
    let def = c.at(
        "textDocument/definition",
        &logout,
        find(&text, "next: already_pending", 0, 8),
    );
    assert_eq!(def["uri"], uri(&logout));
    let (line, col) = find(&text, "  already_pending:", 0, 2);
    assert_eq!(
        def["range"]["start"],
        json!({ "line": line, "character": col })
    );

    // A called workflow → its file.
    let def = c.at(
        "textDocument/definition",
        &logout,
        find(&text, "call: go_not_ready", 0, 8),
    );
    assert_eq!(def["uri"], uri(&ws.join("reference/go_not_ready.yaml")));

    // A setting read in an expression → where the platform declares it.
    let def = c.at(
        "textDocument/definition",
        &logout,
        find(&text, "platform.logout_reason_free_text", 0, 12),
    );
    let manifest = ws.join("reference/platform.yaml");
    assert_eq!(def["uri"], uri(&manifest));
    let decl = std::fs::read_to_string(&manifest).unwrap();
    let (line, _) = find(&decl, "    logout_reason_free_text:", 0, 0);
    assert_eq!(def["range"]["start"]["line"], line);

    // In an overrides file, a target may be a state of the workflow it
    // changes.
    let over = ws.join("avaya-cm/go_not_ready.yaml");
    let otext = std::fs::read_to_string(&over).unwrap();
    let def = c.at(
        "textDocument/definition",
        &over,
        find(&otext, "ok: confirmed_how", 0, 5),
    );
    let base = ws.join("reference/go_not_ready.yaml");
    assert_eq!(def["uri"], uri(&base));
    let btext = std::fs::read_to_string(&base).unwrap();
    assert_eq!(
        def["range"]["start"]["line"],
        find(&btext, "  confirmed_how:", 0, 0).0
    );
    // …and its own state, where it has one of that name.
    let def = c.at(
        "textDocument/definition",
        &over,
        find(&otext, "otherwise: set_not_ready", 0, 12),
    );
    assert_eq!(def["uri"], uri(&over));

    // A request's route → the workflow.
    let mtext = std::fs::read_to_string(&manifest).unwrap();
    let def = c.at(
        "textDocument/definition",
        &manifest,
        find(&mtext, "channel.request.ready: go_ready", 0, 24),
    );
    assert_eq!(def["uri"], uri(&ws.join("reference/go_ready.yaml")));

    // A setting a profile sets → where a platform it extends declares it.
    let ptext = std::fs::read_to_string(ws.join("cisco-uccx/platform.yaml")).unwrap();
    let def = c.at(
        "textDocument/definition",
        &ws.join("cisco-uccx/platform.yaml"),
        find(&ptext, "  logout_reason: if_configured", 0, 3),
    );
    assert_eq!(def["uri"], uri(&manifest), "{def}");

    // `extends` → the platform it names.
    let profile = ws.join("cisco-uccx/platform.yaml");
    let ptext = std::fs::read_to_string(&profile).unwrap();
    let def = c.at(
        "textDocument/definition",
        &profile,
        find(&ptext, "extends: reference", 0, 10),
    );
    assert_eq!(def["uri"], uri(&manifest));
    c.shutdown();
}

#[test]
fn completion_offers_what_may_be_written_there() {
    let (_d, ws) = workspace();
    let path = ws.join("reference/go_ready.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut c = Client::start(&ws);
    // A target being written, an operation, a setting after `platform.`.
    let edited = text.replacen("next: done", "next: ", 1);
    c.open(&path, &edited);
    let labels = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["label"].as_str().unwrap().to_string())
            .collect()
    };
    let states = c.at(
        "textDocument/completion",
        &path,
        find(&edited, "next: ", 0, 6),
    );
    let states = labels(&states);
    for s in ["done", "busy", "inactive"] {
        assert!(states.contains(&s.to_string()), "{states:?}");
    }
    assert!(!states.contains(&"agent.logout".to_string()));

    let op_line = find(&edited, "op: agent.set_ready", 0, 4);
    let ops = c.at("textDocument/completion", &path, op_line);
    let item = ops["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "agent.logout")
        .expect("operations are offered");
    assert!(item["detail"].as_str().unwrap().len() > 10);
    // The completion replaces the operation written there.
    assert_eq!(item["textEdit"]["range"]["start"]["character"], op_line.1);
    assert_eq!(
        item["textEdit"]["range"]["end"]["character"],
        op_line.1 + "agent.set_ready".len()
    );

    // A key being typed under `args`: the operation's arguments.
    let typing = edited.replacen(
        "      channel: \"platform",
        "      ch\n      channel: \"platform",
        1,
    );
    assert_ne!(typing, edited);
    c.change(&path, 2, &typing);
    let args = c.at(
        "textDocument/completion",
        &path,
        find(&typing, "      ch\n", 0, 8),
    );
    let spec = hisflow::platform::catalog::operation("agent.set_ready").unwrap();
    let names: Vec<String> = spec.args.iter().map(|a| a.name.to_string()).collect();
    assert_eq!(labels(&args), names);

    // A setting's name deleted from an expression.
    let with_setting = edited.replacen("platform.status_scope ==", "platform. ==", 1);
    assert_ne!(with_setting, edited);
    c.change(&path, 3, &with_setting);
    let settings = c.at(
        "textDocument/completion",
        &path,
        find(&with_setting, "platform. ==", 0, 9),
    );
    let settings = labels(&settings);
    assert!(
        settings.contains(&"logout_reason".to_string()),
        "{settings:?}"
    );
    c.shutdown();
}

#[test]
fn hover_tells_what_a_name_means() {
    let (_d, ws) = workspace();
    let path = ws.join("reference/logout.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut c = Client::start(&ws);
    c.open(&path, &text);
    let hover = c.at(
        "textDocument/hover",
        &path,
        find(&text, "op: agent.logout", 0, 6),
    );
    let md = hover["contents"]["value"].as_str().unwrap();
    let spec = hisflow::platform::catalog::operation("agent.logout").unwrap();
    assert!(md.contains(spec.summary), "{md}");
    assert!(md.contains("Outcomes: ok, error, timeout"), "{md}");

    let hover = c.at(
        "textDocument/hover",
        &path,
        find(&text, "next: already_pending", 0, 8),
    );
    let md = hover["contents"]["value"].as_str().unwrap();
    assert!(md.starts_with("state `already_pending` (flow AF2)"), "{md}");

    let hover = c.at(
        "textDocument/hover",
        &path,
        find(&text, "platform.busy_logout", 0, 10),
    );
    let md = hover["contents"]["value"].as_str().unwrap();
    assert!(
        md.starts_with("setting `platform.busy_logout` (enum"),
        "{md}"
    );

    // Columns count UTF-16 code units: `é` is one, `𝄞` two.
    let wide = text.replacen(
        "platform.busy_logout == 'pending' && session.state",
        "'é𝄞' != '' && platform.busy_logout == 'pending' && session.state",
        1,
    );
    assert_ne!(wide, text);
    c.change(&path, 2, &wide);
    let (line, byte) = find(&wide, "platform.busy_logout == 'pending' && session", 0, 9);
    let line_text = wide.split('\n').nth(line).unwrap();
    let units = line_text[..byte].encode_utf16().count();
    assert_eq!(byte - units, 3, "é is 2 bytes and 1 unit, 𝄞 4 bytes and 2");
    let hover = c.at("textDocument/hover", &path, (line, units));
    assert_eq!(hover["range"]["start"]["character"], units, "{hover}");
    assert_eq!(
        hover["range"]["end"]["character"],
        units + "busy_logout".len(),
        "{hover}"
    );
    c.shutdown();
}

#[test]
fn rename_changes_a_state_and_every_transition_to_it() {
    let (_d, ws) = workspace();
    let path = ws.join("reference/logout.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut c = Client::start(&ws);
    c.open(&path, &text);
    let at = find(&text, "  need_reason:", 0, 3);
    let prepared = c.at("textDocument/prepareRename", &path, at);
    assert_eq!(prepared["placeholder"], "need_reason");

    let edit = c.rename(&path, at, "ask_reason").unwrap();
    let edits = edit["changes"][uri(&path)].as_array().unwrap();
    // Apply the edits as an editor would, and validate.
    let renamed = apply(&text, edits, "need_reason", "ask_reason");
    assert_eq!(
        edits.len(),
        text.matches("need_reason").count(),
        "every mention of the state is a reference"
    );
    std::fs::write(&path, &renamed).unwrap();
    let out = common::run(&ws, &["validate", "reference"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stdout(&out));

    c.change(&path, 2, &renamed);
    // A name another state has, or one that is not a name, is refused.
    for bad in ["pending", "two words"] {
        let at = find(&renamed, "  ask_reason:", 0, 3);
        let refused = c.rename(&path, at, bad);
        assert!(refused.is_err(), "{bad}");
    }
    c.shutdown();
}

/// What an editor may send by mistake — positions past the end, documents
/// the server was never told of, other schemes, half a file — gets an
/// answer, and the server goes on serving.
#[test]
fn odd_requests_get_answers_not_a_crash() {
    let (_d, ws) = workspace();
    let path = ws.join("reference/go_ready.yaml");
    let mut c = Client::start(&ws);
    let half = "workflow: x\nstates:\n  a:\n    next: \"unterminated\n  é𝄞: {on: [\n- - - :\n";
    c.open(&path, half);
    for (line, character) in [
        (0, 0),
        (3, 9),
        (4, 3),
        (5, 2),
        (1_000_000, 1_000_000),
        (4, 1_000),
    ] {
        for method in [
            "textDocument/definition",
            "textDocument/hover",
            "textDocument/completion",
            "textDocument/prepareRename",
        ] {
            c.at(method, &path, (line, character));
        }
    }
    let gone = ws.join("reference/never_written.yaml");
    assert!(c.at("textDocument/hover", &gone, (0, 0)).is_null());
    // A buffer that is no file has nothing to say, which is no error.
    let other = c.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": "untitled:Untitled-1" }, "position": { "line": 0, "character": 0 } }),
    );
    assert!(other.is_null());
    assert!(
        c.try_request("workspace/symbol", json!({ "query": "x" }))
            .is_err()
    );
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": "file:///nowhere/x.yaml" } }),
    );
    // Another tool's YAML, with no platform beside it, is not hisflow's to
    // judge.
    let ci = ws.join(".github/workflows/ci.yaml");
    std::fs::create_dir_all(ci.parent().unwrap()).unwrap();
    std::fs::write(&ci, "on: push\njobs: {}\n").unwrap();
    // Still serving, with the half file's diagnostics published.
    let diags = c.diagnostics(&uri(&path));
    assert!(!diags.is_empty());
    c.open(&ci, "on: push\njobs: {}\n");
    // A change published after the CI file's open would have been.
    c.change(&path, 2, &half.replace("a:", "b:"));
    assert!(!c.diagnostics(&uri(&path)).is_empty());
    assert!(
        !c.notes.iter().any(|n| is_for(n, &uri(&ci))),
        "{:?}",
        c.notes
    );
    c.shutdown();
}

/// Completion and hover in each place docs/editors.md names.
#[test]
fn each_documented_place_completes_and_hovers() {
    let (_d, ws) = workspace();
    let mut c = Client::start(&ws);
    let logout = ws.join("reference/logout.yaml");
    let ltext = std::fs::read_to_string(&logout).unwrap();
    let manifest = ws.join("cisco-uccx/platform.yaml");
    let mtext = std::fs::read_to_string(&manifest).unwrap();
    let channel = ws.join("reference/channel.yaml");
    let ctext = std::fs::read_to_string(&channel).unwrap();
    let cases: [(&Path, &str, &str, usize, &str, &str); 8] = [
        // (file, text, needle, offset, a label offered, what hover says)
        (
            &logout,
            &ltext,
            "wait: agent.event.logoutPending",
            7,
            "agent.event.loggedOut",
            "switch event `agent.event.logoutPending`",
        ),
        (
            &logout,
            &ltext,
            "code: InvalidState",
            7,
            "OngoingInteraction",
            "error code `InvalidState`",
        ),
        (&logout, &ltext, "flow: AF2", 7, "EF1", ""),
        (
            &logout,
            &ltext,
            "call: go_not_ready",
            7,
            "go_ready",
            "workflow `go_not_ready`",
        ),
        (&manifest, &mtext, "extends: reference", 10, "avaya-cm", ""),
        (
            &channel,
            &ctext,
            "  agent.set_ready:",
            3,
            "agent.event.loggedOut",
            "operation `agent.set_ready`",
        ),
        (
            &logout,
            &ltext,
            "      reject_pending:",
            7,
            "reason",
            "`reject_pending` of `agent.set_not_ready`",
        ),
        (
            &manifest,
            &mtext,
            "  logout_reason: if_configured",
            3,
            "media",
            "setting `platform.logout_reason`",
        ),
    ];
    for (path, text, needle, offset, label, hover) in cases {
        c.open(path, text);
        let at = find(text, needle, 0, offset);
        let items = c.at("textDocument/completion", path, at);
        let labels: Vec<&str> = items["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{needle}: {items}"))
            .iter()
            .map(|i| i["label"].as_str().unwrap())
            .collect();
        assert!(labels.contains(&label), "{needle}: {labels:?}");
        let h = c.at("textDocument/hover", path, at);
        if hover.is_empty() {
            assert!(h.is_null(), "{needle}: {h}");
        } else {
            let md = h["contents"]["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{needle}: {h}"));
            assert!(md.starts_with(hover), "{needle}: {md}");
        }
    }
    c.shutdown();
}

/// A scenario's folder is its platform's: its findings are published, and
/// `# hisflow-ignore` comments hide findings in the editor as on the
/// command line.
#[test]
fn scenarios_are_checked_and_ignore_comments_honoured() {
    let (_d, ws) = workspace();
    let mut c = Client::start(&ws);
    let scenario = ws.join("reference/scenarios/basic.yaml");
    let stext = std::fs::read_to_string(&scenario).unwrap();
    let broken = stext.replacen(
        "request: session.request.login",
        "request: session.request.logn",
        1,
    );
    assert_ne!(broken, stext);
    c.open(&scenario, &broken);
    let diags = c.diagnostics(&uri(&scenario));
    assert!(
        diags
            .iter()
            .any(|d| d["code"] == "hisflow::unknown-request"),
        "{diags:#?}"
    );

    let path = ws.join("reference/go_ready.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let ignored = text
        .replacen(
            "next: done",
            "next: donee # hisflow-ignore: undefined-target",
            1,
        )
        .replacen("next: done\n", "next: donex\n", 1);
    c.open(&path, &ignored);
    let diags = c.diagnostics(&uri(&path));
    let messages: Vec<&str> = diags
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("`donex`"), "{messages:?}");
    c.shutdown();
}

/// A client that asks to shut down twice (Neovim does, once per buffer it
/// detaches) gets two answers, and the server exits cleanly on `exit`.
#[test]
fn shutdown_twice_then_exit_is_a_clean_exit() {
    let (_d, ws) = workspace();
    let mut c = Client::start(&ws);
    c.request("shutdown", Value::Null);
    c.request("shutdown", Value::Null);
    assert!(
        c.try_request("textDocument/hover", json!({ "textDocument": { "uri": uri(&ws.join("reference/logout.yaml")) }, "position": { "line": 0, "character": 0 } }))
            .is_err()
    );
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Renaming a state of a workflow renames it in the overrides files of the
/// platforms that extend it; an overrides file cannot rename a state it
/// replaces; a file the outline cannot read whole is refused.
#[test]
fn rename_reaches_the_platforms_that_extend_the_workflow() {
    let (_d, ws) = workspace();
    let mut c = Client::start(&ws);
    let base = ws.join("reference/logout.yaml");
    let over = ws.join("avaya-cm/logout.yaml");
    let btext = std::fs::read_to_string(&base).unwrap();
    let otext = std::fs::read_to_string(&over).unwrap();
    assert!(otext.contains("\n  already_pending:"));
    c.open(&base, &btext);
    let at = find(&btext, "  already_pending:", 0, 3);
    let edit = c.rename(&base, at, "held_already").unwrap();
    for (path, text) in [(&base, &btext), (&over, &otext)] {
        let edits = edit["changes"][uri(path)]
            .as_array()
            .unwrap_or_else(|| panic!("no edits for {}: {edit}", path.display()));
        std::fs::write(path, apply(text, edits, "already_pending", "held_already")).unwrap();
    }
    let out = common::run(&ws, &["validate", "reference", "avaya-cm", "cisco-uccx"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stdout(&out));
    // The editor applied the edit to the open buffer.
    c.change(&base, 2, &std::fs::read_to_string(&base).unwrap());

    // In the overrides file, the replaced state's name is the base's.
    let otext = std::fs::read_to_string(&over).unwrap();
    c.open(&over, &otext);
    let at = find(&otext, "  held_already:", 0, 3);
    let refused = c.rename(&over, at, "x");
    assert!(refused.unwrap_err().contains("rename it there"));

    // A flow mapping over two lines: refused rather than half done.
    let btext = std::fs::read_to_string(&base).unwrap();
    let tangled = btext.replacen(
        "      - when: platform.busy_logout == 'pending' && session.state == 'LogoutPending'\n        next: held_already",
        "      - { when: \"platform.busy_logout == 'pending'\",\n          next: held_already }",
        1,
    );
    assert_ne!(tangled, btext);
    c.change(&base, 3, &tangled);
    let at = find(&tangled, "  held_already:", 0, 3);
    let refused = c.rename(&base, at, "y");
    assert!(refused.unwrap_err().contains("rename by hand"));
    c.shutdown();
}

/// Only hisflow's files are judged: a Compose file beside a loose
/// workflow, or another tool's file that starts with `platform:`, get no
/// diagnostics; a platform that extends a changed one is checked again.
#[test]
fn only_hisflow_files_are_judged_and_dependents_follow() {
    let (_d, ws) = workspace();
    let loose = ws.join("loose");
    std::fs::create_dir_all(loose.join("sub")).unwrap();
    let w = loose.join("w.yaml");
    let wtext = "workflow: w\nstart: a\nstates:\n  a:\n    next: b\n";
    std::fs::write(&w, wtext).unwrap();
    std::fs::write(loose.join("compose.yaml"), "services:\n  web: {}\n").unwrap();
    std::fs::write(loose.join("sub/k8s.yaml"), "apiVersion: v1\n").unwrap();
    let task = ws.join("ci/task.yml");
    std::fs::create_dir_all(task.parent().unwrap()).unwrap();
    std::fs::write(&task, "platform: linux\nrun: {path: make}\n").unwrap();

    let mut c = Client::start(&ws);
    c.open(&task, "platform: linux\nrun: {path: make}\n");
    c.open(&w, wtext);
    let diags = c.diagnostics(&uri(&w));
    assert!(
        diags
            .iter()
            .any(|d| d["code"] == "hisflow::undefined-target"),
        "{diags:#?}"
    );

    // avaya-cm overrides reference's Logout: breaking the base in its
    // buffer is reported in the profile's file too.
    let over = ws.join("avaya-cm/logout.yaml");
    c.open(&over, &std::fs::read_to_string(&over).unwrap());
    let base = ws.join("reference/logout.yaml");
    let btext = std::fs::read_to_string(&base).unwrap();
    // The base's state renamed everywhere in its own file: the profile's
    // replacement of it now replaces nothing and is unreachable.
    c.open(&base, &btext.replace("already_pending", "pending_already"));
    let diags = c.diagnostics(&uri(&over));
    assert!(
        diags
            .iter()
            .any(|d| d["code"] == "hisflow::unreachable-state"),
        "{diags:#?}"
    );

    for other in [
        loose.join("compose.yaml"),
        loose.join("sub/k8s.yaml"),
        task.clone(),
    ] {
        assert!(
            !c.notes.iter().any(|n| is_for(n, &uri(&other))),
            "{} was judged",
            other.display()
        );
    }
    c.shutdown();
}

/// Go to definition from each place docs/editors.md names.
#[test]
fn each_documented_place_leads_to_its_definition() {
    let (_d, ws) = workspace();
    let mut c = Client::start(&ws);
    let r = |p: &str| ws.join(p);
    // (file, needle, offset into it, file defined in, line written there)
    let cases = [
        (
            "reference/logout.yaml",
            "start: check_interactions",
            7,
            "reference/logout.yaml",
            "  check_interactions:",
        ),
        (
            "reference/channel.yaml",
            "initial: LoggedOff",
            9,
            "reference/channel.yaml",
            "  LoggedOff:",
        ),
        (
            "reference/channel.yaml",
            "to: NotReady",
            4,
            "reference/channel.yaml",
            "  NotReady:",
        ),
        (
            "avaya-cm/logout.yaml",
            "overrides: logout",
            11,
            "reference/logout.yaml",
            "workflow: logout",
        ),
        (
            "avaya-cm/go_not_ready.yaml",
            "remove: [need_reason]",
            9,
            "reference/go_not_ready.yaml",
            "  need_reason:",
        ),
        (
            "reference/platform.yaml",
            "agent.event.loggedOut: switch_logout",
            23,
            "reference/switch_logout.yaml",
            "workflow: switch_logout",
        ),
    ];
    for (file, needle, offset, target, written) in cases {
        let text = std::fs::read_to_string(r(file)).unwrap();
        c.open(&r(file), &text);
        let def = c.at(
            "textDocument/definition",
            &r(file),
            find(&text, needle, 0, offset),
        );
        assert_eq!(def["uri"], uri(&r(target)), "{needle}: {def}");
        let ttext = std::fs::read_to_string(r(target)).unwrap();
        let line = find(
            &ttext,
            &format!("\n{}", written.trim_start_matches('\n')),
            0,
            0,
        )
        .0 + 1;
        assert_eq!(def["range"]["start"]["line"], line, "{needle}");
    }
    c.shutdown();
}
