//! A native evaluator for the expressions workflows are made of. CEL's
//! general evaluator resolves every name through scopes and containers and
//! copies each element into a comprehension's variable; the common shapes —
//! field paths, literals, comparisons, `has`, `size`, `in`, `? :`, `exists`,
//! `all`, `filter` — need none of that. They are compiled once, at
//! validation, into a small tree whose names are resolved to slots, and that
//! reads the same values in place.
//!
//! It answers only when it is sure. Anything outside its subset, a type it
//! did not expect, a missing field: it says [`Unsure`] and the caller
//! evaluates the CEL program instead, so results are CEL's by construction
//! (and tests/native.rs checks that they agree).

use cel::IdedExpr;
use cel::common::ast::{ComprehensionExpr, Expr, LiteralValue};
use cel::common::types::{CelBool, CelInt, CelNull, CelString, Kind};
use cel::common::value::{CowVal, Val};

use std::borrow::Cow;

use super::intern;
use super::record::{Record, Slot};

/// An expression compiled for native evaluation.
#[derive(Debug)]
pub struct Native {
    n: N,
    visits: Visits,
    /// Whether it reads the platform's settings: one that does not is the
    /// same on every platform, and is not folded again for each.
    reads_platform: bool,
}

/// Whether an evaluation may go through a list's items, which the
/// evaluation budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visits {
    Nothing,
    Items,
}

impl Native {
    fn new(n: N) -> Native {
        let visits = if visits_items(&n) {
            Visits::Items
        } else {
            Visits::Nothing
        };
        Native {
            reads_platform: reads_platform(&n),
            n,
            visits,
        }
    }

    /// Whether evaluating it may visit list items: one that cannot needs no
    /// evaluation budget ([`super::record::budgeted`]).
    pub fn visits_items(&self) -> bool {
        self.visits == Visits::Items
    }
}

fn visits_items(n: &N) -> bool {
    match n {
        N::Exists(..) | N::All(..) | N::Filter(..) => true,
        N::In(a, b) => !matches!(**b, N::List(_)) || visits_items(a) || visits_items(b),
        N::Null | N::Bool(_) | N::Int(_) | N::Str(_) | N::Root(_) | N::Bound(_) => false,
        N::Field(a, _) | N::Has(a, _) | N::Not(a) | N::Size(a) => visits_items(a),
        N::And(a, b) | N::Or(a, b) | N::Cmp(_, a, b) => visits_items(a) || visits_items(b),
        N::Cond(c, a, b) => visits_items(c) || visits_items(a) || visits_items(b),
        N::List(items) => items.iter().any(visits_items),
    }
}

