//! The values expressions read, as CEL values of hisflow's own: records
//! (fixed fields, shared behind an `Arc`) and shared lists. A comprehension over the channels
//! clones each channel into its loop variable; here that is a pointer copy,
//! not a copy of a map of strings.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use cel::ExecutionError;
use cel::common::traits::{Container, Indexer, Iterable, Iterator as CelIterator, Sizer};
use cel::common::types::{self, CelInt, CelList, CelString, Type};
use cel::common::value::{CowVal, StaticVal, Val};

/// How many list items one evaluation may visit by default, its
/// comprehensions' inner loops included: an expression over the switch's
/// data cannot hold a session's task for long, whatever that data holds.
pub const EVAL_BUDGET: usize = 100_000;

thread_local! {
    /// Items the evaluation under way may still visit; `None` outside one.
    static FUEL: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    static EXHAUSTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs one evaluation that may visit `budget` list items. A list iterated
/// past it yields nothing more, and the evaluation's result is this error
/// instead.
pub fn budgeted<R>(
    budget: usize,
    expr: &str,
    f: impl FnOnce() -> Result<R, String>,
) -> Result<R, String> {
    if FUEL.get().is_some() {
        // Inside an evaluation already: its budget holds.
        return f();
    }
    /// Ends the evaluation's budget even if it panics: the thread's next
    /// evaluation must not inherit it.
    struct Ended;
    impl Drop for Ended {
        fn drop(&mut self) {
            FUEL.set(None);
        }
    }
    FUEL.set(Some(budget));
    EXHAUSTED.set(false);
    let ended = Ended;
    let out = f();
    drop(ended);
    if EXHAUSTED.replace(false) {
        return Err(format!(
            "`{expr}` visits more than {budget} list items: over the evaluation budget"
        ));
    }
    out
}

/// Takes `n` items of the budget; false once it is spent.
pub(crate) fn charge(n: usize) -> bool {
    match FUEL.get() {
        None => true,
        Some(left) if left >= n => {
            FUEL.set(Some(left - n));
            true
        }
        Some(_) => {
            FUEL.set(Some(0));
            EXHAUSTED.set(true);
            false
        }
    }
}

/// An object with a fixed set of named fields. CEL sees a map: `r.field`,
/// `has(r.field)`, `size(r)`.
#[derive(Debug, Clone)]
pub struct Record(Arc<[Field]>);

/// A named field. The session's names are static, a request's come from the
/// workflow.
pub type Field = (Cow<'static, str>, Slot);

/// A field's value. Texts, booleans and numbers, most of what records hold,
/// are kept in place; anything else is boxed.
#[derive(Debug, Clone)]
pub enum Slot {
    Text(CelString<'static>),
    Bool(types::CelBool),
    Int(CelInt),
    Val(Box<dyn Val>),
}

impl Slot {
    /// A text, shared when it is one of the vocabulary's words.
    pub fn text(s: &str) -> Slot {
        Slot::Text(cel_string(s))
    }

    pub fn null() -> Slot {
        // A box of nothing: no allocation.
        Slot::Val(Box::new(types::CelNull))
    }

    /// A field from JSON, as [`from_json_ordered`] builds it; a text or a
    /// boolean is kept in place. A number is left to CEL's conversion,
    /// which decides between an int, a uint and a double.
    pub fn from_json(v: &serde_json::Value) -> Slot {
        match v {
            serde_json::Value::String(s) => Slot::text(s),
            serde_json::Value::Bool(b) => Slot::Bool(types::CelBool::from(*b)),
            other => Slot::Val(from_json_ordered(other)),
        }
    }

    pub fn as_val(&self) -> &(dyn Val + 'static) {
        match self {
            Slot::Text(s) => s,
            Slot::Bool(b) => b,
            Slot::Int(i) => i,
            Slot::Val(v) => v.as_ref(),
        }
    }
}

impl From<Box<dyn Val>> for Slot {
    fn from(v: Box<dyn Val>) -> Slot {
        Slot::Val(v)
    }
}

pub type Fields = Vec<Field>;

impl Record {
    pub fn new(fields: Fields) -> Self {
        Record(fields.into())
    }

    /// A record of JSON fields, in the order given: a request's
    /// parameters, the platform's settings, a JSON object.
    pub fn from_json_fields<'j>(
        fields: impl IntoIterator<Item = (&'j String, &'j serde_json::Value)>,
    ) -> Self {
        fields
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k.clone()), Slot::from_json(v)))
            .collect()
    }

    pub fn fields(&self) -> &[Field] {
        &self.0
    }

    pub fn field(&self, name: &str) -> Option<&(dyn Val + 'static)> {
        self.slot(name).map(Slot::as_val)
    }

    /// The field `name` as it is kept: a text, boolean or number is read
    /// without a turn through CEL's value.
    #[inline]
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        // A workflow's names are interned, and so are most field names a
        // record is built with.
        self.0
            .iter()
            .find(|(n, _)| super::intern::same(n, name))
            .map(|(_, v)| v)
    }
}

