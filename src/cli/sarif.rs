//! `--format sarif`: a SARIF 2.1.0 log for code-scanning dashboards. One
//! run, every rule of the registry in the driver (so a dashboard can explain
//! a rule that found nothing this time), each result pointing at its region
//! with start and end, and its related places.

use serde_json::{Value, json};

use hisflow::{Diagnostic, Rule, Sources};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn sarif<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>, sources: &Sources) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.code(),
                "name": r.name(),
                "shortDescription": { "text": r.summary() },
                "helpUri": r.url(),
                "defaultConfiguration": { "level": r.severity().as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .into_iter()
        .map(|d| {
            let index = Rule::ALL.iter().position(|r| *r == d.rule);
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(h);
            }
            let mut result = json!({
                "ruleId": d.rule.code(),
                "level": d.severity.as_str(),
                "message": { "text": text },
                "locations": [location(sources, &d.span, None, &d.label)],
            });
            if let Some(i) = index {
                result["ruleIndex"] = json!(i);
            }
            if !d.related.is_empty() {
                result["relatedLocations"] = d
                    .related
                    .iter()
                    .enumerate()
                    .map(|(i, r)| location(sources, &r.span, Some(i), &r.label))
                    .collect();
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "hisflow",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            // Columns count characters, as the other formats' do.
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).expect("a JSON value serializes");
    s.push('\n');
    s
}

fn location(sources: &Sources, span: &hisflow::Span, id: Option<usize>, label: &str) -> Value {
    let f = sources.get(span.file);
    let (start_line, start_column) = f.line_col(span.range.start);
    let (end_line, end_column) = f.line_col(span.range.end);
    let mut loc = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(f.path()) },
            "region": {
                "startLine": start_line,
                "startColumn": start_column,
                "endLine": end_line,
                "endColumn": end_column,
            },
        },
    });
    if let Some(id) = id {
        loc["id"] = json!(id);
    }
    if !label.is_empty() {
        loc["message"] = json!({ "text": label });
    }
    loc
}

/// A path as a URI reference: relative paths stay relative (a dashboard
/// resolves them against the checkout), absolute ones become `file://`
/// URIs, and every byte outside the unreserved set and `/` is escaped.
fn uri(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    let encoded = hisflow::lsp::uri::encode_path(text);
    if path.is_absolute() {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::uri;
    use std::path::Path;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri(Path::new("./a b/w.yaml")), "a%20b/w.yaml");
        assert_eq!(uri(Path::new("/x/é.yaml")), "file:///x/%C3%A9.yaml");
        assert_eq!(uri(Path::new("w#1.yaml")), "w%231.yaml");
    }
}
