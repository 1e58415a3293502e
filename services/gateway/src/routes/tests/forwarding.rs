//! Against a fake control plane: what the gateway forwards, and how it translates replies.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frameos_core::{Error, ErrorCode, Role};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::account_service_server::{AccountService, AccountServiceServer};
use frameos_proto::v1::{
    Account, CreateAccountRequest, CreateAccountResponse, WhoAmIRequest, WhoAmIResponse,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use super::{app, assert_error, get, post_json, send};
use crate::Config;

/// Accepts `Bearer good` (a developer) and `Bearer admin`; anything else is an invalid key.
struct FakeAccounts;

pub(super) fn caller<T>(request: &tonic::Request<T>) -> Result<Account, tonic::Status> {
    let authorization = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let role = match authorization {
        Some("Bearer good") => Role::Developer,
        Some("Bearer admin") => Role::Admin,
        _ => {
            return Err(to_status(&Error::new(
                ErrorCode::Unauthenticated,
                "invalid API key",
            )));
        }
    };
    Ok(Account {
        id: format!("acc_{role}"),
        name: format!("the {role}"),
        role: role.to_proto(),
        created_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
    })
}

#[tonic::async_trait]
impl AccountService for FakeAccounts {
    async fn create_account(
        &self,
        request: tonic::Request<CreateAccountRequest>,
    ) -> Result<tonic::Response<CreateAccountResponse>, tonic::Status> {
        let admin = caller(&request)?;
        if admin.role != Role::Admin.to_proto() {
            return Err(to_status(&Error::new(
                ErrorCode::PermissionDenied,
                "admins only",
            )));
        }
        let body = request.into_inner();
        Ok(tonic::Response::new(CreateAccountResponse {
            account: Some(Account {
                id: "acc_new".into(),
                name: body.name,
                role: body.role,
                created_at: admin.created_at,
            }),
            api_key: "fos_new".into(),
        }))
    }

    async fn who_am_i(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<WhoAmIResponse>, tonic::Status> {
        let account = caller(&request)?;
        Ok(tonic::Response::new(WhoAmIResponse {
            account: Some(account),
        }))
    }
}

/// Serves [`FakeAccounts`] and a SERVING health service; returns a config pointing at them.
async fn fake_control_plane(shutdown: CancellationToken) -> Config {
    serve_fake(shutdown, Routes::default()).await
}

/// Serves `services` next to [`FakeAccounts`] and a SERVING health service.
pub(super) async fn serve_fake(shutdown: CancellationToken, mut services: Routes) -> Config {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    services = services
        .add_service(health)
        .add_service(AccountServiceServer::new(FakeAccounts));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(services)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            ),
    );
    let mut config = Config::embedded();
    config.control_plane_url = format!("http://{addr}");
    config
}

#[tokio::test]
async fn keys_are_forwarded_and_replies_translated() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone()).await);

    let (status, body) = send(&app, get("/readyz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));

    let request = Request::get("/v1/me")
        .header(header::AUTHORIZATION, "Bearer good")
        .body(Body::empty())
        .unwrap();
    let (status, me) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": "acc_developer", "name": "the developer", "role": "developer", "created_at": "2023-11-14T22:13:20Z"})
    );

    let request = Request::get("/v1/me")
        .header(header::AUTHORIZATION, "Bearer forged")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);

    let (status, created) = send(
        &app,
        post_json(
            "/v1/accounts",
            Some("admin"),
            r#"{"name": "ada", "role": "developer"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["api_key"], "fos_new");
    assert_eq!(created["name"], "ada");
    assert_eq!(created["role"], "developer");

    let (status, body) = send(
        &app,
        post_json(
            "/v1/accounts",
            Some("good"),
            r#"{"name": "ada", "role": "developer"}"#,
        ),
    )
    .await;
    assert_error(status, &body, ErrorCode::PermissionDenied);
    shutdown.cancel();
}

#[tokio::test]
async fn an_invalid_key_wins_over_an_invalid_body() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone()).await);
    let (status, body) = send(&app, post_json("/v1/accounts", Some("forged"), "{}")).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    let (status, body) = send(&app, post_json("/v1/accounts", Some("admin"), "{}")).await;
    assert_error(status, &body, ErrorCode::InvalidRequest);
    let request = Request::post("/v1/agents/a/versions")
        .header(header::AUTHORIZATION, "Bearer forged")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("x"))
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    shutdown.cancel();
}
