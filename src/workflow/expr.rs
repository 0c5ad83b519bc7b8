//! CEL expressions and message templates: compiled once at validation, with
//! every identifier and field checked against the context the engine will
//! provide, and every problem reported at its column in the YAML file.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, LazyLock, OnceLock};

use cel::common::ast::{Expr as Ast, SourceInfo};
use cel::{Env, IdedExpr, Program};

use super::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use super::functions::{self, NAMESPACES};
use super::load::Ctx;
use super::raw::Sp;
use super::source::{Span, occurrences};
use super::vocab::{ERROR, Shape};

/// The CEL environment every expression is compiled in and run with: the
/// standard library plus the strings, lists and math extensions.
pub fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        // Without optional values (`a.?b`): not part of the language.
        let mut env = Env::stdlib().with_optional_support(false);
        for ext in [
            cel::extensions::strings,
            cel::extensions::lists,
            cel::extensions::math,
        ] {
            env.add_extension(ext)
                .expect("the bundled extensions do not conflict");
        }
        Arc::new(env)
    })
}

pub use super::parser::Programs;

/// A compiled CEL expression, shared by every run of the workflow.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    source: Arc<str>,
    parsed: Arc<super::parser::Parsed>,
    /// The same expression for the native evaluator, when it is in its subset.
    native: Option<Arc<super::native::Native>>,
    span: Span,
}

impl CompiledExpr {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression as a cel [`Program`], built on first use when the
    /// fast parser read it: [`CompiledExpr::expression`] costs nothing.
    pub fn program(&self) -> &Program {
        self.parsed.program()
    }

    /// The expression's tree, as the engine evaluates it.
    pub fn expression(&self) -> &IdedExpr {
        self.parsed.expression()
    }

    pub fn native(&self) -> Option<&super::native::Native> {
        self.native.as_deref()
    }

    /// Works out, for the native evaluator, what the platform's settings
    /// alone decide of the expression ([`super::native::Native::specialised`]).
    pub(crate) fn specialise(&mut self, platform: &dyn cel::common::value::Val) {
        if let Some(n) = self.native.as_ref().and_then(|n| n.specialised(platform)) {
            self.native = Some(Arc::new(n));
        }
    }

    /// Where the expression is written.
    pub fn span(&self) -> &Span {
        &self.span
    }
}

/// Text with `${expr}` holes, e.g. a message for the agent.
#[derive(Debug, Clone)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone)]
pub enum TemplatePart {
    Text(String),
    Expr(CompiledExpr),
}

impl Template {
    /// A template without holes.
    pub fn text(t: &str) -> Self {
        Template {
            parts: vec![TemplatePart::Text(t.to_string())],
        }
    }

    /// The template's text with holes shown as `${…}`, for renders.
    pub fn display(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                TemplatePart::Text(t) => t.clone(),
                TemplatePart::Expr(e) => format!("${{{}}}", e.source()),
            })
            .collect()
    }
}

/// The names an expression may read, with what is known of their shape.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Shared, not owned: a scope is copied for every state checked, and
    /// only a scope that binds one more name needs a list of its own.
    vars: Rc<Vec<(Rc<str>, Shape)>>,
    /// The foreach item's name, when inside a foreach body.
    item: Option<Rc<str>>,
    /// Where the workflow's variables (`vars`) are bound in `vars`.
    workflow_vars: Option<usize>,
    /// The workflow variables expressions read (not `has()` tests), with
    /// where: for the check that each is set before it is read.
    reads: Option<Reads>,
}

/// Variables read, each with where it is read.
pub type Reads = std::rc::Rc<std::cell::RefCell<Vec<(String, ReadAt)>>>;

/// Where a variable is read. The fast parser keeps no positions, and the
/// exact one costs more than the rest of an expression's check: a read
/// it found is placed only when a diagnostic points at it, which few do.
#[derive(Debug, Clone)]
pub enum ReadAt {
    Span(Span),
    /// The `n`th read of the expression, as its check with positions
    /// would record them.
    Later(Rc<Unplaced>, usize),
}

/// An expression checked without positions, with what its check with
/// them needs.
#[derive(Debug)]
pub struct Unplaced {
    file: super::source::FileId,
    /// The YAML scalar the expression is written in, and where.
    value: Box<str>,
    start: usize,
    /// The expression: `value[base..]`, up to its length.
    base: usize,
    source: Box<str>,
    /// Without its own record of reads: it is given a fresh one.
    scope: Scope,
}

impl ReadAt {
    /// The span of the read, as the check with positions gives it.
    pub fn span(&self, cx: Ctx<'_>) -> Span {
        let (u, n) = match self {
            ReadAt::Span(s) => return s.clone(),
            ReadAt::Later(u, n) => (u, *n),
        };
        let loc = Locator::new(Ctx { file: u.file, ..cx }, &u.value, u.start);
        let whole = || loc.span(u.base, u.base + u.source.len());
        let Ok(Ok(parsed)) = cx.programs.parse_exact(&u.source) else {
            return whole();
        };
        let (scope, reads) = u.scope.recording();
        let mut findings = Diagnostics::new();
        Checker::new(
            &loc,
            u.base,
            &u.source,
            parsed.positions(),
            &scope,
            &mut findings,
        )
        .shape(parsed.expression());
        let placed = reads.borrow_mut().drain(..).nth(n);
        match placed {
            Some((_, ReadAt::Span(s))) => s,
            _ => whole(),
        }
    }
}