#[derive(Debug, Clone)]
enum N {
    Null,
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    /// A context variable or the foreach item, resolved at compile time.
    Root(Root),
    /// A comprehension variable: 0 is the innermost.
    Bound(usize),
    /// The field's name, borrowed from the names workflows give when it is
    /// one (then a record built from them finds it by pointer,
    /// [`Record::slot`]); otherwise owned, so that an expression's made-up
    /// names are not kept for the process's life.
    Field(Box<N>, Cow<'static, str>),
    Has(Box<N>, Cow<'static, str>),
    Not(Box<N>),
    And(Box<N>, Box<N>),
    Or(Box<N>, Box<N>),
    Cmp(Cmp, Box<N>, Box<N>),
    In(Box<N>, Box<N>),
    Size(Box<N>),
    Cond(Box<N>, Box<N>, Box<N>),
    Exists(Box<N>, Box<N>),
    All(Box<N>, Box<N>),
    /// `list.filter(x, pred)`: evaluated only as a whole list ([`Native::eval_list`]).
    Filter(Box<N>, Box<N>),
    /// A list written out (`['Reserved', 'Talking']`): evaluated only as the
    /// right side of `in`.
    List(Vec<N>),
}

#[derive(Debug, Clone, Copy)]
enum Root {
    Request,
    Session,
    Platform,
    Error,
    Event,
    /// `self`, in a machine's transition.
    Entity,
    /// The workflow's variables.
    Vars,
    Item,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The native evaluator cannot vouch for this result: evaluate with CEL.
#[derive(Debug)]
pub struct Unsure;

/// A value while evaluating: primitives by value, the rest borrowed.
#[derive(Clone, Copy)]
pub enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    /// One of the engine's records (a request, the variables, an event),
    /// read field by field without asking CEL's value its type.
    Rec(&'a Record),
    Val(&'a dyn Val),
    /// One of the engine's own values (the session, a channel), read in
    /// place rather than copied into CEL's.
    Obj(&'a dyn Object),
    /// A list the engine keeps in its own types.
    Items(&'a dyn Items),
}

impl std::fmt::Debug for V<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            V::Null => f.write_str("null"),
            V::Bool(b) => write!(f, "{b}"),
            V::Int(i) => write!(f, "{i}"),
            V::Str(s) => write!(f, "{s:?}"),
            V::Rec(r) => write!(f, "{r:?}"),
            V::Val(v) => write!(f, "{v:?}"),
            V::Obj(_) => f.write_str("<object>"),
            V::Items(i) => write!(f, "<{} items>", i.len()),
        }
    }
}

/// A value of the engine's own that expressions read: its fields by name,
/// and the same value built as CEL's for the expressions CEL evaluates.
pub trait Object: Sync {
    /// Its fields' names, in the order its CEL value has them.
    fn names(&self) -> &'static [&'static str];
    /// The field `name`; `None` when there is no such field.
    fn field(&self, name: &str) -> Option<V<'_>>;
    /// What it is, for the engine that kept it.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The same value as CEL's: its fields read through [`Object::field`],
    /// so the two cannot differ.
    fn to_val(&self) -> Box<dyn Val> {
        Box::new(Record::new(
            self.names()
                .iter()
                .map(|n| {
                    (
                        (*n).into(),
                        self.field(n).map_or(V::Null, |v| v).to_val().into(),
                    )
                })
                .collect(),
        ))
    }
}

/// A list of the engine's own.
pub trait Items: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn get(&self, i: usize) -> V<'_>;
    fn to_val(&self) -> Box<dyn Val>;
}

impl<'a> V<'a> {
    /// A CEL value as the evaluator reads it: a record in place, a text,
    /// boolean, number or null by value.
    pub fn of(v: &'a dyn Val) -> V<'a> {
        match v.downcast_ref::<Record>() {
            Some(r) => V::Rec(r),
            None => leaf(v),
        }
    }

    /// The value as CEL's, for what the native evaluator hands on.
    pub fn to_val(self) -> Box<dyn Val + 'static> {
        match self {
            V::Null => Box::new(CelNull),
            V::Bool(b) => Box::new(CelBool::from(b)),
            V::Int(i) => Box::new(CelInt::from(i)),
            V::Str(s) => super::record::text(s),
            V::Rec(r) => Box::new(r.clone()),
            V::Val(v) => super::record::to_owned_val(v).unwrap_or_else(|_| Box::new(CelNull)),
            V::Obj(o) => o.to_val(),
            V::Items(i) => i.to_val(),
        }
    }
}

/// What an evaluation reads: the context and, inside a foreach, its item;
/// in a machine's transition, the entity (`self`).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub request: V<'a>,
    pub session: V<'a>,
    pub platform: V<'a>,
    pub error: V<'a>,
    pub event: V<'a>,
    pub entity: Option<V<'a>>,
    /// The workflow's variables, as a record (empty in a machine).
    pub vars: V<'a>,
    pub item: Option<V<'a>>,
    /// List items one evaluation may visit ([`super::record::budgeted`]).
    pub budget: usize,
}

impl Native {
    /// Compiles `e` if every part of it is in the native subset. `item` is
    /// the name a foreach binds its item to, when `e` is in its body.
    pub fn compile(e: &IdedExpr, item: Option<&str>) -> Option<Native> {
        Compiler {
            item,
            bound: Vec::new(),
        }
        .n(e)
        .map(Native::new)
    }

    pub fn eval<'a>(&'a self, inputs: &Inputs<'a>) -> Result<V<'a>, Unsure> {
        eval(&self.n, inputs, &mut Bound::new())
    }

