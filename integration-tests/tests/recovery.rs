//! No execution left behind (ADR 0008): the reaper queues again, from the database, what a
//! crash, a dead node or the broker lost — on the embedded default (a killed `frameos dev`)
//! and on RabbitMQ (a purged queue, a deleted queue, a node killed with SIGKILL).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use frameos_integration_tests::dev_process::{DevData, DevProcess};
use frameos_integration_tests::flows::containers_of;
use frameos_integration_tests::{Backend, Mesh, amqp_url, packages};
use serde_json::{Value, json};

/// Reports progress, then runs a few seconds: long enough to be killed mid-run.
const SLOW_AGENT: &str = "module.exports = async (inputs, ctx) => { ctx.progress(0.5, 'halfway'); await new Promise(r => setTimeout(r, 3000)); return { done: true }; };";

/// A reaper that looks every second and gives up on silent nodes after three.
fn fast_reaper(config: &mut frameos_control_plane::Config) {
    config.recovery.reaper_interval_secs = 1;
    config.recovery.node_dead_after_secs = 3;
}

fn ended(execution: &Value) -> bool {
    matches!(
        execution["status"].as_str(),
        Some("succeeded" | "failed" | "timed_out" | "canceled")
    )
}

/// The `system` lines of an execution's log.
fn system_lines(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["stream"] == "system")
        .filter_map(|l| l["line"].as_str().map(str::to_string))
        .collect()
}

/// Waits (bounded; the broker offers no event for it) until `probe` sees at least `n` jobs
/// waiting; returns how many. A look that fails (a queue being deleted or declared at that
/// moment) is only a look: the next one decides.
async fn wait_for_backlog(probe: &frameos_queue::Queue, n: u32, what: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe.backlog().await {
            Ok(Some(waiting)) if waiting >= n => return waiting,
            Ok(_) => {}
            Err(e) => eprintln!("backlog look failed: {e}"),
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Follows a `word-count` execution to its end: succeeded, counting `words`, as attempt 1.
async fn succeeds_on_its_first_attempt(mesh: &Mesh, user: &str, id: &str, words: u64) {
    let (_, done) = mesh.follow(user, id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], words);
    assert_eq!(done["attempts"], 1, "{done}");
}

/// The platform said, in the execution's log, that the queue lost its job.
async fn says_the_queue_lost_its_job(mesh: &Mesh, user: &str, id: &str) {
    let lines = system_lines(&mesh.log_lines(user, id).await.unwrap());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the queue lost this execution's job")),
        "{lines:?}"
    );
}

