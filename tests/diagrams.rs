//! Every diagram of the shipped workflows — each workflow and machine of
//! every platform, as `hisflow render` draws it in DOT and in Mermaid, and
//! every page `hisflow diagrams` writes — put through the real renderers:
//! Graphviz's `dot`, and Mermaid (tests/assets/mermaid, pinned) in headless
//! Chromium. Any error or warning fails, and so does what a reader would
//! be misled by: a label cut short or clipped, an edge across a flow's
//! title, a `need_info` response drawn as a dead end.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::chromium::{Page, chromium, page_url};
use common::root;
use hisflow::render::{Dot, MachineDot, MachineMermaid, Mermaid};
use hisflow::workflow::model::{Machine, Response, StateKind, Workflow};
use serde_json::{Value, json};

/// One drawing, in both languages, and what it must show.
struct Drawn {
    name: String,
    dot: String,
    mermaid: String,
    /// Every transition's label, whole, with whitespace runs as one space.
    labels: Vec<String>,
    /// A machine's labels go on with what the transition sets and emits;
    /// a workflow's are exactly these.
    label_prefixes: bool,
    states: Vec<String>,
    /// Each flow's `tag: title` and the names of its states.
    flows: Vec<(String, Vec<String>)>,
    /// `(need_info state, start state, label)`: the client's resubmission.
    resubmissions: Vec<(String, String, String)>,
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn workflow(w: &Workflow) -> Drawn {
    let mut labels = Vec::new();
    let mut resubmissions = Vec::new();
    let start = w.state(w.start).name.clone();
    for (id, s) in w.states() {
        for (t, _) in w.transitions(id) {
            let l = t.label(s);
            if !l.is_empty() {
                labels.push(collapse(&l));
            }
        }
        if let StateKind::Respond(Response::NeedInfo { field, .. }) = &s.kind {
            let label = format!("resubmitted with {field}");
            labels.push(label.clone());
            resubmissions.push((s.name.clone(), start.clone(), label));
        }
    }
    let flows = w
        .flows
        .iter()
        .map(|(tag, title)| {
            let members = w
                .states()
                .filter(|(_, s)| &s.flow == tag)
                .map(|(_, s)| s.name.clone())
                .collect();
            (format!("{tag}: {title}"), members)
        })
        .filter(|(_, m): &(String, Vec<String>)| !m.is_empty())
        .collect();
    Drawn {
        name: format!("workflow {}", w.path.display()),
        dot: Dot(w).to_string(),
        mermaid: Mermaid(w).to_string(),
        labels,
        label_prefixes: false,
        states: w.states().map(|(_, s)| s.name.clone()).collect(),
        flows,
        resubmissions,
    }
}

fn machine(m: &Machine) -> Drawn {
    Drawn {
        name: format!("machine {}", m.path.display()),
        dot: MachineDot(m).to_string(),
        mermaid: MachineMermaid(m).to_string(),
        labels: m
            .transitions
            .iter()
            .map(|t| collapse(&m.label(t)))
            .collect(),
        label_prefixes: true,
        states: m.states.iter().map(|s| s.name.to_string()).collect(),
        flows: Vec::new(),
        resubmissions: Vec::new(),
    }
}

/// Each workflow and machine file of every platform, once.
fn shipped() -> Vec<Drawn> {
    let report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in &report.platforms {
        for w in p.workflows.values() {
            if seen.insert(w.path.clone()) {
                out.push(workflow(w));
            }
        }
        for m in &p.machines {
            if seen.insert(m.path.clone()) {
                out.push(machine(m));
            }
        }
    }
    // The Logout of every platform, its overrides among them, and the
    // reference machines.
    assert!(out.len() >= 20, "only {} diagrams", out.len());
    out
}

/// The pages `hisflow diagrams` writes, which must be those committed in
/// docs/diagrams: (file name, its Mermaid block).
fn pages() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run(
        &root(),
        &[
            "diagrams",
            dir.path().to_str().unwrap(),
            "--workflows",
            "workflows",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let written = names(dir.path());
    assert_eq!(
        written,
        names(&root().join("docs/diagrams")),
        "docs/diagrams is not what `cargo run -- diagrams docs/diagrams` writes"
    );
    written
        .into_iter()
        .map(|name| {
            let page = std::fs::read_to_string(dir.path().join(&name)).unwrap();
            let committed =
                std::fs::read_to_string(root().join("docs/diagrams").join(&name)).unwrap();
            assert!(page == committed, "docs/diagrams/{name} is stale");
            let blocks: Vec<&str> = page.split("```mermaid\n").skip(1).collect();
            assert_eq!(blocks.len(), 1, "{name}: one diagram a page");
            let block = blocks[0].split("```").next().unwrap().to_string();
            (name, block)
        })
        .collect()
}

// ---------------------------------------------------------------- Graphviz

/// `dot -T<format>` of `text`: its output, after checking that it ran clean.
fn graphviz(format: &str, text: &str, what: &str) -> String {
    let mut child = Command::new("dot")
        .arg(format!("-T{format}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz's dot is installed (apt-get install graphviz)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "dot -T{format} of {what}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn contains(&self, (x, y): (f64, f64)) -> bool {
        self.x0 <= x && x <= self.x1 && self.y0 <= y && y <= self.y1
    }

    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn within(&self, o: &Rect) -> bool {
        o.x0 <= self.x0 && self.x1 <= o.x1 && o.y0 <= self.y0 && self.y1 <= o.y1
    }
}

/// A text a layout draws, and the box it covers.
struct Text {
    text: String,
    area: Rect,
}

/// The texts of an xdot drawing (`_ldraw_`), one a line.
fn texts(ops: &Value) -> Vec<Text> {
    let mut size = 14.0;
    let mut out = Vec::new();
    for op in ops.as_array().into_iter().flatten() {
        match op["op"].as_str() {
            Some("F") => size = op["size"].as_f64().unwrap_or(size),
            Some("T") => {
                let (x, y) = (op["pt"][0].as_f64().unwrap(), op["pt"][1].as_f64().unwrap());
                let w = op["width"].as_f64().unwrap();
                let x0 = match op["align"].as_str() {
                    Some("l") => x,
                    Some("r") => x - w,
                    _ => x - w / 2.0,
                };
                out.push(Text {
                    text: op["text"].as_str().unwrap().to_string(),
                    // From below the baseline (descenders) to the ascent.
                    area: Rect {
                        x0,
                        y0: y - 0.25 * size,
                        x1: x0 + w,
                        y1: y + 0.8 * size,
                    },
                });
            }
            _ => {}
        }
    }
    out
}

/// Points along the lines of an xdot drawing (`_draw_`, `_hdraw_`):
/// Bézier curves sampled, polygons and polylines by their segments.
fn points(ops: &Value) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for op in ops.as_array().into_iter().flatten() {
        let pts: Vec<(f64, f64)> = op["points"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        match op["op"].as_str() {
            Some("b" | "B") => {
                for seg in pts.windows(4).step_by(3) {
                    for i in 0..=40 {
                        let t = f64::from(i) / 40.0;
                        let u = 1.0 - t;
                        let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
                        out.push((
                            a * seg[0].0 + b * seg[1].0 + c * seg[2].0 + d * seg[3].0,
                            a * seg[0].1 + b * seg[1].1 + c * seg[2].1 + d * seg[3].1,
                        ));
                    }
                }
            }
            Some("P" | "p" | "L") => {
                for seg in pts.windows(2) {
                    for i in 0..=20 {
                        let t = f64::from(i) / 20.0;
                        out.push((
                            seg[0].0 + t * (seg[1].0 - seg[0].0),
                            seg[0].1 + t * (seg[1].1 - seg[0].1),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn bb(v: &Value) -> Option<Rect> {
    let n: Vec<f64> = v["bb"]
        .as_str()?
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    Some(Rect {
        x0: n[0],
        y0: n[1],
        x1: n[2],
        y1: n[3],
    })
}

/// What a DOT layout (`dot -Tjson`) shows that misleads a reader, for a
/// drawing whose flows are `flows` (`tag: title`, state names): a flow title
/// drawn other than once, or outside its flow's cluster; an edge or an edge
/// label over a title; two edges' labels over one another; an edge across
/// a loop's label.
fn layout_faults(json: &str, flows: &[(String, Vec<String>)]) -> Vec<String> {
    let g: Value = serde_json::from_str(json).unwrap();
    let objects = g["objects"].as_array().cloned().unwrap_or_default();
    let node = |gvid: &Value| {
        objects
            .iter()
            .find(|o| o["_gvid"] == *gvid && o.get("bb").is_none())
    };
    // A state's node draws its name on the first line.
    let state_of = |o: &Value| texts(&o["_ldraw_"]).into_iter().next().map(|t| t.text);
    let mut faults = Vec::new();
    let mut titles = Vec::new();
    for (title, members) in flows {
        let drawn: Vec<Rect> = objects
            .iter()
            .flat_map(|o| texts(&o["_ldraw_"]))
            .filter(|t| &t.text == title)
            .map(|t| t.area)
            .collect();
        if drawn.len() != 1 {
            faults.push(format!("title `{title}` drawn {} times", drawn.len()));
            continue;
        }
        let area = drawn[0];
        let cluster = objects.iter().find(|o| {
            bb(o).is_some()
                && o["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|n| node(&json!(n)).and_then(state_of).as_ref() == members.first())
        });
        match cluster.and_then(bb) {
            Some(b) if area.within(&b) => {}
            _ => faults.push(format!("title `{title}` is not inside its flow's cluster")),
        }
        titles.push((title, area));
    }
    let edges: Vec<Value> = g["edges"].as_array().cloned().unwrap_or_default();
    let labels: Vec<(usize, Text)> = edges
        .iter()
        .enumerate()
        .flat_map(|(i, e)| texts(&e["_ldraw_"]).into_iter().map(move |t| (i, t)))
        .collect();
    for (n, (i, a)) in labels.iter().enumerate() {
        for (j, b) in &labels[n + 1..] {
            if i != j && a.area.overlaps(&b.area) {
                faults.push(format!("edge labels `{}` and `{}` overlap", a.text, b.text));
            }
        }
    }
    for (i, e) in edges.iter().enumerate() {
        if e["style"] == "invis" {
            continue;
        }
        let name = |end: &str| {
            node(&e[end])
                .and_then(state_of)
                .unwrap_or_else(|| "(start)".into())
        };
        let line: Vec<(f64, f64)> = ["_draw_", "_hdraw_", "_tdraw_"]
            .iter()
            .flat_map(|k| points(&e[*k]))
            .collect();
        for (title, area) in &titles {
            if line.iter().any(|p| area.contains(*p)) {
                faults.push(format!(
                    "edge {} -> {} crosses title `{title}`",
                    name("tail"),
                    name("head")
                ));
            }
            for t in texts(&e["_ldraw_"]) {
                if t.area.overlaps(area) {
                    faults.push(format!("edge label `{}` covers title `{title}`", t.text));
                }
            }
        }
        for (j, t) in &labels {
            let looped = edges[*j]["tail"] == edges[*j]["head"];
            if *j != i && looped && line.iter().any(|p| t.area.contains(*p)) {
                faults.push(format!(
                    "edge {} -> {} crosses the loop label `{}`",
                    name("tail"),
                    name("head"),
                    t.text
                ));
            }
        }
    }
    faults
}

/// The edges of a DOT layout: (tail state, head state, label, style).
fn layout_edges(json: &str) -> Vec<(String, String, String, String)> {
    let g: Value = serde_json::from_str(json).unwrap();
    let objects = g["objects"].as_array().cloned().unwrap_or_default();
    let name = |gvid: &Value| {
        objects
            .iter()
            .find(|o| o["_gvid"] == *gvid && o.get("bb").is_none())
            .and_then(|o| texts(&o["_ldraw_"]).into_iter().next())
            .map(|t| t.text)
            .unwrap_or_default()
    };
    g["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["style"] != "invis")
        .map(|e| {
            let label: Vec<String> = texts(&e["_ldraw_"]).into_iter().map(|t| t.text).collect();
            (
                name(&e["tail"]),
                name(&e["head"]),
                label.join(" "),
                e["style"].as_str().unwrap_or("solid").to_string(),
            )
        })
        .collect()
}

/// Each label of `want` is one of `drawn` (or begins one, with
/// `prefixes`); none of `drawn` is cut short with an ellipsis. A drawn
/// label listing a state's loops (`• ` before each) counts as each.
fn label_faults(want: &[String], drawn: &[String], prefixes: bool) -> Vec<String> {
    let mut faults: Vec<String> = drawn
        .iter()
        .filter(|l| l.contains('…'))
        .map(|l| format!("label cut short: `{l}`"))
        .collect();
    let drawn: Vec<String> = drawn
        .iter()
        .flat_map(|l| l.split("• "))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    for w in want {
        let found = drawn
            .iter()
            .any(|d| d == w || (prefixes && d.starts_with(w.as_str())));
        if !found {
            faults.push(format!("label not drawn whole: `{w}`"));
        }
    }
    faults
}

#[test]
fn every_diagram_renders_in_graphviz_with_whole_labels_and_clear_titles() {
    let mut faults = Vec::new();
    for d in shipped() {
        let svg = graphviz("svg", &d.dot, &d.name);
        assert!(svg.contains("<svg"), "{}", d.name);
        let json = graphviz("json", &d.dot, &d.name);
        let edges = layout_edges(&json);
        let drawn: Vec<String> = edges.iter().map(|e| e.2.clone()).collect();
        let mut f = label_faults(&d.labels, &drawn, d.label_prefixes);
        f.extend(layout_faults(&json, &d.flows));
        for (from, to, label) in &d.resubmissions {
            let edge = edges
                .iter()
                .find(|e| &e.0 == from && &e.1 == to && &e.2 == label);
            match edge {
                Some(e) if e.3 == "dashed" => {}
                Some(_) => f.push(format!("{from} -> {to}: the resubmission is not dashed")),
                None => f.push(format!("no resubmission edge {from} -> {to}")),
            }
        }
        faults.extend(f.into_iter().map(|x| format!("{}: {x}", d.name)));
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

/// The checks above find what they look for: in the reference Logout as
/// the renderer drew it with each flow's title as its cluster's label, in
/// the channel machine as it drew it with a loop a transition, and in a
/// label cut short.
#[test]
fn the_graphviz_checks_catch_a_crossed_title_and_a_cut_label() {
    let report = hisflow::validate_paths(&[root().join("workflows/reference")]).unwrap();
    let logout = report.platforms[0]
        .handler("session.request.logout")
        .unwrap();
    let old = std::fs::read_to_string(
        root().join("tests/fixtures/diagrams/titles-as-cluster-labels.dot"),
    )
    .unwrap();
    let json = graphviz("json", &old, "the old layout");
    let faults = layout_faults(&json, &workflow(logout).flows);
    assert!(
        faults
            .iter()
            .any(|f| f.contains("crosses title `EF2: Not Ready Failure`")),
        "{faults:?}"
    );
    let missing = layout_faults(
        &json,
        &[("EF9: Nowhere".into(), vec!["need_reason".into()])],
    );
    assert_eq!(missing, ["title `EF9: Nowhere` drawn 0 times"]);
    let elsewhere = layout_faults(
        &json,
        &[("AF1: Logout Reason".into(), vec!["logged_out".into()])],
    );
    assert!(
        elsewhere
            .iter()
            .any(|f| f.contains("not inside its flow's cluster")),
        "{elsewhere:?}"
    );

    let loops =
        std::fs::read_to_string(root().join("tests/fixtures/diagrams/a-loop-a-transition.dot"))
            .unwrap();
    let faults = layout_faults(&graphviz("json", &loops, "the old loops"), &[]);
    assert!(
        faults.iter().any(|f| f.contains("crosses the loop label")),
        "{faults:?}"
    );

    let cut = label_faults(
        &["a == 1 && b == 2".to_string()],
        &["a == 1 && b…".to_string()],
        false,
    );
    assert_eq!(cut.len(), 2, "{cut:?}");
}

// ---------------------------------------------------------------- Mermaid

const MERMAID: &str = "tests/assets/mermaid/mermaid.min.js";

/// The page Mermaid renders in: `check(text)` renders a diagram and says
/// what went wrong, what its labels read and whether any is clipped.
fn mermaid_page(dir: &Path) -> PathBuf {
    let page = dir.join("mermaid.html");
    let script = root().join(MERMAID);
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html>
<meta charset="utf-8">
<body>
<div id="host"></div>
<script>
  window.logged = [];
  for (const level of ['error', 'warn']) {{
    console[level] = (...args) => window.logged.push(level + ': ' + args.map(String).join(' '));
  }}
  window.addEventListener('error', e => window.logged.push('page: ' + e.message));
  window.addEventListener('unhandledrejection', e => window.logged.push('page: ' + e.reason));
</script>
<script src="file://{script}"></script>
<script>
  mermaid.initialize({{ startOnLoad: false, logLevel: 'warn' }});
  // A label's text as it reads: line breaks as spaces, and without the
  // zero-width spaces that keep a `<` from opening a tag.
  const read = el => {{
    const c = el.cloneNode(true);
    c.querySelectorAll('br').forEach(b => b.replaceWith(' '));
    return c.textContent.replace(/\u200B/g, '').replace(/\s+/g, ' ').trim();
  }};
  let n = 0;
  window.check = async text => {{
    window.logged.length = 0;
    const out = {{ error: null, edges: [], nodes: [], clipped: [], logged: window.logged }};
    const host = document.getElementById('host');
    host.innerHTML = '';
    try {{
      if (!(await mermaid.parse(text))) throw new Error('parse refused it');
      const {{ svg }} = await mermaid.render('diagram' + (n++), text);
      if (svg.includes('aria-roledescription="error"') || svg.includes('Syntax error')) {{
        throw new Error('rendered as an error');
      }}
      host.innerHTML = svg;
      out.edges = [...host.querySelectorAll('g.edgeLabel')].map(read);
      out.nodes = [...host.querySelectorAll('g.node')].map(read);
      for (const fo of host.querySelectorAll('foreignObject')) {{
        // In the SVG's own units, as the content's size is: the page may
        // show the SVG scaled.
        const [width, height] = [fo.width.baseVal.value, fo.height.baseVal.value];
        const inner = fo.firstElementChild;
        if (inner && (inner.scrollWidth > width + 1 || inner.scrollHeight > height + 1)) {{
          out.clipped.push(read(fo));
        }}
      }}
    }} catch (e) {{
      out.error = String((e && e.message) || e);
    }}
    out.logged = [...window.logged];
    return out;
  }};
</script>
"#,
            script = script.display()
        ),
    )
    .unwrap();
    page
}

/// The version tests/assets/mermaid/README.md names is the one vendored.
#[test]
fn the_vendored_mermaid_is_the_version_its_readme_names() {
    let readme = std::fs::read_to_string(root().join("tests/assets/mermaid/README.md")).unwrap();
    let version = readme
        .split("version **")
        .nth(1)
        .and_then(|r| r.split("**").next())
        .expect("the README names a version");
    let script = std::fs::read_to_string(root().join(MERMAID)).unwrap();
    assert!(
        script.contains(&format!("{{version:\"{version}\"}}")),
        "{MERMAID} is not mermaid {version}"
    );
}

async fn mermaid_check(p: &mut Page, text: &str) -> Value {
    p.eval(&format!("check({})", Value::from(text))).await
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// What went wrong in one Mermaid render.
fn mermaid_faults(r: &Value) -> Vec<String> {
    let mut f = Vec::new();
    if !r["error"].is_null() {
        f.push(format!("Mermaid: {}", r["error"]));
    }
    f.extend(
        strings(&r["logged"])
            .into_iter()
            .map(|l| format!("logged {l}")),
    );
    f.extend(
        strings(&r["clipped"])
            .into_iter()
            .map(|l| format!("label clipped: `{l}`")),
    );
    f
}

fn in_chromium(test: impl AsyncFnOnce(&mut Page)) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let page = mermaid_page(dir.path());
        let (_browser, port) = chromium();
        let mut p = Page::connect(&page_url(port)).await;
        p.call("Page.enable", json!({})).await;
        p.call(
            "Page.navigate",
            json!({ "url": format!("file://{}", page.display()) }),
        )
        .await;
        p.wait_for("typeof window.check === 'function' && typeof mermaid === 'object'")
            .await;
        tokio::time::timeout(Duration::from_secs(300), test(&mut p))
            .await
            .expect("Mermaid rendered every diagram within 5 minutes");
    });
}

#[test]
fn every_diagram_renders_in_mermaid_with_whole_labels() {
    let drawn = shipped();
    let pages = pages();
    in_chromium(async |p| {
        let mut faults = Vec::new();
        for d in &drawn {
            let r = mermaid_check(p, &d.mermaid).await;
            let mut f = mermaid_faults(&r);
            if r["error"].is_null() {
                f.extend(label_faults(
                    &d.labels,
                    &strings(&r["edges"]),
                    d.label_prefixes,
                ));
                let nodes = strings(&r["nodes"]);
                for s in &d.states {
                    if !nodes
                        .iter()
                        .any(|n| n == s || n.starts_with(&format!("{s} ")))
                    {
                        f.push(format!("state {s} not drawn"));
                    }
                }
            }
            for (from, to, label) in &d.resubmissions {
                let line = format!("    {from} --> {to} : {label}\n");
                if !d.mermaid.contains(&line) {
                    f.push(format!("no resubmission edge `{}`", line.trim()));
                }
            }
            faults.extend(f.into_iter().map(|x| format!("{}: {x}", d.name)));
        }
        for (name, text) in &pages {
            let r = mermaid_check(p, text).await;
            let mut f = mermaid_faults(&r);
            f.extend(label_faults(&[], &strings(&r["edges"]), false));
            faults.extend(f.into_iter().map(|x| format!("docs/diagrams/{name}: {x}")));
        }
        assert!(faults.is_empty(), "{}", faults.join("\n"));
    });
}

/// The Mermaid checks find what they look for: a diagram Mermaid cannot
/// parse, and a label it would clip.
#[test]
fn the_mermaid_checks_catch_a_broken_diagram() {
    in_chromium(async |p| {
        let broken = mermaid_check(p, "stateDiagram-v2\n    a --> : b c --> \n").await;
        assert!(!mermaid_faults(&broken).is_empty(), "{broken}");

        let fine = mermaid_check(p, "stateDiagram-v2\n    a --> b : x<br>y < z\n").await;
        assert!(mermaid_faults(&fine).is_empty(), "{fine}");
        assert_eq!(strings(&fine["edges"]), ["x y < z"]);

        // An unescaped `<` before a letter opens a tag: the label loses the
        // rest, which the label check sees.
        let swallowed = mermaid_check(p, "stateDiagram-v2\n    a --> b : x <y && z\n").await;
        let edges = strings(&swallowed["edges"]);
        assert!(
            !label_faults(&["x <y && z".into()], &edges, false).is_empty(),
            "{swallowed}"
        );
    });
}

/// AF1 of the use case: the MediaBar resubmits the logout with the reason
/// and "the basic flow resumes at step 3", Decision 1 — the Logout's start.
/// Every platform's Logout page draws that edge.
#[test]
fn af1_is_drawn_back_to_decision_1() {
    let report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    for p in &report.platforms {
        let logout = p.handler("session.request.logout").unwrap();
        let start = logout.state(logout.start);
        assert!(
            start
                .description
                .as_deref()
                .is_some_and(|d| d.starts_with("Decision 1")),
            "{}: the Logout starts at Decision 1",
            p.name
        );
        let need = logout.state(logout.state_id("need_reason").unwrap());
        assert_eq!(need.flow, "AF1");
        let page = std::fs::read_to_string(
            root()
                .join("docs/diagrams")
                .join(format!("{}-logout.md", p.name)),
        )
        .unwrap();
        assert!(
            page.contains(&format!(
                "    need_reason --> {} : resubmitted with reason\n",
                start.name
            )),
            "{}: {page}",
            p.name
        );
    }
}