    /// Its value when nothing at run time changes it: a literal, or what
    /// the platform's settings decided ([`Native::specialised`]).
    pub fn constant(&self) -> Option<V<'_>> {
        Some(match &self.n {
            N::Null => V::Null,
            N::Bool(b) => V::Bool(*b),
            N::Int(i) => V::Int(*i),
            N::Str(s) => V::Str(s),
            _ => return None,
        })
    }

    pub fn eval_bool<'a>(&'a self, inputs: &Inputs<'a>) -> Result<bool, Unsure> {
        bool_of(self.eval(inputs)?)
    }

    /// The elements of the list the expression gives (a foreach's items).
    pub fn eval_list<'a>(&'a self, inputs: &Inputs<'a>) -> Result<List<'a>, Unsure> {
        let mut bound = Bound::new();
        let (range, keep) = match &self.n {
            N::Filter(range, pred) => (range.as_ref(), Some(pred)),
            other => (other, None),
        };
        let list = eval(range, inputs, &mut bound)?;
        let mut out = List::new();
        each(list, |x| {
            let Some(pred) = keep else {
                out.push(x);
                return Ok(false);
            };
            bound.push(x);
            let kept = eval(pred, inputs, &mut bound).and_then(bool_of);
            bound.pop();
            if kept? {
                out.push(x);
            }
            Ok(false)
        })?;
        Ok(out)
    }
}

/// What the platform's settings alone decide of an expression, before any
/// request: the analysis behind "impossible under this profile's settings".
impl Native {
    /// The value of a boolean expression that `platform` alone decides;
    /// `None` when it depends on anything else.
    pub fn decided(&self, platform: &dyn Val) -> Option<bool> {
        decided(&self.n, &settled(platform), &mut Bound::new())
    }

    /// Whether the items of `list.filter(x, pred)` are always none because
    /// `pred` refuses every item whose `media` is one of `media`, whatever
    /// else the item holds.
    pub fn never_any(&self, platform: &dyn Val, media: &[String]) -> bool {
        let N::Filter(_, pred) = &self.n else {
            return false;
        };
        let inputs = settled(platform);
        media.iter().all(|m| {
            let item = Record::new(vec![("media".into(), Slot::text(m))]);
            let mut bound: Bound<'_> = smallvec::smallvec![V::Rec(&item)];
            decided(pred, &inputs, &mut bound) == Some(false)
        })
    }
}

/// The same expression for one platform: every part its settings alone
/// decide is worked out once, when the platform is readied to run
/// ([`crate::Report::prepare`]), instead of at every evaluation. A guard
/// like `platform.confirmation == 'event' && …` becomes `false` on a
/// platform that confirms by reply.
impl Native {
    /// `None` when it reads no setting: then the platform changes nothing
    /// and it is kept as compiled. Parts of it that read only literals
    /// (`size('abc')`) are then left to evaluation, as CEL would, rather
    /// than folded once per platform.
    pub fn specialised(&self, platform: &dyn Val) -> Option<Native> {
        self.reads_platform
            .then(|| Native::new(fold(&self.n, &settled(platform))))
    }
}

fn reads_platform(n: &N) -> bool {
    match n {
        N::Root(r) => matches!(r, Root::Platform),
        N::Null | N::Bool(_) | N::Int(_) | N::Str(_) | N::Bound(_) => false,
        N::Field(a, _) | N::Has(a, _) | N::Not(a) | N::Size(a) => reads_platform(a),
        N::And(a, b) | N::Or(a, b) | N::Cmp(_, a, b) | N::In(a, b) => {
            reads_platform(a) || reads_platform(b)
        }
        N::Cond(c, a, b) => reads_platform(c) || reads_platform(a) || reads_platform(b),
        N::Exists(r, p) | N::All(r, p) | N::Filter(r, p) => reads_platform(r) || reads_platform(p),
        N::List(items) => items.iter().any(reads_platform),
    }
}

