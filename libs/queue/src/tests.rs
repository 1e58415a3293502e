//! Behavioural tests, each run against real RabbitMQ (`FRAMEOS_TEST_AMQP_URL`, default
//! guest@127.0.0.1:5672) and the in-process queue. Every AMQP test uses its own queue names and
//! deletes them at the end, passed or failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::time::timeout;

use crate::amqp::admin::delete_topology;
use crate::{Consumer, Delivery, Error, Job, Queue, Topology};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn amqp_url() -> String {
    std::env::var("FRAMEOS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

fn test_topology() -> Topology {
    Topology {
        name: format!("frameos.test.{}", uuid::Uuid::new_v4()),
        max_priority: 9,
        max_attempts: 3,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
    }
}

#[derive(Clone, Copy)]
enum Backend {
    Amqp,
    InProcess,
}

async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(Queue) -> Fut,
    Fut: Future<Output = ()>,
{
    match backend {
        Backend::InProcess => scenario(Queue::in_process(test_topology())).await,
        Backend::Amqp => {
            with_amqp_topology(|url, topology| async move {
                let queue = Queue::amqp(&url, topology).await.unwrap();
                scenario(queue.clone()).await;
                queue.close().await;
            })
            .await
        }
    }
}

/// Runs an AMQP scenario on a fresh topology and deletes its queues afterwards, passed or failed.
async fn with_amqp_topology<F, Fut>(scenario: F)
where
    F: FnOnce(String, Topology) -> Fut,
    Fut: Future<Output = ()>,
{
    let url = amqp_url();
    let topology = test_topology();
    let outcome = AssertUnwindSafe(scenario(url.clone(), topology.clone()))
        .catch_unwind()
        .await;
    delete_topology(&url, &topology).await.unwrap();
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn amqp() {
                super::run(super::Backend::Amqp, super::$scenario).await
            }

            #[tokio::test]
            async fn in_process() {
                super::run(super::Backend::InProcess, super::$scenario).await
            }
        }
    )*};
}

on_both_backends!(
    publish_consume_ack,
    higher_priority_first,
    prefetch_bounds_unacked,
    retry_backs_off_then_dead_letters,
    dead_letter_goes_straight_there,
    dropped_delivery_is_redelivered,
    dropped_consumer_redelivers,
    close_ends_consumers_and_publishes,
    backlog_counts_waiting_and_backing_off_jobs,
);

fn traced_job(id: &str, priority: u8) -> Job {
    let mut job = Job::new(id, priority);
    job.headers.insert("traceparent".into(), TRACEPARENT.into());
    job.headers.insert("tracestate".into(), "frameos=1".into());
    job
}

async fn next(consumer: &mut Consumer) -> Delivery {
    timeout(WAIT, consumer.next())
        .await
        .expect("no delivery in time")
        .expect("consumer ended")
        .expect("consumer failed")
}

async fn assert_quiet(consumer: &mut Consumer) {
    if let Ok(got) = timeout(QUIET, consumer.next()).await {
        panic!("expected nothing, got {:?}", got.map(|d| d.map(|d| d.job)));
    }
}

async fn publish_consume_ack(queue: Queue) {
    let job = traced_job("exec-1", 4);
    queue.publish(&job).await.unwrap();
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.job, job);
    assert!(!delivery.redelivered);
    assert_eq!(delivery.death_reason, None);
    delivery.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
    assert_eq!(queue.depth().await.unwrap(), 0);
}

async fn higher_priority_first(queue: Queue) {
    for i in 0..3 {
        queue
            .publish(&Job::new(format!("low-{i}"), 1))
            .await
            .unwrap();
    }
    queue.publish(&Job::new("high", 9)).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 4);
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        let delivery = next(&mut consumer).await;
        order.push(delivery.job.execution_id.clone());
        delivery.ack().await.unwrap();
    }
    assert_eq!(order, ["high", "low-0", "low-1", "low-2"]);
}

