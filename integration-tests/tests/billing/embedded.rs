//! Paid executions on the embedded backend of `frameos dev` (issue 7, finding 13): SQLite and a
//! local package directory, a Docker node. The hold, the rail's records, the capture, the split
//! and the ledger all on SQLite, in rupees and in yen (exponent 0).

use frameos_integration_tests::{Backend, Mesh, packages, rail};
use serde_json::json;

use super::{PRICE, balance, earnings, me, verify_ledger};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_execution_settles_on_sqlite() {
    let mesh = Mesh::with_node(Backend::Embedded).await.unwrap();
    assert!(mesh.database_url().starts_with("sqlite://"));
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let dev_id = me(&mesh, &dev).await;
    let user_id = me(&mesh, &user).await;
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(PRICE),
    )
    .await
    .unwrap();
    let yen = packages::node_agent_with(
        "yen",
        "module.exports = async () => ({ ok: true });",
        20_000,
        128,
    );
    mesh.publish_priced(
        &dev,
        "yen",
        yen,
        json!({"model": "per_execution", "price_minor": 1000, "currency": "JPY"}),
    )
    .await
    .unwrap();

    let (_, done) = mesh
        .run(&user, "word-count", json!({"text": "on sqlite"}))
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["charge"],
        json!({"status": "captured", "amount_minor": PRICE, "currency": "INR",
               "splits": {"developer": 7000, "platform": 2510, "orchestrator": 0, "rail_fee": 490}}),
        "{done}"
    );
    // ¥1,000: 2.9% = ¥29 plus the fixed ₹2 as ¥2; 70% to the developer.
    let (_, done) = mesh.run(&user, "yen", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["charge"],
        json!({"status": "captured", "amount_minor": 1000, "currency": "JPY",
               "splits": {"developer": 700, "platform": 269, "orchestrator": 0, "rail_fee": 31}}),
        "{done}"
    );
    // Earnings per agent and currency on SQLite's dialect too, highest first.
    assert_eq!(
        earnings(&mesh, &dev).await,
        json!([
            {"agent": "word-count", "agent_name": "word-count", "currency": "INR",
             "paid_executions": 1, "earned_minor": 7000, "paid_calls": 0, "orchestrator_minor": 0},
            {"agent": "yen", "agent_name": "yen", "currency": "JPY",
             "paid_executions": 1, "earned_minor": 700, "paid_calls": 0, "orchestrator_minor": 0},
        ])
    );

    assert_eq!(balance(&mesh, &dev, &dev_id).await, 7000);
    assert_eq!(balance(&mesh, &user, &user_id).await, -PRICE);
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 2);
    let holds = rail::holds(mesh.database_url()).await.unwrap();
    assert_eq!(rail::count(&holds, "captured"), 2, "{holds:?}");
    assert_eq!(rail::count(&holds, "authorized"), 0, "{holds:?}");
    let calls = rail::calls(mesh.database_url()).await.unwrap();
    let outcomes: Vec<_> = calls
        .iter()
        .map(|c| (c.operation.as_str(), c.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("authorize", "authorized"),
            ("capture", "captured"),
            ("authorize", "authorized"),
            ("capture", "captured"),
        ]
    );
    mesh.shutdown().await.unwrap();
}