/// The fields an iterator yields, in one allocation when it knows how many
/// (a slice's items, mapped).
impl FromIterator<Field> for Record {
    fn from_iter<I: IntoIterator<Item = Field>>(fields: I) -> Self {
        Record(fields.into_iter().collect())
    }
}

impl Val for Record {
    fn get_type(&self) -> &Type {
        &types::MAP_TYPE
    }

    fn cel_type() -> &'static Type {
        &types::MAP_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        Some(self)
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Record>().is_some_and(|o| {
            Arc::ptr_eq(&self.0, &o.0)
                || (self.0.len() == o.0.len()
                    && self
                        .0
                        .iter()
                        .all(|(n, v)| o.field(n).is_some_and(|ov| v.as_val().equals(ov))))
        })
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Record {}

impl Indexer for Record {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let name =
            idx.downcast_ref::<CelString>()
                .ok_or_else(|| ExecutionError::UnexpectedType {
                    got: idx.get_type().name().to_owned(),
                    want: "string".to_owned(),
                })?;
        self.field(name.inner())
            .map(CowVal::Borrowed)
            .ok_or_else(|| ExecutionError::no_such_key(name.inner()))
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

impl Container for Record {
    fn contains(&self, value: &dyn Val) -> Result<bool, ExecutionError> {
        Ok(value
            .downcast_ref::<CelString>()
            .is_some_and(|k| self.field(k.inner()).is_some()))
    }
}

impl Sizer for Record {
    fn size(&self) -> CelInt {
        CelInt::from(self.0.len() as i64)
    }
}

/// A list shared behind an `Arc`: copying it into a variable copies a pointer.
#[derive(Debug, Clone)]
pub struct SharedList(Arc<CelList<'static>>);

impl SharedList {
    pub fn new(items: Vec<Box<dyn Val>>) -> Self {
        SharedList(Arc::new(CelList::from(items)))
    }

    pub fn items(&self) -> &[Box<dyn Val>] {
        self.0.inner()
    }
}

impl Val for SharedList {
    fn get_type(&self) -> &Type {
        &types::LIST_TYPE
    }

    fn cel_type() -> &'static Type {
        &types::LIST_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        self.0.as_indexer()
    }

    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        self.0.as_container()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.0.as_sizer()
    }

