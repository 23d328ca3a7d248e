//! Interned strings. Customers, journey keys, contact points, channels, session ids and segment
//! names travel through the dataflows as [`Sym`]s: small copyable ids, so that steps, edges and
//! summaries allocate nothing and compare as integers. The decoder interns incoming strings into
//! one shared [`Symbols`] table; the sinks resolve ids back to names when they write.
//!
//! Ids are handed out in first-seen order, so they say nothing about the names' order: anything
//! that presents results sorted by name sorts by the resolved names.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

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
///
/// Reading takes no lock: the names live in an append-only vector whose slots never move, and
/// the index from names to ids is a lock-free map that grows incrementally. Only writers of new
/// names take a lock, among themselves, for as long as one insertion takes. So writers of new
/// names (ingest, decoding) and readers resolving many names (delta and snapshot writers) never
/// wait for each other, and the table grows without pauses to copy it.
#[derive(Debug)]
pub struct Symbols {
    /// The id of each name.
    ids: papaya::HashMap<Arc<str>, Sym, FxBuildHasher>,
    /// The names, by id.
    names: boxcar::Vec<Arc<str>>,
    /// Held while a new name is added, so that each name gets one id and ids are dense.
    adding: Mutex<()>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

impl Symbols {
    /// A table holding only the reserved symbols ([`START`], [`CONVERSION`], [`EXIT`], [`NO_CHANNEL`]).
    pub fn new() -> Self {
        let symbols = Symbols {
            ids: papaya::HashMap::builder().hasher(FxBuildHasher).build(),
            names: boxcar::Vec::new(),
            adding: Mutex::new(()),
        };
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
        if let Some(sym) = self.get(name) {
            return sym;
        }
        // A poisoned lock guards nothing broken: the table is consistent after every insertion.
        let _adding = self.adding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sym) = self.get(name) {
            return sym;
        }
        let name: Arc<str> = Arc::from(name);
        let index = self.names.push(name.clone());
        let sym =
            Sym::at(u32::try_from(index).ok().filter(|i| *i < u32::MAX).expect("fewer than 2^32 - 1 distinct strings"));
        // The name's slot is written before its id can be found.
        self.ids.pin().insert(name, sym);
        sym
    }

    /// The id of `name` if it has been interned.
    pub fn get(&self, name: &str) -> Option<Sym> {
        self.ids.pin().get(name).copied()
    }

    /// The name of `sym`.
    ///
    /// # Panics
    /// When `sym` was not handed out by this table.
    pub fn name(&self, sym: Sym) -> Arc<str> {
        self.names().shared(sym).clone()
    }

    /// A view for resolving many symbols.
    pub fn names(&self) -> Names<'_> {
        Names { names: &self.names }
    }

    /// The number of interned strings, the reserved ones included.
    pub fn len(&self) -> usize {
        self.names.count()
    }

    /// Whether only the reserved symbols are interned.
    pub fn is_empty(&self) -> bool {
        self.len() == RESERVED.len()
    }
}

/// A cache in front of a shared [`Symbols`] table for one thread: strings seen before are looked
/// up in a map of its own, without touching the shared index; new ones are interned through it.
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

/// A view of a [`Symbols`] table for resolving symbols; it blocks nobody.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    names: &'a boxcar::Vec<Arc<str>>,
}

impl<'a> Names<'a> {
    /// The name of `sym`.
    ///
    /// # Panics
    /// When `sym` was not handed out by this table.
    pub fn get(&self, sym: Sym) -> &'a str {
        self.shared(sym)
    }

    /// The shared copy of the name of `sym`.
    fn shared(&self, sym: Sym) -> &'a Arc<str> {
        self.names.get(sym.index()).expect("a symbol of this table")
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

    #[test]
    fn concurrent_interning_gives_each_name_one_id() {
        let symbols = Arc::new(Symbols::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let symbols = symbols.clone();
                std::thread::spawn(move || {
                    // Every thread interns the same 20,000 names, in a different order.
                    (0..20_000)
                        .map(|i| (i * (2 * t + 1)) % 20_000)
                        .map(|i| (i, symbols.intern(&format!("name-{i}"))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids = std::collections::BTreeMap::new();
        for thread in threads {
            for (i, sym) in thread.join().expect("an interning thread") {
                assert_eq!(*ids.entry(i).or_insert(sym), sym, "name-{i} has two ids");
            }
        }
        assert_eq!(symbols.len(), RESERVED.len() + 20_000);
        let names = symbols.names();
        for (i, sym) in ids {
            assert_eq!(names.get(sym), format!("name-{i}"));
            assert_eq!(symbols.get(&format!("name-{i}")), Some(sym));
        }
    }
}
