//! Interned strings. Customers, journey keys, contact points, channels, session ids and segment
//! names travel through the dataflows as [`Sym`]s: small copyable ids, so that steps, edges and
//! summaries allocate nothing and compare as integers. The decoder interns incoming strings into
//! one shared [`Symbols`] table; the sinks resolve ids back to names when they write.
//!
//! Ids are handed out in first-seen order, so they say nothing about the names' order: anything
//! that presents results sorted by name sorts by the resolved names.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

/// An interned string: a 1-based index into a [`Symbols`] table. Never zero, so that an
/// `Option<Sym>` takes four bytes like a `Sym`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sym(NonZeroU32);

impl Sym {
    /// The symbol at 0-based position `index` of its table.
    const fn at(index: u32) -> Sym {
        match NonZeroU32::new(index + 1) {
            Some(id) => Sym(id),
            None => panic!("symbol index overflow"),
        }
    }

    /// The 0-based position of this symbol in its table.
    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// The synthetic state every path starts from, spelled `(start)`.
pub const START: Sym = Sym::at(0);
/// The synthetic state a converting event leads to, spelled `(conversion)`.
pub const CONVERSION: Sym = Sym::at(1);
/// The synthetic state the last event of a session without conversion leads to, spelled `(exit)`.
pub const EXIT: Sym = Sym::at(2);
/// The channel of events that have none, in the channel graph, spelled `(none)`.
pub const NO_CHANNEL: Sym = Sym::at(3);

/// The names of the reserved symbols, in id order.
const RESERVED: [&str; 4] = ["(start)", "(conversion)", "(exit)", "(none)"];

/// A shared, append-only table of interned strings; safe to use from several threads.
#[derive(Debug)]
pub struct Symbols {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashMap<Arc<str>, Sym, FxBuildHasher>,
    names: Vec<Arc<str>>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

impl Symbols {
    /// A table holding only the reserved symbols ([`START`], [`CONVERSION`], [`EXIT`], [`NO_CHANNEL`]).
    pub fn new() -> Self {
        let symbols = Symbols { inner: RwLock::new(Inner::default()) };
        for name in RESERVED {
            symbols.intern(name);
        }
        symbols
    }

    /// The id of `name`, adding it to the table if it is new.
    ///
    /// # Panics
    /// When more than `u32::MAX` distinct strings have been interned.
    pub fn intern(&self, name: &str) -> Sym {
        if let Some(sym) = self.inner.read().expect("symbols lock").ids.get(name) {
            return *sym;
        }
        let mut inner = self.inner.write().expect("symbols lock");
        if let Some(sym) = inner.ids.get(name) {
            return *sym;
        }
        let sym = Sym::at(
            u32::try_from(inner.names.len())
                .ok()
                .filter(|i| *i < u32::MAX)
                .expect("fewer than 2^32 - 1 distinct strings"),
        );
        let name: Arc<str> = Arc::from(name);
        inner.names.push(name.clone());
        inner.ids.insert(name, sym);
        sym
    }

    /// The id of `name` if it has been interned.
    pub fn get(&self, name: &str) -> Option<Sym> {
        self.inner.read().expect("symbols lock").ids.get(name).copied()
    }

    /// The name of `sym`.
    ///
    /// # Panics
    /// When `sym` was not handed out by this table.
    pub fn name(&self, sym: Sym) -> Arc<str> {
        self.inner.read().expect("symbols lock").names[sym.index()].clone()
    }

    /// A read view for resolving many symbols under one lock.
    pub fn names(&self) -> Names<'_> {
        Names { inner: self.inner.read().expect("symbols lock") }
    }

    /// The number of interned strings, the reserved ones included.
    pub fn len(&self) -> usize {
        self.inner.read().expect("symbols lock").names.len()
    }

    /// Whether only the reserved symbols are interned.
    pub fn is_empty(&self) -> bool {
        self.len() == RESERVED.len()
    }
}

/// A cache in front of a shared [`Symbols`] table for one thread: strings seen before are looked
/// up without taking the table's lock, new ones are interned through it.
pub struct Interner {
    /// The shared table.
    symbols: Arc<Symbols>,
    /// The strings this interner has seen, sharing the table's copies of the names.
    seen: HashMap<Arc<str>, Sym, FxBuildHasher>,
}

impl Interner {
    /// An interner over `symbols` that has seen nothing yet.
    pub fn new(symbols: Arc<Symbols>) -> Self {
        Interner { symbols, seen: HashMap::default() }
    }

    /// The id of `name`, adding it to the table if it is new.
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(sym) = self.seen.get(name) {
            return *sym;
        }
        let sym = self.symbols.intern(name);
        self.seen.insert(self.symbols.name(sym), sym);
        sym
    }
}

/// A read view of a [`Symbols`] table; interning waits while it is held.
pub struct Names<'a> {
    inner: RwLockReadGuard<'a, Inner>,
}

impl Names<'_> {
    /// The name of `sym`.
    ///
    /// # Panics
    /// When `sym` was not handed out by this table.
    pub fn get(&self, sym: Sym) -> &str {
        &self.inner.names[sym.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_reserved_names_come_first() {
        let symbols = Symbols::new();
        assert_eq!(symbols.intern("(start)"), START);
        assert_eq!(symbols.intern("(none)"), NO_CHANNEL);
        let web = symbols.intern("web");
        assert_eq!(symbols.intern("web"), web);
        assert_ne!(symbols.intern("app"), web);
        assert_eq!(&*symbols.name(web), "web");
        assert_eq!(symbols.names().get(EXIT), "(exit)");
        assert_eq!(symbols.get("email"), None);
        assert_eq!(symbols.len(), 6);
        assert_eq!(std::mem::size_of::<Option<Sym>>(), 4);
    }

    #[test]
    fn interners_agree_with_the_table_and_each_other() {
        let symbols = Arc::new(Symbols::new());
        let mut a = Interner::new(symbols.clone());
        let mut b = Interner::new(symbols.clone());
        let web = a.intern("web");
        assert_eq!(a.intern("web"), web);
        assert_eq!(b.intern("web"), web);
        assert_eq!(symbols.intern("web"), web);
        let app = b.intern("app");
        assert_eq!(a.intern("app"), app);
        assert_ne!(app, web);
        assert_eq!(a.intern("(exit)"), EXIT);
        assert_eq!(symbols.len(), 6);
    }
}
