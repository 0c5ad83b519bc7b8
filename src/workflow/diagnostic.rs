//! Findings about workflow and platform files: data, not errors. The loader and
//! the validator push them into a [`Diagnostics`] set; only the CLI renders them.

use std::fmt;

use super::source::{FileId, Span};

/// How bad a finding is. Warnings do not fail `hisflow validate` unless
/// `--deny-warnings` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! rules {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $sev:ident; )*) => {
        /// Every rule the loader and validator check. Each has a stable code
        /// (`hisflow::<code>`), which integrators may match on in CI.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Rule {
            /// All rules, in documentation order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The stable code, without the `hisflow::` prefix.
            pub fn name(self) -> &'static str {
                match self { $(Rule::$variant => $code,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$sev,)* }
            }

            /// One sentence on what the rule reports, for `hisflow rules`
            /// and the table of docs/rules.md.
            pub fn summary(self) -> &'static str {
                match self { $(Rule::$variant => concat!($($doc),*).trim_ascii(),)* }
            }

            /// The rule's explanation, `src/workflow/rules/<name>.md`
            /// (see [`crate::workflow::rules`]): one file per rule, so that
            /// the registry cannot gain a rule without one.
            pub fn text(self) -> &'static str {
                match self { $(Rule::$variant => include_str!(concat!("rules/", $code, ".md")),)* }
            }
        }
    };
}

rules! {
    /// The file cannot be read as UTF-8 text.
    NotUtf8 = "not-utf8", Error;
    /// The file is larger than the loader accepts.
    FileTooLarge = "file-too-large", Error;
    /// The YAML, or an expression, nests deeper than hisflow accepts.
    TooDeep = "too-deep", Error;
    /// The YAML is malformed.
    YamlSyntax = "yaml-syntax", Error;
    /// YAML anchors, aliases and tags are not part of the language.
    YamlAnchor = "yaml-anchor", Error;
    /// A mapping has the same key twice.
    DuplicateKey = "duplicate-key", Error;
    /// A key the language does not know.
    UnknownKey = "unknown-key", Error;
    /// A required key is absent.
    MissingKey = "missing-key", Error;
    /// A value has the wrong type or form.
    InvalidValue = "invalid-value", Error;
    /// A state has none, or more than one, of the state kinds.
    StateKind = "state-kind", Error;
    /// A key that belongs to another kind of state.
    MisplacedKey = "misplaced-key", Error;
    /// `start` names no state.
    UndefinedStart = "undefined-start", Error;
    /// A transition names no state.
    UndefinedTarget = "undefined-target", Error;
    /// No path from `start` reaches the state.
    UnreachableState = "unreachable-state", Error;
    /// No path from `start` reaches a terminal (`respond`) state.
    NoTerminalPath = "no-terminal-path", Error;
    /// A non-terminal state with no transition out.
    DeadEnd = "dead-end", Error;
    /// A loop of states with no transition leaving it.
    CycleWithoutExit = "cycle-without-exit", Error;
    /// An outcome of an operation, foreach or call that no transition handles.
    UnhandledOutcome = "unhandled-outcome", Error;
    /// A transition on an outcome the state can never produce.
    UnknownOutcome = "unknown-outcome", Error;
    /// An operation the platform's adapter does not have.
    UnknownOperation = "unknown-operation", Error;
    /// An argument the operation does not take.
    UnknownArgument = "unknown-argument", Error;
    /// An argument the operation requires is absent.
    MissingArgument = "missing-argument", Error;
    /// A CEL expression does not parse.
    CelSyntax = "cel-syntax", Error;
    /// An identifier no scope defines.
    UnknownIdentifier = "unknown-identifier", Error;
    /// A field of `request`, `session`, `platform` or `error` that does not exist.
    UnknownField = "unknown-field", Error;
    /// `call` names a workflow the platform does not have.
    UnknownWorkflow = "unknown-workflow", Error;
    /// Workflows that call each other in a loop.
    RecursiveCall = "recursive-call", Error;
    /// Two workflow files of one folder share a name.
    DuplicateWorkflow = "duplicate-workflow", Error;
    /// A request of the client protocol that no workflow of the platform handles.
    UnhandledRequest = "unhandled-request", Error;
    /// A request name the client protocol does not define.
    UnknownRequest = "unknown-request", Error;
    /// A state's `flow` tag is not declared in `flows`.
    UnknownFlow = "unknown-flow", Error;
    /// A flow declared in `flows` that no state is tagged with.
    UnusedFlow = "unused-flow", Warning;
    /// A `respond` error code outside the protocol's set.
    UnknownErrorCode = "unknown-error-code", Error;
    /// An event name that does not have the `<entity>.event.<what>` form.
    InvalidEventName = "invalid-event-name", Error;
    /// An adapter kind hisflow does not have.
    UnknownAdapter = "unknown-adapter", Error;
    /// `extends` names no platform folder.
    UnknownPlatform = "unknown-platform", Error;
    /// Platforms that extend each other in a loop.
    ExtendsCycle = "extends-cycle", Error;
    /// `save` names a session field that workflows cannot write.
    UnknownSessionField = "unknown-session-field", Error;
    /// A foreach binding that hides a name expressions read (`session`, …).
    ShadowedName = "shadowed-name", Error;
    /// A scenario names a channel that is not a media (`voice`, `email`, `chat`).
    UnknownChannel = "unknown-channel", Error;
    /// A switch event the catalog does not have, or the platform's adapter never delivers.
    UnknownEvent = "unknown-event", Error;
    /// A switch event the adapter delivers that no machine hears, no workflow handles and `events:` does not ignore.
    UnhandledEvent = "unhandled-event", Error;
    /// Two machines of one folder are for the same entity.
    DuplicateMachine = "duplicate-machine", Error;
    /// A platform sets a setting no platform of its chain declares, or
    /// declares one again.
    UnknownSetting = "unknown-setting", Error;
    /// A value outside its declared set: a setting's enum value, or a
    /// literal compared with a setting, a machine's state or an agent state.
    UnknownValue = "unknown-value", Error;
    /// An expression calls a function the language does not have, or with
    /// the wrong number of arguments.
    UnknownFunction = "unknown-function", Error;
    /// A workflow variable is read where some path from `start` has not set
    /// it.
    UnassignedVariable = "unassigned-variable", Error;
    /// An overrides file that cannot apply: outside a platform, to no
    /// inherited workflow, twice in a folder, or removing what is not there.
    BadOverride = "bad-override", Error;
}

