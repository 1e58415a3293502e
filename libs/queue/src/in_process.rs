//! The queue of `frameos dev`: RabbitMQ's semantics in memory, lost with the process.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::topology::RetryStep;
use crate::{Delivery, Error, Handle, Job, Source, Topology, exhausted_reason};

#[derive(Clone)]
pub struct InProcessQueue {
    shared: Arc<Shared>,
}

impl fmt::Debug for InProcessQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessQueue")
            .field("name", &self.shared.topology.name)
            .finish_non_exhaustive()
    }
}

struct Shared {
    topology: Topology,
    state: Mutex<State>,
    /// Signalled on every change a waiting consumer could care about.
    changed: Notify,
}

#[derive(Default)]
struct State {
    jobs: BinaryHeap<Entry>,
    dead: BinaryHeap<Entry>,
    /// Retries waiting out their back-off (RabbitMQ's delay queues).
    delayed: usize,
    next_seq: u64,
    closed: bool,
}

#[derive(Clone)]
struct Message {
    job: Job,
    redelivered: bool,
    death_reason: Option<String>,
}

struct Entry {
    rank: u8,
    /// Publish order; a redelivered message keeps its own, so it goes back where it was.
    seq: u64,
    message: Message,
}

impl Ord for Entry {
    /// The heap's maximum is delivered next: highest rank, then oldest.
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a panic elsewhere is no reason
        // to stop serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enqueues `message` (with `seq`, or the next one); dropped once the queue is closed.
    fn push(&self, source: Source, message: Message, seq: Option<u64>) {
        {
            let mut state = self.state();
            if state.closed {
                debug!(execution_id = %message.job.execution_id, "queue closed; message discarded");
                return;
            }
            let seq = seq.unwrap_or_else(|| {
                state.next_seq += 1;
                state.next_seq
            });
            let rank = match source {
                Source::Jobs => message.job.priority.min(self.topology.max_priority),
                Source::Dead => 0,
            };
            let entry = Entry { rank, seq, message };
            match source {
                Source::Jobs => state.jobs.push(entry),
                Source::Dead => state.dead.push(entry),
            }
        }
        self.changed.notify_waiters();
    }
}

