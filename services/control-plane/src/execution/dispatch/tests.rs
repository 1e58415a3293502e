//! The dispatch rule on a real (SQLite) database with the real schema.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use super::{mark_dispatched, next_batch};

struct Fixture {
    db: DatabaseConnection,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/dispatch.db?mode=rwc", dir.path().display());
    // One connection, so the pragma below holds for every statement.
    let db = Database::connect(ConnectOptions::new(url).max_connections(1).to_owned())
        .await
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    // Executions here need no agents or accounts: the rule only reads executions and outbox.
    db.execute_unprepared("PRAGMA foreign_keys = OFF")
        .await
        .unwrap();
    Fixture { db, _dir: dir }
}

impl Fixture {
    async fn execution(&self, id: &str, account: &str, status: &str) {
        self.db
            .execute_unprepared(&format!(
                "INSERT INTO executions (id, account_id, agent_id, version_id, status, inputs, \
                 priority, created_at) VALUES ('{id}', '{account}', 'ag', 'v', '{status}', '{{}}', \
                 1, '2025-01-01T00:00:00Z')"
            ))
            .await
            .unwrap();
    }

    /// A queued execution of `account` with its unsent outbox row.
    async fn queued(&self, id: &str, account: &str) {
        self.execution(id, account, "queued").await;
        self.row(id).await;
    }

    async fn row(&self, execution_id: &str) {
        self.db
            .execute_unprepared(&format!(
                "INSERT INTO outbox (execution_id, priority, headers, created_at) \
                 VALUES ('{execution_id}', 1, '{{}}', '2025-01-01T00:00:00Z')"
            ))
            .await
            .unwrap();
    }

    async fn status(&self, id: &str, status: &str) {
        self.db
            .execute_unprepared(&format!(
                "UPDATE executions SET status = '{status}' WHERE id = '{id}'"
            ))
            .await
            .unwrap();
    }

    /// What the relay may publish now, by execution id.
    async fn next(&self, cap: u32) -> Vec<String> {
        next_batch(&self.db, cap, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.execution_id)
            .collect()
    }

    /// Publishes what the rule allows, as the relay does.
    async fn publish(&self, cap: u32) -> Vec<String> {
        let rows = next_batch(&self.db, cap, 100).await.unwrap();
        for row in &rows {
            self.db
                .execute_unprepared(&format!(
                    "UPDATE outbox SET sent_at = '2025-01-01T00:00:01Z' WHERE id = {}",
                    row.id
                ))
                .await
                .unwrap();
            mark_dispatched(
                &self.db,
                std::slice::from_ref(&row.execution_id),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        }
        rows.into_iter().map(|row| row.execution_id).collect()
    }
}

#[tokio::test]
async fn a_flooding_account_gets_its_cap_in_order_and_others_are_not_held_back() {
    let f = fixture().await;
    for i in 1..=5 {
        f.queued(&format!("a{i}"), "alice").await;
    }
    f.queued("b1", "bob").await;
    assert_eq!(f.publish(2).await, ["a1", "a2", "b1"]);
    // Alice holds both her places while her jobs wait in the queue or run.
    assert_eq!(f.next(2).await, Vec::<String>::new());
    f.status("a1", "running").await;
    assert_eq!(f.next(2).await, Vec::<String>::new());
    // Bob's later run is not behind Alice's backlog.
    f.queued("b2", "bob").await;
    assert_eq!(f.publish(2).await, ["b2"]);
    // An end frees a place: the next of Alice's, in order.
    f.status("a2", "succeeded").await;
    assert_eq!(f.publish(2).await, ["a3"]);
    for (id, end) in [("a1", "failed"), ("a3", "timed_out")] {
        f.status(id, end).await;
    }
    assert_eq!(f.publish(2).await, ["a4", "a5"]);
}

#[tokio::test]
async fn rows_that_need_no_place_go_at_once() {
    let f = fixture().await;
    f.queued("a1", "alice").await;
    assert_eq!(f.publish(1).await, ["a1"]);
    f.queued("a2", "alice").await;
    // A lost job published again: a1 holds its place already, so its new row goes.
    f.row("a1").await;
    // Canceled while it waited: the node will skip it, and it takes no place.
    f.queued("a3", "alice").await;
    f.status("a3", "canceled").await;
    // A row whose execution is gone is never stuck either.
    f.row("vanished").await;
    assert_eq!(f.publish(1).await, ["a1", "a3", "vanished"]);
    // a2 still waits for a1 to end.
    assert_eq!(f.next(1).await, Vec::<String>::new());
    f.status("a1", "succeeded").await;
    assert_eq!(f.next(1).await, ["a2"]);
}

#[tokio::test]
async fn no_cap_publishes_everything_in_order_and_the_batch_is_bounded() {
    let f = fixture().await;
    for i in 1..=3 {
        f.queued(&format!("a{i}"), "alice").await;
    }
    assert_eq!(f.next(0).await, ["a1", "a2", "a3"]);
    let first = next_batch(&f.db, 0, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let capped = next_batch(&f.db, 3, 1).await.unwrap();
    assert_eq!(capped[0].execution_id, "a1");
}
