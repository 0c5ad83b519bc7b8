//! Between the engine's data (JSON, the session) and CEL's values. Variables
//! are built once and lent to every evaluation through a resolver; the
//! session's value is rebuilt only after something changed it.

use std::sync::Arc;

use cel::common::types::{CelBool, CelInt, CelList, CelMap, CelNull};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Value};
use serde_json::Value as Json;

use super::session::Channel;
use crate::workflow::expr::CompiledExpr;
use crate::workflow::native::{Inputs, Native, Unsure, V, bool_of};
use crate::workflow::record::{Fields, Record, SharedList, Slot, budgeted};

pub use crate::workflow::record::{from_json, from_json_ordered, to_owned_val};

/// JSON from a CEL value, the engine's own record and list types included.
pub fn to_json(v: &dyn Val) -> Result<Json, String> {
    if let Some(r) = v.downcast_ref::<Record>() {
        return r
            .fields()
            .iter()
            .map(|(k, v)| Ok((k.to_string(), to_json(v.as_val())?)))
            .collect::<Result<_, String>>()
            .map(Json::Object);
    }
    if let Some(l) = v.downcast_ref::<SharedList>() {
        return l
            .items()
            .iter()
            .map(|i| to_json(i.as_ref()))
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    if let Some(l) = v.downcast_ref::<CelList>() {
        return l
            .inner()
            .iter()
            .map(|i| to_json(i.as_ref()))
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    if let Some(m) = v.downcast_ref::<CelMap>() {
        let mut out = serde_json::Map::new();
        for (k, v) in m.inner() {
            let key = match to_json(k.inner())? {
                Json::String(s) => s,
                other => other.to_string(),
            };
            out.insert(key, to_json(v.as_ref())?);
        }
        return Ok(Json::Object(out));
    }
    let value = Value::try_from(v).map_err(|e| e.to_string())?;
    value.json().map_err(|e| e.to_string())
}

/// `record`'s fields and one more, `name: value`: an operation's arguments
/// with what it answered.
pub fn with_field(record: &Record, name: &'static str, value: &Json) -> Record {
    let mut fields: Fields = record
        .fields()
        .iter()
        .filter(|(n, _)| n != name)
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    fields.push((name.into(), from_json(value).into()));
    Record::new(fields)
}

/// The `event` variable before any switch event arrived: a null `name`.
pub fn no_event() -> Record {
    Record::new(vec![("name".into(), Slot::null())])
}

/// A switch event as expressions see it: its `name` and the fields the
/// switch sent (`has(event.reason)` tells an optional one is there), as a
/// request's parameters are.
pub fn event_record(
    spec: &crate::platform::EventSpec,
    data: &serde_json::Map<String, Json>,
) -> Record {
    let mut fields: Fields = vec![("name".into(), Slot::text(spec.name))];
    for f in spec.fields {
        if let Some(v) = data.get(f.name).and_then(Json::as_str) {
            fields.push((f.name.into(), Slot::text(v)));
        }
    }
    Record::new(fields)
}

/// CEL reads the context through the same inputs as the native evaluator.
/// (A foreach item is bound in an inner scope instead.)
impl VariableResolver for Inputs<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        Some(cel_value(match variable {
            "request" => self.request,
            "session" => self.session,
            "platform" => self.platform,
            "error" => self.error,
            "event" => self.event,
            "self" => self.entity?,
            "vars" => self.vars,
            _ => return None,
        }))
    }
}

/// A value as CEL reads it: the engine's own are built as CEL values, for
/// the few expressions the native evaluator leaves to CEL.
fn cel_value(v: V<'_>) -> CowVal<'_, '_> {
    match v {
        V::Val(v) => CowVal::Borrowed(v),
        V::Rec(r) => CowVal::Borrowed(r),
        other => CowVal::Owned(other.to_val()),
    }
}

/// The `error` variable when nothing failed yet: every field null.
pub fn no_error() -> Record {
    Record::new(
        ["code", "message", "operation", "channel"]
            .into_iter()
            .map(|n| (n.into(), Slot::null()))
            .collect(),
    )
}

/// A request's parameters as expressions read them (`request.*`): a record
/// in the order the client wrote them, read in place.
pub fn request(params: &Json) -> Record {
    match params {
        Json::Object(m) => Record::from_json_fields(m),
        // The protocol's parameters are an object; anything else has none.
        _ => Record::new(Vec::new()),
    }
}

/// Evaluates `expr` with `vars` and, inside a foreach, the item bound to its
/// name; hands the result to `f` while the context that owns it is alive.
pub fn with_value<R>(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
    item: Option<(&str, V<'_>)>,
    f: impl FnOnce(&dyn Val) -> R,
) -> Result<R, String> {
    let mut root = Context::with_env(env.clone());
    root.set_variable_resolver(vars);
    let scoped;
    let ctx = match item {
        None => &root,
        Some((name, val)) => {
            let mut inner = root.new_inner_scope();
            inner.add_variable_as_val(name, val.to_val());
            scoped = inner;
            &scoped
        }
    };
    let out = Value::resolve_val(expr.expression(), ctx).map_err(|e| e.to_string())?;
    Ok(f(out.as_ref()))
}

/// `n` on the inputs and, in a foreach, its item: the inputs are copied
/// only then. Without one, `vars`' own item (none, in the engine) stands.
fn eval_in<'a>(
    n: &'a Native,
    vars: &Inputs<'a>,
    item: Option<(&str, V<'a>)>,
) -> Result<V<'a>, Unsure> {
    match item {
        None => n.eval(vars),
        Some((_, v)) => n.eval(&Inputs {
            item: Some(v),
            ..*vars
        }),
    }
}

