//! Faults of the environment, on private instances the tests stop and start again without
//! disturbing the shared services: RabbitMQ restarted (cleanly and by a crash) with jobs
//! waiting and one running, the Docker engine restarted mid-run, PostgreSQL restarted under
//! load, and a load run through two node processes with one SIGKILLed halfway. Each test
//! checks where the damage would show: the executions' statuses and attempts, the charges, the
//! rail's holds and the ledger, the containers and the broker's queues.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use frameos_integration_tests::audit::{self, ExecutionRow};
use frameos_integration_tests::instances::{PrivateDocker, PrivatePostgres, PrivateRabbitMq};
use frameos_integration_tests::load::{Answer, NodeProcess, Requests, submit_all};
use frameos_integration_tests::{Backend, Mesh, packages};
use serde_json::json;

/// Reports progress, sleeps `inputs.ms`, returns how long it slept.
const SLOW: &str = "module.exports = async (inputs, ctx) => { const ms = Number(inputs.ms || 1000); ctx.progress(0.5, 'sleeping'); await new Promise(r => setTimeout(r, ms)); return { slept: ms }; };";
const PRICE: i64 = 5_000;
/// Reconciliation runs this often in these tests, so a leftover hold is found quickly.
const RECONCILE_SECS: u64 = 2;

async fn publish_slow(mesh: &Mesh, dev: &str, slug: &str, price: Option<i64>) {
    mesh.publish_approved(
        dev,
        slug,
        packages::node_agent_with(slug, SLOW, 60_000, 128),
        price,
    )
    .await
    .unwrap();
}

async fn start(mesh: &Mesh, key: &str, slug: &str, ms: u64) -> String {
    let accepted = mesh.execute(key, slug, json!({"ms": ms})).await.unwrap();
    accepted["id"].as_str().unwrap().to_string()
}