/// `n` with its parts that read only the platform replaced by their values.
/// Only what the native evaluator itself would answer is folded, so the
/// result agrees with CEL wherever the original did.
fn fold(n: &N, inputs: &Inputs<'_>) -> N {
    if reads_only_known(n, 0)
        && let Ok(v) = eval(n, inputs, &mut Bound::new())
    {
        match v {
            V::Null => return N::Null,
            V::Bool(b) => return N::Bool(b),
            V::Int(i) => return N::Int(i),
            V::Str(s) => return N::Str(s.into()),
            V::Rec(_) | V::Val(_) | V::Obj(_) | V::Items(_) => {}
        }
    }
    if let Some(b) = decided(n, inputs, &mut Bound::new()) {
        return N::Bool(b);
    }
    let f = |x: &N| Box::new(fold(x, inputs));
    match n {
        N::Field(a, name) => N::Field(f(a), name.clone()),
        N::Has(a, name) => N::Has(f(a), name.clone()),
        N::Not(a) => N::Not(f(a)),
        N::And(a, b) => N::And(f(a), f(b)),
        N::Or(a, b) => N::Or(f(a), f(b)),
        N::Cmp(op, a, b) => N::Cmp(*op, f(a), f(b)),
        // A platform's list on the right of `in` becomes a list written
        // out: compared item by item without reading the settings.
        N::In(a, b) => N::In(
            f(a),
            Box::new(literal_list(b, inputs).unwrap_or_else(|| fold(b, inputs))),
        ),
        N::Size(a) => N::Size(f(a)),
        N::Cond(c, a, b) => match fold(c, inputs) {
            N::Bool(true) => fold(a, inputs),
            N::Bool(false) => fold(b, inputs),
            c => N::Cond(Box::new(c), f(a), f(b)),
        },
        N::Exists(r, p) => N::Exists(f(r), f(p)),
        N::All(r, p) => N::All(f(r), f(p)),
        N::Filter(r, p) => N::Filter(f(r), f(p)),
        N::List(items) => N::List(items.iter().map(|i| fold(i, inputs)).collect()),
        leaf @ (N::Null | N::Bool(_) | N::Int(_) | N::Str(_) | N::Root(_) | N::Bound(_)) => {
            leaf.clone()
        }
    }
}

/// A list of the platform's, of texts, numbers and booleans only, as a list
/// written out.
fn literal_list(n: &N, inputs: &Inputs<'_>) -> Option<N> {
    if !reads_only_known(n, 0) {
        return None;
    }
    let list = eval(n, inputs, &mut Bound::new()).ok()?;
    let mut items = Vec::new();
    each(list, |x| {
        items.push(match x {
            V::Str(s) => N::Str(s.into()),
            V::Int(i) => N::Int(i),
            V::Bool(b) => N::Bool(b),
            _ => return Err(Unsure),
        });
        Ok(false)
    })
    .ok()?;
    Some(N::List(items))
}

/// Inputs where only the platform is known; a read of anything else is
/// caught by [`reads_only_known`] before evaluation.
fn settled(platform: &dyn Val) -> Inputs<'_> {
    let platform = V::of(platform);
    Inputs {
        request: platform,
        session: platform,
        platform,
        error: platform,
        event: platform,
        entity: None,
        vars: platform,
        item: None,
        budget: super::record::EVAL_BUDGET,
    }
}

/// Whether `n` reads nothing but the platform, literals and the `bound`
/// comprehension variables the caller supplies.
fn reads_only_known(n: &N, bound: usize) -> bool {
    match n {
        N::Null | N::Bool(_) | N::Int(_) | N::Str(_) => true,
        N::Root(r) => matches!(r, Root::Platform),
        N::Bound(depth) => *depth < bound,
        N::Field(a, _) | N::Has(a, _) | N::Not(a) | N::Size(a) => reads_only_known(a, bound),
        N::And(a, b) | N::Or(a, b) | N::Cmp(_, a, b) | N::In(a, b) => {
            reads_only_known(a, bound) && reads_only_known(b, bound)
        }
        N::Cond(c, a, b) => {
            reads_only_known(c, bound) && reads_only_known(a, bound) && reads_only_known(b, bound)
        }
        N::Exists(r, p) | N::All(r, p) | N::Filter(r, p) => {
            reads_only_known(r, bound) && reads_only_known(p, bound + 1)
        }
        N::List(items) => items.iter().all(|i| reads_only_known(i, bound)),
    }
}

