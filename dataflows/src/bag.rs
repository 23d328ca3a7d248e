//! A sorted multiset stored as a list of small sorted chunks: the container of each journey's
//! events in the journeys operator.
//!
//! Most journeys hold a handful of events, a few hold hundreds of thousands. A `BTreeMap` node
//! reserves room for eleven entries, which for short journeys costs several times the events
//! themselves; one `Vec` per journey makes inserting into a long journey linear. A [`SortedBag`]
//! keeps its elements in chunks of at most [`CHUNK`] (a single chunk of exactly the events for a
//! short journey), finds a chunk by binary search over the chunks and an element by binary
//! search inside it, so every operation is logarithmic in the bag's size plus one chunk's worth
//! of moves. Equal elements are kept side by side and never split across chunks.

/// The most elements a chunk holds before it is split (unless they are all equal).
pub const CHUNK: usize = 128;

/// A sorted multiset of copyable elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortedBag<K> {
    /// Non-empty sorted chunks; every element of a chunk is less than every element of the next.
    chunks: Vec<Vec<K>>,
    /// The number of elements, copies included.
    len: usize,
}

impl<K> Default for SortedBag<K> {
    fn default() -> Self {
        SortedBag { chunks: Vec::new(), len: 0 }
    }
}

impl<K: Ord + Copy> SortedBag<K> {
    /// Whether the bag holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of elements, copies included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The least element.
    pub fn first(&self) -> Option<&K> {
        self.chunks.first().and_then(|c| c.first())
    }

    /// The greatest element.
    pub fn last(&self) -> Option<&K> {
        self.chunks.last().and_then(|c| c.last())
    }

    /// How many copies of `key` the bag holds.
    pub fn count(&self, key: &K) -> usize {
        let Some(chunk) = self.chunks.get(self.chunk_of(key)) else { return 0 };
        chunk.partition_point(|k| k <= key) - chunk.partition_point(|k| k < key)
    }

    /// The greatest element less than or equal to `key`.
    pub fn at_or_before(&self, key: &K) -> Option<&K> {
        let index = self.chunks.partition_point(|c| c[0] <= *key);
        let chunk = self.chunks.get(index.checked_sub(1)?)?;
        chunk.get(chunk.partition_point(|k| k <= key).checked_sub(1)?)
    }

    /// The greatest element less than `key`.
    pub fn before(&self, key: &K) -> Option<&K> {
        let index = self.chunks.partition_point(|c| c[0] < *key);
        let chunk = self.chunks.get(index.checked_sub(1)?)?;
        chunk.get(chunk.partition_point(|k| k < key).checked_sub(1)?)
    }

    /// The least element greater than `key`.
    pub fn after(&self, key: &K) -> Option<&K> {
        let index = self.chunks.partition_point(|c| c[c.len() - 1] <= *key);
        let chunk = self.chunks.get(index)?;
        chunk.get(chunk.partition_point(|k| k <= key))
    }

    /// Adds one copy of `key`, after any copies already present.
    pub fn insert(&mut self, key: K) {
        self.len += 1;
        if self.chunks.is_empty() {
            self.chunks.push(vec![key]);
            return;
        }
        // The chunk holding `key`'s copies, or the first chunk whose elements are not all less.
        let index = self.chunk_of(&key).min(self.chunks.len() - 1);
        let chunk = &mut self.chunks[index];
        let at = chunk.partition_point(|k| *k <= key);
        if chunk.len() == chunk.capacity() {
            // Grow by a quarter rather than doubling: chunks stay nearly full, which is most of
            // the engine's memory, and growth stays geometric.
            chunk.reserve_exact((chunk.len() / 4).max(2));
        }
        chunk.insert(at, key);
        if chunk.len() > CHUNK {
            self.split(index);
        }
    }

    /// Removes one copy of `key`; `false` if there was none.
    pub fn remove_one(&mut self, key: &K) -> bool {
        let index = self.chunk_of(key);
        let Some(chunk) = self.chunks.get_mut(index) else { return false };
        let at = chunk.partition_point(|k| k <= key);
        if at == 0 || chunk[at - 1] != *key {
            return false;
        }
        chunk.remove(at - 1);
        if chunk.is_empty() {
            self.chunks.remove(index);
        }
        self.len -= 1;
        true
    }

    /// Removes and returns, in order, the elements that satisfy `below`, which must hold for a
    /// prefix of the elements only (`|k| *k < bound`). An emptied bag frees its memory.
    pub fn take_prefix(&mut self, below: impl Fn(&K) -> bool) -> Vec<K> {
        let whole = self.chunks.partition_point(|c| below(&c[c.len() - 1]));
        let mut taken: Vec<K> = self.chunks.drain(..whole).flatten().collect();
        if let Some(chunk) = self.chunks.first_mut() {
            let at = chunk.partition_point(&below);
            taken.extend(chunk.drain(..at));
        }
        self.len -= taken.len();
        if self.len == 0 {
            self.chunks = Vec::new();
        }
        taken
    }

    /// The elements from greatest to least, copies included.
    pub fn iter_rev(&self) -> impl Iterator<Item = &K> {
        self.chunks.iter().rev().flat_map(|c| c.iter().rev())
    }