fn native_json(v: V<'_>) -> Result<Json, String> {
    Ok(match v {
        V::Null => Json::Null,
        V::Bool(b) => Json::Bool(b),
        V::Int(i) => Json::from(i),
        V::Str(s) => Json::String(s.to_string()),
        V::Val(v) => to_json(v)?,
        V::Rec(r) => to_json(r)?,
        V::Obj(o) => to_json(o.to_val().as_ref())?,
        V::Items(i) => to_json(i.to_val().as_ref())?,
    })
}

fn native_owned(v: V<'_>) -> Result<Slot, String> {
    Ok(match v {
        V::Null => Slot::null(),
        V::Bool(b) => Slot::Bool(CelBool::from(b)),
        V::Int(i) => Slot::Int(CelInt::from(i)),
        V::Str(s) => Slot::text(s),
        V::Val(v) => to_owned_val(v)?.into(),
        V::Rec(r) => Slot::Val(Box::new(r.clone())),
        other => other.to_val().into(),
    })
}

/// Evaluates to a value that outlives the evaluation.
pub fn eval_owned(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
    item: Option<(&str, V<'_>)>,
) -> Result<Slot, String> {
    if let Some(v) = constant(expr) {
        return native_owned(v);
    }
    if let Some(Ok(v)) = unbudgeted(expr).map(|n| eval_in(n, vars, item)) {
        return native_owned(v);
    }
    budgeted(vars.budget, expr.source(), || {
        if let Some(Ok(v)) = budgeted_native(expr).map(|n| eval_in(n, vars, item)) {
            return native_owned(v);
        }
        with_value(env, expr, vars, item, |v| to_owned_val(v).map(Slot::from))?
    })
}

/// The expression's native form when it visits no list items: it needs no
/// evaluation budget, and the budget's set-up is skipped. Should it answer
/// unsure, CEL evaluates the expression within the budget.
fn unbudgeted(expr: &CompiledExpr) -> Option<&Native> {
    expr.native().filter(|n| !n.visits_items())
}

/// The expression's native form when it needs the evaluation budget; one
/// that does not was tried before the budget was set up.
fn budgeted_native(expr: &CompiledExpr) -> Option<&Native> {
    expr.native().filter(|n| n.visits_items())
}

/// The expression's value, when it is known before any evaluation.
fn constant(expr: &CompiledExpr) -> Option<V<'_>> {
    expr.native().and_then(|n| n.constant())
}

/// A value as text, the way an operation argument takes it: `None` for null.
pub fn as_text(v: &dyn Val) -> Option<String> {
    if v.downcast_ref::<CelNull>().is_some() {
        return None;
    }
    if let Some(s) = v.downcast_ref::<cel::common::types::CelString>() {
        return Some(s.inner().to_string());
    }
    to_json(v).ok().map(|j| j.to_string())
}

pub fn eval_json(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
    item: Option<(&str, V<'_>)>,
) -> Result<Json, String> {
    if let Some(v) = constant(expr) {
        return native_json(v);
    }
    if let Some(Ok(v)) = unbudgeted(expr).map(|n| eval_in(n, vars, item)) {
        return native_json(v);
    }
    budgeted(vars.budget, expr.source(), || {
        if let Some(Ok(v)) = budgeted_native(expr).map(|n| eval_in(n, vars, item)) {
            return native_json(v);
        }
        with_value(env, expr, vars, item, to_json)?
    })
}

pub fn eval_bool(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
    item: Option<(&str, V<'_>)>,
) -> Result<bool, String> {
    if let Some(V::Bool(b)) = constant(expr) {
        return Ok(b);
    }
    if let Some(Ok(b)) = unbudgeted(expr).map(|n| eval_in(n, vars, item).and_then(bool_of)) {
        return Ok(b);
    }
    budgeted(vars.budget, expr.source(), || {
        if let Some(Ok(b)) = budgeted_native(expr).map(|n| eval_in(n, vars, item).and_then(bool_of))
        {
            return Ok(b);
        }
        with_value(env, expr, vars, item, |v| {
            v.downcast_ref::<CelBool>().map(|b| *b.inner())
        })?
        .ok_or_else(|| format!("`{}` is not a boolean", expr.source()))
    })
}

/// The elements of a list value, each its own value: they outlive the
/// session as it was (a foreach's body changes it).
pub fn eval_items(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
) -> Result<Vec<Item>, String> {
    budgeted(vars.budget, expr.source(), || {
        eval_items_unbudgeted(env, expr, vars)
    })
}

fn eval_items_unbudgeted(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
) -> Result<Vec<Item>, String> {
    if let Some(Ok(items)) = expr.native().map(|n| n.eval_list(vars)) {
        return items.into_iter().map(Item::of).collect();
    }
    with_value(env, expr, vars, None, |v| {
        let iterable = v
            .as_iterable()
            .ok_or_else(|| format!("`{}` is not a list", expr.source()))?;
        let mut items = Vec::new();
        let mut it = iterable.iter();
        while let Some(item) = it.next() {
            // An element may borrow from the variables, which the loop
            // outlives.
            items.push(Item::Val(to_owned_val(item)?.into()));
        }
        Ok(items)
    })?
}

/// A foreach's item, kept while the loop runs.
pub enum Item {
    /// A channel of the session, as it was when the loop began.
    Channel(Channel),
    Val(Slot),
}

impl Item {
    fn of(v: V<'_>) -> Result<Item, String> {
        if let V::Obj(o) = v
            && let Some(c) = o.as_any().downcast_ref::<Channel>()
        {
            return Ok(Item::Channel(c.clone()));
        }
        native_owned(v).map(Item::Val)
    }

    pub fn value(&self) -> V<'_> {
        match self {
            Item::Channel(c) => V::Obj(c),
            Item::Val(v) => V::Val(v.as_val()),
        }
    }
}