/// Kleene's three-valued reading, as CEL's own `&&` and `||` absorb an
/// unknown side when the other decides.
fn decided<'a>(n: &'a N, inputs: &Inputs<'a>, bound: &mut Bound<'a>) -> Option<bool> {
    // A bound item may lack a field it is asked for: then the parts decide.
    if reads_only_known(n, bound.len())
        && let Ok(b) = eval(n, inputs, bound).and_then(bool_of)
    {
        return Some(b);
    }
    match n {
        N::Not(a) => decided(a, inputs, bound).map(|b| !b),
        N::And(a, b) => match (decided(a, inputs, bound), decided(b, inputs, bound)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        N::Or(a, b) => match (decided(a, inputs, bound), decided(b, inputs, bound)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        N::Cond(c, a, b) => match decided(c, inputs, bound) {
            Some(true) => decided(a, inputs, bound),
            Some(false) => decided(b, inputs, bound),
            None => {
                let (a, b) = (decided(a, inputs, bound), decided(b, inputs, bound));
                if a == b { a } else { None }
            }
        },
        _ => None,
    }
}

/// Resolves names while compiling: comprehension variables shadow the
/// context.
struct Compiler<'s> {
    item: Option<&'s str>,
    bound: Vec<String>,
}

impl Compiler<'_> {
    fn boxed(&mut self, e: &IdedExpr) -> Option<Box<N>> {
        self.n(e).map(Box::new)
    }

    fn name(&self, name: &str) -> Option<N> {
        if let Some(depth) = self.bound.iter().rev().position(|b| b == name) {
            return Some(N::Bound(depth));
        }
        Some(N::Root(match name {
            "request" => Root::Request,
            "session" => Root::Session,
            "platform" => Root::Platform,
            "error" => Root::Error,
            "event" => Root::Event,
            "self" => Root::Entity,
            "vars" => Root::Vars,
            n if Some(n) == self.item => Root::Item,
            _ => return None,
        }))
    }

    /// Compiles `body` with `var` bound.
    fn within(&mut self, var: &str, body: &IdedExpr) -> Option<Box<N>> {
        self.bound.push(var.to_string());
        let n = self.boxed(body);
        self.bound.pop();
        n
    }

    fn n(&mut self, e: &IdedExpr) -> Option<N> {
        Some(match &e.expr {
            Expr::Literal(LiteralValue::Null) => N::Null,
            Expr::Literal(LiteralValue::Boolean(b)) => N::Bool(*b.inner()),
            Expr::Literal(LiteralValue::Int(i)) => N::Int(*i.inner()),
            Expr::Literal(LiteralValue::String(s)) => N::Str(s.inner().into()),
            Expr::Literal(_) => return None,
            Expr::Ident(name) => self.name(name)?,
            Expr::Select(s) if s.test => N::Has(self.boxed(&s.operand)?, field_name(&s.field)),
            Expr::Select(s) => N::Field(self.boxed(&s.operand)?, field_name(&s.field)),
            Expr::Call(c) => {
                let args = &c.args;
                match (c.func_name.as_str(), &c.target, args.len()) {
                    ("!_", None, 1) => N::Not(self.boxed(&args[0])?),
                    ("_&&_", None, 2) => N::And(self.boxed(&args[0])?, self.boxed(&args[1])?),
                    ("_||_", None, 2) => N::Or(self.boxed(&args[0])?, self.boxed(&args[1])?),
                    ("@in", None, 2) => N::In(self.boxed(&args[0])?, self.boxed(&args[1])?),
                    ("_?_:_", None, 3) => N::Cond(
                        self.boxed(&args[0])?,
                        self.boxed(&args[1])?,
                        self.boxed(&args[2])?,
                    ),
                    ("size", None, 1) => N::Size(self.boxed(&args[0])?),
                    ("size", Some(t), 0) => N::Size(self.boxed(t)?),
                    (op, None, 2) => {
                        let cmp = match op {
                            "_==_" => Cmp::Eq,
                            "_!=_" => Cmp::Ne,
                            "_<_" => Cmp::Lt,
                            "_<=_" => Cmp::Le,
                            "_>_" => Cmp::Gt,
                            "_>=_" => Cmp::Ge,
                            _ => return None,
                        };
                        N::Cmp(cmp, self.boxed(&args[0])?, self.boxed(&args[1])?)
                    }
                    _ => return None,
                }
            }
            Expr::Comprehension(c) => self.comprehension(c)?,
            Expr::List(l) if l.optional_indices.is_empty() => N::List(
                l.elements
                    .iter()
                    .map(|e| self.n(e))
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }

    /// `exists`, `all` and `filter`, recognised by the shape the parser
    /// expands them to; other comprehensions stay with CEL.
    fn comprehension(&mut self, c: &ComprehensionExpr) -> Option<N> {
        let accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(a) if *a == c.accu_var);
        if c.iter_var2.is_some() || !accu(&c.result) {
            return None;
        }
        let Expr::Call(step) = &c.loop_step.expr else {
            return None;
        };
        match (
            &c.accu_init.expr,
            step.func_name.as_str(),
            step.args.as_slice(),
        ) {
            (Expr::Literal(LiteralValue::Boolean(init)), op, [acc, pred]) if accu(acc) => {
                match (op, *init.inner()) {
                    ("_||_", false) => Some(N::Exists(
                        self.boxed(&c.iter_range)?,
                        self.within(&c.iter_var, pred)?,
                    )),
                    ("_&&_", true) => Some(N::All(
                        self.boxed(&c.iter_range)?,
                        self.within(&c.iter_var, pred)?,
                    )),
                    _ => None,
                }
            }
            // filter: an empty list grown by `pred ? acc + [x] : acc`
            (Expr::List(init), "_?_:_", [pred, grown, kept])
                if init.elements.is_empty() && accu(kept) =>
            {
                let Expr::Call(add) = &grown.expr else {
                    return None;
                };
                let appends_item = add.func_name == "_+_"
                    && add.args.len() == 2
                    && accu(&add.args[0])
                    && matches!(&add.args[1].expr, Expr::List(l) if l.elements.len() == 1
                        && matches!(&l.elements[0].expr, Expr::Ident(v) if *v == c.iter_var));
                appends_item.then_some(())?;
                Some(N::Filter(
                    self.boxed(&c.iter_range)?,
                    self.within(&c.iter_var, pred)?,
                ))
            }
            _ => None,
        }
    }
}

fn field_name(name: &str) -> Cow<'static, str> {
    intern::known(name).map_or_else(|| Cow::Owned(name.to_string()), Cow::Borrowed)
}

fn leaf(v: &dyn Val) -> V<'_> {
    match v.get_type().kind() {
        Kind::String => v
            .downcast_ref::<CelString>()
            .map_or(V::Val(v), |s| V::Str(s.inner())),
        Kind::Boolean => v
            .downcast_ref::<CelBool>()
            .map_or(V::Val(v), |b| V::Bool(*b.inner())),
        Kind::Int => v
            .downcast_ref::<CelInt>()
            .map_or(V::Val(v), |i| V::Int(*i.inner())),
        Kind::NullType => v.downcast_ref::<CelNull>().map_or(V::Val(v), |_| V::Null),
        _ => V::Val(v),
    }
}

