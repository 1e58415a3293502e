//! The developer's tier on real PostgreSQL (issue 7, finding 13): the share is decided by the
//! gross the developer captured this UTC month before the charge, in the charge's currency.
//! A developer crosses the ₹10,000 bound (70% → 75%); last month's captures and captures in
//! another currency do not count.

use frameos_integration_tests::{Backend, Mesh, packages};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use super::verify_ledger;

/// ₹6,000.00: two charges stay below ₹10,000 before them, the third does not.
const PRICE: i64 = 600_000;

async fn developer_share(mesh: &Mesh, user: &str, slug: &str) -> (String, Value) {
    let (_, done) = mesh.run(user, slug, json!({"text": "tier"})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["charge"]["status"], "captured", "{done}");
    (
        done["id"].as_str().unwrap().to_string(),
        done["charge"]["splits"]["developer"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_developer_crossing_a_tier_bound_gets_the_next_share_from_the_next_charge() {
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
    let dollars = packages::node_agent_with(
        "dollars",
        "module.exports = async () => ({ ok: true });",
        20_000,
        128,
    );
    mesh.publish_priced(
        &dev,
        "dollars",
        dollars,
        json!({"model": "per_execution", "price_minor": PRICE, "currency": "USD"}),
    )
    .await
    .unwrap();

    // Month before 0: 70%.
    let (first, share) = developer_share(&mesh, &user, "word-count").await;
    assert_eq!(share, 420_000);
    // $6,000 of dollars this month: its own currency's month, 70%; not added to the rupees.
    let (_, share) = developer_share(&mesh, &user, "dollars").await;
    assert_eq!(share, 420_000);
    // Month before ₹6,000 (the dollars not counted): still 70%, although this charge takes
    // the month over ₹10,000.
    let (second, share) = developer_share(&mesh, &user, "word-count").await;
    assert_eq!(share, 420_000);
    // Month before ₹12,000: 75%.
    let (_, share) = developer_share(&mesh, &user, "word-count").await;
    assert_eq!(share, 450_000);

    // The first two rupee captures belong to last month: the month before is ₹6,000 again.
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let moved = db
        .execute_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "UPDATE charges SET settled_at = now() - interval '40 days' \
                 WHERE execution_id IN ('{first}', '{second}')"
            ),
        ))
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 2);
    db.close().await.unwrap();
    let (_, share) = developer_share(&mesh, &user, "word-count").await;
    assert_eq!(share, 420_000);

    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 5);
    mesh.shutdown().await.unwrap();
}