impl Rule {
    /// The full code as printed: `hisflow::<name>`.
    pub fn code(self) -> String {
        format!("hisflow::{}", self.name())
    }

    /// The rule's section of `docs/rules.md` in the repository, which
    /// every output format links to.
    pub fn url(self) -> String {
        format!("{RULES_URL}#{}", self.name())
    }

    /// The rule named `name` (`dead-end`) or coded `code` (`hisflow::dead-end`).
    pub fn by_name(name: &str) -> Option<Rule> {
        let name = name.trim().trim_start_matches("hisflow::");
        Rule::ALL.iter().copied().find(|r| r.name() == name)
    }
}

/// Where `docs/rules.md` is published: the repository's copy on `main`.
pub const RULES_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/rules.md");

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hisflow::{}", self.name())
    }
}

/// A secondary place a diagnostic points at ("first defined here").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Related {
    pub span: Span,
    pub label: String,
}

/// One finding: a rule broken at a span, with a label under the offending
/// token and a help line saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub rule: Rule,
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn new(rule: Rule, span: Span, message: impl Into<String>) -> Self {
        Self {
            rule,
            severity: rule.severity(),
            span,
            message: message.into(),
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push(Related {
            span,
            label: label.into(),
        });
        self
    }

    pub fn file(&self) -> FileId {
        self.span.file
    }
}

/// The findings of one run, in a stable order, without duplicates (a workflow
/// inherited by several platforms is checked once per platform).
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// The items again, so that dedup stays linear on files with thousands
    /// of findings.
    seen: std::collections::HashSet<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        if self.seen.insert(d.clone()) {
            self.items.push(d);
        }
    }

    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sorts by file, then position, then code: the order a reader scans in.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            (a.span.file, a.span.range.start, a.rule).cmp(&(
                b.span.file,
                b.span.range.start,
                b.rule,
            ))
        });
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    /// Drops the findings of the rules in `ignored` (names, `dead-end`, or
    /// codes, `hisflow::dead-end`), and each finding whose line, or the
    /// line above it, carries a comment `# hisflow-ignore: dead-end, …`
    /// naming its rule. Returns how many were dropped. It only hides them
    /// from a report: a workflow with an error still cannot run.
    pub fn suppress(&mut self, sources: &crate::Sources, ignored: &[String]) -> usize {
        let named = |list: &str, rule: Rule| {
            list.split([',', ' ', '\t'])
                .map(|n| n.trim().trim_start_matches("hisflow::"))
                .any(|n| n == rule.name())
        };
        let before = self.items.len();
        self.items.retain(|d| {
            if ignored.iter().any(|i| named(i, d.rule)) {
                return false;
            }
            let file = sources.get(d.span.file);
            let (line, _) = file.line_col(d.span.range.start);
            let marked = |n: usize| {
                let text = file.text();
                let start = file.offset_of(n, 1).min(text.len());
                n >= 1
                    && text[start..]
                        .split('\n')
                        .next()
                        .and_then(|l| l.split_once("# hisflow-ignore:"))
                        .is_some_and(|(_, list)| named(list, d.rule))
            };
            !(marked(line) || marked(line - 1))
        });
        self.seen = self.items.iter().cloned().collect();
        before - self.items.len()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The candidate closest to a misspelt name, if close enough.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// "did you mean" for a misspelt name, if a candidate is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = HashSet::new();
        for r in Rule::ALL {
            assert!(seen.insert(r.name()), "duplicate code {}", r.name());
            assert!(
                r.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!r.summary().is_empty());
        }
    }

    #[test]
    fn did_you_mean_picks_the_closest_name() {
        assert_eq!(
            did_you_mean("otherwize", ["on", "otherwise", "op"]).as_deref(),
            Some("did you mean `otherwise`?")
        );
        assert_eq!(did_you_mean("zzz", ["on", "otherwise"]), None);
    }
}
