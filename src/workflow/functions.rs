//! The functions expressions may call: CEL's standard library and the
//! strings, lists and math extensions hisflow's environment enables. The
//! validator refuses any other; docs/workflow-language.md lists exactly
//! these, and a test runs every example through the engine's CEL.

/// How a function is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `size(x)`.
    Global,
    /// `x.size()`: on a receiver.
    Member,
    /// `math.abs(x)`: in a namespace.
    Namespaced,
}

/// One function of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// The name as written: `size`, `math.abs`.
    pub name: &'static str,
    pub call: Call,
    /// Arguments, the receiver not counted.
    pub min: usize,
    pub max: usize,
    /// An expression that uses it, and what it gives.
    pub example: &'static str,
    pub gives: &'static str,
}

const fn f(
    name: &'static str,
    call: Call,
    min: usize,
    max: usize,
    example: &'static str,
    gives: &'static str,
) -> Function {
    Function {
        name,
        call,
        min,
        max,
        example,
        gives,
    }
}

use Call::{Global, Member, Namespaced};

/// Every function, in documentation order.
pub const FUNCTIONS: &[Function] = &[
    f("size", Global, 1, 1, "size([1, 2])", "2"),
    f("size", Member, 0, 0, "'abc'.size()", "3"),
    f("int", Global, 1, 1, "int('3')", "3"),
    f("uint", Global, 1, 1, "uint(3)", "3u"),
    f("double", Global, 1, 1, "double(3)", "3.0"),
    f("string", Global, 1, 1, "string(3)", "'3'"),
    f("bool", Global, 1, 1, "bool('true')", "true"),
    f("bytes", Global, 1, 1, "bytes('a')", "b'a'"),
    f("dyn", Global, 1, 1, "dyn(1)", "1"),
    f("type", Global, 1, 1, "type(1) == type(2)", "true"),
    f(
        "duration",
        Global,
        1,
        1,
        "duration('1m') == duration('60s')",
        "true",
    ),
    f(
        "timestamp",
        Global,
        1,
        1,
        "timestamp('2026-01-01T00:00:00Z') > timestamp('2025-12-31T00:00:00Z')",
        "true",
    ),
    f(
        "matches",
        Global,
        2,
        2,
        "matches('20003', '^[0-9]+$')",
        "true",
    ),
    f(
        "matches",
        Member,
        1,
        1,
        "'20003'.matches('^[0-9]+$')",
        "true",
    ),
    f(
        "contains",
        Member,
        1,
        1,
        "'End of shift'.contains('shift')",
        "true",
    ),
    f(
        "startsWith",
        Member,
        1,
        1,
        "'voice'.startsWith('vo')",
        "true",
    ),
    f("endsWith", Member, 1, 1, "'voice'.endsWith('ce')", "true"),
    f(
        "lowerAscii",
        Member,
        0,
        0,
        "'Lunch'.lowerAscii()",
        "'lunch'",
    ),
    f(
        "upperAscii",
        Member,
        0,
        0,
        "'Lunch'.upperAscii()",
        "'LUNCH'",
    ),
    f("trim", Member, 0, 0, "' Lunch '.trim()", "'Lunch'"),
    f(
        "replace",
        Member,
        2,
        3,
        "'a-b-c'.replace('-', ' ')",
        "'a b c'",
    ),
    f("split", Member, 1, 2, "'a,b'.split(',')", "['a', 'b']"),
    f(
        "substring",
        Member,
        1,
        2,
        "'2 Lunch'.substring(2)",
        "'Lunch'",
    ),
    f("indexOf", Member, 1, 2, "'2 Lunch'.indexOf(' ')", "1"),
    f("lastIndexOf", Member, 1, 2, "'a.b.c'.lastIndexOf('.')", "3"),
    f("charAt", Member, 1, 1, "'abc'.charAt(1)", "'b'"),
    f(
        "format",
        Member,
        1,
        1,
        "'%s on %s'.format(['Lunch', 'voice'])",
        "'Lunch on voice'",
    ),
    f(
        "join",
        Member,
        0,
        1,
        "['voice', 'chat'].join(', ')",
        "'voice, chat'",
    ),
    f("reverse", Member, 0, 0, "[1, 2].reverse()", "[2, 1]"),
    f(
        "sort",
        Member,
        0,
        0,
        "['chat', 'voice', 'email'].sort()",
        "['chat', 'email', 'voice']",
    ),
    f("distinct", Member, 0, 0, "[1, 1, 2].distinct()", "[1, 2]"),
    f("flatten", Member, 0, 1, "[[1], [2]].flatten()", "[1, 2]"),
    f("slice", Member, 2, 2, "[1, 2, 3].slice(1, 3)", "[2, 3]"),
    f(
        "lists.range",
        Namespaced,
        1,
        1,
        "lists.range(3)",
        "[0, 1, 2]",
    ),
    f(
        "strings.quote",
        Namespaced,
        1,
        1,
        "strings.quote('a')",
        "'\"a\"'",
    ),
    f("math.abs", Namespaced, 1, 1, "math.abs(-2)", "2"),
    f("math.ceil", Namespaced, 1, 1, "math.ceil(1.2)", "2.0"),
    f("math.floor", Namespaced, 1, 1, "math.floor(1.8)", "1.0"),
    f("math.round", Namespaced, 1, 1, "math.round(1.5)", "2.0"),
    f("math.trunc", Namespaced, 1, 1, "math.trunc(1.8)", "1.0"),
    f("math.sign", Namespaced, 1, 1, "math.sign(-2)", "-1"),
    f("math.sqrt", Namespaced, 1, 1, "math.sqrt(4.0)", "2.0"),
    f(
        "math.greatest",
        Namespaced,
        1,
        8,
        "math.greatest(1, 3, 2)",
        "3",
    ),
    f("math.least", Namespaced, 1, 8, "math.least(1, 3, 2)", "1"),
    f("math.isNaN", Namespaced, 1, 1, "math.isNaN(1.0)", "false"),
    f("math.isInf", Namespaced, 1, 1, "math.isInf(1.0)", "false"),
    f(
        "math.isFinite",
        Namespaced,
        1,
        1,
        "math.isFinite(1.0)",
        "true",
    ),
    f("math.bitAnd", Namespaced, 2, 2, "math.bitAnd(6, 3)", "2"),
    f("math.bitOr", Namespaced, 2, 2, "math.bitOr(6, 3)", "7"),
    f("math.bitXor", Namespaced, 2, 2, "math.bitXor(6, 3)", "5"),
    f("math.bitNot", Namespaced, 1, 1, "math.bitNot(0)", "-1"),
    f(
        "math.bitShiftLeft",
        Namespaced,
        2,
        2,
        "math.bitShiftLeft(1, 3)",
        "8",
    ),
    f(
        "math.bitShiftRight",
        Namespaced,
        2,
        2,
        "math.bitShiftRight(8, 3)",
        "1",
    ),
];