/// `event` where the event is not known statically: any catalog field, and
/// its `name`.
pub fn any_event() -> Shape {
    // The same for every workflow checked.
    static ANY: LazyLock<Shape> =
        LazyLock::new(|| event_fields(crate::platform::events::all_fields()));
    ANY.clone()
}

/// `event` for one known switch event: its fields and its `name`.
pub fn event_shape(spec: &crate::platform::EventSpec) -> Shape {
    event_fields(spec.fields.iter().map(|f| f.name).collect())
}

/// An event's fields; a `state` is an agent state of the catalog, the
/// `name` one of the catalog's events.
fn event_fields(fields: Vec<&'static str>) -> Shape {
    // Built once: every workflow's scope and every wait reads them.
    static NAME: LazyLock<Shape> = LazyLock::new(|| {
        Shape::enumeration(
            crate::platform::events::EVENTS
                .iter()
                .map(|e| e.name.to_string())
                .collect::<Vec<_>>(),
            "a switch event of the catalog",
            "run `hisflow events` for the catalog",
        )
    });
    let mut out: Vec<(String, Shape)> = fields
        .into_iter()
        .map(|f| {
            let shape = if f == "state" {
                crate::workflow::vocab::REPORTED_STATE.clone()
            } else {
                Shape::Scalar
            };
            (f.to_string(), shape)
        })
        .collect();
    out.push(("name".into(), NAME.clone()));
    Shape::record(out)
}

impl Scope {
    /// The context of every workflow state: `request` (the workflow's
    /// inputs), `session`, `platform` (its settings, or anything for a lone
    /// file), `error` (the last failure) and `event` (the last switch event
    /// the run received).
    pub fn new(inputs: Vec<String>, platform: Shape, session: Shape) -> Self {
        Scope {
            vars: Rc::new(vec![
                ("request".into(), Shape::Open(inputs.into())),
                ("session".into(), session),
                ("platform".into(), platform),
                ("error".into(), Shape::Object(ERROR)),
                ("event".into(), any_event()),
            ]),
            item: None,
            workflow_vars: None,
            reads: None,
        }
    }

    /// The context of a machine's transition: `self` (the entity), `event`
    /// (what fired it), `session` and `platform`.
    pub fn machine(entity: Shape, event: Shape, platform: Shape, session: Shape) -> Self {
        Scope {
            vars: Rc::new(vec![
                ("self".into(), entity),
                ("event".into(), event),
                ("session".into(), session),
                ("platform".into(), platform),
            ]),
            item: None,
            workflow_vars: None,
            reads: None,
        }
    }

    /// A scope with the workflow's variables bound as `vars`.
    pub fn with_vars(&self, names: &[String]) -> Scope {
        let mut s = self.with(
            "vars",
            Shape::record(names.iter().map(|n| (n.clone(), Shape::Any)).collect()),
        );
        s.workflow_vars = Some(s.vars.len() - 1);
        s
    }

    /// The same scope, recording the workflow variables its expressions
    /// read into the returned list.
    pub fn recording(&self) -> (Scope, Reads) {
        let reads = Reads::default();
        let mut s = self.clone();
        s.reads = Some(reads.clone());
        (s, reads)
    }

    /// A scope with one more name bound (a comprehension's variable).
    pub fn with(&self, name: &str, shape: Shape) -> Scope {
        let mut s = self.clone();
        Rc::make_mut(&mut s.vars).push((name.into(), shape));
        s
    }

    /// A scope with a foreach's item bound.
    pub fn with_item(&self, name: &str, shape: Shape) -> Scope {
        let mut s = self.with(name, shape);
        s.item = Some(name.into());
        s
    }

    /// A scope where `event` is one known event (a wait's guard).
    pub fn with_event(&self, shape: Shape) -> Scope {
        let mut s = self.clone();
        for (n, sh) in Rc::make_mut(&mut s.vars) {
            if &**n == "event" {
                *sh = shape.clone();
            }
        }
        s
    }

    /// The foreach item's name, when the scope has one.
    pub fn binding(&self) -> Option<&str> {
        self.item.as_deref()
    }

    pub fn is_bound(&self, name: &str) -> bool {
        self.vars.iter().any(|(n, _)| &**n == name)
    }

    fn get(&self, name: &str) -> Option<&Shape> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .map(|(_, s)| s)
    }
}

/// Where the expression's text sits in the file, to turn offsets inside the
/// expression into file spans.
struct Locator<'a> {
    cx: Ctx<'a>,
    value: &'a str,
    /// Byte offset of the YAML scalar in the file.
    start: usize,
    /// Where in the file the scalar ends at the latest ([`scalar_end`]),
    /// once a search needs it.
    end: std::cell::OnceCell<usize>,
}

impl<'a> Locator<'a> {
    fn new(cx: Ctx<'a>, value: &'a str, start: usize) -> Self {
        Locator {
            cx,
            value,
            start,
            end: std::cell::OnceCell::new(),
        }
    }