impl InProcessQueue {
    pub(crate) fn new(topology: Topology) -> InProcessQueue {
        InProcessQueue {
            shared: Arc::new(Shared {
                topology,
                state: Mutex::new(State::default()),
                changed: Notify::new(),
            }),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    pub(crate) fn publish(&self, job: &Job) -> Result<(), Error> {
        if self.shared.state().closed {
            return Err(Error::Closed);
        }
        let message = Message {
            job: job.clone(),
            redelivered: false,
            death_reason: None,
        };
        self.shared.push(Source::Jobs, message, None);
        debug!(queue = %self.shared.topology.name, execution_id = %job.execution_id, attempt = job.attempt, "job published");
        Ok(())
    }

    pub(crate) fn consume(
        &self,
        prefetch: u16,
        source: Source,
    ) -> Result<InProcessConsumer, Error> {
        if self.shared.state().closed {
            return Err(Error::Closed);
        }
        info!(queue = %self.shared.topology.name, ?source, prefetch, "consuming in process");
        Ok(InProcessConsumer {
            shared: self.shared.clone(),
            source,
            prefetch: prefetch.into(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub(crate) fn depth(&self) -> Result<u32, Error> {
        let state = self.shared.state();
        Ok(u32::try_from(state.jobs.len()).unwrap_or(u32::MAX))
    }

    pub(crate) fn backlog(&self) -> u32 {
        let state = self.shared.state();
        u32::try_from(state.jobs.len() + state.delayed).unwrap_or(u32::MAX)
    }

    pub(crate) fn purge(&self) -> u32 {
        let purged = std::mem::take(&mut self.shared.state().jobs).len();
        warn!(queue = %self.shared.topology.name, purged, "job queue purged");
        u32::try_from(purged).unwrap_or(u32::MAX)
    }

    pub(crate) fn close(&self) {
        self.shared.state().closed = true;
        self.shared.changed.notify_waiters();
        info!(queue = %self.shared.topology.name, "in-process queue closed");
    }
}

pub(crate) struct InProcessConsumer {
    shared: Arc<Shared>,
    source: Source,
    prefetch: usize,
    /// Unsettled deliveries of this consumer; shared with their handles.
    in_flight: Arc<AtomicUsize>,
}

impl InProcessConsumer {
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        loop {
            // Registered before looking, so a change between the look and the wait is not missed.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.shared.state();
                if state.closed {
                    return None;
                }
                if self.in_flight.load(AtomicOrdering::SeqCst) < self.prefetch {
                    let heap = match self.source {
                        Source::Jobs => &mut state.jobs,
                        Source::Dead => &mut state.dead,
                    };
                    if let Some(entry) = heap.pop() {
                        self.in_flight.fetch_add(1, AtomicOrdering::SeqCst);
                        return Some(self.delivery(entry));
                    }
                }
            }
            changed.await;
        }
    }

    fn delivery(&self, entry: Entry) -> Delivery {
        let Entry { seq, message, .. } = entry;
        Delivery {
            job: message.job.clone(),
            redelivered: message.redelivered,
            death_reason: message.death_reason.clone(),
            handle: Handle::InProcess(InProcessHandle {
                shared: self.shared.clone(),
                source: self.source,
                in_flight: self.in_flight.clone(),
                seq,
                message,
                settled: false,
            }),
        }
    }
}

pub(crate) struct InProcessHandle {
    shared: Arc<Shared>,
    source: Source,
    in_flight: Arc<AtomicUsize>,
    seq: u64,
    /// The message as delivered: what a retry, dead letter or redelivery enqueues.
    message: Message,
    settled: bool,
}

impl fmt::Debug for InProcessHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessHandle")
            .field("source", &self.source)
            .field("seq", &self.seq)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl InProcessHandle {
    /// The queue this delivery came from.
    pub(crate) fn queue(&self) -> String {
        match self.source {
            Source::Jobs => self.shared.topology.name.clone(),
            Source::Dead => self.shared.topology.dead_queue(),
        }
    }

    /// Frees this delivery's prefetch slot.
    fn settle(&mut self) {
        self.settled = true;
        self.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
        self.shared.changed.notify_waiters();
    }

    pub(crate) fn ack(mut self) {
        self.settle();
    }

    pub(crate) fn retry(mut self, reason: &str) {
        if self.source == Source::Dead {
            return self.requeue();
        }
        let job = &self.message.job;
        match self.shared.topology.retry_step(job.attempt) {
            RetryStep::After(delay) => {
                let next = Message {
                    job: Job {
                        attempt: job.attempt + 1,
                        ..job.clone()
                    },
                    redelivered: false,
                    death_reason: None,
                };
                info!(execution_id = %job.execution_id, attempt = next.job.attempt, delay_ms = delay.as_millis() as u64, %reason, "job retry scheduled");
                let shared = self.shared.clone();
                shared.state().delayed += 1;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    shared.state().delayed -= 1;
                    shared.push(Source::Jobs, next, None);
                });
                self.settle();
            }
            RetryStep::Exhausted => {
                let reason = exhausted_reason(job.attempt, reason);
                self.dead_letter(&reason);
            }
        }
    }

    pub(crate) fn dead_letter(mut self, reason: &str) {
        if self.source == Source::Dead {
            return self.requeue();
        }
        warn!(execution_id = %self.message.job.execution_id, attempt = self.message.job.attempt, %reason, "job dead-lettered");
        let message = Message {
            job: self.message.job.clone(),
            redelivered: false,
            death_reason: Some(reason.to_string()),
        };
        self.shared.push(Source::Dead, message, None);
        self.settle();
    }

    /// Back where it was, flagged as redelivered (RabbitMQ's requeue).
    pub(crate) fn requeue(&mut self) {
        let message = Message {
            redelivered: true,
            ..self.message.clone()
        };
        self.shared.push(self.source, message, Some(self.seq));
        self.settle();
    }
}

impl Drop for InProcessHandle {
    fn drop(&mut self) {
        if !self.settled {
            debug!(execution_id = %self.message.job.execution_id, "delivery dropped unsettled; requeueing");
            self.requeue();
        }
    }
}
