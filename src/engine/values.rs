//! Between the engine's data (JSON, the session) and CEL's values. Variables
//! are built once and lent to every evaluation through a resolver; the
//! session's value is rebuilt only after something changed it.

use std::sync::Arc;

use cel::common::types::{CelBool, CelNull};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Value};
use serde_json::Value as Json;

use super::session::Session;
use crate::workflow::expr::CompiledExpr;

/// A CEL value from JSON.
pub fn from_json(v: &Json) -> Box<dyn Val> {
    cel::to_value(v)
        .ok()
        .and_then(|v| Box::<dyn Val>::try_from(v).ok())
        .unwrap_or_else(|| Box::new(CelNull))
}

/// JSON from a CEL value (maps with non-text keys have their keys printed).
pub fn to_json(v: &dyn Val) -> Result<Json, String> {
    let value = Value::try_from(v).map_err(|e| e.to_string())?;
    value.json().map_err(|e| e.to_string())
}

/// The session as expressions see it.
pub fn session_json(s: &Session) -> Json {
    serde_json::json!({
        "id": s.id,
        "agent": s.agent,
        "channels": s.channels,
        "logout_reasons": s.logout_reasons,
        "not_ready_reasons": s.not_ready_reasons,
    })
}

/// The variables of one evaluation: `request`, `session`, `platform`,
/// `error`, each lent, never copied.
#[derive(Clone, Copy)]
pub struct Vars<'p> {
    pub platform: &'p dyn Val,
    pub request: &'p dyn Val,
    pub session: &'p dyn Val,
    pub error: &'p dyn Val,
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v: &'b dyn Val = match variable {
            "request" => self.request,
            "session" => self.session,
            "platform" => self.platform,
            "error" => self.error,
            _ => return None,
        };
        Some(CowVal::Borrowed(v))
    }
}

/// The `error` variable when nothing failed yet: every field null.
pub fn no_error() -> Box<dyn Val> {
    from_json(
        &serde_json::json!({ "code": null, "message": null, "operation": null, "channel": null }),
    )
}

/// Evaluates `expr` with `vars` and, inside a foreach, the item bound to its
/// name; hands the result to `f` while the context that owns it is alive.
pub fn with_value<R>(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Vars<'_>,
    item: Option<(&str, &dyn Val)>,
    f: impl FnOnce(&dyn Val) -> R,
) -> Result<R, String> {
    let mut root = Context::with_env(env.clone());
    root.set_variable_resolver(vars);
    let scoped;
    let ctx = match item {
        None => &root,
        Some((name, val)) => {
            let mut inner = root.new_inner_scope();
            inner.add_variable_as_val(name, val.clone_as_boxed());
            scoped = inner;
            &scoped
        }
    };
    let out = Value::resolve_val(expr.program().expression(), ctx).map_err(|e| e.to_string())?;
    Ok(f(out.as_ref()))
}

pub fn eval_json(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Vars<'_>,
    item: Option<(&str, &dyn Val)>,
) -> Result<Json, String> {
    with_value(env, expr, vars, item, to_json)?
}

pub fn eval_bool(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Vars<'_>,
    item: Option<(&str, &dyn Val)>,
) -> Result<bool, String> {
    with_value(env, expr, vars, item, |v| {
        v.downcast_ref::<CelBool>().map(|b| *b.inner())
    })?
    .ok_or_else(|| format!("`{}` is not a boolean", expr.source()))
}

/// The elements of a list value, each its own value.
pub fn eval_items(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Vars<'_>,
) -> Result<Vec<Box<dyn Val>>, String> {
    with_value(env, expr, vars, None, |v| {
        let iterable = v
            .as_iterable()
            .ok_or_else(|| format!("`{}` is not a list", expr.source()))?;
        let mut items = Vec::new();
        let mut it = iterable.iter();
        while let Some(item) = it.next() {
            // An element may borrow from the variables; the loop outlives
            // them, so it gets an owned copy.
            let owned = Value::try_from(item).map_err(|e| e.to_string())?;
            items.push(Box::<dyn Val>::try_from(owned).map_err(|e| e.to_string())?);
        }
        Ok(items)
    })?
}