/// A record's field as the evaluator reads it: most are texts, booleans or
/// numbers, read without asking CEL's value its type.
fn slot(s: &Slot) -> V<'_> {
    match s {
        Slot::Text(t) => V::Str(t.inner()),
        Slot::Bool(b) => V::Bool(*b.inner()),
        Slot::Int(i) => V::Int(*i.inner()),
        Slot::Val(v) => V::of(v.as_ref()),
    }
}

/// The list a value is, if it is one.
fn list_of(v: V<'_>) -> Result<&dyn Val, Unsure> {
    match v {
        V::Val(l) if l.get_type().kind() == Kind::List => Ok(l),
        _ => Err(Unsure),
    }
}

/// Visits the items of a list, CEL's or the engine's, until `f` says stop;
/// each visit counts against the evaluation's budget.
fn each<'a>(list: V<'a>, mut f: impl FnMut(V<'a>) -> Result<bool, Unsure>) -> Result<(), Unsure> {
    match list {
        V::Items(items) => {
            let n = items.len();
            let n = if super::record::charge(n) { n } else { 0 };
            for i in 0..n {
                if f(items.get(i))? {
                    break;
                }
            }
        }
        other => {
            let list = list_of(other)?;
            let mut it = list.as_iterable().ok_or(Unsure)?.iter();
            while let Some(x) = it.next() {
                if f(leaf(x))? {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// `base.name`, borrowed in place; `None` when there is no such field.
/// Inlined into every node that reads a field: the engine's records and
/// objects are read here, CEL's values out of line ([`val_field`]), so
/// that their longer path does not weigh on every caller.
#[inline(always)]
fn field<'a>(base: V<'a>, name: &str) -> Result<Option<V<'a>>, Unsure> {
    match base {
        V::Rec(r) => Ok(r.slot(name).map(slot)),
        V::Obj(o) => Ok(o.field(name)),
        V::Val(v) => val_field(v, name),
        _ => Err(Unsure),
    }
}

/// A field of a value CEL built (a map from JSON, a fallback's result).
#[inline(never)]
fn val_field<'a>(v: &'a dyn Val, name: &str) -> Result<Option<V<'a>>, Unsure> {
    if let Some(r) = v.downcast_ref::<Record>() {
        return Ok(r.slot(name).map(slot));
    }
    let indexer = v.as_indexer().ok_or(Unsure)?;
    match indexer.get(&CelString::from(name)) {
        Ok(CowVal::Borrowed(f)) => Ok(Some(leaf(f))),
        Ok(CowVal::Owned(_)) => Err(Unsure),
        Err(cel::ExecutionError::NoSuchKey(_)) => Ok(None),
        Err(_) => Err(Unsure),
    }
}

#[inline(always)]
fn eq(a: V<'_>, b: V<'_>) -> Result<bool, Unsure> {
    match (a, b) {
        (V::Null, V::Null) => Ok(true),
        (V::Bool(x), V::Bool(y)) => Ok(x == y),
        (V::Int(x), V::Int(y)) => Ok(x == y),
        (V::Str(x), V::Str(y)) => Ok(x == y),
        _ => Err(Unsure),
    }
}

/// The boolean a value is; unsure of anything else.
pub fn bool_of(v: V<'_>) -> Result<bool, Unsure> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(Unsure),
    }
}

