//! CEL text into trees, by one of cel's two parsers. Its ANTLR parser keeps
//! where every node is written and knows the extensions' macros, but costs
//! tens of µs per expression, more than the rest of validation; its
//! hand-written Pratt parser builds the same tree many times faster, without
//! positions. An expression is parsed by the fast one when it can be, by the
//! exact one when positions are needed (a diagnostic, a variable read) or it
//! may call a macro only the exact one knows.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use cel::common::ast::SourceInfo;
use cel::parser::PrattParser;
use cel::{IdedExpr, ParseErrors, Program};
use rustc_hash::FxHashMap;

use super::expr::env;

/// Receiver macros the extensions add (lists' `sortBy`, math's `greatest`
/// and `least`): the fast parser knows only the standard ones, and would
/// leave such a call unexpanded.
const EXTENSION_MACROS: &[&str] = &["sortBy", "greatest", "least"];

/// One expression's tree, and where its nodes are written when the exact
/// parser read it.
#[derive(Debug)]
pub struct Parsed {
    tree: Tree,
}

#[derive(Debug)]
enum Tree {
    Exact(Program),
    Fast {
        expr: IdedExpr,
        /// For callers that run a [`Program`]: built by the exact parser on
        /// first use, since cel builds one from text only.
        program: OnceLock<Program>,
        source: Box<str>,
    },
}

impl Parsed {
    pub fn expression(&self) -> &IdedExpr {
        match &self.tree {
            Tree::Exact(p) => p.expression(),
            Tree::Fast { expr, .. } => expr,
        }
    }

    /// Where each node is written; `None` when the fast parser read it.
    pub fn positions(&self) -> Option<&SourceInfo> {
        match &self.tree {
            Tree::Exact(p) => Some(p.source_info()),
            Tree::Fast { .. } => None,
        }
    }

    pub fn program(&self) -> &Program {
        match &self.tree {
            Tree::Exact(p) => p,
            Tree::Fast {
                program, source, ..
            } => program.get_or_init(|| match exact(source) {
                Ok(Ok(p)) => p,
                // The two parsers agree on every expression the tests know;
                // should they not on another, a program that fails when run
                // stands in, rather than one that computes something else.
                _ => stand_in(),
            }),
        }
    }
}

/// A program that fails whenever it runs.
fn stand_in() -> Program {
    exact("the_expression_did_not_parse")
        .ok()
        .and_then(Result::ok)
        .expect("an identifier parses")
}

/// The ANTLR parser. It is third-party code fed user input: a panic in it
/// must become a diagnostic, not take the validator down.
fn exact(source: &str) -> std::thread::Result<Result<Program, ParseErrors>> {
    std::panic::catch_unwind(AssertUnwindSafe(|| env().compile(source)))
}

/// The Pratt parser, when it may give the exact parser's tree; `None` when
/// it fails or panics: the exact parser then says why.
fn fast(source: &str) -> Option<IdedExpr> {
    if let Some(e) = plain(source) {
        return Some(e);
    }
    let calls_extension = EXTENSION_MACROS
        .iter()
        .any(|m| super::source::occurrences(source, m).next().is_some());
    if calls_extension || operators_in_a_row(source) {
        return None;
    }
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        PrattParser::new()
            .enable_optional_syntax(false)
            .parse(source)
            .ok()
    }))
    .ok()
    .flatten()
    .filter(agrees)
}

