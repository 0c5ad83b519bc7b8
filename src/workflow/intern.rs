//! Names a workflow or machine gives (arguments, event data fields, events,
//! machine states and the fields a machine sets) and the fields of the
//! engine's own values (the session, a channel), kept for the process's
//! life so that a value carrying one copies a pointer, not the text. Loading
//! the same files again adds nothing: only a name never seen before takes
//! memory (its length and a slot of the set), once, and is never freed. A
//! process that validates ever-new names grows by them: the language server
//! by the names an editor's half-typed files give, a fuzzer by every name it
//! makes up.

use rustc_hash::FxHashSet as HashSet;
use std::sync::{Mutex, OnceLock};

fn names() -> std::sync::MutexGuard<'static, HashSet<&'static str>> {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    NAMES
        .get_or_init(|| Mutex::new(catalog()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fields of the values the engine keeps (the session, a channel, an
/// interaction, `error`): kept from the start, so that an expression that
/// reads one lends the kept copy, as for a name a workflow gives.
fn catalog() -> HashSet<&'static str> {
    use super::vocab::{CHANNEL, ERROR, INTERACTION, SESSION};
    [SESSION, CHANNEL, INTERACTION, ERROR]
        .into_iter()
        .flatten()
        .map(|(n, _)| *n)
        .collect()
}

/// Whether two names are the same: an interned name is found by its
/// pointer, without comparing its text.
#[inline]
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

/// The one `'static` copy of `name`.
pub fn name(name: &str) -> &'static str {
    let mut names = names();
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.into());
    names.insert(n);
    n
}

/// The `'static` copy of `name` if some workflow gave it already; nothing
/// is kept otherwise. For names that need not be kept but gain from being
/// the same pointer as a kept one (a field an expression reads).
pub fn known(name: &str) -> Option<&'static str> {
    names().get(name).copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_the_same_by_their_text_whatever_their_pointer() {
        let kept = super::name("voice_same");
        let copy = String::from("voice_same");
        assert!(super::same(kept, kept));
        assert!(super::same(kept, &copy), "another copy of the text");
        assert!(!super::same(kept, "voice_samf"), "the same length");
        assert!(
            !super::same(kept, &kept[..5]),
            "a prefix, at the same address"
        );
    }

    #[test]
    fn a_name_is_kept_once() {
        let a = super::name(&String::from("channel_interned_once"));
        let b = super::name(&String::from("channel_interned_once"));
        assert_eq!(a, "channel_interned_once");
        assert!(std::ptr::eq(a, b), "the second asks gets the first copy");
    }

    #[test]
    fn the_engines_own_fields_are_known_before_any_workflow_gives_them() {
        for field in ["interactions", "logout_reasons", "channels", "operation"] {
            assert!(super::known(field).is_some(), "{field}");
        }
    }

    #[test]
    fn a_name_only_looked_up_is_not_kept() {
        let probe = String::from("channel_looked_up_only");
        assert_eq!(super::known(&probe), None);
        assert_eq!(super::known(&probe), None, "looking up kept nothing");
        let kept = super::name(&probe);
        assert!(super::known(&probe).is_some_and(|k| std::ptr::eq(k, kept)));
    }
}