fn assert_all_succeeded_once(rows: &[ExecutionRow]) {
    for e in rows {
        assert_eq!(e.status, "succeeded", "{e:?}");
        assert_eq!(e.attempts, 1, "run more than once: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_stopped_and_started_again_loses_and_repeats_nothing() {
    rabbitmq_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_killed_and_started_again_loses_and_repeats_nothing() {
    rabbitmq_restart(true).await;
}

/// One execution running and three waiting in the queue when the broker goes away; one more
/// accepted while it is away. Every one ends exactly once, succeeded, and is paid for once.
async fn rabbitmq_restart(crash: bool) {
    let mut rabbit = PrivateRabbitMq::start().await.unwrap();
    let url = rabbit.url();
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.amqp_url = Some(url.clone());
        config.billing.reconcile_interval_secs = RECONCILE_SECS;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    publish_slow(&mesh, &dev, "slow", Some(PRICE)).await;
    let node = mesh.start_node(1).await.unwrap();

    let running = start(&mesh, &user, "slow", 4000).await;
    mesh.wait_for_event(&user, &running, "progress")
        .await
        .unwrap();
    let mut ids = vec![running.clone()];
    for _ in 0..3 {
        ids.push(start(&mesh, &user, "slow", 200).await);
    }
    // The three wait in the broker (the node runs one at a time).
    let topology = mesh.queue_topology();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rabbit_depth(&url, &topology.name).await != Some(3) {
        assert!(Instant::now() < deadline, "the jobs were not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    if crash {
        rabbit.kill();
    } else {
        rabbit.stop().await.unwrap();
    }
    // Without the broker the running execution still ends (outcomes travel over gRPC) and a
    // new request is still accepted (the outbox holds its job).
    ids.push(start(&mesh, &user, "slow", 200).await);
    let ended = audit::wait_until_ended(
        mesh.database_url(),
        std::slice::from_ref(&running),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_all_succeeded_once(&ended);

    rabbit.start_again().await.unwrap();
    let rows = audit::wait_until_ended(mesh.database_url(), &ids, Duration::from_secs(120))
        .await
        .unwrap();
    assert_all_succeeded_once(&rows);
    let snapshot = audit::wait_for_settled_money(mesh.database_url(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(snapshot.ledger.transactions, 5, "{:?}", snapshot.ledger);
    // The redelivered job of the execution that ended during the outage was acked, not rerun.
    audit::wait_for_empty_queues(&url, &topology, Duration::from_secs(20))
        .await
        .unwrap();
    audit::wait_for_no_containers_of_node(&node, None, Duration::from_secs(10))
        .await
        .unwrap();
    mesh.shutdown().await.unwrap();
}

async fn rabbit_depth(url: &str, queue: &str) -> Option<u32> {
    frameos_integration_tests::instances::queue_depth(url, queue)
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_restarted_mid_run_is_a_platform_failure_retried_never_a_charge() {
    let t0 = Instant::now();
    let images = frameos_sandbox::Images::default();
    let mut docker = PrivateDocker::start(&[&images.node, &images.python])
        .await
        .unwrap();
    let host = docker.host();
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.job_max_attempts = 5;
        config.job_retry_base_ms = 1000;
        config.billing.reconcile_interval_secs = RECONCILE_SECS;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    publish_slow(&mesh, &dev, "slow", Some(PRICE)).await;
    let node = mesh
        .start_node_with(1, |config| config.docker_host = Some(host.clone()))
        .await
        .unwrap();

    eprintln!("[faults] engine and mesh ready at {:?}", t0.elapsed());
    let id = start(&mesh, &user, "slow", 5000).await;
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    eprintln!("[faults] restarting the engine at {:?}", t0.elapsed());
    docker.stop().await.unwrap();
    docker.start_again().await.unwrap();
    eprintln!("[faults] engine back at {:?}", t0.elapsed());

    let rows = audit::wait_until_ended(
        mesh.database_url(),
        std::slice::from_ref(&id),
        Duration::from_secs(180),
    )
    .await
    .unwrap();
    let run = &rows[0];
    eprintln!("[faults] ended at {:?}: {run:?}", t0.elapsed());
    // The engine, not the agent, failed attempt 1: it is retried, or ends as the platform's
    // failure; never as the agent's (say "exited with code 137").
    match run.status.as_str() {
        "succeeded" => assert!(run.attempts >= 2, "attempt 1 cannot have survived: {run:?}"),
        "failed" => assert!(
            run.error.as_deref().unwrap_or("").contains("platform"),
            "blamed on the agent: {run:?}"
        ),
        _ => panic!("unexpected outcome {run:?}"),
    }
    let snapshot = audit::wait_for_settled_money(mesh.database_url(), Duration::from_secs(30))
        .await
        .unwrap();
    let charge = snapshot.charges.get(&id).map(String::as_str);
    let expected = if run.status == "succeeded" {
        "captured"
    } else {
        "voided"
    };
    assert_eq!(charge, Some(expected), "{run:?}");
    // Attempt 1's container, stopped by the engine, is gone too, and so are the pool's
    // containers the restart stopped: only live waiting ones remain.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = docker.containers_but_waiting_pool().unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "containers left: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    audit::wait_for_no_containers_of_node(&node, Some(&host), Duration::from_secs(10))
        .await
        .unwrap();
    let amqp = mesh.broker_url().unwrap().to_string();
    audit::wait_for_empty_queues(&amqp, &mesh.queue_topology(), Duration::from_secs(20))
        .await
        .unwrap();
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_answers_503_and_ends_every_accepted_execution_once() {
    let mut postgres = PrivatePostgres::start().await.unwrap();
    let mut mesh = Mesh::with_queue(Backend::PostgresS3On(postgres.server_url()), |config| {
        config.job_retry_base_ms = 500;
        config.billing.reconcile_interval_secs = RECONCILE_SECS;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    publish_slow(&mesh, &dev, "slow", Some(PRICE)).await;
    let node = mesh.start_node(2).await.unwrap();

    // Two executions run across the outage.
    let mut accepted = Vec::new();
    for _ in 0..2 {
        let id = start(&mesh, &user, "slow", 6000).await;
        mesh.wait_for_event(&user, &id, "progress").await.unwrap();
        accepted.push(id);
    }
    // A stream of requests, one after the other, before, during and after the outage.
    let load = Requests::start(
        mesh.url("/v1/agents/slow/executions"),
        user.clone(),
        json!({"ms": 500}),
    );
    let within = Duration::from_secs(60);
    load.wait_for(3, within, |a: &[Answer]| {
        a.iter().filter(|a| a.status == Some(202)).count()
    })
    .await
    .unwrap();
    postgres.stop().await.unwrap();
    let down_since = Instant::now();
    load.wait_for(3, within, |a: &[Answer]| {
        a.iter().filter(|a| a.sent > down_since).count()
    })
    .await
    .unwrap();
    let down_until = Instant::now();
    postgres.start_again().await.unwrap();
    load.wait_for(3, within, |a: &[Answer]| {
        a.iter()
            .filter(|a| a.sent > down_until && a.status == Some(202))
            .count()
    })
    .await
    .unwrap();
    let answers = load.stop().await;
    eprintln!(
        "[faults] outage of {:?}; answers: {:?}",
        down_until - down_since,
        frameos_integration_tests::load::summary(&answers)
    );

    for a in &answers {
        assert!(
            a.took < Duration::from_secs(10),
            "a request hung for {:?}: {a:?}",
            a.took
        );
        match a.status {
            Some(202) => accepted.push(a.body["id"].as_str().unwrap().to_string()),
            Some(503) => assert_eq!(a.body["error"]["code"], "unavailable", "{a:?}"),
            _ => panic!("neither accepted nor 503: {a:?}"),
        }
    }
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent > down_since && a.sent + a.took < down_until)
        .collect();
    assert!(!during.is_empty(), "no request fell into the outage");
    assert!(during.iter().all(|a| a.status == Some(503)), "{during:#?}");

    let rows = audit::wait_until_ended(mesh.database_url(), &accepted, Duration::from_secs(180))
        .await
        .unwrap();
    for e in &rows {
        assert_eq!(e.status, "succeeded", "{e:?}");
    }
    let snapshot = audit::wait_for_settled_money(mesh.database_url(), Duration::from_secs(30))
        .await
        .unwrap();
    // Exactly the accepted executions exist: a request answered 503 left none behind.
    let mut existing: Vec<&str> = snapshot.executions.iter().map(|e| e.id.as_str()).collect();
    let mut expected: Vec<&str> = accepted.iter().map(String::as_str).collect();
    existing.sort_unstable();
    expected.sort_unstable();
    assert_eq!(existing, expected);
    assert_eq!(snapshot.ledger.transactions as usize, accepted.len());
    audit::wait_for_no_containers_of_node(&node, None, Duration::from_secs(10))
        .await
        .unwrap();
    let amqp = mesh.broker_url().unwrap().to_string();
    audit::wait_for_empty_queues(&amqp, &mesh.queue_topology(), Duration::from_secs(20))
        .await
        .unwrap();
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_run_through_two_nodes_with_one_killed_halfway_ends_every_execution_once() {
    const RUNS: usize = 500;
    let mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.billing.reconcile_interval_secs = RECONCILE_SECS;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(mesh.account(&format!("user-{i}"), "user").await.unwrap());
    }
    let trivial = "module.exports = async (inputs) => ({ n: inputs.n });";
    for (slug, price) in [("trivial", None), ("trivial-paid", Some(PRICE))] {
        mesh.publish_approved(
            &dev,
            slug,
            packages::node_agent_with(slug, trivial, 20_000, 128),
            price,
        )
        .await
        .unwrap();
    }
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_frameos-test-node"));
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (a_id, b_id) = (format!("it-load-a-{suffix}"), format!("it-load-b-{suffix}"));
    let doomed = NodeProcess::start(&mesh, binary, &a_id, 3).unwrap();
    let mut survivor = NodeProcess::start(&mesh, binary, &b_id, 3).unwrap();

    // Every fifth execution is paid; they are spread over five accounts.
    let requests = (0..RUNS)
        .map(|n| {
            let slug = if n % 5 == 0 {
                "trivial-paid"
            } else {
                "trivial"
            };
            (users[n % 5].clone(), slug.to_string(), json!({"n": n}))
        })
        .collect();
    let started = Instant::now();
    let ids = submit_all(&mesh, requests, 16).await.unwrap();
    let submitted = started.elapsed();

    // Halfway, and while it holds a job, node A is SIGKILLed.
    audit::wait_for_executions(
        mesh.database_url(),
        Duration::from_secs(600),
        "half the run with node A running a job",
        |rows| {
            let ended = rows
                .iter()
                .filter(|e| audit::is_terminal(&e.status))
                .count();
            ended >= RUNS / 2
                && rows
                    .iter()
                    .any(|e| e.status == "running" && e.node_id.as_deref() == Some(a_id.as_str()))
        },
    )
    .await
    .unwrap();
    doomed.kill().await.unwrap();
    let killed_at = started.elapsed();

    // B finishes the run; A's jobs come back to it (the broker redelivers what A left unacked).
    let rows = audit::wait_until_ended(mesh.database_url(), &ids, Duration::from_secs(900))
        .await
        .unwrap();
    let finished = started.elapsed();
    assert!(survivor.is_running(), "node B died");
    for e in &rows {
        assert_eq!(e.status, "succeeded", "{e:?}");
        assert!(e.attempts <= 2, "run {} times: {e:?}", e.attempts);
    }
    // Only what A held when it died ran twice: at most its concurrency, each finished by B.
    let again: Vec<&ExecutionRow> = rows.iter().filter(|e| e.attempts == 2).collect();
    assert!(again.len() <= 3, "{again:#?}");
    assert!(
        again
            .iter()
            .all(|e| e.node_id.as_deref() == Some(b_id.as_str())),
        "{again:#?}"
    );
    let snapshot = audit::wait_for_settled_money(mesh.database_url(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(snapshot.executions.len(), RUNS);
    assert_eq!(snapshot.ledger.transactions as usize, RUNS / 5);
    let amqp = mesh.broker_url().unwrap().to_string();
    audit::wait_for_empty_queues(&amqp, &mesh.queue_topology(), Duration::from_secs(30))
        .await
        .unwrap();
    audit::wait_for_no_containers_of_node(&b_id, None, Duration::from_secs(10))
        .await
        .unwrap();

    // The killed node's containers are removed by its successor under the same id, as an
    // operator (or a DaemonSet) restarts it.
    let successor = NodeProcess::start(&mesh, binary, &a_id, 1).unwrap();
    audit::wait_for_no_containers_of_node(&a_id, None, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!(
        "[faults] load run: {RUNS} executions submitted in {submitted:?}, node A killed at \
         {killed_at:?}, all ended at {finished:?}, {} ran twice",
        again.len()
    );
    successor.kill().await.unwrap();
    drop(survivor);
    mesh.shutdown().await.unwrap();
}