/// A list a foreach goes through: most are a session's channels, three at
/// most.
pub type List<'a> = smallvec::SmallVec<[V<'a>; 3]>;

/// The items the comprehensions around an expression bind, innermost last.
/// Few expressions nest deeper than four: they bind on the stack.
type Bound<'a> = smallvec::SmallVec<[V<'a>; 4]>;

fn eval<'a>(node: &'a N, inputs: &Inputs<'a>, bound: &mut Bound<'a>) -> Result<V<'a>, Unsure> {
    Ok(match node {
        N::Null => V::Null,
        N::Bool(b) => V::Bool(*b),
        N::Int(i) => V::Int(*i),
        N::Str(s) => V::Str(s),
        N::Root(r) => root(*r, inputs)?,
        N::Bound(depth) => bound_at(bound, *depth)?,
        N::Field(base, name) => read_field(base, name, inputs, bound)?,
        N::Has(base, name) => V::Bool(field(base_of(base, inputs, bound)?, name)?.is_some()),
        N::Not(a) => V::Bool(!bool_of(operand(a, inputs, bound)?)?),
        N::And(a, b) => {
            V::Bool(bool_of(operand(a, inputs, bound)?)? && bool_of(operand(b, inputs, bound)?)?)
        }
        N::Or(a, b) => {
            V::Bool(bool_of(operand(a, inputs, bound)?)? || bool_of(operand(b, inputs, bound)?)?)
        }
        N::Cmp(op, a, b) => {
            let (a, b) = (operand(a, inputs, bound)?, operand(b, inputs, bound)?);
            V::Bool(match op {
                Cmp::Eq => eq(a, b)?,
                Cmp::Ne => !eq(a, b)?,
                _ => order(*op, a, b)?,
            })
        }
        N::In(item, list) => V::Bool(is_in(item, list, inputs, bound)?),
        N::Size(a) => match eval(a, inputs, bound)? {
            V::Str(s) => V::Int(s.chars().count() as i64),
            V::Val(v) => V::Int(*v.as_sizer().ok_or(Unsure)?.size().inner()),
            V::Items(i) => V::Int(i.len() as i64),
            V::Rec(r) => V::Int(r.fields().len() as i64),
            _ => return Err(Unsure),
        },
        N::Cond(c, a, b) => {
            if bool_of(eval(c, inputs, bound)?)? {
                eval(a, inputs, bound)?
            } else {
                eval(b, inputs, bound)?
            }
        }
        N::Filter(..) | N::List(_) => return Err(Unsure),
        N::Exists(range, pred) => V::Bool(quantify(true, range, pred, inputs, bound)?),
        N::All(range, pred) => V::Bool(quantify(false, range, pred, inputs, bound)?),
    })
}

/// An operand: a literal or a field is read here, without a turn through
/// `eval`; most operands of a comparison or a condition are one.
#[inline(always)]
fn operand<'a>(n: &'a N, inputs: &Inputs<'a>, bound: &mut Bound<'a>) -> Result<V<'a>, Unsure> {
    match n {
        N::Str(s) => Ok(V::Str(s)),
        N::Field(base, name) => read_field(base, name, inputs, bound),
        other => eval(other, inputs, bound),
    }
}