/// Macros: expanded by the parser into loops and tests.
pub const MACROS: &[(&str, &str, &str)] = &[
    ("has", "has(request.reason)", "whether the field is there"),
    (
        "all",
        "session.channels.all(c, c.active)",
        "every item satisfies the predicate",
    ),
    (
        "exists",
        "session.channels.exists(c, c.state == 'Ready')",
        "some item does",
    ),
    (
        "exists_one",
        "session.channels.exists_one(c, c.media == 'voice')",
        "exactly one does",
    ),
    (
        "map",
        "session.channels.map(c, c.id)",
        "each item transformed; `map(x, pred, expr)` keeps those `pred` holds for",
    ),
    (
        "filter",
        "session.channels.filter(c, c.active)",
        "the items that satisfy the predicate",
    ),
    (
        "sortBy",
        "session.channels.sortBy(c, c.media)",
        "the items ordered by a key",
    ),
];

/// The namespaces of [`Call::Namespaced`] functions.
pub const NAMESPACES: &[&str] = &["lists", "strings", "math"];

/// The functions called `name` the way `call` says.
pub fn lookup(name: &str, call: Call) -> impl Iterator<Item = &'static Function> + '_ {
    FUNCTIONS
        .iter()
        .filter(move |f| f.name == name && f.call == call)
}

/// Names of every function called the way `call` says, for "did you mean".
pub fn names(call: Call) -> impl Iterator<Item = &'static str> + Clone {
    FUNCTIONS
        .iter()
        .filter(move |f| f.call == call)
        .map(|f| f.name)
}

/// The catalog as docs/workflow-language.md shows it (a test keeps the two
/// the same): one Markdown row per function, then one per macro.
pub fn table() -> String {
    let mut out = String::from("| function | example | gives |\n|---|---|---|\n");
    for f in FUNCTIONS {
        let called = match f.call {
            Call::Member => format!("`.{}()`", f.name),
            _ => format!("`{}()`", f.name),
        };
        out.push_str(&format!("| {called} | `{}` | `{}` |\n", f.example, f.gives));
    }
    out.push_str("\n| macro | example | gives |\n|---|---|---|\n");
    for (name, example, gives) in MACROS {
        out.push_str(&format!("| `{name}` | `{example}` | {gives} |\n"));
    }
    out
}