    /// The elements from least to greatest, copies included (the tests' view of the bag).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The number of elements greater than or equal to `key`, copies included.
    pub fn count_from(&self, key: &K) -> usize {
        let index = self.chunk_of(key);
        let Some(chunk) = self.chunks.get(index) else { return 0 };
        let later: usize = self.chunks[index + 1..].iter().map(Vec::len).sum();
        chunk.len() - chunk.partition_point(|k| k < key) + later
    }

    /// The index of the first chunk whose greatest element is not less than `key` (the chunk
    /// that holds `key`'s copies, if any); the number of chunks if there is none.
    fn chunk_of(&self, key: &K) -> usize {
        self.chunks.partition_point(|c| c[c.len() - 1] < *key)
    }

    /// Splits an oversized chunk in two near its middle, between two different elements.
    fn split(&mut self, index: usize) {
        let chunk = &self.chunks[index];
        let middle = chunk.len() / 2;
        let key = chunk[middle];
        // Move the split point off a run of equal elements: before the run, or after it.
        let start = chunk.partition_point(|k| *k < key);
        let end = chunk.partition_point(|k| *k <= key);
        let at = if start > 0 {
            start
        } else if end < chunk.len() {
            end
        } else {
            return;
        };
        let tail = self.chunks[index].split_off(at);
        self.chunks[index].shrink_to_fit();
        self.chunks.insert(index + 1, tail);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The same operations on a `BTreeMap` of counts, the obvious model.
    #[derive(Default)]
    struct Model(BTreeMap<u32, usize>);

    impl Model {
        fn insert(&mut self, k: u32) {
            *self.0.entry(k).or_default() += 1;
        }
        fn remove_one(&mut self, k: u32) -> bool {
            match self.0.get_mut(&k) {
                Some(c) if *c > 1 => {
                    *c -= 1;
                    true
                }
                Some(_) => {
                    self.0.remove(&k);
                    true
                }
                None => false,
            }
        }
        fn elements(&self) -> Vec<u32> {
            self.0.iter().flat_map(|(k, c)| std::iter::repeat_n(*k, *c)).collect()
        }
    }

    fn check(bag: &SortedBag<u32>, model: &Model, probes: &[u32]) {
        let elements = model.elements();
        assert_eq!(bag.iter().copied().collect::<Vec<_>>(), elements);
        assert_eq!(bag.iter_rev().copied().collect::<Vec<_>>(), elements.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(bag.len(), elements.len());
        assert_eq!(bag.first(), elements.first());
        assert_eq!(bag.last(), elements.last());
        for chunk in &bag.chunks {
            assert!(!chunk.is_empty());
            assert!(chunk.len() <= CHUNK || chunk.iter().all(|k| *k == chunk[0]));
        }
        for window in bag.chunks.windows(2) {
            assert!(window[0][window[0].len() - 1] < window[1][0], "equal elements split across chunks");
        }
        for p in probes {
            assert_eq!(bag.count(p), model.0.get(p).copied().unwrap_or(0), "count {p}");
            assert_eq!(bag.at_or_before(p), model.0.range(..=p).next_back().map(|(k, _)| k), "at_or_before {p}");
            assert_eq!(bag.before(p), model.0.range(..p).next_back().map(|(k, _)| k), "before {p}");
            assert_eq!(bag.after(p), model.0.range(p + 1..).next().map(|(k, _)| k), "after {p}");
            assert_eq!(bag.count_from(p), model.0.range(p..).map(|(_, c)| c).sum::<usize>(), "count_from {p}");
        }
    }

    #[test]
    fn matches_a_btreemap_of_counts() {
        for (seed, range, steps) in [(1, 50, 3000), (2, 2000, 6000), (3, 5, 2000), (4, 100_000, 4000)] {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut bag = SortedBag::default();
            let mut model = Model::default();
            for step in 0..steps {
                let k = match rng.random_range(0..3) {
                    // Mostly increasing, as events mostly arrive in time order.
                    0 => step as u32 % range,
                    _ => rng.random_range(0..range),
                };
                if rng.random_bool(0.01) {
                    // The front folds away, as a journey's events behind the settled horizon do.
                    let expected: Vec<u32> = model.elements().into_iter().filter(|e| *e < k).collect();
                    model.0.retain(|e, _| *e >= k);
                    assert_eq!(bag.take_prefix(|e| *e < k), expected, "take_prefix below {k}");
                } else if rng.random_bool(0.3) {
                    assert_eq!(bag.remove_one(&k), model.remove_one(k), "remove {k}");
                } else {
                    bag.insert(k);
                    model.insert(k);
                }
                if step % 97 == 0 {
                    let probes: Vec<u32> = (0..20).map(|_| rng.random_range(0..range + 2)).collect();
                    check(&bag, &model, &probes);
                }
            }
            let probes: Vec<u32> = (0..range.min(300) + 2).collect();
            check(&bag, &model, &probes);
        }
    }

    #[test]
    fn many_copies_of_one_element_stay_in_one_chunk() {
        let mut bag = SortedBag::default();
        let mut model = Model::default();
        for k in [5, 3, 7] {
            bag.insert(k);
            model.insert(k);
        }
        for _ in 0..3 * CHUNK {
            bag.insert(5);
            model.insert(5);
        }
        check(&bag, &model, &[2, 3, 4, 5, 6, 7, 8]);
        for _ in 0..CHUNK {
            assert!(bag.remove_one(&5));
            model.remove_one(5);
        }
        check(&bag, &model, &[2, 3, 4, 5, 6, 7, 8]);
        assert!(!bag.remove_one(&4));
    }
}
