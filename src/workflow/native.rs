//! A native evaluator for the guards workflows are made of. CEL's general
//! evaluator resolves every name through scopes and containers and copies
//! each element into a comprehension's variable; the common guard shapes —
//! field paths, comparisons, `has`, `size`, `in`, `exists`, `all` — need none
//! of that. They are compiled once, at validation, into a small tree that
//! reads the same values in place.
//!
//! It answers only when it is sure. Anything outside its subset, a type it
//! did not expect, a missing field: it says [`Unsure`] and the caller
//! evaluates the CEL program instead, so results are CEL's by construction
//! (and a property test checks they agree).

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue};
use cel::common::types::{CelBool, CelInt, CelNull, CelString};
use cel::common::value::{CowVal, Val};

/// A guard compiled for native evaluation.
#[derive(Debug)]
pub struct Native(N);

#[derive(Debug)]
enum N {
    Null,
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    Var(Box<str>),
    Field(Box<N>, Box<str>),
    Has(Box<N>, Box<str>),
    Not(Box<N>),
    And(Box<N>, Box<N>),
    Or(Box<N>, Box<N>),
    Cmp(Cmp, Box<N>, Box<N>),
    In(Box<N>, Box<N>),
    Size(Box<N>),
    Cond(Box<N>, Box<N>, Box<N>),
    Exists(Box<N>, Box<str>, Box<N>),
    All(Box<N>, Box<str>, Box<N>),
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
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Val(&'a dyn Val),
}

impl Native {
    /// Compiles `e` if every part of it is in the native subset.
    pub fn compile(e: &IdedExpr) -> Option<Native> {
        n(e).map(Native)
    }

    /// Evaluates to a boolean, reading names through `lookup`.
    pub fn eval_bool<'a>(
        &'a self,
        lookup: &dyn Fn(&str) -> Option<&'a dyn Val>,
    ) -> Result<bool, Unsure> {
        let mut bound = Vec::new();
        match eval(&self.0, lookup, &mut bound)? {
            V::Bool(b) => Ok(b),
            _ => Err(Unsure),
        }
    }
}

fn boxed(e: &IdedExpr) -> Option<Box<N>> {
    n(e).map(Box::new)
}

fn n(e: &IdedExpr) -> Option<N> {
    Some(match &e.expr {
        Expr::Literal(LiteralValue::Null) => N::Null,
        Expr::Literal(LiteralValue::Boolean(b)) => N::Bool(*b.inner()),
        Expr::Literal(LiteralValue::Int(i)) => N::Int(*i.inner()),
        Expr::Literal(LiteralValue::String(s)) => N::Str(s.inner().into()),
        Expr::Literal(_) => return None,
        Expr::Ident(name) => N::Var(name.as_str().into()),
        Expr::Select(s) if s.test => N::Has(boxed(&s.operand)?, s.field.as_str().into()),
        Expr::Select(s) => N::Field(boxed(&s.operand)?, s.field.as_str().into()),
        Expr::Call(c) => {
            let args = &c.args;
            match (c.func_name.as_str(), &c.target, args.len()) {
                ("!_", None, 1) => N::Not(boxed(&args[0])?),
                ("_&&_", None, 2) => N::And(boxed(&args[0])?, boxed(&args[1])?),
                ("_||_", None, 2) => N::Or(boxed(&args[0])?, boxed(&args[1])?),
                ("@in", None, 2) => N::In(boxed(&args[0])?, boxed(&args[1])?),
                ("_?_:_", None, 3) => N::Cond(boxed(&args[0])?, boxed(&args[1])?, boxed(&args[2])?),
                ("size", None, 1) => N::Size(boxed(&args[0])?),
                ("size", Some(t), 0) => N::Size(boxed(t)?),
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
                    N::Cmp(cmp, boxed(&args[0])?, boxed(&args[1])?)
                }
                _ => return None,
            }
        }
        Expr::Comprehension(c) => {
            if c.iter_var2.is_some()
                || !matches!(&c.result.expr, Expr::Ident(r) if *r == c.accu_var)
            {
                return None;
            }
            let Expr::Literal(LiteralValue::Boolean(init)) = &c.accu_init.expr else {
                return None;
            };
            let Expr::Call(step) = &c.loop_step.expr else {
                return None;
            };
            let [acc, pred] = step.args.as_slice() else {
                return None;
            };
            if !matches!(&acc.expr, Expr::Ident(a) if *a == c.accu_var) {
                return None;
            }
            let range = boxed(&c.iter_range)?;
            let var: Box<str> = c.iter_var.as_str().into();
            let pred = boxed(pred)?;
            match (step.func_name.as_str(), *init.inner()) {
                ("_||_", false) => N::Exists(range, var, pred),
                ("_&&_", true) => N::All(range, var, pred),
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn leaf(v: &dyn Val) -> V<'_> {
    if let Some(s) = v.downcast_ref::<CelString>() {
        V::Str(s.inner())
    } else if let Some(b) = v.downcast_ref::<CelBool>() {
        V::Bool(*b.inner())
    } else if let Some(i) = v.downcast_ref::<CelInt>() {
        V::Int(*i.inner())
    } else if v.downcast_ref::<CelNull>().is_some() {
        V::Null
    } else {
        V::Val(v)
    }
}

/// `base.name`, borrowed in place; `None` when there is no such field.
fn field<'a>(base: V<'a>, name: &str) -> Result<Option<&'a dyn Val>, Unsure> {
    let V::Val(v) = base else { return Err(Unsure) };
    let indexer = v.as_indexer().ok_or(Unsure)?;
    match indexer.get(&CelString::from(name)) {
        Ok(CowVal::Borrowed(f)) => Ok(Some(f)),
        Ok(CowVal::Owned(_)) => Err(Unsure),
        Err(cel::ExecutionError::NoSuchKey(_)) => Ok(None),
        Err(_) => Err(Unsure),
    }
}

fn eq(a: V<'_>, b: V<'_>) -> Result<bool, Unsure> {
    match (a, b) {
        (V::Null, V::Null) => Ok(true),
        (V::Bool(x), V::Bool(y)) => Ok(x == y),
        (V::Int(x), V::Int(y)) => Ok(x == y),
        (V::Str(x), V::Str(y)) => Ok(x == y),
        _ => Err(Unsure),
    }
}

fn bool_of(v: V<'_>) -> Result<bool, Unsure> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(Unsure),
    }
}

