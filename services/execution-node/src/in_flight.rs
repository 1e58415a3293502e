//! The executions this node process is handling right now. A second delivery of one of them
//! (a duplicated message) is acked without claiming: a claim by this very registration would
//! take over its own running attempt. Heartbeats list them, which keeps their claims live.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[derive(Clone, Default)]
pub struct InFlight {
    ids: Arc<Mutex<HashSet<String>>>,
}

impl InFlight {
    fn ids_locked(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set stays consistent through any panic: every change is one insert or remove.
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the execution as handled here until the guard drops; `None` if it already is.
    pub fn begin(&self, execution_id: &str) -> Option<InFlightGuard> {
        if !self.ids_locked().insert(execution_id.to_string()) {
            return None;
        }
        Some(InFlightGuard {
            set: self.clone(),
            execution_id: execution_id.to_string(),
        })
    }

    pub fn ids(&self) -> Vec<String> {
        self.ids_locked().iter().cloned().collect()
    }
}

pub struct InFlightGuard {
    set: InFlight,
    execution_id: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.set.ids_locked().remove(&self.execution_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_execution_is_handled_once_at_a_time() {
        let set = InFlight::default();
        let first = set.begin("e1");
        assert!(first.is_some());
        assert!(set.begin("e1").is_none(), "a duplicate must be refused");
        let second = set.begin("e2");
        let mut ids = set.ids();
        ids.sort();
        assert_eq!(ids, ["e1", "e2"]);
        drop(first);
        drop(second);
        assert!(set.ids().is_empty());
        assert!(set.begin("e1").is_some());
    }
}
