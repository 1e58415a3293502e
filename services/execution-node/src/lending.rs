//! Lending the slot of a waiting run (ADR 0041). A run whose agent waits on `ctx.call` holds
//! one of the node's `concurrency` slots while its child needs one too: `N` such runs on a node
//! of `N` slots would wait for children nobody takes (until their timeouts). So while a run
//! waits, the node takes one more job: an extra consumer with a prefetch of 1 per waiting run,
//! canceled when the run stops waiting (its unstarted job goes back to the queue; a job it
//! started runs to its end). The node's active runs never exceed `concurrency`; waiting ones
//! add at most [`LENT_PER_SLOT`] × `concurrency`.

use std::sync::{Arc, Mutex};

use frameos_queue::{Consumer, Delivery, Queue};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Lent slots per slot of the node at most: a call tree nests five levels (ADR 0040), so a slot
/// rarely needs more than four below it.
pub const LENT_PER_SLOT: usize = 4;

/// How many of this node's runs wait on a call, for the consumer to lend their slots.
#[derive(Clone)]
pub struct Waiting(Arc<watch::Sender<usize>>);

impl Waiting {
    pub fn new() -> Waiting {
        Waiting(Arc::new(watch::channel(0).0))
    }

    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.0.subscribe()
    }

    /// The calls of one run: the run waits while any of them does.
    pub fn run(&self) -> RunWaits {
        RunWaits {
            node: self.clone(),
            outstanding: Arc::new(Mutex::new(0)),
        }
    }
}

/// The outstanding calls of one run.
#[derive(Clone)]
pub struct RunWaits {
    node: Waiting,
    outstanding: Arc<Mutex<usize>>,
}

impl RunWaits {
    /// A call starts waiting; the guard ends it.
    pub fn begin(&self) -> CallWait {
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|e| e.into_inner());
        *outstanding += 1;
        if *outstanding == 1 {
            self.node.0.send_modify(|n| *n += 1);
        }
        CallWait(self.clone())
    }
}

/// One waiting call; dropped when it is answered (or the run ended).
pub struct CallWait(RunWaits);

impl Drop for CallWait {
    fn drop(&mut self) {
        let mut outstanding = self.0.outstanding.lock().unwrap_or_else(|e| e.into_inner());
        *outstanding = outstanding.saturating_sub(1);
        if *outstanding == 0 {
            self.0.node.0.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

/// The extra consumers of one queue connection; their deliveries arrive on the receiver that
/// [`Lender::new`] returns.
pub struct Lender {
    max: usize,
    deliveries: mpsc::Sender<Delivery>,
    lent: Vec<(CancellationToken, JoinHandle<()>)>,
    retired: Vec<JoinHandle<()>>,
    opened: u64,
}

impl Lender {
    pub fn new(concurrency: u16) -> (Lender, mpsc::Receiver<Delivery>) {
        let (deliveries, receiver) = mpsc::channel(1);
        let lender = Lender {
            max: usize::from(concurrency).saturating_mul(LENT_PER_SLOT),
            deliveries,
            lent: Vec::new(),
            retired: Vec::new(),
            opened: 0,
        };
        (lender, receiver)
    }

    /// Opens or cancels extra consumers until there is one per waiting run (at most the cap).
    pub async fn balance(&mut self, queue: &Queue, node_id: &str, waiting: usize) {
        self.lent.retain(|(_, task)| !task.is_finished());
        self.retired.retain(|task| !task.is_finished());
        let target = waiting.min(self.max);
        while self.lent.len() < target {
            self.opened += 1;
            let tag = format!("{node_id}.lent.{}", self.opened);
            match queue.consume(&tag, 1).await {
                Ok(consumer) => {
                    let stop = CancellationToken::new();
                    let task = tokio::spawn(lend(consumer, self.deliveries.clone(), stop.clone()));
                    self.lent.push((stop, task));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot lend a waiting run's slot; trying again on the next change");
                    break;
                }
            }
        }
        while self.lent.len() > target {
            if let Some((stop, task)) = self.lent.pop() {
                stop.cancel();
                self.retired.push(task);
            }
        }
        tracing::debug!(waiting, lent = self.lent.len(), "slots lent");
    }

    /// Cancels every extra consumer and waits for them: their unstarted jobs go back.
    pub async fn stop(&mut self) {
        for (stop, task) in self.lent.drain(..) {
            stop.cancel();
            self.retired.push(task);
        }
        for task in self.retired.drain(..) {
            let _ = task.await;
        }
    }
}

/// One extra consumer: forwards its deliveries until it is canceled or its connection ends.
async fn lend(mut consumer: Consumer, deliveries: mpsc::Sender<Delivery>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    if let Err(unsent) = deliveries.send(delivery).await {
                        // The node stopped taking jobs: this one goes back unstarted.
                        let _ = unsent.0.requeue().await;
                        break;
                    }
                }
                // The connection is gone, and what it had sent with it.
                Some(Err(_)) | None => return,
            },
        }
    }
    match consumer.cancel().await {
        Ok(returned) => tracing::debug!(returned, "lent slot returned"),
        Err(e) => {
            tracing::warn!(error = %e, "canceling a lent consumer failed; the broker returns its job when the connection closes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_waits_while_any_of_its_calls_does() {
        let node = Waiting::new();
        let seen = node.subscribe();
        let (a, b) = (node.run(), node.run());
        let first = a.begin();
        let second = a.begin();
        assert_eq!(*seen.borrow(), 1, "one run waits, however many calls");
        let other = b.begin();
        assert_eq!(*seen.borrow(), 2);
        drop(first);
        assert_eq!(*seen.borrow(), 2, "run a still waits on its second call");
        drop(second);
        drop(other);
        assert_eq!(*seen.borrow(), 0);
    }
}