fn eval<'a>(
    node: &'a N,
    lookup: &dyn Fn(&str) -> Option<&'a dyn Val>,
    bound: &mut Vec<(&'a str, &'a dyn Val)>,
) -> Result<V<'a>, Unsure> {
    Ok(match node {
        N::Null => V::Null,
        N::Bool(b) => V::Bool(*b),
        N::Int(i) => V::Int(*i),
        N::Str(s) => V::Str(s),
        N::Var(name) => match bound.iter().rev().find(|(n, _)| *n == &**name) {
            Some((_, v)) => leaf(*v),
            None => leaf(lookup(name).ok_or(Unsure)?),
        },
        N::Field(base, name) => {
            let base = eval(base, lookup, bound)?;
            leaf(field(base, name)?.ok_or(Unsure)?)
        }
        N::Has(base, name) => {
            let base = eval(base, lookup, bound)?;
            V::Bool(field(base, name)?.is_some())
        }
        N::Not(a) => V::Bool(!bool_of(eval(a, lookup, bound)?)?),
        N::And(a, b) => {
            V::Bool(bool_of(eval(a, lookup, bound)?)? && bool_of(eval(b, lookup, bound)?)?)
        }
        N::Or(a, b) => {
            V::Bool(bool_of(eval(a, lookup, bound)?)? || bool_of(eval(b, lookup, bound)?)?)
        }
        N::Cmp(op, a, b) => {
            let (a, b) = (eval(a, lookup, bound)?, eval(b, lookup, bound)?);
            V::Bool(match op {
                Cmp::Eq => eq(a, b)?,
                Cmp::Ne => !eq(a, b)?,
                _ => {
                    let ord = match (a, b) {
                        (V::Int(x), V::Int(y)) => x.cmp(&y),
                        (V::Str(x), V::Str(y)) => x.cmp(y),
                        _ => return Err(Unsure),
                    };
                    match op {
                        Cmp::Lt => ord.is_lt(),
                        Cmp::Le => ord.is_le(),
                        Cmp::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    }
                }
            })
        }
        N::In(item, list) => {
            let item = eval(item, lookup, bound)?;
            let V::Val(list) = eval(list, lookup, bound)? else {
                return Err(Unsure);
            };
            if list.get_type().kind() != cel::common::types::Kind::List {
                return Err(Unsure);
            }
            let mut it = list.as_iterable().ok_or(Unsure)?.iter();
            let mut found = false;
            while let Some(x) = it.next() {
                if eq(item, leaf(x))? {
                    found = true;
                    break;
                }
            }
            V::Bool(found)
        }
        N::Size(a) => match eval(a, lookup, bound)? {
            V::Str(s) => V::Int(s.chars().count() as i64),
            V::Val(v) => V::Int(*v.as_sizer().ok_or(Unsure)?.size().inner()),
            _ => return Err(Unsure),
        },
        N::Cond(c, a, b) => {
            if bool_of(eval(c, lookup, bound)?)? {
                eval(a, lookup, bound)?
            } else {
                eval(b, lookup, bound)?
            }
        }
        N::Exists(range, var, pred) | N::All(range, var, pred) => {
            let exists = matches!(node, N::Exists(..));
            let V::Val(list) = eval(range, lookup, bound)? else {
                return Err(Unsure);
            };
            if list.get_type().kind() != cel::common::types::Kind::List {
                return Err(Unsure);
            }
            let mut it = list.as_iterable().ok_or(Unsure)?.iter();
            let mut result = !exists;
            while let Some(x) = it.next() {
                bound.push((var, x));
                let r = eval(pred, lookup, bound).and_then(bool_of);
                bound.pop();
                if r? == exists {
                    result = exists;
                    break;
                }
            }
            V::Bool(result)
        }
    })
}
