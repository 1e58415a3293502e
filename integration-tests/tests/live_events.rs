//! Live events between control plane replicas (ADR 0028): a client whose stream is served by
//! another replica than the one its execution's node reports to hears every log line and the
//! end through PostgreSQL notifications; the watchers' poll is set to an hour, so nothing else
//! could deliver them. The listening connections are killed midway: the replicas listen again
//! and the events keep coming. Real PostgreSQL and S3 protocol server; the node speaks the
//! report protocol by hand.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::time::Duration;

use frameos_integration_tests::flows::{EventStream, SseEvent};
use frameos_integration_tests::{Backend, Mesh, packages};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

/// Longer than the test: a watcher that is not woken never reads again.
const NO_POLL_MS: u64 = 3_600_000;

/// Long enough for anything that comes at all.
const PATIENCE: Duration = Duration::from_secs(30);

/// The backends listening for live events in the mesh's database, once they have run LISTEN.
async fn listeners(db: &DatabaseConnection) -> BTreeSet<i32> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'frameos-live-events' AND state = 'idle' \
             AND query LIKE 'LISTEN%'",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<i32>("", "pid").unwrap())
        .collect()
}

/// Waits until `count` backends listen, none of them one of `gone`; returns them.
async fn listening(db: &DatabaseConnection, count: usize, gone: &BTreeSet<i32>) -> BTreeSet<i32> {
    let wait = async {
        loop {
            let now = listeners(db).await;
            if now.len() == count && now.is_disjoint(gone) {
                return now;
            }
            // A connection's state is only in pg_stat_activity: there is nothing to await.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the replicas listen")
}

/// The next event of the stream, which must be of `kind`.
async fn next(stream: &mut EventStream, kind: &str) -> SseEvent {
    let event = tokio::time::timeout(PATIENCE, stream.next_event())
        .await
        .unwrap_or_else(|_| panic!("no {kind} event within {PATIENCE:?}"))
        .unwrap()
        .unwrap_or_else(|| panic!("the stream ended before a {kind} event"));
    assert_eq!(event.kind, kind, "{event:?}");
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_on_another_replica_hears_lines_and_end_through_notifications() {
    let mesh = Mesh::start_with(Backend::PostgresS3, |config| {
        config.watch_poll_ms = Some(NO_POLL_MS);
    })
    .await
    .unwrap();
    let replica = mesh
        .replica(|config| config.watch_poll_ms = Some(NO_POLL_MS))
        .await
        .unwrap();
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let first_listeners = listening(&db, 2, &BTreeSet::new()).await;

    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let package = packages::node_agent("echo", "1.0.0", "module.exports = async () => 1;\n");
    mesh.publish_approved(&dev, "echo", package, None)
        .await
        .unwrap();
    let accepted = mesh.execute(&user, "echo", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();

    // The client is on the replica; the node reports to the mesh's control plane.
    let mut events = replica.events(&user, &id).await.unwrap();
    assert_eq!(next(&mut events, "status").await.data["status"], "queued");
    let run = mesh.run_by_hand("hand-node", &id).await.unwrap();
    assert_eq!(next(&mut events, "status").await.data["status"], "running");
    run.log(&["one", "two"]).await.unwrap();
    for line in ["one", "two"] {
        assert_eq!(next(&mut events, "log").await.data["line"], line);
    }

    // Both listening connections die; the replicas listen again on new ones.
    db.execute_unprepared(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'frameos-live-events'",
    )
    .await
    .unwrap();
    listening(&db, 2, &first_listeners).await;
    run.log(&["three"]).await.unwrap();
    assert_eq!(next(&mut events, "log").await.data["line"], "three");

    // The end, with its status, on the replica too.
    let recorded = run.succeed("{\"ok\":true}").await.unwrap();
    assert_eq!(recorded, frameos_proto::v1::ExecutionStatus::Succeeded);
    let done = next(&mut events, "status").await;
    assert_eq!(done.data["status"], "succeeded", "{:?}", done.data);
    assert_eq!(done.data["output"], json!({"ok": true}));
    assert_eq!(next(&mut events, "end").await.data["status"], "succeeded");

    db.close().await.unwrap();
    replica.stop().await.unwrap();
    mesh.shutdown().await.unwrap();
}
