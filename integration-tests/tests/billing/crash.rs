//! A crash between the rail's capture and the ledger commit (issue 7, finding 8): the control
//! plane runs as its own process and is SIGKILLed right there; after a restart, reconciliation
//! completes the settlement. Counted in the rail's request log, which records every capture it
//! receives, so a second capture would show.

use std::path::Path;
use std::time::{Duration, Instant};

use frameos_control_plane::faults::CAPTURED_MARKER;
use frameos_integration_tests::{Backend, Mesh, packages, rail};
use serde_json::json;

use super::{PRICE, balance, get, me, verify_ledger};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_control_plane_killed_between_capture_and_ledger_is_completed_on_restart() {
    let mut mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let dev_id = me(&mesh, &dev).await;
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(PRICE),
    )
    .await
    .unwrap();

    // The control plane as a process that stops dead after the capture.
    mesh.stop_control_plane().await.unwrap();
    let program = Path::new(env!("CARGO_BIN_EXE_frameos-test-control-plane"));
    let mut control_plane = mesh
        .spawn_control_plane(program, &["--block-after-capture"])
        .await
        .unwrap();
    let accepted = mesh
        .execute(&user, "word-count", json!({"text": "crash"}))
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    let captured = control_plane
        .wait_for_line(CAPTURED_MARKER, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(captured, id);
    control_plane.kill().await.unwrap();

    // Captured at the rail, not in the ledger.
    let calls = rail::calls(mesh.database_url()).await.unwrap();
    let captures: Vec<_> = calls.iter().filter(|c| c.operation == "capture").collect();
    assert_eq!(captures.len(), 1, "{calls:?}");
    assert_eq!(captures[0].outcome, "captured");
    let report = verify_ledger(&mesh).await;
    assert_eq!(report.transactions, 0, "{report:?}");
    assert_eq!(report.captures_without_transaction.len(), 0, "{report:?}");

    // Restarted (in-process, the same code): reconciliation at start completes the settlement.
    mesh.restart_control_plane(|_| {}).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, now) = get(&mesh, Some(&user), &format!("/v1/executions/{id}")).await;
        if now["charge"]["status"] == "captured" {
            assert_eq!(now["status"], "succeeded", "{now}");
            break;
        }
        assert!(Instant::now() < deadline, "not reconciled: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly one capture moved money: the retry used the same key and was replayed.
    let calls = rail::calls(mesh.database_url()).await.unwrap();
    let captures: Vec<_> = calls.iter().filter(|c| c.operation == "capture").collect();
    let fresh = captures.iter().filter(|c| c.outcome == "captured").count();
    assert_eq!(fresh, 1, "captured twice at the rail: {calls:?}");
    assert!(
        captures
            .iter()
            .all(|c| c.idempotency_key == format!("capture:{id}")),
        "{calls:?}"
    );
    assert!(
        captures.iter().skip(1).all(|c| c.outcome == "replayed"),
        "{calls:?}"
    );
    let holds = rail::holds(mesh.database_url()).await.unwrap();
    assert_eq!(rail::count(&holds, "captured"), 1, "{holds:?}");
    assert_eq!(rail::count(&holds, "authorized"), 0, "{holds:?}");
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 1);
    assert_eq!(balance(&mesh, &dev, &dev_id).await, 7000);
    mesh.shutdown().await.unwrap();
}
