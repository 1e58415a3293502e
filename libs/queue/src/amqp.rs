//! RabbitMQ (3.10+). The job queue is a classic queue with `x-max-priority`; back-off is one
//! delay queue per level whose queue-level TTL dead-letters into the job queue (per-message TTLs
//! only expire at the head, so one mixed queue would hold short delays behind long ones).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Acker, Channel, Confirmation, Connection, ConnectionProperties};
use tracing::{debug, info, warn};

use crate::codec::{self, Decoded};
use crate::topology::RetryStep;
use crate::{Delivery, Error, Handle, Job, Source, Topology, exhausted_reason};

#[derive(Clone)]
pub struct AmqpQueue {
    shared: Arc<Shared>,
}

struct Shared {
    connection: Connection,
    /// In confirm mode: every publish (new jobs, retries, dead letters) waits for its confirm.
    publisher: Channel,
    topology: Topology,
    closed: AtomicBool,
}

impl fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("name", &self.shared.topology.name)
            .finish_non_exhaustive()
    }
}

fn short(s: &str) -> Result<ShortString, Error> {
    ShortString::try_new(s).map_err(|e| Error::Invalid(format!("name {s:?}: {e}")))
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

fn is_not_found(error: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares every queue of the topology; redeclaring with the same arguments is a no-op.
async fn declare(channel: &Channel, topology: &Topology) -> Result<(), Error> {
    let dead = topology.dead_queue();
    let mut jobs = FieldTable::default();
    jobs.insert("x-queue-type".into(), text("classic"));
    jobs.insert(
        "x-max-priority".into(),
        AMQPValue::LongInt(topology.max_priority.into()),
    );
    // A message rejected without requeue (an unreadable one) lands with the dead letters.
    jobs.insert("x-dead-letter-exchange".into(), text(""));
    jobs.insert("x-dead-letter-routing-key".into(), text(&dead));
    channel
        .queue_declare(short(&topology.name)?, durable(), jobs)
        .await?;

    let mut dead_args = FieldTable::default();
    dead_args.insert("x-queue-type".into(), text("classic"));
    channel
        .queue_declare(short(&dead)?, durable(), dead_args)
        .await?;

    for delay in topology.retry_delays() {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), text("classic"));
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args.insert("x-dead-letter-exchange".into(), text(""));
        args.insert("x-dead-letter-routing-key".into(), text(&topology.name));
        channel
            .queue_declare(short(&topology.retry_queue(delay))?, durable(), args)
            .await?;
    }
    Ok(())
}

/// The largest frame proposed to the broker when the URL names none (`?frame_max=`). lapin
/// keeps a send and a receive buffer of 32 frames per connection, zero-filled and so resident:
/// at RabbitMQ's default of 128 KiB that was 8 MiB per connection, a third of an idle control
/// plane (ADR 0030). A job is well under 1 KiB (its trace headers are bounded by
/// `frameos_telemetry::MAX_TRACESTATE`); a larger message would only take more frames.
pub(crate) const FRAME_MAX: u32 = 16 * 1024;

pub(crate) async fn open(
    url: &str,
    properties: ConnectionProperties,
) -> Result<Connection, lapin::Error> {
    match url.parse::<AMQPUri>() {
        Ok(mut uri) => {
            uri.query.frame_max.get_or_insert(FRAME_MAX);
            Connection::connect_uri(uri, properties).await
        }
        // lapin parses it again and says what is wrong, as it always did.
        Err(_) => Connection::connect(url, properties).await,
    }
}