/// The tree of the commonest expressions, read without a parser: a quoted
/// text without escapes, a whole number, `true`, `false`, `null`, or a path
/// of names (`request.channel`). Each is the tree the Pratt parser builds,
/// ids included; `None` for anything else, which the parsers read.
fn plain(source: &str) -> Option<IdedExpr> {
    use cel::common::ast::{Expr, LiteralValue, SelectExpr};
    let literal = |value| {
        Some(IdedExpr {
            id: 1,
            expr: Expr::Literal(value),
        })
    };
    let bytes = source.as_bytes();
    match bytes {
        [] => None,
        [q @ (b'\'' | b'"'), inner @ .., last]
            if last == q
                && !inner
                    .iter()
                    .any(|c| matches!(c, b'\\' | b'\n' | b'\r') || c == q) =>
        {
            literal(LiteralValue::String(
                source[1..source.len() - 1].to_string().into(),
            ))
        }
        [b'1'..=b'9', ..] | [b'0'] if bytes.iter().all(u8::is_ascii_digit) => {
            literal(LiteralValue::Int(source.parse::<i64>().ok()?.into()))
        }
        _ => match source {
            "true" => literal(LiteralValue::Boolean(true.into())),
            "false" => literal(LiteralValue::Boolean(false.into())),
            "null" => literal(LiteralValue::Null),
            _ => {
                let mut names = source.split('.');
                let mut e = IdedExpr {
                    id: 1,
                    expr: Expr::Ident(name(names.next()?)?.to_string()),
                };
                for (id, field) in (2..).zip(names) {
                    e = IdedExpr {
                        id,
                        expr: Expr::Select(SelectExpr {
                            operand: Box::new(e),
                            field: name(field)?.to_string(),
                            test: false,
                        }),
                    };
                }
                Some(e)
            }
        },
    }
}

/// `word` if it is a name CEL reads as one: not a literal's word nor one
/// it reserves.
fn name(word: &str) -> Option<&str> {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    let mut chars = word.bytes();
    let first = chars.next()?;
    let ok = (first.is_ascii_alphabetic() || first == b'_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !RESERVED.contains(&word);
    ok.then_some(word)
}

/// Whether `!` or `-` follows `!` or `-` (quoted text included): the fast
/// parser cancels pairs (`!--x` is `!x`), the exact one refuses mixed runs.
fn operators_in_a_row(source: &str) -> bool {
    let mut previous = false;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        let operator = match c {
            '!' => chars.peek() != Some(&'='),
            '-' => true,
            c if c.is_whitespace() => continue,
            _ => false,
        };
        if operator && previous {
            return true;
        }
        previous = operator;
    }
    false
}

/// Whether the exact parser is known to build the same tree. The two differ
/// on operators in a row (`!-1`, where the exact one reads `-1` as one
/// number) and on what a message is built of (`(a){}`, which the exact one
/// refuses), and may on a sign before a bracketed number (`-(1)`).
fn agrees(e: &IdedExpr) -> bool {
    use cel::common::ast::{EntryExpr, Expr, LiteralValue};
    let unary = |e: &IdedExpr| matches!(&e.expr, Expr::Call(c) if c.target.is_none() && c.args.len() == 1 && (c.func_name == "!_" || c.func_name == "-_"));
    match &e.expr {
        Expr::Call(c) => {
            if unary(e) {
                let arg = &c.args[0];
                let number = matches!(
                    &arg.expr,
                    Expr::Literal(
                        LiteralValue::Int(_) | LiteralValue::UInt(_) | LiteralValue::Double(_)
                    )
                );
                if unary(arg) || number {
                    return false;
                }
            }
            c.target.as_deref().is_none_or(agrees) && c.args.iter().all(agrees)
        }
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .all(agrees),
        Expr::List(l) => l.elements.iter().all(agrees),
        Expr::Map(m) => m.entries.iter().all(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => agrees(&e.key) && agrees(&e.value),
            EntryExpr::StructField(f) => agrees(&f.value),
        }),
        Expr::Struct(_) => false,
        Expr::Select(s) => agrees(&s.operand),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => true,
    }
}

/// Expressions already parsed in one validation run, by source text. The
/// same expressions recur: platforms that extend another re-check its
/// workflows in their own context. Trees are pure functions of their text.
#[derive(Default)]
pub struct Programs {
    /// Keyed by the whole text, hashed for every expression checked: a
    /// hasher without SipHash's set-up.
    trees: RefCell<FxHashMap<Box<str>, Arc<Parsed>>>,
    /// Told every text asked for while set: what a check read, for the
    /// reuse of its result where all it read is the same.
    observer: RefCell<Option<Observer>>,
}