    /// The span in the file of `value[from..to]`. The YAML scalar may be quoted,
    /// folded or a block, so the token is searched for in the scalar's lines
    /// of the file ([`scalar_end`]), as the same occurrence it is in the value.
    fn span(&self, from: usize, to: usize) -> Span {
        // Offsets come from the CEL parser; never trust them to sit on a char boundary.
        let from = self.value.floor_char_boundary(from);
        let to = self.value.ceil_char_boundary(to.max(from));
        let token = &self.value[from..to];
        let file = self.cx.text();
        let text = &file[self.start.min(file.len())..];
        if token.is_empty() {
            return self.cx.span_bytes(self.start + from.min(text.len()), 0);
        }
        // The whole value, which is where it starts, or just inside its
        // quote: the first occurrence, found without searching.
        if from == 0 {
            let quoted = text.starts_with(['"', '\'']) && text[1..].starts_with(token);
            if text.starts_with(token) || quoted {
                return self.cx.span_bytes(
                    self.start + usize::from(!text.starts_with(token)),
                    token.len(),
                );
            }
        }
        let end = *self.end.get_or_init(|| scalar_end(file, self.start));
        let text = &file[self.start.min(end)..end];
        let nth = occurrences(&self.value[..from], token).count();
        match occurrences(text, token).nth(nth) {
            Some(i) => self.cx.span_bytes(self.start + i, token.len()),
            None => self.cx.span_bytes(
                self.start,
                self.cx.sources.get(self.cx.file).token_len(self.start),
            ),
        }
    }
}

/// The end of the lines a YAML scalar starting at byte `start` of `file`
/// may take: its own line, and those after it that are blank or indented
/// deeper than the line of its key. A scalar goes on only on lines deeper
/// than its key's (a block scalar's content, a plain or quoted scalar's
/// continuation), so a token searched for in the scalar is not found in a
/// later one, and a search that fails stops there rather than at the end of
/// the file. A scalar that begins its line (a block scalar's content, whose
/// place is its first character, or a value written under its key) is
/// bounded by the nearest line above that is less indented, its key's; with
/// none, it is not bounded.
fn scalar_end(file: &str, start: usize) -> usize {
    let bytes = file.as_bytes();
    let start = start.min(bytes.len());
    let line_start = |at: usize| {
        bytes[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
    };
    let indent = |line: &[u8]| line.iter().take_while(|b| **b == b' ').count();
    let blank = |line: &[u8]| {
        let line = &line[..line.iter().position(|b| *b == b'\n').unwrap_or(line.len())];
        line.iter().all(|b| b.is_ascii_whitespace())
    };
    let first = line_start(start);
    let mut own = indent(&bytes[first..]);
    if first + own == start {
        // The key's line: the nearest one above, not blank, less indented.
        let mut line = first;
        loop {
            if line == 0 {
                return bytes.len();
            }
            line = line_start(line - 1);
            let here = &bytes[line..];
            if !blank(here) && indent(here) < own {
                own = indent(here);
                break;
            }
        }
    }
    let mut at = start;
    loop {
        let Some(nl) = bytes[at..].iter().position(|b| *b == b'\n') else {
            return bytes.len();
        };
        let next = at + nl + 1;
        let line = &bytes[next..];
        if !blank(line) && indent(line) <= own {
            return at + nl;
        }
        at = next;
    }
}

/// `${…}` holes one text may have.
pub const MAX_TEMPLATE_HOLES: usize = 64;

/// Brackets an expression may nest: the CEL parser recurses per level and
/// would overflow the stack long before a person writes such a thing.
pub const MAX_EXPR_DEPTH: usize = 32;

/// Comprehensions (`all`, `exists`, `map`, …) an expression may nest: each
/// multiplies the work of the one around it.
pub const MAX_COMPREHENSION_DEPTH: usize = 3;

/// Where `source` nests deeper than the parser should see, and why; checked
/// before parsing, quoted text skipped.
pub(crate) fn too_deep(source: &str) -> Option<(usize, String)> {
    const MACROS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];
    // Each open bracket, and whether it opened a comprehension.
    let mut open: Vec<bool> = Vec::new();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    // By bytes: every character that matters is ASCII, and no byte of a
    // longer character is.
    for (i, ch) in source.bytes().enumerate() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == b'\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            b'\'' | b'"' => quote = Some(ch),
            b'(' | b'[' | b'{' => {
                // The identifier just before the bracket, found in place:
                // no copy of it for each bracket of each expression.
                let start = source.as_bytes()[..i]
                    .iter()
                    .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map_or(0, |p| p + 1);
                let (before, word) = (&source[..start], &source[start..i]);
                let macro_call = ch == b'(' && before.ends_with('.') && MACROS.contains(&word);
                open.push(macro_call);
                if open.len() > MAX_EXPR_DEPTH {
                    return Some((
                        i,
                        format!("the expression nests brackets deeper than {MAX_EXPR_DEPTH}"),
                    ));
                }
                if open.iter().filter(|m| **m).count() > MAX_COMPREHENSION_DEPTH {
                    return Some((
                        i,
                        format!(
                            "the expression nests more than {MAX_COMPREHENSION_DEPTH} comprehensions (`{word}` inside others)"
                        ),
                    ));
                }
            }
            b')' | b']' | b'}' => {
                open.pop();
            }
            _ => {}
        }
    }
    None
}

