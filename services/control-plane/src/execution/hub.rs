//! Wakes watchers of an execution when it changes, and the outbox relay when one ends (its
//! account may dispatch another). The database stays the source of truth: a wake-up only says
//! "read again", so a slow watcher can never miss an event. On PostgreSQL the other replicas
//! hear of each change too ([`super::live`], ADR 0028); what they miss, their watchers' poll
//! catches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::live::{Announcer, Change};
use crate::metrics::Metrics;

/// How often a watcher reads again without being woken, unless configured.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
    relay: Arc<Notify>,
    /// Wakes the webhook dispatcher: an execution ended, here or on another replica.
    ended: Arc<Notify>,
    metrics: Metrics,
    /// Tells the other replicas; None when there are none to tell (SQLite: one process).
    announcer: Option<Announcer>,
    poll: Duration,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(Arc::default(), Metrics::default())
    }
}

impl Hub {
    /// A hub that wakes `relay` whenever an execution ends.
    pub fn new(relay: Arc<Notify>, metrics: Metrics) -> Self {
        Hub {
            channels: Arc::default(),
            relay,
            ended: Arc::default(),
            metrics,
            announcer: None,
            poll: DEFAULT_POLL,
        }
    }

    /// Watchers also read again every `poll`, woken or not: the safety net for a change
    /// nobody announced (a notification lost with its connection, a write by other means).
    pub fn polling_every(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Every change is also announced to the other replicas through `announcer`.
    pub fn announcing(mut self, announcer: Announcer) -> Self {
        self.announcer = Some(announcer);
        self
    }

    /// Notified whenever an execution ended (here or, when announced, on another replica).
    pub fn endings(&self) -> Arc<Notify> {
        self.ended.clone()
    }

    /// How often a watcher reads again without being woken.
    pub fn poll(&self) -> Duration {
        self.poll
    }

    /// The execution ended: its watchers read again, and the relay may dispatch the next
    /// execution of its account (ADR 0010). The other replicas hear of it.
    pub fn ended(&self, execution_id: &str) {
        self.wake_ended(execution_id);
        self.announce(execution_id, Change::Ended);
    }

    /// Where the execution paths record (outcomes, phases, reconciliations).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn subscribe(&self, execution_id: &str) -> Subscription {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = channels
            .entry(execution_id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            hub: self.clone(),
            execution_id: execution_id.to_string(),
            receiver,
        }
    }

    /// Something about the execution changed (and was committed). The other replicas hear of
    /// it.
    pub fn touch(&self, execution_id: &str) {
        self.wake(execution_id);
        self.announce(execution_id, Change::Changed);
    }

    /// Wakes this replica's watchers of the execution, and nobody else.
    pub(super) fn wake(&self, execution_id: &str) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = channels.get(execution_id) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// As [`Hub::wake`], and the relay: the execution ended (here or on another replica).
    pub(super) fn wake_ended(&self, execution_id: &str) {
        self.wake(execution_id);
        self.relay.notify_one();
        self.ended.notify_one();
    }

    /// Wakes every watcher of this replica and the relay: changes may have gone unheard.
    pub(super) fn wake_all(&self) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        for sender in channels.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.relay.notify_one();
        self.ended.notify_one();
    }

    fn announce(&self, execution_id: &str, change: Change) {
        if let Some(announcer) = &self.announcer {
            announcer.announce(execution_id, change);
        }
    }
}

pub struct Subscription {
    hub: Hub,
    execution_id: String,
    receiver: watch::Receiver<u64>,
}

impl Subscription {
    /// Resolves on the next change.
    pub async fn changed(&mut self) {
        // The sender lives in the hub map as long as a subscription exists.
        let _ = self.receiver.changed().await;
    }

    /// Where this subscription stands before its owner writes and touches the execution:
    /// `None` while a change is already waiting to be seen.
    pub fn mark(&self) -> Option<u64> {
        let waiting = self.receiver.has_changed().unwrap_or(true);
        (!waiting).then(|| *self.receiver.borrow())
    }

    /// After the owner's write and its one `touch`: whether anything else changed the execution
    /// since `mark`. Everything so far counts as seen, so `changed` wakes only for what follows.
    pub fn others_changed(&mut self, mark: Option<u64>) -> bool {
        let now = *self.receiver.borrow_and_update();
        mark.is_none_or(|before| now != before.wrapping_add(1))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.hub.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = channels.get(&self.execution_id) {
            // This subscription's receiver is still counted until the end of drop.
            if sender.receiver_count() <= 1 {
                channels.remove(&self.execution_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_touch_wakes_every_subscriber_and_the_entry_goes_with_the_last() {
        let hub = Hub::default();
        let mut a = hub.subscribe("e1");
        let mut b = hub.subscribe("e1");
        hub.touch("e1");
        a.changed().await;
        b.changed().await;
        drop(a);
        assert_eq!(hub.channels.lock().unwrap().len(), 1);
        drop(b);
        assert!(hub.channels.lock().unwrap().is_empty());
        // Touching an execution nobody watches is a no-op.
        hub.touch("e2");
        assert!(hub.channels.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_owner_sees_its_own_touch_apart_from_everyone_elses() {
        let hub = Hub::default();
        let mut owner = hub.subscribe("e1");
        // Only its own touch: nothing to look at, and nothing left to wake it.
        let mark = owner.mark();
        hub.touch("e1");
        assert!(!owner.others_changed(mark));
        assert!(!owner.receiver.has_changed().unwrap());
        // Someone else's touch during its write, or one waiting before it began: look.
        let mark = owner.mark();
        hub.touch("e1");
        hub.touch("e1");
        assert!(owner.others_changed(mark));
        hub.touch("e1");
        let mark = owner.mark();
        assert_eq!(mark, None);
        hub.touch("e1");
        assert!(owner.others_changed(mark));
    }

    #[tokio::test]
    async fn an_ended_execution_wakes_its_watchers_and_the_relay() {
        let relay = Arc::new(Notify::new());
        let hub = Hub::new(relay.clone(), Metrics::default());
        let mut watcher = hub.subscribe("e1");
        hub.touch("e1");
        watcher.changed().await;
        hub.ended("e1");
        watcher.changed().await;
        // Only the end wakes the relay: the permit stored by `ended` is there, and only one.
        tokio::time::timeout(std::time::Duration::from_secs(1), relay.notified())
            .await
            .unwrap();
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), relay.notified());
        assert!(again.await.is_err());
    }
}