impl AmqpQueue {
    pub(crate) async fn connect(url: &str, topology: Topology) -> Result<AmqpQueue, Error> {
        topology.validate()?;
        let properties = ConnectionProperties::default()
            .with_connection_name(format!("frameos-queue {}", topology.name).into());
        let connection = open(url, properties).await?;
        let publisher = connection.create_channel().await?;
        declare(&publisher, &topology).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        info!(queue = %topology.name, retry_levels = topology.retry_delays().len(), "amqp queue ready");
        Ok(AmqpQueue {
            shared: Arc::new(Shared {
                connection,
                publisher,
                topology,
                closed: AtomicBool::new(false),
            }),
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    pub(crate) async fn publish(&self, job: &Job) -> Result<(), Error> {
        self.shared
            .publish(&self.shared.topology.name, job, None)
            .await?;
        debug!(queue = %self.shared.topology.name, execution_id = %job.execution_id, attempt = job.attempt, "job published");
        Ok(())
    }

    pub(crate) async fn consume(
        &self,
        consumer_tag: &str,
        prefetch: u16,
        source: Source,
    ) -> Result<AmqpConsumer, Error> {
        self.shared.check_open()?;
        let queue = match source {
            Source::Jobs => self.shared.topology.name.clone(),
            Source::Dead => self.shared.topology.dead_queue(),
        };
        // One channel per consumer: the prefetch bound is per channel and a channel error ends
        // only this consumer.
        let channel = self.shared.connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await?;
        let inner = channel
            .basic_consume(
                short(&queue)?,
                short(consumer_tag)?,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        info!(queue = %queue, consumer_tag = %inner.tag(), prefetch, "consuming");
        Ok(AmqpConsumer {
            inner,
            channel,
            shared: self.shared.clone(),
            source,
        })
    }

    pub(crate) async fn depth(&self) -> Result<u32, Error> {
        self.count(&self.shared.topology.name)
            .await?
            .ok_or_else(|| Error::Missing(self.shared.topology.name.clone()))
    }

    /// Messages waiting in the job queue and its delay queues; `None` when a queue of the
    /// topology (the dead-letter queue included) does not exist.
    pub(crate) async fn backlog(&self) -> Result<Option<u32>, Error> {
        let topology = &self.shared.topology;
        if self.count(&topology.dead_queue()).await?.is_none() {
            return Ok(None);
        }
        let mut waiting = 0u32;
        let retry = topology.retry_delays().into_iter();
        for name in
            std::iter::once(topology.name.clone()).chain(retry.map(|d| topology.retry_queue(d)))
        {
            match self.count(&name).await? {
                Some(n) => waiting = waiting.saturating_add(n),
                None => return Ok(None),
            }
        }
        Ok(Some(waiting))
    }

    /// Messages ready in queue `name`, `None` if it does not exist.
    async fn count(&self, name: &str) -> Result<Option<u32>, Error> {
        self.shared.check_open()?;
        // A passive declare of a missing queue closes its channel: never the publisher's.
        let channel = self.shared.connection.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = channel
            .queue_declare(short(name)?, passive, FieldTable::default())
            .await;
        let queue = match declared {
            Ok(queue) => queue,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if let Err(error) = channel.close(200, "OK".into()).await {
            debug!(%error, "closing the depth channel failed");
        }
        Ok(Some(queue.message_count()))
    }

    /// Declares the topology again: a queue deleted on the broker exists again, empty.
    pub(crate) async fn redeclare(&self) -> Result<(), Error> {
        self.shared.check_open()?;
        let channel = self.shared.connection.create_channel().await?;
        declare(&channel, &self.shared.topology).await?;
        if let Err(error) = channel.close(200, "OK".into()).await {
            debug!(%error, "closing the declare channel failed");
        }
        info!(queue = %self.shared.topology.name, "amqp topology declared again");
        Ok(())
    }

    /// Drops every message ready in the job queue; returns how many.
    pub(crate) async fn purge(&self) -> Result<u32, Error> {
        self.shared.check_open()?;
        let channel = self.shared.connection.create_channel().await?;
        let purged = channel
            .queue_purge(
                short(&self.shared.topology.name)?,
                QueuePurgeOptions::default(),
            )
            .await?;
        if let Err(error) = channel.close(200, "OK".into()).await {
            debug!(%error, "closing the purge channel failed");
        }
        warn!(queue = %self.shared.topology.name, purged, "job queue purged");
        Ok(purged)
    }

    pub(crate) async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        match self.shared.connection.close(200, "OK".into()).await {
            Ok(()) => info!(queue = %self.shared.topology.name, "amqp queue closed"),
            Err(error) => debug!(%error, "closing the amqp connection failed"),
        }
    }
}

impl Shared {
    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    async fn publish(
        &self,
        queue: &str,
        job: &Job,
        death_reason: Option<&str>,
    ) -> Result<(), Error> {
        self.check_open()?;
        let properties = codec::properties(job, death_reason)?;
        // Mandatory: a message for a queue that no longer exists comes back instead of vanishing.
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirmation = self
            .publisher
            .basic_publish(
                "".into(),
                short(queue)?,
                options,
                job.execution_id.as_bytes(),
                properties,
            )
            .await?
            .await?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(Error::Unroutable {
                execution_id: job.execution_id.clone(),
                queue: queue.to_string(),
            }),
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(Error::Nacked {
                execution_id: job.execution_id.clone(),
            }),
        }
    }
}

pub(crate) struct AmqpConsumer {
    inner: lapin::Consumer,
    channel: Channel,
    shared: Arc<Shared>,
    source: Source,
}

impl AmqpConsumer {
    pub(crate) async fn next(&mut self) -> Option<Result<Delivery, Error>> {
        loop {
            let delivery = match self.inner.next().await? {
                Ok(delivery) => delivery,
                // Our own close() ends consumers quietly, as documented.
                Err(_) if self.shared.closed.load(Ordering::SeqCst) => return None,
                Err(error) => return Some(Err(error.into())),
            };
            let lenient = self.source == Source::Dead;
            match codec::decode(&delivery.data, &delivery.properties, lenient) {
                Ok(Decoded { job, death_reason }) => {
                    let handle = AmqpHandle {
                        acker: delivery.acker,
                        job: job.clone(),
                        channel: self.channel.clone(),
                        shared: self.shared.clone(),
                        source: self.source,
                        settled: false,
                    };
                    return Some(Ok(Delivery {
                        job,
                        redelivered: delivery.redelivered,
                        death_reason,
                        handle: Handle::Amqp(handle),
                    }));
                }
                Err(why) => {
                    // Goes to the dead-letter queue through the job queue's dead-letter exchange.
                    warn!(queue = %self.shared.topology.name, %why, "unreadable message dead-lettered");
                    let reject = BasicRejectOptions { requeue: false };
                    if let Err(error) = delivery.acker.reject(reject).await {
                        return Some(Err(error.into()));
                    }
                }
            }
        }
    }
}

impl AmqpConsumer {
    /// basic.cancel, then hands back what the broker had already pushed to us: after the
    /// cancel-ok the stream ends, so everything it still yields was prefetched and never run.
    pub(crate) async fn cancel(mut self) -> Result<usize, Error> {
        self.channel
            .basic_cancel(self.inner.tag(), BasicCancelOptions::default())
            .await?;
        let mut returned = 0;
        while let Some(delivery) = self.inner.next().await {
            let delivery = delivery?;
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            delivery.acker.nack(requeue).await?;
            returned += 1;
        }
        info!(queue = %self.shared.topology.name, returned, "consumer canceled");
        Ok(returned)
    }
}

pub(crate) struct AmqpHandle {
    acker: Acker,
    /// The job as delivered: what a retry or dead letter republishes.
    job: Job,
    /// Keeps the consumer's channel (and so this delivery) alive while the job runs.
    channel: Channel,
    shared: Arc<Shared>,
    source: Source,
    settled: bool,
}

impl fmt::Debug for AmqpHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpHandle")
            .field("source", &self.source)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl AmqpHandle {
    /// The queue this delivery came from.
    pub(crate) fn queue(&self) -> String {
        match self.source {
            Source::Jobs => self.shared.topology.name.clone(),
            Source::Dead => self.shared.topology.dead_queue(),
        }
    }

    pub(crate) async fn ack(mut self) -> Result<(), Error> {
        self.settled = true;
        if self.acker.ack(BasicAckOptions::default()).await? {
            Ok(())
        } else {
            Err(Error::DeliveryLost)
        }
    }

    pub(crate) async fn retry(self, reason: &str) -> Result<(), Error> {
        if self.source == Source::Dead {
            return self.requeue().await;
        }
        let topology = &self.shared.topology;
        match topology.retry_step(self.job.attempt) {
            RetryStep::After(delay) => {
                let next = Job {
                    attempt: self.job.attempt + 1,
                    ..self.job.clone()
                };
                let queue = topology.retry_queue(delay);
                // Published before the ack: a crash in between duplicates the job, never loses it.
                self.shared.publish(&queue, &next, None).await?;
                info!(execution_id = %next.execution_id, attempt = next.attempt, delay_ms = delay.as_millis() as u64, %reason, "job retry scheduled");
                self.ack().await
            }
            RetryStep::Exhausted => {
                let reason = exhausted_reason(self.job.attempt, reason);
                self.dead_letter(&reason).await
            }
        }
    }

    pub(crate) async fn dead_letter(self, reason: &str) -> Result<(), Error> {
        if self.source == Source::Dead {
            return self.requeue().await;
        }
        let dead = self.shared.topology.dead_queue();
        self.shared.publish(&dead, &self.job, Some(reason)).await?;
        warn!(execution_id = %self.job.execution_id, attempt = self.job.attempt, %reason, "job dead-lettered");
        self.ack().await
    }

    /// Back into the queue it came from, as it was (a dead letter has nowhere further to go).
    pub(crate) async fn requeue(mut self) -> Result<(), Error> {
        self.settled = true;
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        if self.acker.nack(requeue).await? {
            Ok(())
        } else {
            Err(Error::DeliveryLost)
        }
    }
}

impl Drop for AmqpHandle {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Without this the job would sit unacked until the whole channel closes.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // the channel closes with the runtime, which requeues it just the same
        };
        let acker = self.acker.clone();
        let channel = self.channel.clone();
        debug!(execution_id = %self.job.execution_id, "delivery dropped unsettled; requeueing");
        runtime.spawn(async move {
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            if let Err(error) = acker.nack(requeue).await {
                debug!(%error, "requeue of a dropped delivery failed; the broker redelivers it on channel close");
            }
            drop(channel);
        });
    }
}

/// Removing a topology: for operators retiring a queue and for tests cleaning up after themselves.
pub(crate) mod admin {
    use lapin::ConnectionProperties;
    use lapin::options::QueueDeleteOptions;

    use crate::Topology;

    /// Deletes every queue of a topology, messages included.
    pub(crate) async fn delete_topology(
        url: &str,
        topology: &Topology,
    ) -> Result<(), lapin::Error> {
        let connection = super::open(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let mut names = vec![topology.name.clone(), topology.dead_queue()];
        names.extend(
            topology
                .retry_delays()
                .into_iter()
                .map(|d| topology.retry_queue(d)),
        );
        for name in names {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        connection.close(200, "OK".into()).await
    }
}