async fn prefetch_bounds_unacked(queue: Queue) {
    for i in 0..5 {
        queue.publish(&Job::new(format!("e{i}"), 0)).await.unwrap();
    }
    let mut consumer = queue.consume("node-a", 2).await.unwrap();
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    assert_eq!(
        [&first.job.execution_id, &second.job.execution_id],
        ["e0", "e1"]
    );
    assert_quiet(&mut consumer).await;
    first.ack().await.unwrap();
    let third = next(&mut consumer).await;
    assert_eq!(third.job.execution_id, "e2");
    assert_quiet(&mut consumer).await;
    assert_eq!(queue.depth().await.unwrap(), 2);
}

async fn retry_backs_off_then_dead_letters(queue: Queue) {
    let job = traced_job("exec-retry", 5);
    queue.publish(&job).await.unwrap();
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let mut dead = queue.consume_dead_letters("control-plane").await.unwrap();

    let mut delivery = next(&mut consumer).await;
    for attempt in 1..3 {
        assert_eq!(delivery.job.attempt, attempt);
        let delay = queue.topology().backoff(attempt);
        let retried_at = Instant::now();
        delivery.retry("node lost").await.unwrap();
        delivery = next(&mut consumer).await;
        assert!(
            retried_at.elapsed() >= delay,
            "attempt {} came after {:?}, before the {delay:?} back-off",
            attempt + 1,
            retried_at.elapsed()
        );
        assert_eq!(
            delivery.job,
            Job {
                attempt: attempt + 1,
                ..job.clone()
            }
        );
        assert!(!delivery.redelivered);
    }
    // The third attempt is the last one: retrying it dead-letters it.
    delivery.retry("node lost for good").await.unwrap();
    let died = next(&mut dead).await;
    assert_eq!(died.job, Job { attempt: 3, ..job });
    let reason = died.death_reason.clone().unwrap();
    assert!(reason.contains("node lost for good"), "{reason}");
    assert!(reason.contains("3 attempts"), "{reason}");
    died.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
    assert_quiet(&mut dead).await;
}

async fn dead_letter_goes_straight_there(queue: Queue) {
    let job = traced_job("exec-dead", 2);
    queue.publish(&job).await.unwrap();
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let mut dead = queue.consume_dead_letters("control-plane").await.unwrap();
    next(&mut consumer)
        .await
        .dead_letter("package digest mismatch")
        .await
        .unwrap();
    let died = next(&mut dead).await;
    assert_eq!(died.job, job);
    assert_eq!(
        died.death_reason.as_deref(),
        Some("package digest mismatch")
    );
    // A dead letter dropped unsettled stays a dead letter.
    drop(died);
    let again = next(&mut dead).await;
    assert!(again.redelivered);
    assert_eq!(again.job, job);
    again.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
    assert_quiet(&mut dead).await;
}

async fn dropped_delivery_is_redelivered(queue: Queue) {
    let job = traced_job("exec-crash", 0);
    queue.publish(&job).await.unwrap();
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    drop(first);
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(again.job, job);
    again.ack().await.unwrap();
    assert_quiet(&mut consumer).await;
}

async fn dropped_consumer_redelivers(queue: Queue) {
    let job = traced_job("exec-node-lost", 0);
    queue.publish(&job).await.unwrap();
    let mut lost = queue.consume("node-a", 1).await.unwrap();
    let delivery = next(&mut lost).await;
    drop(lost);
    drop(delivery);
    let mut survivor = queue.consume("node-b", 1).await.unwrap();
    let again = next(&mut survivor).await;
    assert!(again.redelivered);
    assert_eq!(again.job, job);
    again.ack().await.unwrap();
}

async fn close_ends_consumers_and_publishes(queue: Queue) {
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    queue.close().await;
    assert!(timeout(WAIT, consumer.next()).await.unwrap().is_none());
    let error = queue.publish(&Job::new("late", 0)).await.unwrap_err();
    assert!(matches!(error, Error::Closed), "{error}");
    assert!(!error.is_transient());
}

