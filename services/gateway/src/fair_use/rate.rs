//! Requests per second per caller: a keyed GCRA limiter (`governor`), a bucket per caller.
//!
//! Memory stays bounded: buckets that have refilled hold nothing worth keeping (a fresh bucket
//! would decide the same), and they are pruned once the map grows past [`PRUNE_ABOVE`]. What
//! remains are the callers seen within one refill time (`burst / per_sec` seconds).

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use super::Caller;

/// Buckets kept before refilled ones are pruned.
const PRUNE_ABOVE: usize = 10_000;
/// How often (in checks) the size is looked at; looking takes every shard's lock.
const PRUNE_EVERY: u64 = 1024;

type Limiter<C> =
    RateLimiter<Caller, DashMapStateStore<Caller>, C, NoOpMiddleware<<C as Clock>::Instant>>;

#[derive(Clone)]
pub struct RequestRate<C: Clock + Clone = DefaultClock> {
    limiter: Arc<Limiter<C>>,
    clock: C,
    checks: Arc<AtomicU64>,
}

impl<C: Clock + Clone> fmt::Debug for RequestRate<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRate")
            .field("callers", &self.limiter.len())
            .finish()
    }
}

impl RequestRate {
    /// `per_sec` a second with bursts of `burst` (at least 1); `None` when `per_sec` is 0.
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        Self::with_clock(per_sec, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RequestRate<C> {
    fn with_clock(per_sec: u32, burst: u32, clock: C) -> Option<Self> {
        let per_sec = NonZeroU32::new(per_sec)?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_sec).allow_burst(burst);
        Some(RequestRate {
            limiter: Arc::new(RateLimiter::dashmap_with_clock(quota, clock.clone())),
            clock,
            checks: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Takes one request from `caller`'s bucket, or tells how long until one is there.
    pub fn check(&self, caller: &Caller) -> Result<(), Duration> {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            self.prune();
        }
        self.limiter
            .check_key(caller)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    fn prune(&self) {
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn account(id: &str) -> Caller {
        Caller::Account(id.into())
    }

    #[test]
    fn a_caller_over_its_rate_waits_while_others_are_served() {
        let clock = FakeRelativeClock::default();
        let rate = RequestRate::with_clock(2, 4, clock.clone()).unwrap();
        for _ in 0..4 {
            rate.check(&account("a")).unwrap();
        }
        // The burst is spent: the next cell comes after 1/2 s.
        let wait = rate.check(&account("a")).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another caller has a bucket of its own.
        for _ in 0..4 {
            rate.check(&account("b")).unwrap();
        }
        clock.advance(Duration::from_millis(500));
        rate.check(&account("a")).unwrap();
        assert!(rate.check(&account("a")).is_err());
    }

    #[test]
    fn zero_per_second_is_no_limit() {
        assert!(RequestRate::new(0, 10).is_none());
    }

    #[test]
    fn refilled_buckets_are_pruned_once_there_are_many() {
        let clock = FakeRelativeClock::default();
        let rate = RequestRate::with_clock(10, 10, clock.clone()).unwrap();
        for i in 0..=PRUNE_ABOVE {
            rate.check(&account(&i.to_string())).unwrap();
        }
        assert_eq!(rate.limiter.len(), PRUNE_ABOVE + 1);
        // Within the refill time the buckets still matter and are kept.
        rate.prune();
        assert_eq!(rate.limiter.len(), PRUNE_ABOVE + 1);
        clock.advance(Duration::from_secs(2));
        rate.prune();
        assert_eq!(rate.limiter.len(), 0);
    }
}
