//! The job queue between the control plane and the execution nodes: RabbitMQ in production, or an
//! in-process queue with the same semantics for `frameos dev` (priorities, a prefetch bound,
//! retry with exponential back-off, a dead-letter queue, redelivery of unacked jobs).
//!
//! Delivery is at least once: a job can arrive twice (a node lost mid-run, an ack lost with its
//! connection), so consumers rely on the control plane's attempt fencing, never on uniqueness.
//!
//! Connection loss is not recovered here. Every later operation on that [`Queue`] fails with an
//! error whose [`Error::is_transient`] is true and consumers end; the caller builds a new queue
//! with [`Queue::amqp`] (declaring is idempotent) and consumes again. The broker redelivers the
//! jobs that were unacked on the lost connection.

use tracing::Instrument;

mod amqp;
mod codec;
mod in_process;
mod spans;
mod topology;

#[cfg(test)]
mod cancel_tests;
#[cfg(test)]
mod tests;

pub use amqp::AmqpQueue;
pub use in_process::InProcessQueue;
pub use topology::{Job, Topology};

/// AMQP header carrying [`Job::attempt`].
pub const ATTEMPT_HEADER: &str = "x-frameos-attempt";
/// Job header with the time the execution was queued (Unix milliseconds): where its
/// consumer's queue-wait span starts.
pub const QUEUED_AT_HEADER: &str = "frameos-queued-at";
/// AMQP header saying why a message is in the dead-letter queue.
pub const DEATH_REASON_HEADER: &str = "x-frameos-death-reason";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("amqp operation failed: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker did not confirm the message for execution {execution_id}")]
    Nacked { execution_id: String },
    #[error("the message for execution {execution_id} could not be routed to queue {queue:?}")]
    Unroutable { execution_id: String, queue: String },
    #[error("queue {0:?} does not exist on the broker")]
    Missing(String),
    #[error("the channel of this delivery is closed; the broker will redeliver it")]
    DeliveryLost,
    #[error("invalid {0}")]
    Invalid(String),
    #[error("the queue is closed")]
    Closed,
}

impl Error {
    /// Whether trying again (on a new connection, for AMQP) can succeed.
    pub fn is_transient(&self) -> bool {
        use lapin::ErrorKind as K;
        use lapin::protocol::{AMQPErrorKind, AMQPHardError as H, AMQPSoftError as S};
        match self {
            Error::Amqp(e) => match e.kind() {
                K::IOError(_)
                | K::InvalidChannel(_)
                | K::InvalidChannelState(..)
                | K::InvalidConnectionState(_)
                | K::MissingHeartbeatError => true,
                K::ProtocolError(p) => matches!(
                    p.kind(),
                    AMQPErrorKind::Hard(H::CONNECTIONFORCED | H::RESOURCEERROR | H::INTERNALERROR)
                        | AMQPErrorKind::Soft(S::RESOURCELOCKED)
                ),
                _ => false,
            },
            // A new connection declares the topology again, so a deleted queue exists again.
            Error::Nacked { .. }
            | Error::DeliveryLost
            | Error::Unroutable { .. }
            | Error::Missing(_) => true,
            Error::Invalid(_) | Error::Closed => false,
        }
    }
}

/// Deletes every queue of `topology` on the broker at `url`, messages included.
pub async fn delete_amqp_topology(url: &str, topology: &Topology) -> Result<(), Error> {
    amqp::admin::delete_topology(url, topology)
        .await
        .map_err(Error::Amqp)
}

/// The job queue. An enum rather than a trait object: there are exactly two real backends.
#[derive(Clone, Debug)]
pub enum Queue {
    Amqp(AmqpQueue),
    InProcess(InProcessQueue),
}

impl Queue {
    /// Connects and declares the whole topology, idempotently.
    pub async fn amqp(url: &str, topology: Topology) -> Result<Queue, Error> {
        Ok(Queue::Amqp(AmqpQueue::connect(url, topology).await?))
    }

    pub fn in_process(topology: Topology) -> Queue {
        Queue::InProcess(InProcessQueue::new(topology))
    }

    pub fn topology(&self) -> &Topology {
        match self {
            Queue::Amqp(q) => q.topology(),
            Queue::InProcess(q) => q.topology(),
        }
    }