/// Compiles one CEL expression written at `expr`, checking its names against `scope`.
pub fn compile(
    cx: Ctx<'_>,
    expr: &Sp<String>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<(CompiledExpr, Shape)> {
    let span = cx.span_of(expr);
    let loc = Locator::new(cx.at(&span), expr.as_str(), span.range.start);
    compile_at(&loc, expr.as_str(), 0, scope, diags)
}

fn compile_at(
    loc: &Locator<'_>,
    source: &str,
    base: usize,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<(CompiledExpr, Shape)> {
    let whole = loc.span(base, base + source.len());
    if source.trim().is_empty() {
        diags.push(
            Diagnostic::new(Rule::CelSyntax, whole, "empty expression")
                .label("an expression is expected here")
                .help("write a CEL expression, e.g. `request.reason` or `'text'`"),
        );
        return None;
    }
    if let Some((at, message)) = too_deep(source) {
        diags.push(
            Diagnostic::new(Rule::TooDeep, loc.span(base + at, base + at + 1), message)
                .label("nested too deep here")
                .help("split it: compute a part in a variable (`vars:` and `set:`) or in an earlier state"),
        );
        return None;
    }
    let mut parsed = tree(loc, source, base, &whole, diags, |s| {
        loc.cx.programs.parse(s)
    })?;
    // Read by the fast parser, the expression is checked without positions;
    // if it needs them, for a finding, it is read again by the exact parser
    // and checked again. Its variable reads are placed when needed.
    if parsed.positions().is_none() {
        let recorded = scope.reads.as_ref().map_or(0, |r| r.borrow().len());
        let mut findings = Diagnostics::new();
        let mut checker = Checker::new(loc, base, source, None, scope, &mut findings);
        let shape = checker.shape(parsed.expression());
        if checker.ok && !checker.needs_positions.get() {
            return Some((compiled(source, parsed, scope, whole), shape));
        }
        // The check with positions records the reads again, placed.
        if let Some(r) = &scope.reads {
            r.borrow_mut().truncate(recorded);
        }
        parsed = tree(loc, source, base, &whole, diags, |s| {
            loc.cx.programs.parse_exact(s)
        })?;
    }
    let mut checker = Checker::new(loc, base, source, parsed.positions(), scope, diags);
    let shape = checker.shape(parsed.expression());
    if !checker.ok {
        return None;
    }
    Some((compiled(source, parsed, scope, whole), shape))
}

fn compiled(
    source: &str,
    parsed: Arc<super::parser::Parsed>,
    scope: &Scope,
    span: Span,
) -> CompiledExpr {
    CompiledExpr {
        source: source.into(),
        native: super::native::Native::compile(parsed.expression(), scope.binding()).map(Arc::new),
        parsed,
        span,
    }
}

/// The tree `parse` gives for `source`, or its syntax errors reported.
fn tree(
    loc: &Locator<'_>,
    source: &str,
    base: usize,
    whole: &Span,
    diags: &mut Diagnostics,
    parse: impl FnOnce(
        &str,
    ) -> std::thread::Result<Result<Arc<super::parser::Parsed>, cel::ParseErrors>>,
) -> Option<Arc<super::parser::Parsed>> {
    match parse(source) {
        Ok(Ok(p)) => Some(p),
        Ok(Err(errors)) => {
            for e in errors.errors.iter().take(3) {
                let off = line_col_offset(source, e.pos.0, e.pos.1);
                let len = source[off.min(source.len())..]
                    .chars()
                    .next()
                    .map_or(0, char::len_utf8);
                diags.push(
                    Diagnostic::new(Rule::CelSyntax, loc.span(base + off, base + off + len), format!("CEL syntax error: {}", tidy_cel(&e.msg)))
                        .label("here")
                        .help("see https://github.com/google/cel-spec for the expression syntax; text must be quoted: 'like this'"),
                );
            }
            None
        }
        Err(_) => {
            diags.push(
                Diagnostic::new(
                    Rule::CelSyntax,
                    whole.clone(),
                    "the CEL parser could not handle this expression",
                )
                .label("here")
                .help("simplify the expression"),
            );
            None
        }
    }
}

/// Shortens ANTLR's "expecting {…}" lists, which name every token class.
fn tidy_cel(msg: &str) -> String {
    let msg = msg.strip_prefix("Syntax error: ").unwrap_or(msg);
    match msg.find(" expecting {") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Byte offset of a 1-based (line, column) in `source`.
fn line_col_offset(source: &str, line: isize, col: isize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i as isize + 1 == line {
            let col = (col.max(1) - 1) as usize;
            return offset
                + l.char_indices()
                    .nth(col)
                    .map_or(l.trim_end_matches('\n').len(), |(b, _)| b);
        }
        offset += l.len();
    }
    source.len()
}

struct Checker<'a, 'l> {
    loc: &'a Locator<'l>,
    base: usize,
    source: &'a str,
    /// Where the nodes are written; `None` from the fast parser.
    info: Option<&'a SourceInfo>,
    /// Whether a position was asked for without `info`: the check must be
    /// done again with it.
    needs_positions: Cell<bool>,
    scope: &'a Scope,
    /// The comprehensions' variables around the node, innermost last.
    locals: Vec<(&'a str, Shape)>,
    diags: &'a mut Diagnostics,
    ok: bool,
    /// How many times the comprehensions around the node run, counting
    /// the lists written in the expression itself (literals, `lists.range`);
    /// lists of data are counted as they are iterated, at run time.
    iterations: u64,
    /// What places the variable reads found without `info`, and how many.
    unplaced: Option<Rc<Unplaced>>,
    unplaced_reads: usize,
}

/// How many items a comprehension's range has, when the expression says:
/// a list written out, or `lists.range` (at most CEL's million when its
/// size is not written).
fn written_size(range: &IdedExpr) -> Option<u64> {
    match &range.expr {
        Ast::List(l) => Some(l.elements.len() as u64),
        Ast::Call(call) => {
            let ranged = call.func_name == "lists.range"
                || (call.func_name == "range"
                    && matches!(call.target.as_deref().map(|t| &t.expr), Some(Ast::Ident(n)) if n == "lists"));
            if !ranged {
                return None;
            }
            Some(match call.args.first().map(|a| &a.expr) {
                Some(Ast::Literal(cel::common::ast::LiteralValue::Int(n))) => {
                    (*n.inner()).max(0) as u64
                }
                _ => 1_000_000,
            })
        }
        _ => None,
    }
}

impl<'a, 'l> Checker<'a, 'l> {
    fn new(
        loc: &'a Locator<'l>,
        base: usize,
        source: &'a str,
        info: Option<&'a SourceInfo>,
        scope: &'a Scope,
        diags: &'a mut Diagnostics,
    ) -> Self {
        Checker {
            loc,
            base,
            source,
            info,
            needs_positions: Cell::new(false),
            scope,
            locals: Vec::new(),
            diags,
            ok: true,
            iterations: 1,
            unplaced: None,
            unplaced_reads: 0,
        }
    }

    /// What `name` reads as: the innermost binding of it.
    fn get(&self, name: &str) -> Option<&Shape> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .or_else(|| self.scope.get(name))
    }

    /// Byte range of a node's token inside the expression.
    fn range(&self, e: &IdedExpr) -> (usize, usize) {
        let Some(info) = self.info else {
            self.needs_positions.set(true);
            return (0, self.source.len());
        };
        info.offset_for(e.id)
            .map_or((0, self.source.len()), |(s, t)| {
                (s as usize, (t as usize + 1).min(self.source.len()))
            })
    }

    /// Checks `e` and returns what is known of its value's shape.
    fn shape(&mut self, e: &'a IdedExpr) -> Shape {
        match &e.expr {
            Ast::Ident(name) => self.ident(e, name),
            Ast::Select(sel) => {
                let operand = self.shape(&sel.operand);
                if !sel.test
                    && matches!(&sel.operand.expr, Ast::Ident(n) if n == "vars")
                    && self.scope.workflow_vars.is_some()
                    && !self.locals.iter().any(|(n, _)| *n == "vars")
                    && self.scope.vars.iter().rposition(|(n, _)| &**n == "vars")
                        == self.scope.workflow_vars
                    && let Some(reads) = &self.scope.reads
                {
                    let at = if self.info.is_some() {
                        ReadAt::Span(self.field_span(&sel.operand, &sel.field))
                    } else {
                        let unplaced = self
                            .unplaced
                            .get_or_insert_with(|| {
                                Rc::new(Unplaced {
                                    file: self.loc.cx.file,
                                    value: self.loc.value.into(),
                                    start: self.loc.start,
                                    base: self.base,
                                    source: self.source.into(),
                                    scope: Scope {
                                        reads: None,
                                        ..self.scope.clone()
                                    },
                                })
                            })
                            .clone();
                        self.unplaced_reads += 1;
                        ReadAt::Later(unplaced, self.unplaced_reads - 1)
                    };
                    reads.borrow_mut().push((sel.field.clone(), at));
                }
                self.field(&sel.operand, &operand, &sel.field)
            }
            Ast::Comprehension(c) => {
                let range = self.shape(&c.iter_range);
                let outer = self.iterations;
                self.iterations = outer.saturating_mul(written_size(&c.iter_range).unwrap_or(1));
                let budget = super::record::EVAL_BUDGET as u64;
                if self.iterations > budget && outer <= budget {
                    let (from, to) = self.range(&c.iter_range);
                    self.diags.push(
                        Diagnostic::new(
                            Rule::TooDeep,
                            self.loc.span(self.base + from, self.base + to),
                            format!(
                                "the comprehensions here run {} times over lists the expression writes, over the evaluation budget of {budget}",
                                self.iterations
                            ),
                        )
                        .label("iterated")
                        .help("iterate over smaller lists, or give `lists.range` a written size"),
                    );
                    self.ok = false;
                }
                let elem = match &range {
                    Shape::List(elem) => (**elem).clone(),
                    _ => Shape::Any,
                };
                let outer_locals = self.locals.len();
                self.locals.push((&c.iter_var, elem));
                if let Some(v2) = &c.iter_var2 {
                    self.locals.push((v2, Shape::Any));
                }
                self.locals.push((&c.accu_var, Shape::Any));
                self.shape(&c.accu_init);
                self.shape(&c.loop_cond);
                self.shape(&c.loop_step);
                self.shape(&c.result);
                self.locals.truncate(outer_locals);
                self.iterations = outer;
                if is_filter(c) { range } else { Shape::Any }
            }
            Ast::Call(call) => {
                // `math.abs(x)`: a namespace, not a value to check.
                let namespace = match call.target.as_ref().map(|t| &t.expr) {
                    Some(Ast::Ident(ns))
                        if NAMESPACES.contains(&ns.as_str()) && self.get(ns).is_none() =>
                    {
                        Some(ns.as_str())
                    }
                    _ => None,
                };
                let target = match namespace {
                    Some(_) => None,
                    None => call.target.as_ref().map(|t| self.shape(t)),
                };
                let args: smallvec::SmallVec<[Shape; 3]> =
                    call.args.iter().map(|a| self.shape(a)).collect();
                self.function(e, call, namespace);
                self.literals(call.func_name.as_str(), &call.args, &args);
                match (call.func_name.as_str(), target, args.as_slice()) {
                    ("_?_:_", None, [_, a, b]) => {
                        if *a == Shape::Any {
                            b.clone()
                        } else {
                            a.clone()
                        }
                    }
                    ("_[_]", None, [Shape::List(elem), _]) => (**elem).clone(),
                    _ => Shape::Any,
                }
            }
            Ast::List(list) => {
                for el in &list.elements {
                    self.shape(el);
                }
                Shape::Any
            }
            Ast::Map(map) => {
                for entry in &map.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(m) = &entry.expr {
                        self.shape(&m.key);
                        self.shape(&m.value);
                    }
                }
                Shape::Any
            }
            Ast::Struct(_) | Ast::Literal(_) | Ast::Unspecified => Shape::Any,
        }
    }

    /// Where `.field` after `operand` starts, as an offset in the source.
    fn field_at(&self, operand: &IdedExpr, field: &str) -> usize {
        let (_, op_end) = self.range(operand);
        let dotted = format!(".{field}");
        let op_end = self.source.ceil_char_boundary(op_end);
        self.source[op_end..]
            .find(&dotted)
            .map_or(op_end, |i| op_end + i + 1)
    }

    fn field_span(&self, operand: &IdedExpr, field: &str) -> Span {
        let at = self.field_at(operand, field);
        self.loc.span(self.base + at, self.base + at + field.len())
    }

    /// A function must be one of the catalog, called as it is called, with
    /// as many arguments as it takes. Operators and the functions macros
    /// expand into are the parser's own.
    fn function(
        &mut self,
        e: &IdedExpr,
        call: &cel::common::ast::CallExpr,
        namespace: Option<&str>,
    ) {
        let name = call.func_name.as_str();
        // (`math.greatest` expands into `math.@max`.)
        if name.starts_with('_') || name.contains('@') || name == "!_" || name == "-_" {
            return;
        }
        let (style, full) = match (namespace, &call.target) {
            (Some(ns), _) => (functions::Call::Namespaced, format!("{ns}.{name}")),
            (None, Some(_)) => (functions::Call::Member, name.to_string()),
            (None, None) => (functions::Call::Global, name.to_string()),
        };
        let n = call.args.len();
        let overloads: Vec<_> = functions::lookup(&full, style).collect();
        let problem = if overloads.is_empty() {
            let written = match style {
                functions::Call::Member => format!("`.{name}()`"),
                _ => format!("`{full}()`"),
            };
            // Called the other way round: `size(x)` and `x.size()` differ.
            let other = functions::FUNCTIONS
                .iter()
                .find(|f| f.name == full || (namespace.is_none() && f.name == name));
            let help = match other {
                Some(f) => format!("call it as in `{}`", f.example),
                None => {
                    let names = functions::names(style);
                    did_you_mean(&full, names.clone()).unwrap_or_else(|| {
                        "docs/workflow-language.md lists the functions expressions may call"
                            .to_string()
                    })
                }
            };
            Some((format!("unknown function {written}"), help))
        } else if !overloads.iter().any(|f| (f.min..=f.max).contains(&n)) {
            let f = overloads[0];
            let takes = if f.min == f.max {
                format!("{}", f.min)
            } else {
                format!("{} to {}", f.min, f.max)
            };
            Some((
                format!(
                    "`{full}` takes {takes} argument{}, not {n}",
                    if f.max == 1 { "" } else { "s" }
                ),
                format!("for example `{}`", f.example),
            ))
        } else {
            None
        };
        let Some((message, help)) = problem else {
            return;
        };
        // The call's node may start at its `(`: the name is the last one
        // written before its end.
        let (from, to) = self.range(e);
        let upto = self.source.get(..to.max(from)).unwrap_or("");
        let at = upto
            .rfind(&format!("{name}("))
            .map_or((from, to), |i| (i, i + name.len()));
        self.diags.push(
            Diagnostic::new(
                Rule::UnknownFunction,
                self.loc.span(self.base + at.0, self.base + at.1),
                message,
            )
            .label("not a function expressions can call this way")
            .help(help),
        );
        self.ok = false;
    }

    /// A text literal compared with a value of a declared set must be in
    /// the set: `c.state == 'NotRedy'`, `platform.logout_reason != 'requird'`,
    /// `c.state in ['Reserved', 'Talkng']`.
    fn literals(&mut self, func: &str, args: &[IdedExpr], shapes: &[Shape]) {
        let checks: Vec<(&IdedExpr, &Shape)> = match (func, args, shapes) {
            ("_==_" | "_!=_", [a, b], [sa, sb]) => vec![(b, sa), (a, sb)],
            ("@in", [a, b], [sa, sb]) => {
                let mut v = Vec::new();
                // A literal in a declared list: `'voice' in platform.media`.
                if let Shape::List(elem) = sb {
                    v.push((a, &**elem));
                }
                // A value of a set in a written list: `c.state in ['A', 'B']`.
                if let Ast::List(list) = &b.expr {
                    v.extend(list.elements.iter().map(|el| (el, sa)));
                }
                v
            }
            _ => Vec::new(),
        };
        for (lit, shape) in checks {
            let (Shape::Enum(vocab), Ast::Literal(cel::common::ast::LiteralValue::String(text))) =
                (shape, &lit.expr)
            else {
                continue;
            };
            let text: &str = text;
            if vocab.values.iter().any(|v| v == text) {
                continue;
            }
            let (from, to) = self.range(lit);
            self.diags.push(
                Diagnostic::new(
                    Rule::UnknownValue,
                    self.loc.span(self.base + from, self.base + to),
                    format!("`{text}` is not {}", vocab.what),
                )
                .label("never equal")
                .help(
                    did_you_mean(text, vocab.values.iter().map(String::as_str)).unwrap_or_else(
                        || {
                            format!(
                                "the values are: {}; or {}",
                                vocab.values.join(", "),
                                vocab.declare
                            )
                        },
                    ),
                ),
            );
            self.ok = false;
        }
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Shape {
        if let Some(shape) = self.get(name) {
            return shape.clone();
        }
        let (from, to) = self.range(e);
        let names: Vec<String> = self
            .scope
            .vars
            .iter()
            .map(|(n, _)| &**n)
            .chain(self.locals.iter().map(|(n, _)| *n))
            .filter(|n| !n.starts_with('@'))
            .map(str::to_string)
            .collect();
        let help = did_you_mean(name, names.iter().map(String::as_str)).unwrap_or_else(|| {
            format!(
                "expressions can read {}; to write the text {name}, quote it: '{name}'",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        self.diags.push(
            Diagnostic::new(
                Rule::UnknownIdentifier,
                self.loc.span(self.base + from, self.base + to),
                format!("unknown identifier `{name}`"),
            )
            .label("not defined here")
            .help(help),
        );
        self.ok = false;
        Shape::Any
    }

    fn field(&mut self, operand: &IdedExpr, shape: &Shape, field: &str) -> Shape {
        let known: Vec<String> = match shape {
            Shape::Object(fields) => {
                if let Some((_, s)) = fields.iter().find(|(n, _)| *n == field) {
                    return s.shape();
                }
                fields.iter().map(|(n, _)| n.to_string()).collect()
            }
            Shape::Record(fields) => {
                if let Some((_, s)) = fields.iter().find(|(n, _)| n == field) {
                    return s.clone();
                }
                fields.iter().map(|(n, _)| n.clone()).collect()
            }
            Shape::Open(fields) => {
                if fields.iter().any(|n| n == field) {
                    return Shape::Any;
                }
                fields.to_vec()
            }
            _ => return Shape::Any,
        };
        let at = self.field_at(operand, field);
        let what = describe(self.source, operand, self.info);
        if self.info.is_none() {
            self.needs_positions.set(true);
        }
        let help = did_you_mean(field, known.iter().map(String::as_str)).unwrap_or_else(|| {
            let have = if known.is_empty() {
                format!("`{what}` has no fields here")
            } else {
                format!("`{what}` has: {}", known.join(", "))
            };
            match what.as_str() {
                "request" => format!("{have}; a request parameter must be declared under `input:`"),
                "platform" => format!(
                    "{have}; a platform's settings are declared under `declare: settings:` in platform.yaml"
                ),
                _ => have,
            }
        });
        self.diags.push(
            Diagnostic::new(
                Rule::UnknownField,
                self.loc.span(self.base + at, self.base + at + field.len()),
                format!("`{what}` has no field `{field}`"),
            )
            .label("unknown field")
            .help(help),
        );
        self.ok = false;
        Shape::Any
    }
}

/// The written text of a node, e.g. `session.channels`, for messages.
fn describe(source: &str, e: &IdedExpr, info: Option<&SourceInfo>) -> String {
    match &e.expr {
        Ast::Ident(n) => n.clone(),
        Ast::Select(s) => format!("{}.{}", describe(source, &s.operand, info), s.field),
        _ => info
            .and_then(|i| i.offset_for(e.id))
            .and_then(|(s, t)| source.get(s as usize..=t as usize))
            .unwrap_or("value")
            .to_string(),
    }
}

/// `list.filter(x, …)` keeps the list's element shape; other macros do not.
fn is_filter(c: &cel::common::ast::ComprehensionExpr) -> bool {
    let Ast::Call(step) = &c.loop_step.expr else {
        return false;
    };
    if step.func_name != "_?_:_" || step.args.len() != 3 {
        return false;
    }
    let Ast::Call(add) = &step.args[1].expr else {
        return false;
    };
    matches!(add.args.get(1).map(|a| &a.expr), Some(Ast::List(l))
        if matches!(l.elements.first().map(|e| &e.expr), Some(Ast::Ident(v)) if *v == c.iter_var) && l.elements.len() == 1)
}

/// Compiles a `${expr}` template written at `text`.
pub fn template(
    cx: Ctx<'_>,
    text: &Sp<String>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<Template> {
    let span = cx.span_of(text);
    let loc = Locator::new(cx.at(&span), text.as_str(), span.range.start);
    let s = text.as_str();
    // Each hole is placed in the file by a search from the text's start: a
    // bounded number keeps validation linear in the file's size.
    let holes = s.matches("${").count();
    if holes > MAX_TEMPLATE_HOLES {
        diags.push(
            Diagnostic::new(
                Rule::TooDeep,
                span,
                format!("the text has {holes} `${{…}}` holes; at most {MAX_TEMPLATE_HOLES}"),
            )
            .label("too many holes")
            .help("a message for an agent needs a few values: compute the rest in a variable"),
        );
        return None;
    }
    let mut parts = Vec::new();
    let mut rest = 0;
    let mut ok = true;
    while let Some(open) = s[rest..].find("${").map(|i| rest + i) {
        if open > rest {
            parts.push(TemplatePart::Text(s[rest..open].to_string()));
        }
        let Some(close) = s[open..].find('}').map(|i| open + i) else {
            diags.push(
                Diagnostic::new(
                    Rule::CelSyntax,
                    loc.span(open, s.len()),
                    "unclosed `${` in text",
                )
                .label("opened here")
                .help("close the expression with `}`"),
            );
            return None;
        };
        match compile_at(&loc, &s[open + 2..close], open + 2, scope, diags) {
            Some((e, _)) => parts.push(TemplatePart::Expr(e)),
            None => ok = false,
        }
        rest = close + 1;
    }
    if rest < s.len() {
        parts.push(TemplatePart::Text(s[rest..].to_string()));
    }
    ok.then_some(Template { parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::source::Sources;
    use std::path::PathBuf;

    /// Brackets in quotes are text, whatever the characters around them;
    /// the depth found is at the byte of the bracket past the limit.
    #[test]
    fn nesting_is_counted_outside_quotes_only() {
        use super::{MAX_EXPR_DEPTH, too_deep};
        let quoted = format!(
            "'é{}' == \"\\\"{}\" && f(é)",
            "(".repeat(40),
            "[".repeat(40)
        );
        assert_eq!(too_deep(&quoted), None);
        let deep = format!(
            "'é' + {}1{}",
            "(".repeat(MAX_EXPR_DEPTH + 1),
            ")".repeat(MAX_EXPR_DEPTH + 1)
        );
        let at = deep.find('(').unwrap() + MAX_EXPR_DEPTH;
        assert_eq!(too_deep(&deep).map(|(i, _)| i), Some(at));
        let nested = "a.all(x, x.exists(y, y.map(z, z.filter(w, w))))";
        let (i, why) = too_deep(nested).expect("four comprehensions");
        assert_eq!(&nested[i - 6..i], "filter", "{why}");
        assert_eq!(too_deep("a.all(x, x.exists(y, y.map(z, z)))"), None);
    }

    fn check(yaml_value: &str, line: &str) -> (Diagnostics, Sources) {
        let mut sources = Sources::new();
        let text = format!("when: {line}\n");
        let file = sources.add(PathBuf::from("t.yaml"), text);
        let programs = Programs::default();
        let cx = Ctx {
            sources: &sources,
            file,
            programs: &programs,
        };
        let marker = marked_yaml::Marker::new(file.0, 6, 1, 7);
        let expr = Sp::new(Some(marker), yaml_value.to_string());
        let mut diags = Diagnostics::new();
        let scope = Scope::new(
            vec!["reason".into()],
            Shape::record(vec![("logout_reason".into(), Shape::Scalar)]),
            crate::workflow::vocab::States::default().session(),
        );
        compile(cx, &expr, &scope, &mut diags);
        (diags, sources)
    }

    #[test]
    fn a_scalar_ends_before_the_first_line_not_deeper_than_its_key() {
        let file = "states:\n  a:\n    choice:\n      - when: >-\n          x &&\n\n          y\n        next: b\n  b:\n    when: x && y\n    next:\n      c\n";
        // A folded guard's place is its content's first character: it goes
        // on over a blank line and the lines as deep, past its `next:`,
        // which is deeper than the list item, and stops at the next state.
        let folded = file.find("x &&").unwrap();
        assert_eq!(
            &file[..scalar_end(file, folded)],
            &file[..file.find("\n  b:").unwrap()]
        );
        // A plain scalar after its key ends with the lines deeper than it.
        let plain = file.find("x && y").unwrap();
        assert_eq!(&file[plain..scalar_end(file, plain)], "x && y");
        // A value under its key is bounded by the key's line.
        let under = file.find("c\n").unwrap();
        assert_eq!(scalar_end(file, under), file.len());
        assert_eq!(scalar_end("a: b", 3), 4, "the file's end ends it");
        assert_eq!(
            scalar_end("b\nc", 0),
            3,
            "without a key above, it is not bounded"
        );
    }

    fn first(d: &Diagnostics, s: &Sources) -> (Rule, String) {
        let d = d.iter().next().expect("a diagnostic");
        (
            d.rule,
            s.get(d.span.file).text()[d.span.range.clone()].to_string(),
        )
    }

    #[test]
    fn comprehension_variables_are_bound_and_typed() {
        let e = "session.channels.exists(c, c.active && size(c.interactions) > 0)";
        let (d, _) = check(e, e);
        assert!(d.is_empty(), "{d:?}");
        let e = "session.channels.exists(c, c.actve)";
        let (d, s) = check(e, e);
        assert_eq!(first(&d, &s), (Rule::UnknownField, "actve".into()));
    }

    #[test]
    fn unknown_names_point_at_their_token_even_in_quoted_scalars() {
        let e = "platform.logout_reason == 'required' && !has(request.raeson)";
        let (d, s) = check(e, &format!("\"{e}\""));
        assert_eq!(first(&d, &s), (Rule::UnknownField, "raeson".into()));
        let (d, s) = check("sesion.agent", "sesion.agent");
        assert_eq!(first(&d, &s), (Rule::UnknownIdentifier, "sesion".into()));
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let (d, s) = check("size(x) +* 2", "size(x) +* 2");
        assert_eq!(first(&d, &s), (Rule::CelSyntax, "*".into()));
    }
}
