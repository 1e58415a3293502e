//! Places for long-lived things (event streams), bounded per owner and in total.
//!
//! A request limiter cannot bound these: a stream outlives the request that opened it. So each
//! open stream holds a [`Slot`], and dropping the slot (the stream ending, the client going
//! away) frees its place. The bound per owner comes first, so one owner at its limit is told so
//! ([`Refused::PerOwner`]) and never takes the places other owners need; the total is a
//! backstop for the process.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counted places, keyed by owner (an account, a client address).
#[derive(Debug)]
pub struct KeyedSlots<K: Eq + Hash> {
    shared: Arc<Shared<K>>,
}

impl<K: Eq + Hash> Clone for KeyedSlots<K> {
    fn clone(&self) -> Self {
        KeyedSlots {
            shared: self.shared.clone(),
        }
    }
}

#[derive(Debug)]
struct Shared<K> {
    per_owner: usize,
    total: usize,
    open: Mutex<Open<K>>,
}

#[derive(Debug)]
struct Open<K> {
    by_owner: HashMap<K, usize>,
    total: usize,
}

/// Why no place was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This owner holds `limit` places already: its own limit, not anyone else's problem.
    #[error("at most {limit} may be open at once per account")]
    PerOwner { limit: usize },
    /// The process holds `limit` places: it is full for everyone.
    #[error("at most {limit} may be open at once on this server")]
    Total { limit: usize },
}

/// One owner's place; dropping it frees the place.
pub struct Slot<K: Eq + Hash> {
    shared: Arc<Shared<K>>,
    owner: Option<K>,
}

impl<K: Eq + Hash> fmt::Debug for Slot<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Slot(..)")
    }
}

impl<K: Eq + Hash + Clone> KeyedSlots<K> {
    /// At most `per_owner` places per owner and `total` in all; `None` for no bound.
    pub fn new(per_owner: Option<usize>, total: Option<usize>) -> Self {
        KeyedSlots {
            shared: Arc::new(Shared {
                per_owner: per_owner.unwrap_or(usize::MAX),
                total: total.unwrap_or(usize::MAX),
                open: Mutex::new(Open {
                    by_owner: HashMap::new(),
                    total: 0,
                }),
            }),
        }
    }

    /// A place for `owner`, or at once why not: waiting could last as long as another stream.
    pub fn acquire(&self, owner: &K) -> Result<Slot<K>, Refused> {
        let shared = &self.shared;
        let mut open = shared.lock();
        let held = open.by_owner.get(owner).copied().unwrap_or(0);
        if held >= shared.per_owner {
            return Err(Refused::PerOwner {
                limit: shared.per_owner,
            });
        }
        if open.total >= shared.total {
            return Err(Refused::Total {
                limit: shared.total,
            });
        }
        open.total += 1;
        *open.by_owner.entry(owner.clone()).or_insert(0) += 1;
        drop(open);
        Ok(Slot {
            shared: shared.clone(),
            owner: Some(owner.clone()),
        })
    }

    /// Places `owner` holds now.
    pub fn held_by(&self, owner: &K) -> usize {
        self.shared.lock().by_owner.get(owner).copied().unwrap_or(0)
    }

    /// Places held in all.
    pub fn held(&self) -> usize {
        self.shared.lock().total
    }
}

impl<K> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, Open<K>> {
        // The counts stay consistent even if a holder panicked: each update is one statement.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        let mut open = self.shared.lock();
        open.total = open.total.saturating_sub(1);
        // The entry goes with the owner's last place, so the map holds only current owners.
        if let Some(held) = open.by_owner.get_mut(&owner) {
            *held -= 1;
            if *held == 0 {
                open.by_owner.remove(&owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_at_its_limit_is_refused_while_others_still_get_places() {
        let slots = KeyedSlots::new(Some(2), Some(10));
        let a1 = slots.acquire(&"a").unwrap();
        let _a2 = slots.acquire(&"a").unwrap();
        assert_eq!(
            slots.acquire(&"a").unwrap_err(),
            Refused::PerOwner { limit: 2 }
        );
        let _b = slots.acquire(&"b").unwrap();
        assert_eq!((slots.held_by(&"a"), slots.held()), (2, 3));
        drop(a1);
        let _a3 = slots.acquire(&"a").unwrap();
        assert_eq!(slots.held_by(&"a"), 2);
    }

    #[test]
    fn the_total_is_a_backstop_and_places_come_back_on_drop() {
        let slots = KeyedSlots::new(Some(2), Some(3));
        let held: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|owner| slots.acquire(owner).unwrap())
            .collect();
        assert_eq!(
            slots.acquire(&"d").unwrap_err(),
            Refused::Total { limit: 3 }
        );
        drop(held);
        assert_eq!(slots.held(), 0);
        // No entry is left for owners that hold nothing.
        assert!(slots.shared.lock().by_owner.is_empty());
        assert!(slots.acquire(&"d").is_ok());
    }

    #[test]
    fn no_bound_means_no_refusal() {
        let slots = KeyedSlots::new(None, None);
        let held: Vec<_> = (0..1000).map(|_| slots.acquire(&1).unwrap()).collect();
        assert_eq!(slots.held_by(&1), held.len());
    }
}