/// Hears each expression text parsed.
pub type Observer = Box<dyn FnMut(&str)>;

impl std::fmt::Debug for Programs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programs")
            .field("trees", &self.trees.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Programs {
    /// Sets (or, with `None`, removes) what hears each text parsed; returns
    /// the one it replaces.
    pub fn observe(&self, observer: Option<Observer>) -> Option<Observer> {
        std::mem::replace(&mut *self.observer.borrow_mut(), observer)
    }

    fn heard(&self, source: &str) {
        if let Some(o) = self.observer.borrow_mut().as_mut() {
            o(source);
        }
    }

    /// The tree of `source`, from either parser.
    pub fn parse(&self, source: &str) -> std::thread::Result<Result<Arc<Parsed>, ParseErrors>> {
        self.heard(source);
        if let Some(p) = self.trees.borrow().get(source) {
            return Ok(Ok(p.clone()));
        }
        match fast(source) {
            Some(expr) => {
                let p = Arc::new(Parsed {
                    tree: Tree::Fast {
                        expr,
                        program: OnceLock::new(),
                        source: source.into(),
                    },
                });
                self.trees.borrow_mut().insert(source.into(), p.clone());
                Ok(Ok(p))
            }
            None => self.parse_exact(source),
        }
    }

    /// The tree of `source` with its positions, from the exact parser.
    pub fn parse_exact(
        &self,
        source: &str,
    ) -> std::thread::Result<Result<Arc<Parsed>, ParseErrors>> {
        self.heard(source);
        if let Some(p) = self.trees.borrow().get(source)
            && p.positions().is_some()
        {
            return Ok(Ok(p.clone()));
        }
        Ok(exact(source)?.map(|program| {
            let p = Arc::new(Parsed {
                tree: Tree::Exact(program),
            });
            self.trees.borrow_mut().insert(source.into(), p.clone());
            p
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// Every scalar of every YAML file under `dir`, and each `${…}` hole in
    /// them: whatever text validation may take for an expression.
    fn scalars(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scalars(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                if let Ok(node) = marked_yaml::parse_yaml(0, &text) {
                    walk(&node, out);
                }
            }
        }
    }

    fn walk(node: &marked_yaml::Node, out: &mut Vec<String>) {
        match node {
            marked_yaml::Node::Scalar(s) => with_holes(s.as_str(), out),
            marked_yaml::Node::Sequence(seq) => seq.iter().for_each(|n| walk(n, out)),
            marked_yaml::Node::Mapping(map) => map.iter().for_each(|(k, v)| {
                with_holes(k.as_str(), out);
                walk(v, out);
            }),
        }
    }

    fn with_holes(text: &str, out: &mut Vec<String>) {
        out.push(text.to_string());
        let mut rest = text;
        while let Some(open) = rest.find("${") {
            let after = &rest[open + 2..];
            let Some(close) = after.find('}') else { break };
            out.push(after[..close].to_string());
            rest = &after[close + 1..];
        }
    }

    /// The expressions of the shipped workflows, the test fixtures and the
    /// fuzz corpus of expressions.
    fn corpus() -> Vec<String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        scalars(&root.join("workflows"), &mut out);
        scalars(&root.join("tests/fixtures"), &mut out);
        for dir in ["fuzz/corpus/expression", "fuzz/regressions/expression"] {
            for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                with_holes(&String::from_utf8_lossy(&bytes), &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// A tree with its node ids cleared: the parsers number map entries in
    /// different orders, and ids only serve to find positions.
    fn unnumbered(e: &IdedExpr) -> IdedExpr {
        use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr};
        let entry = |entry: &IdedEntryExpr| IdedEntryExpr {
            id: 0,
            expr: match &entry.expr {
                EntryExpr::MapEntry(m) => {
                    let mut m = m.clone();
                    m.key = unnumbered(&m.key);
                    m.value = unnumbered(&m.value);
                    EntryExpr::MapEntry(m)
                }
                EntryExpr::StructField(f) => {
                    let mut f = f.clone();
                    f.value = unnumbered(&f.value);
                    EntryExpr::StructField(f)
                }
            },
        };
        let expr = match &e.expr {
            Expr::Call(c) => {
                let mut c = c.clone();
                c.target = c.target.map(|t| Box::new(unnumbered(&t)));
                c.args = c.args.iter().map(unnumbered).collect();
                Expr::Call(c)
            }
            Expr::Comprehension(c) => {
                let mut c = c.clone();
                for part in [
                    &mut c.iter_range,
                    &mut c.accu_init,
                    &mut c.loop_cond,
                    &mut c.loop_step,
                    &mut c.result,
                ] {
                    *part = unnumbered(part);
                }
                Expr::Comprehension(c)
            }
            Expr::List(l) => {
                let mut l = l.clone();
                l.elements = l.elements.iter().map(unnumbered).collect();
                Expr::List(l)
            }
            Expr::Map(m) => {
                let mut m = m.clone();
                m.entries = m.entries.iter().map(entry).collect();
                Expr::Map(m)
            }
            Expr::Struct(s) => {
                let mut s = s.clone();
                s.entries = s.entries.iter().map(entry).collect();
                Expr::Struct(s)
            }
            Expr::Select(s) => {
                let mut s = s.clone();
                s.operand = Box::new(unnumbered(&s.operand));
                Expr::Select(s)
            }
            other => other.clone(),
        };
        IdedExpr { id: 0, expr }
    }

    #[test]
    fn the_fast_parser_builds_the_exact_parsers_tree_or_none() {
        let mut fast_trees = 0;
        let mut exact_trees = 0;
        for source in corpus() {
            // The validator refuses deeper nesting before parsing.
            if crate::workflow::expr::too_deep(&source).is_some() {
                continue;
            }
            let exact = exact(&source).ok().and_then(Result::ok);
            exact_trees += usize::from(exact.is_some());
            let Some(tree) = fast(&source) else { continue };
            fast_trees += 1;
            let exact = exact.unwrap_or_else(|| panic!("only the fast parser accepts {source:?}"));
            assert_eq!(
                unnumbered(&tree),
                unnumbered(exact.expression()),
                "{source:?}"
            );
            let native = |e: &IdedExpr| {
                crate::workflow::native::Native::compile(e, None).map(|n| format!("{n:?}"))
            };
            assert_eq!(native(&tree), native(exact.expression()), "{source:?}");
        }
        // It must not leave the exact parser all the work.
        assert!(
            fast_trees * 10 >= exact_trees * 9,
            "{fast_trees} of {exact_trees}"
        );
    }

    #[test]
    fn plain_expressions_are_the_pratt_parsers_trees_ids_included() {
        let mut plain_trees = 0;
        let more = [
            "'a'",
            "\"b\"",
            "''",
            "0",
            "42",
            "9223372036854775807",
            "true",
            "null",
            "a",
            "a.b",
            "request.channel",
            "_x.y_1.z",
            "a.b.c.d",
            "'say \"hi\"'",
            "\"it's\"",
            "'a\tb'",
            "'é'",
            "index",
            "nullx",
            "r",
            "b",
            "in_x",
            "x.index",
        ];
        for source in corpus().iter().map(String::as_str).chain(more) {
            let Some(tree) = plain(source) else { continue };
            plain_trees += 1;
            let pratt = PrattParser::new()
                .enable_optional_syntax(false)
                .parse(source)
                .unwrap_or_else(|e| panic!("{source:?}: {e:?}"));
            assert_eq!(tree, pratt, "{source:?}");
        }
        assert!(plain_trees > 100, "{plain_trees}");
    }

    #[test]
    fn what_is_not_plain_is_left_to_the_parsers() {
        for source in [
            r"'it\'s'",
            r"'a\nb'",
            "'a\nb'",
            "'a",
            "'a\"",
            "\"a'",
            "007",
            "-1",
            "1.5",
            "0x1F",
            "9223372036854775808",
            "1u",
            "a.in",
            "in",
            "if.x",
            "a..b",
            "a.",
            ".a",
            "1a",
            "a.1",
            "a b",
            " a",
            "a ",
            "a[0]",
            "a.b()",
            "vars.é",
            "",
            "r'x'",
            "'''x'''",
            "b'x'",
        ] {
            assert!(plain(source).is_none(), "{source:?}");
        }
    }

    /// What CEL is made of, to write random expressions with.
    const TOKENS: &[&str] = &[
        "a",
        "b",
        "c",
        "request",
        "session",
        "size",
        "has",
        "exists",
        "all",
        "map",
        "filter",
        "exists_one",
        "in",
        "true",
        "false",
        "null",
        "e",
        "0",
        "1",
        "2.5",
        "1u",
        "0x1F",
        "1e3",
        "'a'",
        "\"b\"",
        "r'x\\'",
        "b'y'",
        "'''t'''",
        "+",
        "-",
        "*",
        "/",
        "%",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "?",
        ":",
        ".",
        ",",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        " ",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn on_random_text_the_fast_parser_builds_the_exact_tree_or_none(
            tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 1..14)
        ) {
            let source = tokens.concat();
            if crate::workflow::expr::too_deep(&source).is_none()
                && let Some(tree) = fast(&source)
            {
                let exact = exact(&source).ok().and_then(Result::ok);
                let exact = exact.unwrap_or_else(|| panic!("only the fast parser accepts {source:?}"));
                proptest::prop_assert_eq!(unnumbered(&tree), unnumbered(exact.expression()), "{:?}", source);
            }
        }
    }

    /// Expressions of CEL's grammar, written out: leaves, operators, calls,
    /// members, indexes, lists, maps, conditionals and macros, nested.
    fn expression() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = proptest::sample::select(vec![
            "a",
            "request.reason",
            "session",
            "c",
            "true",
            "null",
            "0",
            "1",
            "-1",
            "2.5",
            "-2.5",
            "1u",
            "0x1F",
            "1e3",
            "'a'",
            "\"b\"",
            "r'x\\n'",
            "b'y'",
            "'''t'''",
            "'\\u00e9'",
        ])
        .prop_map(str::to_string);
        leaf.prop_recursive(4, 24, 3, |inner| {
            let binary = proptest::sample::select(vec![
                "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in",
            ]);
            let unary = proptest::sample::select(vec!["!", "-", "!!", "--", "-!", "!-"]);
            let func = proptest::sample::select(vec!["size", "has", "int", "string", "math.abs"]);
            let field = proptest::sample::select(vec!["x", "state", "exists", "size"]);
            let method =
                proptest::sample::select(vec!["exists", "all", "map", "filter", "exists_one"]);
            prop_oneof![
                (inner.clone(), binary, inner.clone())
                    .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}{b}")),
                (unary, inner.clone()).prop_map(|(op, a)| format!("{op}{a}")),
                inner.clone().prop_map(|a| format!("({a})")),
                (func, proptest::collection::vec(inner.clone(), 0..3))
                    .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
                (inner.clone(), field).prop_map(|(a, f)| format!("{a}.{f}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}[{b}]")),
                (inner.clone(), method, inner.clone())
                    .prop_map(|(a, m, b)| format!("{a}.{m}(x, {b})")),
                proptest::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(
                    |entries| format!(
                        "{{{}}}",
                        entries
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                ),
                (inner.clone(), inner.clone(), inner)
                    .prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn on_random_expressions_the_fast_parser_builds_the_exact_tree_or_none(
            source in expression()
        ) {
            if crate::workflow::expr::too_deep(&source).is_none()
                && let Some(tree) = fast(&source)
            {
                let exact = exact(&source).ok().and_then(Result::ok);
                let exact = exact.unwrap_or_else(|| panic!("only the fast parser accepts {source:?}"));
                proptest::prop_assert_eq!(unnumbered(&tree), unnumbered(exact.expression()), "{:?}", source);
            }
        }
    }
}
