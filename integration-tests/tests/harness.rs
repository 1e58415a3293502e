//! The test harness itself: a restarted control plane keeps its port (nobody can take it in
//! between), and a mesh dropped without `shutdown`, as a failing test drops it, leaves no
//! queues, no database and no containers behind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_integration_tests::flows::containers_of;
use frameos_integration_tests::instances::queue_depth;
use frameos_integration_tests::{Backend, Mesh, packages};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_control_plane_keeps_its_port() {
    let mut mesh = Mesh::start(Backend::Embedded).await.unwrap();
    let addr = mesh.grpc_addr;
    let mut taken = None;
    mesh.restart_control_plane(|_| {
        // The old control plane has stopped and the new one has not started: another process
        // binding the port now would break the restart.
        taken = Some(std::net::TcpListener::bind(addr));
    })
    .await
    .unwrap();
    let taken = taken.unwrap();
    assert!(taken.is_err(), "the port was free during the restart");
    // The restarted control plane serves on it.
    mesh.account("after-restart", "user").await.unwrap();
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mesh_dropped_mid_run_leaves_no_queues_database_or_containers() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let slow = "module.exports = async (i, ctx) => { ctx.progress(0.1, 'go'); await new Promise(r => setTimeout(r, 60000)); };";
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", slow, 120_000, 128),
        None,
    )
    .await
    .unwrap();
    mesh.start_node(1).await.unwrap();
    let accepted = mesh.execute(&user, "slow", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    assert_eq!(containers_of(&id).len(), 1);
    let url = mesh.broker_url().unwrap().to_string();
    let queue = mesh.queue_topology().name;
    let database_url = mesh.database_url().to_string();
    assert_eq!(queue_depth(&url, &queue).await.unwrap(), Some(0));

    // What a test that fails here leaves when its mesh is dropped without `shutdown`.
    drop(mesh);

    assert_eq!(containers_of(&id), Vec::<String>::new());
    for name in [queue.clone(), format!("{queue}.dead")] {
        assert_eq!(queue_depth(&url, &name).await.unwrap(), None, "{name}");
    }
    assert!(
        sea_orm::Database::connect(&database_url).await.is_err(),
        "the database is still there"
    );
}