/// `base.name`; unsure when there is no such field, as CEL fails then.
#[inline(always)]
fn read_field<'a>(
    base: &'a N,
    name: &str,
    inputs: &Inputs<'a>,
    bound: &mut Bound<'a>,
) -> Result<V<'a>, Unsure> {
    field(base_of(base, inputs, bound)?, name)?.ok_or(Unsure)
}

#[inline(always)]
fn root<'a>(r: Root, inputs: &Inputs<'a>) -> Result<V<'a>, Unsure> {
    Ok(match r {
        Root::Request => inputs.request,
        Root::Session => inputs.session,
        Root::Platform => inputs.platform,
        Root::Error => inputs.error,
        Root::Event => inputs.event,
        Root::Entity => inputs.entity.ok_or(Unsure)?,
        Root::Vars => inputs.vars,
        Root::Item => inputs.item.ok_or(Unsure)?,
    })
}

#[inline(always)]
fn bound_at<'a>(bound: &Bound<'a>, depth: usize) -> Result<V<'a>, Unsure> {
    bound
        .len()
        .checked_sub(depth + 1)
        .map(|i| bound[i])
        .ok_or(Unsure)
}

/// The value a field is read from. Most are a context variable or a
/// comprehension's item (`request.channel`, `c.id`): read here, without a
/// turn through `eval`.
#[inline(always)]
fn base_of<'a>(base: &'a N, inputs: &Inputs<'a>, bound: &mut Bound<'a>) -> Result<V<'a>, Unsure> {
    match base {
        N::Root(r) => root(*r, inputs),
        N::Bound(depth) => bound_at(bound, *depth),
        other => eval(other, inputs, bound),
    }
}

// The arms below keep their closures and locals out of `eval`'s own frame,
// which every node of every expression enters.

#[inline(never)]
fn order(op: Cmp, a: V<'_>, b: V<'_>) -> Result<bool, Unsure> {
    let ord = match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(&y),
        (V::Str(x), V::Str(y)) => x.cmp(y),
        _ => return Err(Unsure),
    };
    Ok(match op {
        Cmp::Lt => ord.is_lt(),
        Cmp::Le => ord.is_le(),
        Cmp::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    })
}

#[inline(never)]
fn is_in<'a>(
    item: &'a N,
    list: &'a N,
    inputs: &Inputs<'a>,
    bound: &mut Bound<'a>,
) -> Result<bool, Unsure> {
    let item = eval(item, inputs, bound)?;
    let mut found = false;
    if let N::List(elements) = list {
        for e in elements {
            if eq(item, operand(e, inputs, bound)?)? {
                return Ok(true);
            }
        }
    } else {
        each(eval(list, inputs, bound)?, |x| {
            found = eq(item, x)?;
            Ok(found)
        })?;
    }
    Ok(found)
}

/// `exists` (true) or `all` (false) of `pred` over `range`.
#[inline(never)]
fn quantify<'a>(
    exists: bool,
    range: &'a N,
    pred: &'a N,
    inputs: &Inputs<'a>,
    bound: &mut Bound<'a>,
) -> Result<bool, Unsure> {
    let list = eval(range, inputs, bound)?;
    let mut result = !exists;
    each(list, |x| {
        bound.push(x);
        let r = eval(pred, inputs, bound).and_then(bool_of);
        bound.pop();
        if r? == exists {
            result = exists;
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::Native;

    fn native(source: &str) -> Native {
        let program = crate::workflow::expr::env().compile(source).unwrap();
        Native::compile(program.expression(), None).unwrap()
    }

    #[test]
    fn only_what_reads_a_setting_is_specialised() {
        let platform =
            crate::workflow::record::from_json_ordered(&serde_json::json!({ "mode": "event" }));
        let folded = native("platform.mode == 'event' && session.state == 'Ready'")
            .specialised(platform.as_ref())
            .expect("it reads a setting");
        assert!(
            matches!(&folded.n, super::N::And(a, _) if matches!(**a, super::N::Bool(true))),
            "{:?}",
            folded.n
        );
        for kept in [
            "session.state == 'Ready'",
            "session.channels.exists(c, c.active)",
            "'platform' == request.reason",
        ] {
            assert!(
                native(kept).specialised(platform.as_ref()).is_none(),
                "{kept}"
            );
        }
        let inside = native("session.channels.exists(c, c.media in platform.media)");
        assert!(inside.specialised(platform.as_ref()).is_some());
    }
}
