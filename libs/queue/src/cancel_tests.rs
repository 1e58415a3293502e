//! Stopping a consumer (a node shutting down) against real RabbitMQ and the in-process queue:
//! what the broker had pushed but the node never started goes back at once, not when the
//! node's channel finally closes; a job given back unstarted counts no retry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tokio::time::timeout;

use crate::amqp::admin::delete_topology;
use crate::{Consumer, Delivery, Job, Queue, Topology};

const WAIT: Duration = Duration::from_secs(10);

fn topology() -> Topology {
    Topology {
        name: format!("frameos.test.{}", uuid::Uuid::new_v4()),
        max_priority: 9,
        max_attempts: 3,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
    }
}

fn amqp_url() -> String {
    std::env::var("FRAMEOS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

async fn next(consumer: &mut Consumer) -> Delivery {
    timeout(WAIT, consumer.next())
        .await
        .expect("no delivery in time")
        .expect("consumer ended")
        .expect("consumer failed")
}

/// Polls (the broker has no event for it) until the job queue holds exactly `n` ready messages.
async fn wait_for_depth(queue: &Queue, n: u32, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let depth = queue.depth().await.unwrap();
        if depth == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: depth {depth}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn amqp_cancel_returns_prefetched_jobs_at_once_while_a_running_one_is_held() {
    let url = amqp_url();
    let topology = topology();
    let queue = Queue::amqp(&url, topology.clone()).await.unwrap();
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        for i in 0..3 {
            queue
                .publish(&Job::new(format!("exec-{i}"), 1))
                .await
                .unwrap();
        }
        let mut stopping = queue.consume("node-stopping", 3).await.unwrap();
        // One job runs; the broker has pushed the other two to this consumer as well.
        let running = next(&mut stopping).await;
        wait_for_depth(&queue, 0, "the broker did not prefetch all three").await;

        assert_eq!(stopping.cancel().await.unwrap(), 2);
        // Back in the queue now, although the running job still holds the channel open.
        wait_for_depth(&queue, 2, "prefetched jobs were not returned").await;
        let mut other = queue.consume("node-other", 3).await.unwrap();
        for _ in 0..2 {
            let again = next(&mut other).await;
            assert!(again.redelivered);
            assert_ne!(again.job.execution_id, running.job.execution_id);
            assert_eq!(again.job.attempt, 1, "a returned job counts no retry");
            again.ack().await.unwrap();
        }
        // The running job is unaffected: it still settles on its own channel.
        running.ack().await.unwrap();
        wait_for_depth(&queue, 0, "something was left behind").await;
    }))
    .await;
    queue.close().await;
    delete_topology(&url, &topology).await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn requeue_gives_a_job_back_without_a_retry(queue: Queue) {
    queue.publish(&Job::new("exec-unstarted", 1)).await.unwrap();
    let mut consumer = queue.consume("node-a", 1).await.unwrap();
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    first.requeue().await.unwrap();
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(again.job.execution_id, "exec-unstarted");
    assert_eq!(again.job.attempt, 1);
    again.ack().await.unwrap();
    assert_eq!(consumer.cancel().await.unwrap(), 0);
}

#[tokio::test]
async fn amqp_requeue_gives_a_job_back_without_a_retry() {
    let url = amqp_url();
    let topology = topology();
    let queue = Queue::amqp(&url, topology.clone()).await.unwrap();
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        requeue_gives_a_job_back_without_a_retry(queue.clone()),
    ))
    .await;
    queue.close().await;
    delete_topology(&url, &topology).await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn in_process_requeue_gives_a_job_back_without_a_retry() {
    requeue_gives_a_job_back_without_a_retry(Queue::in_process(topology())).await;
}
