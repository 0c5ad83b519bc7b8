//! Between the engine's data (JSON, the session) and CEL's values. Variables
//! are built once and lent to every evaluation through a resolver; the
//! session's value is rebuilt only after something changed it.

use std::sync::Arc;

use cel::common::types::{CelBool, CelInt, CelList, CelMap, CelNull};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Value};
use serde_json::Value as Json;

use super::session::{Channel, Session};
use crate::workflow::expr::CompiledExpr;
use crate::workflow::native::{Inputs, V};
use crate::workflow::record::{Record, SharedList, budgeted, text, texts};

pub use crate::workflow::record::{from_json, from_json_ordered};

/// A platform's settings as expressions read them (`platform.*`), in
/// declaration order.
pub fn settings(platform: &crate::workflow::model::Platform) -> Box<dyn Val> {
    platform.settings_value()
}

/// JSON from a CEL value, the engine's own record and list types included.
pub fn to_json(v: &dyn Val) -> Result<Json, String> {
    if let Some(r) = v.downcast_ref::<Record>() {
        return r
            .fields()
            .iter()
            .map(|(k, v)| Ok((k.to_string(), to_json(v.as_ref())?)))
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

/// A value that outlives the evaluation it came from. The engine's records
/// are shared, everything else is copied.
pub fn to_owned_val(v: &dyn Val) -> Result<Box<dyn Val>, String> {
    if let Some(r) = v.downcast_ref::<Record>() {
        return Ok(Box::new(r.clone()));
    }
    if let Some(l) = v.downcast_ref::<SharedList>() {
        return Ok(Box::new(l.clone()));
    }
    let owned = Value::try_from(v).map_err(|e| e.to_string())?;
    Box::<dyn Val>::try_from(owned).map_err(|e| e.to_string())
}

/// The session as CEL values, kept in step with the session: after a
/// change, only the channels that changed are built again.
pub struct SessionView {
    channels: Vec<(Channel, Record)>,
    state: Option<String>,
    logout_reasons: (Vec<String>, SharedList),
    not_ready_reasons: (Vec<String>, SharedList),
    value: Record,
}

fn channel_record(c: &Channel) -> Record {
    let interactions = c
        .interactions
        .iter()
        .map(|i| {
            Box::new(Record::new(vec![
                ("id".into(), text(&i.id)),
                ("media".into(), text(&i.media)),
            ])) as Box<dyn Val>
        })
        .collect();
    Record::new(vec![
        ("id".into(), text(&c.id)),
        ("media".into(), text(&c.media)),
        ("state".into(), text(&c.state)),
        ("active".into(), Box::new(CelBool::from(c.active))),
        (
            "interactions".into(),
            Box::new(SharedList::new(interactions)),
        ),
    ])
}

impl SessionView {
    pub fn new(s: &Session) -> Self {
        let channels = s
            .channels
            .iter()
            .map(|c| (c.clone(), channel_record(c)))
            .collect();
        let logout_reasons = (s.logout_reasons.clone(), texts(&s.logout_reasons));
        let not_ready_reasons = (s.not_ready_reasons.clone(), texts(&s.not_ready_reasons));
        let mut view = SessionView {
            channels,
            state: s.state.clone(),
            logout_reasons,
            not_ready_reasons,
            value: Record::new(Vec::new()),
        };
        view.value = view.build(s);
        view
    }

    fn build(&self, s: &Session) -> Record {
        let channels = self
            .channels
            .iter()
            .map(|(_, r)| Box::new(r.clone()) as Box<dyn Val>)
            .collect();
        Record::new(vec![
            ("id".into(), text(&s.id)),
            ("agent".into(), text(&s.agent)),
            ("state".into(), optional_text(s.state.as_deref())),
            ("channels".into(), Box::new(SharedList::new(channels))),
            (
                "logout_reasons".into(),
                Box::new(self.logout_reasons.1.clone()),
            ),
            (
                "not_ready_reasons".into(),
                Box::new(self.not_ready_reasons.1.clone()),
            ),
        ])
    }

    /// Brings the view in step with `s` after a change. Builds only what
    /// changed, and changes the session's value in place.
    pub fn refresh(&mut self, s: &Session) {
        let mut channels_changed = false;
        let same_ids = self.channels.len() == s.channels.len()
            && self
                .channels
                .iter()
                .zip(&s.channels)
                .all(|((a, _), b)| a.id == b.id);
        if same_ids {
            for ((old, rec), new) in self.channels.iter_mut().zip(&s.channels) {
                if old != new {
                    *old = new.clone();
                    *rec = channel_record(new);
                    channels_changed = true;
                }
            }
        } else {
            self.channels = s
                .channels
                .iter()
                .map(|c| (c.clone(), channel_record(c)))
                .collect();
            channels_changed = true;
        }
        let mut updates: Vec<(&str, Box<dyn Val>)> = Vec::new();
        if channels_changed {
            let list = self
                .channels
                .iter()
                .map(|(_, r)| Box::new(r.clone()) as Box<dyn Val>)
                .collect();
            updates.push(("channels", Box::new(SharedList::new(list))));
        }
        if self.logout_reasons.0 != s.logout_reasons {
            self.logout_reasons = (s.logout_reasons.clone(), texts(&s.logout_reasons));
            updates.push(("logout_reasons", Box::new(self.logout_reasons.1.clone())));
        }
        if self.state != s.state {
            self.state = s.state.clone();
            updates.push(("state", optional_text(s.state.as_deref())));
        }
        if self.not_ready_reasons.0 != s.not_ready_reasons {
            self.not_ready_reasons = (s.not_ready_reasons.clone(), texts(&s.not_ready_reasons));
            updates.push((
                "not_ready_reasons",
                Box::new(self.not_ready_reasons.1.clone()),
            ));
        }
        for (name, value) in updates {
            if !self.value.set(name, value) {
                // Someone holds the old value (a call's argument): build anew.
                self.value = self.build(s);
                return;
            }
        }
    }

    pub fn value(&self) -> &dyn Val {
        &self.value
    }

    /// The `i`-th channel as expressions see it (`self` in its machine).
    pub fn channel(&self, i: usize) -> Option<&dyn Val> {
        self.channels.get(i).map(|(_, r)| r as &dyn Val)
    }
}

fn optional_text(s: Option<&str>) -> Box<dyn Val> {
    match s {
        Some(s) => text(s),
        None => Box::new(CelNull),
    }
}

/// `record`'s fields and one more, `name: value`: an operation's arguments
/// with what it answered.
pub fn with_field(record: &dyn Val, name: &'static str, value: &Json) -> Box<dyn Val> {
    let mut fields: Vec<(std::borrow::Cow<'static, str>, Box<dyn Val>)> = record
        .downcast_ref::<Record>()
        .map(|r| {
            r.fields()
                .iter()
                .filter(|(n, _)| n != name)
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    fields.push((name.into(), from_json(value)));
    Box::new(Record::new(fields))
}

/// The `event` variable before any switch event arrived: a null `name`.
pub fn no_event() -> Box<dyn Val> {
    Box::new(Record::new(vec![("name".into(), Box::new(CelNull))]))
}

/// A switch event as expressions see it: its `name` and the fields the
/// switch sent (`has(event.reason)` tells an optional one is there), as a
/// request's parameters are.
pub fn event_record(
    spec: &crate::platform::EventSpec,
    data: &serde_json::Map<String, Json>,
) -> Box<dyn Val> {
    let mut fields: Vec<(std::borrow::Cow<'static, str>, Box<dyn Val>)> =
        vec![("name".into(), text(spec.name))];
    for f in spec.fields {
        if let Some(v) = data.get(f.name).and_then(Json::as_str) {
            fields.push((f.name.into(), text(v)));
        }
    }
    Box::new(Record::new(fields))
}

/// CEL reads the context through the same inputs as the native evaluator.
/// (A foreach item is bound in an inner scope instead.)
impl VariableResolver for Inputs<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v: &'b dyn Val = match variable {
            "request" => self.request,
            "session" => self.session,
            "platform" => self.platform,
            "error" => self.error,
            "event" => self.event,
            "self" => self.entity?,
            "vars" => self.vars,
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
    vars: &Inputs<'_>,
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

/// The inputs with a foreach item, for the native evaluator.
fn inputs<'a>(vars: &'a Inputs<'_>, item: Option<(&'a str, &'a dyn Val)>) -> Inputs<'a> {
    Inputs {
        item: item.map(|(_, v)| v),
        ..*vars
    }
}

fn native_json(v: V<'_>) -> Result<Json, String> {
    Ok(match v {
        V::Null => Json::Null,
        V::Bool(b) => Json::Bool(b),
        V::Int(i) => Json::from(i),
        V::Str(s) => Json::String(s.to_string()),
        V::Val(v) => to_json(v)?,
    })
}

fn native_owned(v: V<'_>) -> Result<Box<dyn Val>, String> {
    Ok(match v {
        V::Null => Box::new(CelNull),
        V::Bool(b) => Box::new(CelBool::from(b)),
        V::Int(i) => Box::new(CelInt::from(i)),
        V::Str(s) => text(s),
        V::Val(v) => to_owned_val(v)?,
    })
}

/// Evaluates to a value that outlives the evaluation.
pub fn eval_owned(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
    item: Option<(&str, &dyn Val)>,
) -> Result<Box<dyn Val>, String> {
    budgeted(vars.budget, expr.source(), || {
        if let Some(Ok(v)) = expr.native().map(|n| n.eval(&inputs(vars, item))) {
            return native_owned(v);
        }
        with_value(env, expr, vars, item, to_owned_val)?
    })
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
    item: Option<(&str, &dyn Val)>,
) -> Result<Json, String> {
    budgeted(vars.budget, expr.source(), || {
        if let Some(Ok(v)) = expr.native().map(|n| n.eval(&inputs(vars, item))) {
            return native_json(v);
        }
        with_value(env, expr, vars, item, to_json)?
    })
}

pub fn eval_bool(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
    item: Option<(&str, &dyn Val)>,
) -> Result<bool, String> {
    budgeted(vars.budget, expr.source(), || {
        if let Some(Ok(b)) = expr.native().map(|n| n.eval_bool(&inputs(vars, item))) {
            return Ok(b);
        }
        with_value(env, expr, vars, item, |v| {
            v.downcast_ref::<CelBool>().map(|b| *b.inner())
        })?
        .ok_or_else(|| format!("`{}` is not a boolean", expr.source()))
    })
}

/// The elements of a list value, each its own value.
pub fn eval_items(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
) -> Result<Vec<Box<dyn Val>>, String> {
    budgeted(vars.budget, expr.source(), || {
        eval_items_unbudgeted(env, expr, vars)
    })
}

fn eval_items_unbudgeted(
    env: &Arc<Env>,
    expr: &CompiledExpr,
    vars: &Inputs<'_>,
) -> Result<Vec<Box<dyn Val>>, String> {
    if let Some(Ok(items)) = expr.native().map(|n| n.eval_list(&inputs(vars, None))) {
        return items.into_iter().map(to_owned_val).collect();
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
            items.push(to_owned_val(item)?);
        }
        Ok(items)
    })?
}