    /// Publishes and waits for the broker's confirm (publisher confirms); Err on nack, return
    /// (unroutable) or a closed channel.
    /// A PRODUCER span covers the publish; the job's trace context is replaced by the span's.
    pub async fn publish(&self, job: &Job) -> Result<(), Error> {
        job.validate()?;
        let span = match self {
            Queue::Amqp(q) => spans::publish(spans::System::Rabbitmq, &q.topology().name, job),
            Queue::InProcess(q) => {
                spans::publish(spans::System::InProcess, &q.topology().name, job)
            }
        };
        let job = spans::carried(job, &span);
        let result = match self {
            Queue::Amqp(q) => q.publish(&job).instrument(span.clone()).await,
            Queue::InProcess(q) => span.in_scope(|| q.publish(&job)),
        };
        if result.is_err() {
            span.record("otel.status_code", "error");
        }
        result
    }

    /// Consumes the job queue with manual acks and the given prefetch (= the node's concurrency;
    /// 0 counts as 1, so work is never handed out unbounded).
    pub async fn consume(&self, consumer_tag: &str, prefetch: u16) -> Result<Consumer, Error> {
        let prefetch = prefetch.max(1);
        let inner = match self {
            Queue::Amqp(q) => ConsumerInner::Amqp(Box::new(
                q.consume(consumer_tag, prefetch, Source::Jobs).await?,
            )),
            Queue::InProcess(q) => ConsumerInner::InProcess(q.consume(prefetch, Source::Jobs)?),
        };
        Ok(Consumer { inner })
    }

    /// Consumes the dead-letter queue (the control plane marks those executions failed).
    pub async fn consume_dead_letters(&self, consumer_tag: &str) -> Result<Consumer, Error> {
        let inner = match self {
            Queue::Amqp(q) => ConsumerInner::Amqp(Box::new(
                q.consume(consumer_tag, DEAD_LETTER_PREFETCH, Source::Dead)
                    .await?,
            )),
            Queue::InProcess(q) => {
                ConsumerInner::InProcess(q.consume(DEAD_LETTER_PREFETCH, Source::Dead)?)
            }
        };
        Ok(Consumer { inner })
    }

    /// Messages waiting in the job queue (ready, not unacked, not waiting out a back-off).
    pub async fn depth(&self) -> Result<u32, Error> {
        match self {
            Queue::Amqp(q) => q.depth().await,
            Queue::InProcess(q) => q.depth(),
        }
    }

    /// Messages waiting for a consumer: in the job queue and in its delay (retry) queues, so
    /// jobs waiting out a back-off count too; not those delivered and not yet settled.
    /// `None` when a queue of the topology does not exist (deleted on the broker):
    /// [`Queue::redeclare`] creates it again.
    pub async fn backlog(&self) -> Result<Option<u32>, Error> {
        match self {
            Queue::Amqp(q) => q.backlog().await,
            Queue::InProcess(q) => Ok(Some(q.backlog())),
        }
    }

    /// Declares the whole topology again (idempotent): what a deleted queue needs.
    pub async fn redeclare(&self) -> Result<(), Error> {
        match self {
            Queue::Amqp(q) => q.redeclare().await,
            Queue::InProcess(_) => Ok(()),
        }
    }

    /// Drops every job waiting in the job queue (not those waiting out a back-off); returns how
    /// many. For operators and for tests of what the control plane does about lost jobs.
    pub async fn purge(&self) -> Result<u32, Error> {
        match self {
            Queue::Amqp(q) => q.purge().await,
            Queue::InProcess(q) => Ok(q.purge()),
        }
    }

    /// Ends every consumer (their `next` returns None) and refuses later publishes.
    pub async fn close(&self) {
        match self {
            Queue::Amqp(q) => q.close().await,
            Queue::InProcess(q) => q.close(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Queue::Amqp(q) => format!("rabbitmq queue {}", q.topology().name),
            Queue::InProcess(q) => format!("in-process queue {}", q.topology().name),
        }
    }
}

/// Dead letters are handled one database write each; a small bound keeps them from piling up
/// unacked in one control-plane replica.
const DEAD_LETTER_PREFETCH: u16 = 16;

/// Which queue a consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Jobs,
    Dead,
}