async fn backlog_counts_waiting_and_backing_off_jobs(queue: Queue) {
    assert_eq!(queue.backlog().await.unwrap(), Some(0));
    queue.publish(&Job::new("a", 1)).await.unwrap();
    queue.publish(&Job::new("b", 1)).await.unwrap();
    assert_eq!(queue.backlog().await.unwrap(), Some(2));
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let first = next(&mut consumer).await;
    // Delivered and unsettled: no longer waiting.
    assert_eq!(queue.backlog().await.unwrap(), Some(1));
    // A purge drops what waits, not what is delivered.
    assert_eq!(queue.purge().await.unwrap(), 1);
    assert_eq!(queue.backlog().await.unwrap(), Some(0));
    // A job waiting out its back-off still counts: it is on its way back.
    let id = first.job.execution_id.clone();
    first.retry("boom").await.unwrap();
    assert_eq!(queue.backlog().await.unwrap(), Some(1));
    let again = next(&mut consumer).await;
    assert_eq!(again.job.execution_id, id);
    again.ack().await.unwrap();
    assert_eq!(queue.backlog().await.unwrap(), Some(0));
}

#[tokio::test]
async fn amqp_a_deleted_topology_is_missing_until_declared_again() {
    with_amqp_topology(|url, topology| async move {
        let queue = Queue::amqp(&url, topology.clone()).await.unwrap();
        let mut consumer = queue.consume("node-a", 1).await.unwrap();
        delete_topology(&url, &topology).await.unwrap();
        // The broker cancels the consumer of a deleted queue: it ends, so its owner reconnects.
        assert!(timeout(WAIT, consumer.next()).await.unwrap().is_none());
        // Asked again and again (the reaper does), the answer stays the same.
        for _ in 0..5 {
            assert_eq!(queue.backlog().await.unwrap(), None);
        }
        let error = queue.depth().await.unwrap_err();
        assert!(matches!(error, Error::Missing(_)), "{error}");
        // Unroutable, but no longer for good: a new connection declares the queue again.
        let error = queue.publish(&Job::new("lost", 1)).await.unwrap_err();
        assert!(matches!(error, Error::Unroutable { .. }), "{error}");
        assert!(error.is_transient());
        queue.redeclare().await.unwrap();
        assert_eq!(queue.backlog().await.unwrap(), Some(0));
        queue.publish(&Job::new("found", 1)).await.unwrap();
        assert_eq!(queue.backlog().await.unwrap(), Some(1));
        queue.close().await;
    })
    .await
}

#[tokio::test]
async fn amqp_topology_declares_idempotently() {
    with_amqp_topology(|url, topology| async move {
        let first = Queue::amqp(&url, topology.clone()).await.unwrap();
        let second = Queue::amqp(&url, topology.clone()).await.unwrap();
        let job = traced_job("exec-twice", 3);
        second.publish(&job).await.unwrap();
        let mut consumer = first.consume("node-a", 1).await.unwrap();
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.job, job);
        delivery.ack().await.unwrap();
        first.close().await;
        second.close().await;
    })
    .await
}

#[tokio::test]
async fn amqp_unreachable_broker_is_transient() {
    let error = Queue::amqp("amqp://guest:guest@127.0.0.1:1/%2f", test_topology())
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
}

#[tokio::test]
async fn amqp_refuses_a_bad_topology_before_connecting() {
    let topology = Topology {
        max_attempts: 0,
        ..test_topology()
    };
    let error = Queue::amqp(&amqp_url(), topology).await.unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn invalid_jobs_are_refused() {
    let queue = Queue::in_process(test_topology());
    let error = queue.publish(&Job::new("", 0)).await.unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error}");
}

#[tokio::test]
async fn in_process_priorities_above_the_maximum_count_as_the_maximum() {
    let queue = Queue::in_process(Topology {
        max_priority: 3,
        ..test_topology()
    });
    queue.publish(&Job::new("at-max", 3)).await.unwrap();
    queue.publish(&Job::new("above-max", 200)).await.unwrap();
    let mut consumer = queue.consume("node-a", 2).await.unwrap();
    let at_max = next(&mut consumer).await;
    assert_eq!(at_max.job.execution_id, "at-max");
    let above = next(&mut consumer).await;
    assert_eq!(above.job.execution_id, "above-max");
    assert_eq!(above.job.priority, 200);
}