    // `list + [x]`: a machine appending an interaction.
    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn cel::common::traits::Adder + 'v)>
    where
        Self: 'v,
    {
        self.0.as_adder()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        match other.downcast_ref::<SharedList>() {
            Some(o) => Arc::ptr_eq(&self.0, &o.0) || self.0.equals(o.0.as_ref()),
            None => self.0.equals(other),
        }
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for SharedList {}

impl Iterable for SharedList {
    fn iter<'b, 'v>(&'b self) -> Box<dyn CelIterator<'b, 'v> + 'b>
    where
        Self: 'v,
    {
        let items = self.0.inner();
        Box::new(Items {
            items: if charge(items.len()) { items } else { &[] },
            next: 0,
        })
    }
}

struct Items<'b> {
    items: &'b [Box<dyn Val>],
    next: usize,
}

impl<'b, 'v> CelIterator<'b, 'v> for Items<'b> {
    fn next(&mut self) -> Option<&'b (dyn Val + 'v)> {
        let item = self.items.get(self.next)?;
        self.next += 1;
        Some(item.as_ref())
    }
}

/// A CEL string. The protocol's own words (media, agent states) are
/// borrowed from a static table rather than copied: they are most of the
/// strings a session holds.
pub fn text(s: &str) -> Box<dyn Val> {
    Box::new(cel_string(s))
}

/// `s` as a CEL string: the vocabulary's word, shared, when it is one;
/// otherwise a copy.
fn cel_string(s: &str) -> CelString<'static> {
    // A `match` on the words tells most texts apart by their length alone.
    let word: &'static str = match s {
        "voice" => "voice",
        "email" => "email",
        "chat" => "chat",
        "Ready" => "Ready",
        "NotReady" => "NotReady",
        "LoggedOff" => "LoggedOff",
        "WorkingAfterCall" => "WorkingAfterCall",
        other => return CelString::from(other.to_string()),
    };
    CelString::from(word)
}

pub fn texts(items: &[String]) -> SharedList {
    SharedList::new(items.iter().map(|s| text(s)).collect())
}

/// A CEL value from JSON.
pub fn from_json(v: &serde_json::Value) -> Box<dyn Val> {
    cel::to_value(v)
        .ok()
        .and_then(|v| Box::<dyn Val>::try_from(v).ok())
        .unwrap_or_else(|| Box::new(types::CelNull))
}

/// A CEL value from JSON that keeps the order mappings are written in:
/// mappings become records, lists shared lists. For the platform's
/// settings, whose maps read in file order.
pub fn from_json_ordered(v: &serde_json::Value) -> Box<dyn Val> {
    match v {
        serde_json::Value::Object(m) => Box::new(Record::from_json_fields(m)),
        serde_json::Value::Array(items) => Box::new(SharedList::new(
            items.iter().map(from_json_ordered).collect(),
        )),
        serde_json::Value::String(s) => text(s),
        other => from_json(other),
    }
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
    let owned = cel::Value::try_from(v).map_err(|e| e.to_string())?;
    Box::<dyn Val>::try_from(owned).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_from_json_is_the_value_from_json_kept_in_place() {
        let json = serde_json::json!({
            "text": "Lunch", "word": "voice", "yes": true, "n": 3, "none": null,
            "list": ["a"], "map": { "k": "v" }
        });
        let serde_json::Value::Object(fields) = &json else {
            unreachable!()
        };
        for (name, v) in fields {
            let slot = Slot::from_json(v);
            assert!(
                slot.as_val().equals(from_json_ordered(v).as_ref()),
                "{name}: {slot:?}"
            );
            let in_place = matches!(slot, Slot::Text(_) | Slot::Bool(_));
            assert_eq!(in_place, v.is_string() || v.is_boolean(), "{name}");
        }
    }

    #[test]
    fn an_evaluation_that_panics_leaves_no_budget_behind() {
        let list = SharedList::new(
            (0..10)
                .map(|i| Box::new(CelInt::from(i)) as Box<dyn Val>)
                .collect(),
        );
        let visit = || {
            let mut it = list.iter();
            let mut n = 0;
            while it.next().is_some() {
                n += 1;
            }
            Ok::<_, String>(n)
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            budgeted(15, "first", || -> Result<(), String> {
                let _ = visit();
                panic!("a fault inside an evaluation")
            })
        }));
        // A fresh budget, not the 5 items the first one left.
        assert_eq!(budgeted(15, "second", visit), Ok(10));
        assert!(budgeted(5, "third", visit).is_err());
    }
}
