//! The idempotency keys of recently acknowledged ingest requests: a retried request whose key
//! was acknowledged before is answered as before and not applied again, also across a restart
//! (the keys are in the log and its checkpoints).

use std::collections::{HashMap, VecDeque};

/// The most keys remembered; older ones are forgotten first.
pub const KEYS_KEPT: usize = 100_000;

/// The most recent idempotency keys and the number of records each request had accepted.
#[derive(Debug, Default)]
pub struct RecentKeys {
    order: VecDeque<String>,
    accepted: HashMap<String, u64>,
}

impl RecentKeys {
    /// Remembers that the request of `key` accepted `accepted` records, forgetting the oldest
    /// key past [`KEYS_KEPT`].
    pub fn insert(&mut self, key: String, accepted: u64) {
        if self.accepted.contains_key(&key) {
            return;
        }
        self.accepted.insert(key.clone(), accepted);
        self.order.push_back(key);
        if self.order.len() > KEYS_KEPT
            && let Some(oldest) = self.order.pop_front()
        {
            self.accepted.remove(&oldest);
        }
    }

    /// Forgets `key` (its request was not logged after all). Only the newest key is forgotten
    /// without scanning.
    pub fn remove(&mut self, key: &str) {
        if self.accepted.remove(key).is_some() {
            if self.order.back().is_some_and(|newest| newest == key) {
                self.order.pop_back();
            } else {
                self.order.retain(|k| k != key);
            }
        }
    }

    /// How many records the request of `key` accepted, if it is remembered.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.accepted.get(key).copied()
    }

    /// The keys, oldest first, with their counts.
    pub fn to_entries(&self) -> Vec<(String, u64)> {
        self.order.iter().map(|key| (key.clone(), self.accepted[key])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_is_forgotten_first() {
        let mut keys = RecentKeys::default();
        for i in 0..KEYS_KEPT + 2 {
            keys.insert(format!("k{i}"), i as u64);
        }
        keys.insert("k5".into(), 99);
        assert_eq!(keys.get("k0"), None);
        assert_eq!(keys.get("k1"), None);
        assert_eq!(keys.get("k2"), Some(2));
        assert_eq!(keys.get("k5"), Some(5), "a key already known keeps its first answer");
        let entries = keys.to_entries();
        assert_eq!(entries.len(), KEYS_KEPT);
        assert_eq!(entries[0], ("k2".into(), 2));
    }
}
