//! Giving back what nobody uses: a class no run has taken from for `idle_after` goes back to
//! its floor — the initial size for a runtime's default class, none for any other — and the
//! containers waiting above it are removed, so memory held for a burst of an unusual class
//! returns to the host. The next run of that class is a miss and grows it again.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::{Inner, Warm};
use crate::docker::body::Class;
use crate::{Runtime, Spec};

/// How often classes are looked at: a quarter of the idle time, so one shrinks at most a
/// quarter late (and not more often than every 100 ms).
fn period(idle_after: Duration) -> Duration {
    (idle_after / 4).max(Duration::from_millis(100))
}

/// Runs the trimming until the pool closes; nothing when `idle_after` is zero (never shrink).
pub(super) fn start(inner: &Arc<Inner>) {
    let idle_after = inner.config.idle_after;
    if idle_after.is_zero() {
        return;
    }
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let shutdown = inner.shutdown.clone();
    inner.tasks.spawn(async move {
        let mut tick = tokio::time::interval(period(idle_after));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let Some(inner) = weak.upgrade() else { return };
            inner.trim(Instant::now());
        }
    });
}

impl Inner {
    /// Lowers every class idle since `now - idle_after` to its floor and removes the waiting
    /// containers above it. Returns how many were removed.
    pub(super) fn trim(&self, now: Instant) -> usize {
        let initial = self.config.initial.min(self.config.max_per_class);
        let defaults = [Runtime::Node, Runtime::Python].map(|runtime| {
            Class::of(&Spec {
                runtime,
                ..Spec::default()
            })
        });
        let surplus: Vec<Warm> = {
            let mut state = self.lock();
            if state.closed {
                return 0;
            }
            let mut surplus = Vec::new();
            for (class, entry) in &mut state.classes {
                // A class nobody has taken from yet starts its idle clock now.
                let last = *entry.last_taken.get_or_insert(now);
                if now.saturating_duration_since(last) < self.config.idle_after {
                    continue;
                }
                let floor = if defaults.contains(class) { initial } else { 0 };
                entry.target = entry.target.min(floor);
                while entry.ready.len() > entry.target {
                    surplus.extend(entry.ready.pop_back());
                }
            }
            // Classes left with nothing are forgotten (their failure, if any, with them).
            state
                .classes
                .retain(|_, c| c.target > 0 || c.starting > 0 || !c.ready.is_empty());
            surplus
        };
        let removed = surplus.len();
        for warm in surplus {
            tracing::info!(container = %warm.name, "warm container idle; removing it");
            warm.taken.cancel();
            self.discard(warm);
        }
        removed
    }
}