#[tokio::test]
async fn amqp_connections_propose_small_frames_unless_the_url_names_a_size() {
    // Not the broker's 128 KiB: lapin's buffers are 32 frames each, resident per connection.
    let url = amqp_url();
    let properties = lapin::ConnectionProperties::default;
    let connection = crate::amqp::open(&url, properties()).await.unwrap();
    assert_eq!(
        connection.configuration().frame_max(),
        crate::amqp::FRAME_MAX
    );
    connection.close(200, "OK".into()).await.unwrap();

    let separator = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{separator}frame_max=8192");
    let connection = crate::amqp::open(&named, properties()).await.unwrap();
    assert_eq!(connection.configuration().frame_max(), 8192);
    connection.close(200, "OK".into()).await.unwrap();
}

/// A raw channel beside the queue under test, for what the public API never does.
async fn raw_channel(url: &str) -> (lapin::Connection, lapin::Channel) {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

#[tokio::test]
async fn amqp_connection_lost_redelivers() {
    with_amqp_topology(|url, topology| async move {
        let crashed = Queue::amqp(&url, topology.clone()).await.unwrap();
        let job = traced_job("exec-conn-lost", 0);
        crashed.publish(&job).await.unwrap();
        let mut consumer = crashed.consume("node-a", 1).await.unwrap();
        let held = next(&mut consumer).await;
        crashed.close().await;
        let restarted = Queue::amqp(&url, topology.clone()).await.unwrap();
        let mut consumer = restarted.consume("node-b", 1).await.unwrap();
        let again = next(&mut consumer).await;
        assert!(again.redelivered);
        assert_eq!(again.job, job);
        again.ack().await.unwrap();
        // Settling on the dead connection is refused, not pretended.
        assert!(held.ack().await.is_err());
        restarted.close().await;
    })
    .await
}

#[tokio::test]
async fn amqp_unreadable_message_is_dead_lettered_not_dropped() {
    use lapin::options::BasicPublishOptions;
    with_amqp_topology(|url, topology| async move {
        let queue = Queue::amqp(&url, topology.clone()).await.unwrap();
        let (connection, channel) = raw_channel(&url).await;
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirmation = channel
            .basic_publish(
                "".into(),
                topology.name.as_str().into(),
                BasicPublishOptions::default(),
                &[0xff, 0xfe],
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        // Confirmed before the readable one is published, so it is ahead of it in the queue.
        assert!(confirmation.is_ack());
        queue.publish(&Job::new("readable", 0)).await.unwrap();
        let mut consumer = queue.consume("node-a", 1).await.unwrap();
        let mut dead = queue.consume_dead_letters("control-plane").await.unwrap();
        let readable = next(&mut consumer).await;
        assert_eq!(readable.job.execution_id, "readable");
        readable.ack().await.unwrap();
        let died = next(&mut dead).await;
        assert_eq!(died.job.execution_id, "\u{fffd}\u{fffd}");
        assert_eq!(
            died.death_reason.as_deref(),
            Some("dead-lettered by the broker: rejected")
        );
        died.ack().await.unwrap();
        connection.close(200, "OK".into()).await.unwrap();
        queue.close().await;
    })
    .await
}

#[tokio::test]
async fn amqp_failed_retry_publish_keeps_the_job() {
    use lapin::options::QueueDeleteOptions;
    with_amqp_topology(|url, topology| async move {
        let queue = Queue::amqp(&url, topology.clone()).await.unwrap();
        let job = traced_job("exec-unroutable", 0);
        queue.publish(&job).await.unwrap();
        let mut consumer = queue.consume("node-a", 1).await.unwrap();
        let delivery = next(&mut consumer).await;
        let (connection, channel) = raw_channel(&url).await;
        let first_delay = topology.retry_queue(topology.backoff(1));
        channel
            .queue_delete(first_delay.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        let error = delivery.retry("node lost").await.unwrap_err();
        assert!(matches!(error, Error::Unroutable { .. }), "{error}");
        let again = next(&mut consumer).await;
        assert!(again.redelivered);
        assert_eq!(again.job, job);
        again.ack().await.unwrap();
        connection.close(200, "OK".into()).await.unwrap();
        queue.close().await;
    })
    .await
}
