//! Rendering diagnostics: miette's graphical report for people, a JSON array
//! for machines.

use std::fmt;
use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

use hisflow::{Diagnostic, Severity, Sources};

/// One diagnostic with its file, in the shape miette renders.
struct Rendered {
    message: String,
    code: String,
    url: String,
    severity: miette::Severity,
    help: Option<String>,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    related: Vec<Rendered>,
}

impl Rendered {
    fn new(d: &Diagnostic, sources: &Sources) -> Self {
        let file = sources.get(d.span.file);
        let name = file.path().display().to_string();
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            Some(d.label.clone()).filter(|l| !l.is_empty()),
            span(d.span.range.clone()),
        )];
        let mut related = Vec::new();
        for r in &d.related {
            if r.span.file == d.span.file {
                labels.push(LabeledSpan::new_with_span(
                    Some(r.label.clone()),
                    span(r.span.range.clone()),
                ));
            } else {
                let other = sources.get(r.span.file);
                related.push(Rendered {
                    message: r.label.clone(),
                    code: String::new(),
                    url: String::new(),
                    severity: miette::Severity::Advice,
                    help: None,
                    source: NamedSource::new(
                        other.path().display().to_string(),
                        other.text().to_string(),
                    ),
                    labels: vec![LabeledSpan::new_primary_with_span(
                        Some(r.label.clone()),
                        span(r.span.range.clone()),
                    )],
                    related: Vec::new(),
                });
            }
        }
        Rendered {
            message: d.message.clone(),
            code: d.rule.code(),
            url: d.rule.url(),
            severity: match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            help: d.help.clone(),
            source: NamedSource::new(name, file.text().to_string()),
            labels,
            related,
        }
    }
}

fn span(r: std::ops::Range<usize>) -> SourceSpan {
    SourceSpan::new(r.start.into(), r.end.saturating_sub(r.start))
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(&self.code) as Box<dyn fmt::Display>)
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.url.is_empty()).then(|| Box::new(&self.url) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}

/// Past this column a diagnostic is told without its source line.
const MAX_SNIPPET_COLUMN: usize = 4096;

/// Renders diagnostics for a person: colour only on a terminal (and never
/// with `NO_COLOR`), width from `COLUMNS` or 100.
pub fn human<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>, sources: &Sources) -> String {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    for d in diags {
        // miette pads to the column with a width argument, which panics
        // past 65,535; a line that long is no snippet to read anyway.
        let far = |span: &hisflow::workflow::source::Span| {
            let f = sources.get(span.file);
            f.line_col(span.range.start).1 > MAX_SNIPPET_COLUMN
                || f.line_col(span.range.end).1 > MAX_SNIPPET_COLUMN
        };
        if far(&d.span) || d.related.iter().any(|r| far(&r.span)) {
            let f = sources.get(d.span.file);
            let (line, col) = f.line_col(d.span.range.start);
            out.push_str(&format!(
                "{} ({})\n\n  × {}\n   at {}:{line}:{col} ({})\n",
                d.rule.code(),
                d.rule.url(),
                d.message,
                f.path().display(),
                d.label
            ));
            if let Some(h) = &d.help {
                out.push_str(&format!("  help: {h}\n"));
            }
            out.push('\n');
            continue;
        }
        let r = Rendered::new(d, sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("{}: {}\n", d.rule, d.message));
        }
        out.push('\n');
    }
    out
}

/// One diagnostic in the `--format json` array. Lines and columns are 1-based;
/// the end is exclusive.
#[derive(Serialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: &'static str,
    pub code: String,
    /// The rule's section of docs/rules.md.
    pub url: String,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    pub related: Vec<JsonRelated>,
}

#[derive(Serialize)]
pub struct JsonRelated {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub label: String,
}

pub fn json<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>, sources: &Sources) -> String {
    let items: Vec<JsonDiagnostic> = diags
        .into_iter()
        .map(|d| {
            let f = sources.get(d.span.file);
            let (line, column) = f.line_col(d.span.range.start);
            let (end_line, end_column) = f.line_col(d.span.range.end);
            JsonDiagnostic {
                file: f.path().display().to_string(),
                line,
                column,
                end_line,
                end_column,
                severity: d.severity.as_str(),
                code: d.rule.code(),
                url: d.rule.url(),
                message: d.message.clone(),
                label: d.label.clone(),
                help: d.help.clone(),
                related: d
                    .related
                    .iter()
                    .map(|r| {
                        let rf = sources.get(r.span.file);
                        let (line, column) = rf.line_col(r.span.range.start);
                        JsonRelated {
                            file: rf.path().display().to_string(),
                            line,
                            column,
                            label: r.label.clone(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).expect("diagnostics serialize");
    s.push('\n');
    s
}

/// One `file:line:col: severity: message [code]` a line: what editors' and
/// CI's problem matchers read (as gcc and actionlint print).
pub fn short<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>, sources: &Sources) -> String {
    let mut out = String::new();
    for d in diags {
        let f = sources.get(d.span.file);
        let (line, col) = f.line_col(d.span.range.start);
        out.push_str(&format!(
            "{}:{line}:{col}: {}: {} [{}]\n",
            f.path().display(),
            d.severity.as_str(),
            one_line(&d.message),
            d.rule.code()
        ));
    }
    out
}

/// GitHub Actions workflow commands: each diagnostic an annotation on its
/// file, lines and columns, titled with its rule.
pub fn github<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>, sources: &Sources) -> String {
    let mut out = String::new();
    for d in diags {
        let f = sources.get(d.span.file);
        let (line, col) = f.line_col(d.span.range.start);
        let (end_line, end_col) = f.line_col(d.span.range.end);
        // SARIF and GitHub name the levels as the severities are named.
        let level = d.severity.as_str();
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(h);
        }
        out.push_str(&format!(
            "::{level} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
            property(&f.path().display().to_string()),
            property(&d.rule.code()),
            data(&message)
        ));
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: `:` and `,` escaped too.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}
