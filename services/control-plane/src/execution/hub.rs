//! Wakes watchers of an execution when it changes, and the outbox relay when one ends (its
//! account may dispatch another). The database stays the source of truth: a wake-up only says
//! "read again", so a slow watcher can never miss an event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;

#[derive(Clone, Default)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
    relay: Arc<Notify>,
    metrics: Metrics,
}

impl Hub {
    /// A hub that wakes `relay` whenever an execution ends.
    pub fn new(relay: Arc<Notify>, metrics: Metrics) -> Self {
        Hub {
            channels: Arc::default(),
            relay,
            metrics,
        }
    }

    /// The execution ended: its watchers read again, and the relay may dispatch the next
    /// execution of its account (ADR 0010).
    pub fn ended(&self, execution_id: &str) {
        self.touch(execution_id);
        self.relay.notify_one();
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

    /// Something about the execution changed.
    pub fn touch(&self, execution_id: &str) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = channels.get(execution_id) {
            sender.send_modify(|n| *n = n.wrapping_add(1));
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
