//! The control plane's gRPC surface: health (readiness follows it) and reflection.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_integration_tests::{Backend, Mesh};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_serves_health_and_reflection() {
    let mesh = Mesh::start(Backend::Embedded).await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", mesh.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "frameos.v1.AccountService",
        "frameos.v1.AgentService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // The older reflection protocol, which grpcio's stock Python client speaks, lists the same.
    use tonic_reflection::pb::v1alpha;
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected v1alpha reflection response");
    };
    let v1alpha_names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["frameos.v1.AgentService", "frameos.v1.ExecutionService"] {
        assert!(
            v1alpha_names.iter().any(|n| n == expected),
            "{expected} missing from {v1alpha_names:?}"
        );
    }

    // The gateway's readiness reflects the control plane's health.
    let ready = reqwest::get(mesh.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_is_not_ready_without_a_control_plane() {
    let mut config = frameos_gateway::Config::embedded();
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.control_plane_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gateway = frameos_gateway::Gateway::bind(config).await.unwrap();
    let url = format!("http://{}", gateway.local_addr());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(gateway.run(shutdown.clone()));
    let live = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    // A call that needs the control plane fails as unavailable, not as an internal error.
    let agents = reqwest::get(format!("{url}/v1/agents")).await.unwrap();
    assert_eq!(agents.status(), 503);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