pub struct Consumer {
    inner: ConsumerInner,
}

enum ConsumerInner {
    // Boxed: lapin's consumer is large and there is one per consumer, not per message.
    Amqp(Box<amqp::AmqpConsumer>),
    InProcess(in_process::InProcessConsumer),
}

impl Consumer {
    /// The next delivery; None once the consumer or its queue is closed. After an `Err` the
    /// consumer is finished too (the connection or channel is gone).
    pub async fn next(&mut self) -> Option<Result<Delivery, Error>> {
        match &mut self.inner {
            ConsumerInner::Amqp(c) => c.next().await,
            ConsumerInner::InProcess(c) => c.next().await.map(Ok),
        }
    }

    /// Stops consuming (a node that shuts down). The broker sends this consumer nothing more,
    /// and deliveries it had already sent that `next` never returned go back to the queue now,
    /// not when the channel closes (the channel stays open while returned deliveries are held).
    /// Returns how many went back; deliveries already returned stay with their holders.
    pub async fn cancel(self) -> Result<usize, Error> {
        match self.inner {
            ConsumerInner::Amqp(c) => c.cancel().await,
            // It takes a job from the queue only when `next` is called.
            ConsumerInner::InProcess(_) => Ok(0),
        }
    }
}

/// One delivered job. Settle it with exactly one of `ack`, `retry` or `dead_letter`; dropped
/// without any (a crashed worker, a lost connection) it is redelivered with `redelivered = true`.
#[derive(Debug)]
pub struct Delivery {
    pub job: Job,
    pub redelivered: bool,
    /// Why it was dead-lettered; only on deliveries from [`Queue::consume_dead_letters`].
    pub death_reason: Option<String>,
    handle: Handle,
}

#[derive(Debug)]
enum Handle {
    Amqp(amqp::AmqpHandle),
    InProcess(in_process::InProcessHandle),
}

impl Delivery {
    /// A CONSUMER span for processing this delivery, the child of its publish span: the
    /// consumer runs its work in it.
    pub fn process_span(&self) -> tracing::Span {
        let (system, queue) = match &self.handle {
            Handle::Amqp(h) => (spans::System::Rabbitmq, h.queue()),
            Handle::InProcess(h) => (spans::System::InProcess, h.queue()),
        };
        spans::process(system, &queue, &self.job, self.redelivered)
    }

    pub async fn ack(self) -> Result<(), Error> {
        match self.handle {
            Handle::Amqp(h) => h.ack().await,
            Handle::InProcess(h) => {
                h.ack();
                Ok(())
            }
        }
    }

    /// A failure of the platform (not of the agent): republishes the job with attempt+1 after the
    /// topology's back-off, or, once `attempt >= max_attempts`, to the dead-letter queue with
    /// `x-frameos-death-reason`; then acks this delivery. On an error nothing was acked and the job
    /// is redelivered. A dead letter retried goes back to the dead-letter queue.
    pub async fn retry(self, reason: &str) -> Result<(), Error> {
        match self.handle {
            Handle::Amqp(h) => h.retry(reason).await,
            Handle::InProcess(h) => {
                h.retry(reason);
                Ok(())
            }
        }
    }

    /// Gives the job back unstarted: requeued as it was, no retry counted (RabbitMQ's nack with
    /// requeue), so the next consumer gets it at once with `redelivered = true`.
    pub async fn requeue(self) -> Result<(), Error> {
        match self.handle {
            Handle::Amqp(h) => h.requeue().await,
            Handle::InProcess(mut h) => {
                h.requeue();
                Ok(())
            }
        }
    }

    /// Straight to the dead-letter queue with `x-frameos-death-reason: reason`.
    pub async fn dead_letter(self, reason: &str) -> Result<(), Error> {
        match self.handle {
            Handle::Amqp(h) => h.dead_letter(reason).await,
            Handle::InProcess(h) => {
                h.dead_letter(reason);
                Ok(())
            }
        }
    }
}

/// The dead-letter reason once retries are used up: the last failure plus the count.
pub(crate) fn exhausted_reason(attempt: u32, reason: &str) -> String {
    format!("gave up after {attempt} attempts: {reason}")
}