async fn id_of(mesh: &Mesh, key: &str, slug: &str, inputs: Value) -> String {
    mesh.execute(key, slug, inputs).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_frameos_dev_finishes_what_it_had_accepted_after_a_restart() {
    let binary = Path::new(env!("CARGO_BIN_EXE_frameos-test-dev"));
    let mut data = DevData::new().unwrap();
    data.env = vec![
        ("FRAMEOS_REAPER_INTERVAL_SECS".into(), "1".into()),
        ("FRAMEOS_NODE_DEAD_AFTER_SECS".into(), "3".into()),
        // One at a time: the second execution waits in the in-process queue.
        ("FRAMEOS_NODE_CONCURRENCY".into(), "1".into()),
    ];
    let dev = DevProcess::start(binary, &data).await.unwrap();
    let developer = dev.account("dev", "developer").await.unwrap();
    let user = dev.account("uma", "user").await.unwrap();
    let slow = packages::node_agent_with("slow-paid", SLOW_AGENT, 60_000, 128);
    dev.publish_approved(&developer, "slow-paid", slow, Some(5000))
        .await
        .unwrap();
    dev.publish_approved(
        &developer,
        "word-count",
        packages::example("word-count"),
        None,
    )
    .await
    .unwrap();
    let paid = dev.execute(&user, "slow-paid", json!({})).await.unwrap();
    let queued = dev
        .execute(&user, "word-count", json!({"text": "still here"}))
        .await
        .unwrap();
    let running = dev
        .wait_for(&user, &paid, Duration::from_secs(60), |e| {
            !e["progress"].is_null()
        })
        .await
        .unwrap();
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["charge"]["status"], "authorized", "{running}");
    assert_eq!(
        dev.execution(&user, &queued).await.unwrap()["status"],
        "queued"
    );

    // kill -9 mid-run: the in-process queue and the node die with the process; the agent's
    // container does not.
    dev.kill().await.unwrap();
    assert!(
        !containers_of(&paid).is_empty(),
        "the container should outlive its node"
    );

    let dev = DevProcess::start(binary, &data).await.unwrap();
    let within = Duration::from_secs(90);
    // The charge is captured just after the outcome is stored: wait for both.
    let paid_done = dev
        .wait_for(&user, &paid, within, |e| {
            ended(e) && e["charge"]["status"] != "authorized"
        })
        .await
        .unwrap();
    let queued_done = dev.wait_for(&user, &queued, within, ended).await.unwrap();
    assert_eq!(paid_done["status"], "succeeded", "{paid_done}");
    assert_eq!(paid_done["output"], json!({"done": true}));
    // The killed attempt is fenced off; one more attempt ran it to the end.
    assert_eq!(paid_done["attempts"], 2, "{paid_done}");
    assert_eq!(paid_done["charge"]["status"], "captured", "{paid_done}");
    assert_eq!(queued_done["status"], "succeeded", "{queued_done}");
    assert_eq!(queued_done["output"]["words"], 2);
    assert_eq!(queued_done["attempts"], 1, "{queued_done}");

    let paid_lines = system_lines(&dev.logs(&user, &paid).await.unwrap());
    assert!(
        paid_lines
            .iter()
            .any(|l| l.contains("attempt 1 was lost") && l.contains("restarted")),
        "{paid_lines:?}"
    );
    let queued_lines = system_lines(&dev.logs(&user, &queued).await.unwrap());
    assert!(
        queued_lines
            .iter()
            .any(|l| l.contains("the queue lost this execution's job")),
        "{queued_lines:?}"
    );

    // Charged exactly once, and the books balance.
    let verification = frameos_control_plane::verify_ledger(&data.database_url())
        .await
        .unwrap();
    assert!(verification.is_clean(), "{verification:?}");
    let db = sea_orm::Database::connect(data.database_url())
        .await
        .unwrap();
    let postings = sea_orm::ConnectionTrait::query_all_raw(
        &db,
        sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "SELECT id FROM ledger_transactions WHERE execution_id = ?",
            [paid.clone().into()],
        ),
    )
    .await
    .unwrap();
    assert_eq!(postings.len(), 1);
    db.close().await.unwrap();
    assert!(
        containers_of(&paid).is_empty(),
        "a container was left behind"
    );
    assert!(
        containers_of(&queued).is_empty(),
        "a container was left behind"
    );
    dev.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_purged_from_the_queue_are_dispatched_again() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, fast_reaper)
        .await
        .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    let ids = [
        id_of(&mesh, &user, "word-count", json!({"text": "one"})).await,
        id_of(&mesh, &user, "word-count", json!({"text": "one two"})).await,
    ];
    assert_eq!(
        wait_for_backlog(&probe, 2, "the jobs were not published").await,
        2
    );

    // An operator (or a broker failure) empties the queue: the jobs are gone.
    assert_eq!(probe.purge().await.unwrap(), 2);
    // The reaper notices the queue holds fewer jobs than there are queued executions, and
    // dispatches them again from the database.
    wait_for_backlog(&probe, 2, "the purged jobs were not dispatched again").await;

    mesh.start_node(1).await.unwrap();
    for (id, words) in ids.iter().zip([1, 2]) {
        succeeds_on_its_first_attempt(&mesh, &user, id, words).await;
        says_the_queue_lost_its_job(&mesh, &user, id).await;
    }
    probe.close().await;
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_job_queue_is_declared_again_and_nothing_is_lost() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, fast_reaper)
        .await
        .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    let before = id_of(&mesh, &user, "word-count", json!({"text": "before"})).await;
    assert_eq!(
        wait_for_backlog(&probe, 1, "the job was not published").await,
        1
    );

    frameos_queue::delete_amqp_topology(&amqp_url(), &mesh.queue_topology())
        .await
        .unwrap();
    // Accepted after the deletion: its publish finds no queue until the topology is declared
    // again (it used to fail as unroutable forever).
    let after = id_of(&mesh, &user, "word-count", json!({"text": "after it"})).await;
    // Both wait in a queue again: one published late, one dispatched again by the reaper
    // (which may dispatch the late one twice: a duplicate is harmless, a loss is not).
    wait_for_backlog(&probe, 2, "the jobs did not reach a queue again").await;

    mesh.start_node(1).await.unwrap();
    for (id, words) in [(&before, 1), (&after, 2)] {
        succeeds_on_its_first_attempt(&mesh, &user, id, words).await;
    }
    says_the_queue_lost_its_job(&mesh, &user, &before).await;
    probe.close().await;
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_run_is_reaped_without_any_redelivery() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, fast_reaper)
        .await
        .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", SLOW_AGENT, 60_000, 128),
        None,
    )
    .await
    .unwrap();
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();

    let cache = tempfile::tempdir().unwrap();
    let doomed = format!("doomed-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_frameos-test-node"))
        .envs(mesh.node_env(cache.path()))
        .env("FRAMEOS_NODE_ID", &doomed)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let id = id_of(&mesh, &user, "slow", json!({})).await;
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // The broker hands the unacked job back; it is purged, so no redelivery can save the day.
    assert_eq!(
        wait_for_backlog(&probe, 1, "the broker did not requeue the unacked job").await,
        1
    );
    assert_eq!(probe.purge().await.unwrap(), 1);

    // Only the reaper can notice: the node's heartbeats stopped renewing its claim.
    mesh.start_node(1).await.unwrap();
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["output"], json!({"done": true}));
    let lines = system_lines(&mesh.log_lines(&user, &id).await.unwrap());
    assert!(
        lines.iter().any(|l| l.contains("attempt 1 was lost")
            && l.contains(&doomed)
            && l.contains("has not reported it running")),
        "{lines:?}"
    );
    // Attempt 2 replaced the container the killed node left running.
    assert!(containers_of(&id).is_empty());
    probe.close().await;
    mesh.shutdown().await.unwrap();
}
