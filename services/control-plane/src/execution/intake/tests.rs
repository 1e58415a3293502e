//! The intake on a real PostgreSQL database with the real schema: records handed over together
//! are committed by one transaction, and a batch that one record breaks still writes the others.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use chrono::{SubsecRound, Utc};
use frameos_core::ChargeStatus;
use frameos_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr, Set, SqlErr};
use tokio_util::task::TaskTracker;

use super::{Intake, Queued, Record};
use crate::entity::charge;

struct Scratch {
    db: DatabaseConnection,
    admin: DatabaseConnection,
    name: String,
    intake: Intake,
    tasks: TaskTracker,
}

/// A fresh database on `FRAMEOS_TEST_POSTGRES_URL`, migrated, without the foreign keys to
/// accounts and agents (what is checked here is how executions are written, not who owns them).
async fn scratch() -> Scratch {
    let server = std::env::var("FRAMEOS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = Database::connect(&server).await.unwrap();
    let name = format!("frameos_intake_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = server.rsplit_once('/').unwrap().0;
    let db = crate::db::connect(&format!("{base}/{name}")).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db.execute_unprepared(
        "DO $$ DECLARE c record; BEGIN \
           FOR c IN SELECT conrelid::regclass AS t, conname FROM pg_constraint \
                    WHERE contype = 'f' AND conrelid::regclass::text IN ('executions', 'charges') \
           LOOP EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.t, c.conname); END LOOP; \
         END $$",
    )
    .await
    .unwrap();
    let tasks = TaskTracker::new();
    let intake = Intake::start(db.clone(), &tasks);
    Scratch {
        db,
        admin,
        name,
        intake,
        tasks,
    }
}

impl Scratch {
    /// The writer ends once the intake is dropped and what it was handed is written; then the
    /// database goes.
    async fn finish(self) {
        drop(self.intake);
        self.tasks.close();
        self.tasks.wait().await;
        self.db.close().await.unwrap();
        self.admin
            .execute_unprepared(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    }

    /// Rows of execution `id` in executions, charges and outbox.
    async fn rows_of(&self, id: &str) -> [i64; 3] {
        [
            self.count(&format!(
                "SELECT COUNT(*) FROM executions WHERE id = '{id}'"
            ))
            .await,
            self.count(&format!(
                "SELECT COUNT(*) FROM charges WHERE execution_id = '{id}'"
            ))
            .await,
            self.count(&format!(
                "SELECT COUNT(*) FROM outbox WHERE execution_id = '{id}'"
            ))
            .await,
        ]
    }

    /// All rows in executions, charges and outbox.
    async fn totals(&self) -> [i64; 3] {
        [
            self.count("SELECT COUNT(*) FROM executions").await,
            self.count("SELECT COUNT(*) FROM charges").await,
            self.count("SELECT COUNT(*) FROM outbox").await,
        ]
    }
}

fn record(id: &str, idempotency_key: Option<&str>, paid: bool) -> Record {
    let now = Utc::now().trunc_subsecs(6);
    let (execution, message) = Queued {
        id,
        account_id: "acct",
        agent_id: "agent",
        version_id: "version",
        inputs: &serde_json::json!({}),
        priority: 1,
        idempotency: idempotency_key.map(|key| (key.to_string(), "hash".to_string())),
        parent: None,
        depth: 1,
        now,
    }
    .rows();
    let charge = paid.then(|| charge::ActiveModel {
        execution_id: Set(id.into()),
        intent_id: Set(format!("intent-{id}")),
        mandate_id: Set(format!("mandate-{id}")),
        payer_account: Set("acct".into()),
        payee_account: Set("dev".into()),
        amount_minor: Set(100),
        currency: Set("EUR".into()),
        kid: Set("kid".into()),
        mandate_payload: Set("{}".into()),
        mandate_signature: Set("sig".into()),
        nonce: Set(format!("nonce-{id}")),
        expires_at: Set(now),
        authorization_id: Set(format!("auth-{id}")),
        status: Set(ChargeStatus::Authorized),
        orchestrated: Set(false),
        orchestrator_account: Set(None),
        developer_minor: Set(None),
        orchestrator_minor: Set(None),
        platform_minor: Set(None),
        rail_fee_minor: Set(None),
        created_at: Set(now),
        settled_at: Set(None),
    });
    Record {
        execution,
        charge,
        webhook: None,
        message,
    }
}

/// Hands all `records` over before the writer runs (a current-thread runtime runs it only once
/// every request is waiting), so the writer finds them in its queue together.
async fn hand_over(intake: &Intake, records: Vec<Record>) -> Vec<Result<(), DbErr>> {
    futures::future::join_all(records.into_iter().map(|r| intake.record(r))).await
}

#[tokio::test(flavor = "current_thread")]
async fn records_waiting_together_are_committed_by_one_statement() {
    let scratch = scratch().await;
    // Free and paid executions mixed: the charges go in the same statement.
    let records = (0..10)
        .map(|i| record(&format!("e{i}"), None, i % 3 == 0))
        .collect();
    let outcomes = hand_over(&scratch.intake, records).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(scratch.totals().await, [10, 4, 10]);
    assert_eq!(
        scratch
            .count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .await,
        10
    );
    // One transaction wrote them all: every row carries the same inserting transaction id.
    let writers = "SELECT COUNT(DISTINCT xmin::text) FROM \
                   (SELECT xmin FROM executions UNION ALL SELECT xmin FROM charges \
                    UNION ALL SELECT xmin FROM outbox) AS rows";
    assert_eq!(scratch.count(writers).await, 1);
    // The outbox keeps the order the requests came in.
    assert_eq!(
        scratch
            .count(
                "SELECT COUNT(*) FROM outbox o JOIN outbox p ON p.id = o.id - 1 \
                 WHERE substr(o.execution_id, 2)::int <> substr(p.execution_id, 2)::int + 1"
            )
            .await,
        0
    );

    scratch.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_record_that_breaks_its_batch_fails_alone() {
    let scratch = scratch().await;
    // Two requests with one Idempotency-Key in one batch, among others: the batch's statement
    // fails on the unique index, and the records are written again one by one.
    let mut records: Vec<Record> = (0..6)
        .map(|i| record(&format!("f{i}"), None, i == 1))
        .collect();
    records.insert(2, record("k1", Some("order-17"), true));
    records.insert(5, record("k2", Some("order-17"), true));
    let outcomes = hand_over(&scratch.intake, records).await;

    let refused: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(refused, vec![5], "{outcomes:?}");
    assert!(matches!(
        outcomes[5].as_ref().unwrap_err().sql_err(),
        Some(SqlErr::UniqueConstraintViolation(_))
    ));
    // Nothing of the refused record, all of the others: an execution, its charge, its message.
    assert_eq!(scratch.totals().await, [7, 2, 7]);
    assert_eq!(scratch.rows_of("k2").await, [0, 0, 0]);
    assert_eq!(scratch.rows_of("k1").await, [1, 1, 1]);

    scratch.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_that_finds_the_database_away_fails_whole_at_once() {
    // A "database" that accepts connections and never answers: each attempt to get a
    // connection is one accepted socket, waiting out the acquire timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let mut options =
        sea_orm::ConnectOptions::new(format!("postgres://postgres@127.0.0.1:{port}/x"));
    options
        .connect_lazy(true)
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(1))
        .sqlx_logging(false);
    let db = Database::connect(options).await.unwrap();
    let tasks = TaskTracker::new();
    let intake = Intake::start(db, &tasks);

    let records = (0..10)
        .map(|i| record(&format!("u{i}"), None, false))
        .collect();
    let outcomes = hand_over(&intake, records).await;

    // Every request hears that the database is unavailable (a 503 to its client, not a 500)...
    for outcome in &outcomes {
        let error = outcome.as_ref().unwrap_err();
        assert!(crate::db::is_unavailable(error), "{error}");
    }
    // ...after one wait for it, not one per record.
    let tries = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        tries < outcomes.len(),
        "{tries} connection attempts for one batch"
    );

    drop(intake);
    tasks.close();
    tasks.wait().await;
    silent.abort();
}
