//! `frameos ledger verify` shown corrupted ledgers (issue 7, finding 13): a ledger written by
//! real paid executions, then damaged with raw SQL in every way the checks name. Each problem
//! is reported, with the transaction, execution or entry it is in, and nothing else is.

use frameos_integration_tests::{Backend, Mesh, packages};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;

use super::{PRICE, verify_ledger};

async fn sql(db: &DatabaseConnection, statement: &str) -> u64 {
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        statement.to_string(),
    ))
    .await
    .unwrap()
    .rows_affected()
}

async fn one(db: &DatabaseConnection, query: &str) -> String {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            query.to_string(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0)
        .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
        .unwrap()
}

async fn transaction_of(db: &DatabaseConnection, execution: &str) -> String {
    one(
        db,
        &format!("SELECT id FROM ledger_transactions WHERE execution_id = '{execution}'"),
    )
    .await
}

async fn entry(
    db: &DatabaseConnection,
    transaction: &str,
    direction: &str,
    amount: i64,
    currency: &str,
) -> i64 {
    one(
        db,
        &format!(
            "INSERT INTO ledger_entries (transaction_id, account, direction, amount_minor, currency, created_at) \
             VALUES ('{transaction}', 'platform', '{direction}', {amount}, '{currency}', now()) RETURNING id"
        ),
    )
    .await
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_verify_reports_every_kind_of_corruption() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(PRICE),
    )
    .await
    .unwrap();
    let fails = packages::node_agent_with(
        "fails",
        "module.exports = async () => { throw new Error('nope'); };",
        20_000,
        128,
    );
    mesh.publish_approved(&dev, "fails", fails, Some(PRICE))
        .await
        .unwrap();
    let mut captured = Vec::new();
    for n in 0..4 {
        let (_, done) = mesh
            .run(&user, "word-count", json!({"text": format!("run {n}")}))
            .await
            .unwrap();
        assert_eq!(done["charge"]["status"], "captured", "{done}");
        captured.push(done["id"].as_str().unwrap().to_string());
    }
    let (_, done) = mesh.run(&user, "fails", json!({})).await.unwrap();
    assert_eq!(done["charge"]["status"], "voided", "{done}");
    let voided = done["id"].as_str().unwrap().to_string();
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "before: {report:?}");

    let db = Database::connect(mesh.database_url()).await.unwrap();
    let [e1, e2, e3, e4] = [0, 1, 2, 3].map(|i| captured[i].clone());
    let t1 = transaction_of(&db, &e1).await;
    let t2 = transaction_of(&db, &e2).await;
    let t3 = transaction_of(&db, &e3).await;
    let t4 = transaction_of(&db, &e4).await;
    // An entry edited: the developer's credit one paisa larger (unbalanced, and not the split).
    let edited = sql(
        &db,
        &format!(
            "UPDATE ledger_entries SET amount_minor = amount_minor + 1 \
             WHERE transaction_id = '{t1}' AND account LIKE 'developer:%'"
        ),
    )
    .await;
    assert_eq!(edited, 1);
    // An edit that keeps the sums: ₹1 moved from the developer to the platform.
    sql(
        &db,
        &format!(
            "UPDATE ledger_entries SET amount_minor = amount_minor - 100 \
             WHERE transaction_id = '{t2}' AND account LIKE 'developer:%'"
        ),
    )
    .await;
    sql(
        &db,
        &format!(
            "UPDATE ledger_entries SET amount_minor = amount_minor + 100 \
             WHERE transaction_id = '{t2}' AND account = 'platform'"
        ),
    )
    .await;
    // An entry missing: the rail's fee.
    let deleted = sql(
        &db,
        &format!(
            "DELETE FROM ledger_entries WHERE transaction_id = '{t3}' AND account = 'rail_fees'"
        ),
    )
    .await;
    assert_eq!(deleted, 1);
    // A whole capture transaction missing.
    sql(
        &db,
        &format!("DELETE FROM ledger_entries WHERE transaction_id = '{t4}'"),
    )
    .await;
    sql(
        &db,
        &format!("DELETE FROM ledger_transactions WHERE id = '{t4}'"),
    )
    .await;
    // A voided charge with a (balanced) capture posted.
    sql(
        &db,
        &format!(
            "INSERT INTO ledger_transactions (id, kind, execution_id, created_at) \
             VALUES ('t-voided', 'capture', '{voided}', now())"
        ),
    )
    .await;
    entry(&db, "t-voided", "debit", PRICE, "INR").await;
    entry(&db, "t-voided", "credit", PRICE, "INR").await;
    // A transaction for no charge at all, balanced, made of malformed entries: an unknown
    // currency, negative amounts, a direction that is neither debit nor credit.
    sql(
        &db,
        "INSERT INTO ledger_transactions (id, kind, execution_id, created_at) \
         VALUES ('t-ghost', 'capture', 'ghost-execution', now())",
    )
    .await;
    entry(&db, "t-ghost", "debit", 10, "INR").await;
    let mut malformed = vec![
        entry(&db, "t-ghost", "credit", 10, "ZZZ").await,
        entry(&db, "t-ghost", "debit", -4, "INR").await,
        entry(&db, "t-ghost", "credit", -4, "INR").await,
        entry(&db, "t-ghost", "refund", 5, "INR").await,
    ];
    entry(&db, "t-ghost", "debit", 5, "INR").await;
    malformed.sort_unstable();
    // An entry whose transaction does not exist (the foreign key switched off, as a restore
    // or a hand edit can).
    let dangling = {
        let txn = sea_orm::TransactionTrait::begin(&db).await.unwrap();
        txn.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "SET LOCAL session_replication_role = replica".to_string(),
        ))
        .await
        .unwrap();
        let row = txn
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "INSERT INTO ledger_entries (transaction_id, account, direction, amount_minor, currency, created_at) \
                 VALUES ('t-nowhere', 'platform', 'credit', 7, 'INR', now()) RETURNING id"
                    .to_string(),
            ))
            .await
            .unwrap()
            .unwrap();
        let id: i64 = row.try_get_by_index(0).unwrap();
        txn.commit().await.unwrap();
        id
    };
    db.close().await.unwrap();

    let report = verify_ledger(&mesh).await;
    assert!(!report.is_clean());
    let mut unbalanced = vec![t1, t3];
    unbalanced.sort();
    assert_eq!(report.unbalanced_transactions, unbalanced, "{report:?}");
    let mut not_matching = vec![e1, e2, e3];
    not_matching.sort();
    assert_eq!(
        report.transactions_not_matching_charge, not_matching,
        "{report:?}"
    );
    assert_eq!(report.captures_without_transaction, vec![e4], "{report:?}");
    assert_eq!(
        report.voided_with_transaction,
        vec![voided.clone()],
        "{report:?}"
    );
    let mut without_capture = vec![voided, "ghost-execution".to_string()];
    without_capture.sort();
    assert_eq!(
        report.transactions_without_capture, without_capture,
        "{report:?}"
    );
    assert_eq!(report.malformed_entries, malformed, "{report:?}");
    assert_eq!(
        report.entries_without_transaction,
        vec![dangling],
        "{report:?}"
    );
    assert_ne!(report.total_debits, report.total_credits, "{report:?}");
    mesh.shutdown().await.unwrap();
}
