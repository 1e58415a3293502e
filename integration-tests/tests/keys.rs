//! Named API keys (API.md §4.5) against real PostgreSQL: create, list without secrets, scopes
//! within the role and refused beyond the key's, expiry, `last_used_at`, revocation seen by the
//! revoking control plane at once and by a second one within its key cache's TTL, gRPC and the
//! `frameos keys` CLI.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use frameos_integration_tests::health::{Served, embedded_config};
use frameos_integration_tests::{Backend, Mesh};
use frameos_proto::v1;
use frameos_proto::v1::agent_service_client::AgentServiceClient;
use frameos_proto::v1::api_key_service_client::ApiKeyServiceClient;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// `DELETE /v1/me/keys/{id}` with `key`.
async fn revoke(base_url: &str, id: &str, key: &str) -> (u16, Value) {
    call(
        base_url,
        Method::DELETE,
        &format!("/v1/me/keys/{id}"),
        key,
        None,
    )
    .await
}

async fn call(
    base_url: &str,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{base_url}{path}"))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/me/keys` that must succeed; the new key's JSON.
async fn create(mesh: &Mesh, key: &str, body: Value) -> Value {
    let (status, created) =
        call(&mesh.base_url, Method::POST, "/v1/me/keys", key, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn listed(mesh: &Mesh, key: &str) -> Vec<Value> {
    let (status, list) = call(&mesh.base_url, Method::GET, "/v1/me/keys", key, None).await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

fn named<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items.iter().find(|k| k["name"] == name).unwrap()
}

fn field_names(value: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

fn grpc<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_named_scoped_listed_without_secrets_and_revoked() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let base = mesh.base_url.clone();
    let dev = mesh.account("dev-kim", "developer").await.unwrap();
    let other = mesh.account("dev-lee", "developer").await.unwrap();

    // Created with the role's every scope by default; the secret comes back this once.
    let ci = create(&mesh, &dev, json!({"name": "ci"})).await;
    assert_eq!(
        field_names(&ci),
        ["api_key", "expires_at", "id", "name", "scopes"]
    );
    assert_eq!(ci["scopes"], json!(["read", "run", "publish"]));
    assert_eq!(ci["expires_at"], Value::Null);
    let ci_secret = ci["api_key"].as_str().unwrap().to_string();
    let reader = create(&mesh, &dev, json!({"name": "reader", "scopes": ["read"]})).await;
    assert_eq!(reader["scopes"], json!(["read"]));
    let reader_secret = reader["api_key"].as_str().unwrap().to_string();
    let runner = create(&mesh, &dev, json!({"name": "runner", "scopes": ["run"]})).await;
    let runner_secret = runner["api_key"].as_str().unwrap().to_string();

    // Listed with every field, the account's first key as `default` with all the role allows,
    // and never a secret.
    let response = mesh
        .request(Method::GET, "/v1/me/keys", Some(&dev))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let raw = response.text().await.unwrap();
    for secret in [&dev, &ci_secret, &reader_secret, &runner_secret] {
        assert!(!raw.contains(secret.as_str()), "a secret is listed: {raw}");
    }
    assert!(!raw.contains("api_key") && !raw.contains("fos_"), "{raw}");
    let items: Value = serde_json::from_str(&raw).unwrap();
    let items = items["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 4, "{raw}");
    for item in &items {
        assert_eq!(
            field_names(item),
            [
                "created_at",
                "expires_at",
                "id",
                "last_used_at",
                "name",
                "scopes"
            ]
        );
    }
    assert_eq!(
        named(&items, "default")["scopes"],
        json!(["read", "run", "publish"])
    );
    // The key that listed was used; the others were not yet.
    assert!(
        named(&items, "default")["last_used_at"].is_string(),
        "{raw}"
    );
    assert_eq!(named(&items, "reader")["last_used_at"], Value::Null);

    // A key beyond its scopes: 403 naming the missing scope, on REST...
    let (status, body) = call(
        &base,
        Method::POST,
        "/v1/agents",
        &reader_secret,
        Some(json!({"slug": "kim-agent", "name": "k", "pricing": {"model": "free"}})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "permission_denied");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`publish` scope"), "{message}");
    let (status, body) = call(
        &base,
        Method::POST,
        "/v1/agents/anything/executions",
        &reader_secret,
        Some(json!({"inputs": {}})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`run` scope")
    );
    let (status, body) = call(&base, Method::GET, "/v1/executions", &runner_secret, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`read` scope")
    );
    // ...within its scopes it works, and any key may ask whom it belongs to.
    let (status, body) = call(&base, Method::GET, "/v1/executions", &reader_secret, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, me) = call(&base, Method::GET, "/v1/me", &runner_secret, None).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("dev-kim")));

    // ...and on gRPC alike.
    let channel = channel(mesh.grpc_addr).await;
    let refused = AgentServiceClient::new(channel.clone())
        .create_agent(grpc(v1::CreateAgentRequest::default(), &reader_secret))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("`publish` scope"), "{refused:?}");
    let mut keys = ApiKeyServiceClient::new(channel.clone());
    let refused = keys
        .list_api_keys(grpc(v1::ListApiKeysRequest {}, &runner_secret))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("`read` scope"), "{refused:?}");
    let over_grpc = keys
        .list_api_keys(grpc(v1::ListApiKeysRequest {}, &reader_secret))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(over_grpc.len(), 4);

    // last_used_at: set on use, and not written again within the minute.
    let items = listed(&mesh, &dev).await;
    let first_use = named(&items, "reader")["last_used_at"].clone();
    assert!(first_use.is_string(), "{items:?}");
    for _ in 0..3 {
        let (status, _) = call(&base, Method::GET, "/v1/executions", &reader_secret, None).await;
        assert_eq!(status, 200);
    }
    let items = listed(&mesh, &dev).await;
    assert_eq!(named(&items, "reader")["last_used_at"], first_use);

    // A key mints and revokes only keys no stronger than itself.
    let (status, body) = call(
        &base,
        Method::POST,
        "/v1/me/keys",
        &reader_secret,
        Some(json!({"name": "escalate", "scopes": ["read", "run"]})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("run"),
        "{body}"
    );
    let ci_id = ci["id"].as_str().unwrap();
    let (status, body) = revoke(&base, ci_id, &reader_secret).await;
    assert_eq!(status, 403, "{body}");

    // Revoked: 204, then refused on REST and gRPC, gone from the list; a second revoke and
    // another account's key are 404.
    let (status, _) = revoke(&base, ci_id, &dev).await;
    assert_eq!(status, 204);
    let (status, body) = call(&base, Method::GET, "/v1/me", &ci_secret, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    let refused = keys
        .list_api_keys(grpc(v1::ListApiKeysRequest {}, &ci_secret))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(listed(&mesh, &dev).await.iter().all(|k| k["id"] != ci_id));
    let (status, _) = revoke(&base, ci_id, &dev).await;
    assert_eq!(status, 404);
    let reader_id = reader["id"].as_str().unwrap();
    let (status, _) = revoke(&base, reader_id, &other).await;
    assert_eq!(status, 404, "another account's key is not found");

    // Bad requests: an empty name or scope list, an unknown scope, an expiry in the past.
    for (body, expected) in [
        (json!({"name": ""}), 422),
        (json!({"name": "x", "scopes": []}), 422),
        (json!({"name": "x", "scopes": ["root"]}), 400),
        (
            json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            422,
        ),
        (json!({"name": "x", "expires_at": "soon"}), 422),
    ] {
        let (status, answer) =
            call(&base, Method::POST, "/v1/me/keys", &dev, Some(body.clone())).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_never_exceed_the_role_and_expired_keys_are_refused() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let base = mesh.base_url.clone();
    let user = mesh.account("user-una", "user").await.unwrap();

    // A user's keys: read and run at most, by default and on request.
    let default = create(&mesh, &user, json!({"name": "laptop"})).await;
    assert_eq!(default["scopes"], json!(["read", "run"]));
    for scope in ["publish", "admin"] {
        let (status, body) = call(
            &base,
            Method::POST,
            "/v1/me/keys",
            &user,
            Some(json!({"name": "more", "scopes": ["read", scope]})),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "permission_denied");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(scope) && message.contains("role"),
            "{message}"
        );
    }
    // The bootstrap admin key holds every scope of its role.
    let items = listed(&mesh, &mesh.admin_key).await;
    assert_eq!(
        named(&items, "bootstrap")["scopes"],
        json!(["read", "run", "publish", "admin"])
    );
    // An admin key without the admin scope cannot administer.
    let narrow = create(
        &mesh,
        &mesh.admin_key,
        json!({"name": "ops", "scopes": ["read"]}),
    )
    .await;
    let (status, body) = call(
        &base,
        Method::GET,
        "/v1/reviews",
        narrow["api_key"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`admin` scope")
    );

    // An expiring key works until its time, then is refused, saying so.
    // Whole seconds: the database keeps microseconds, the comparison below wants equality.
    let expires_at =
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0) + chrono::TimeDelta::seconds(2);
    let short = create(
        &mesh,
        &user,
        json!({"name": "short", "expires_at": expires_at.to_rfc3339()}),
    )
    .await;
    let listed_expiry = short["expires_at"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(listed_expiry).unwrap(),
        expires_at
    );
    let short = short["api_key"].as_str().unwrap().to_string();
    let (status, _) = call(&base, Method::GET, "/v1/me", &short, None).await;
    assert_eq!(status, 200);
    // Time itself is the event: wait until just past the expiry.
    let left = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(100)).await;
    let (status, body) = call(&base, Method::GET, "/v1/me", &short, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    // Still listed (with its expiry) until revoked.
    assert!(named(&listed(&mesh, &user).await, "short")["expires_at"].is_string());
    mesh.shutdown().await.unwrap();
}

/// How long the second replica keeps a resolved key (FRAMEOS_KEY_CACHE_TTL_SECS).
const SECOND_TTL: Duration = Duration::from_secs(1);
/// Room above the TTL for the request that sees the change to make its way.
const MARGIN: Duration = Duration::from_secs(5);

/// Asks `GET /v1/me` with `key` until `done` holds for its answer; fails after `within`.
async fn until_me(base_url: &str, key: &str, within: Duration, done: impl Fn(u16, &Value) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = call(base_url, Method::GET, "/v1/me", key, None).await;
        if done(status, &body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} {body} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second control plane on the same database (keeping resolved keys for [`SECOND_TTL`]) and
/// a gateway in front of it. A key revoked through the first replica is refused by the first at
/// once and by the second within its TTL (ADR 0027), REST and gRPC; an account's role changed
/// in the database is honoured by the second within the same bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_at_once_here_and_within_the_ttl_elsewhere() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev-rae", "developer").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(dir.path());
    config.database_url = mesh.database_url().to_string();
    config.migrate = false;
    config.key_cache_ttl_secs = SECOND_TTL.as_secs();
    let second = Served::start(frameos_control_plane::Server::bind(config).await.unwrap());
    let mut gateway_config = frameos_gateway::Config::embedded();
    gateway_config.http_addr = "127.0.0.1:0".parse().unwrap();
    gateway_config.control_plane_url = format!("http://{}", second.addr);
    let gateway = frameos_gateway::Gateway::bind(gateway_config)
        .await
        .unwrap();
    let second_base = format!("http://{}", gateway.local_addr());
    let stop_gateway = CancellationToken::new();
    let gateway = tokio::spawn(gateway.run(stop_gateway.clone()));

    // Reflection on the second replica lists the key service.
    let channel = channel(second.addr).await;
    assert!(
        reflected_services(channel.clone())
            .await
            .contains(&"frameos.v1.ApiKeyService".to_string())
    );

    let key = create(&mesh, &dev, json!({"name": "shared"})).await;
    let id = key["id"].as_str().unwrap();
    let secret = key["api_key"].as_str().unwrap();
    // Known to both replicas (and kept by both).
    for base in [&mesh.base_url, &second_base] {
        let (status, _) = call(base, Method::GET, "/v1/me", secret, None).await;
        assert_eq!(status, 200);
    }
    let mut keys = ApiKeyServiceClient::new(channel);
    keys.list_api_keys(grpc(v1::ListApiKeysRequest {}, secret))
        .await
        .unwrap();

    let (status, _) = revoke(&mesh.base_url, id, &dev).await;
    assert_eq!(status, 204);
    let revoked = Instant::now();
    // The replica that revoked it forgot it at once.
    let (status, body) = call(&mesh.base_url, Method::GET, "/v1/me", secret, None).await;
    assert_eq!(status, 401, "the revoking replica still accepts it: {body}");
    // The other one within its TTL, REST and gRPC.
    until_me(&second_base, secret, SECOND_TTL + MARGIN, |status, _| {
        status == 401
    })
    .await;
    let refused = keys
        .list_api_keys(grpc(v1::ListApiKeysRequest {}, secret))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    eprintln!(
        "[keys] revoked key refused by the second replica {} ms after the 204 (TTL {} s)",
        revoked.elapsed().as_millis(),
        SECOND_TTL.as_secs()
    );

    // A role lowered in the database (no API does that): the second replica, which keeps the
    // developer key, serves it as a user's within the bound, scopes included.
    let (status, me) = call(&second_base, Method::GET, "/v1/me", &dev, None).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("developer")));
    let db = sea_orm::Database::connect(mesh.database_url())
        .await
        .unwrap();
    let lowered = sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "UPDATE accounts SET role = 'user' WHERE name = 'dev-rae'",
    )
    .await
    .unwrap();
    assert_eq!(lowered.rows_affected(), 1);
    // `/v1/me` reads the account afresh; what the cached caller may do shows in a call that
    // needs the developer role: creating agents, refused within the bound.
    let deadline = Instant::now() + SECOND_TTL + MARGIN;
    for attempt in 0.. {
        let slug = format!("probe-{attempt}");
        let (status, body) = call(
            &second_base,
            Method::POST,
            "/v1/agents",
            &dev,
            Some(json!({"slug": slug, "name": "probe", "pricing": {"model": "free"}})),
        )
        .await;
        if status == 403 {
            break;
        }
        assert_eq!(status, 201, "{body}");
        assert!(
            Instant::now() < deadline,
            "the lowered role is not honoured after {:?}",
            SECOND_TTL + MARGIN
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, me) = call(&second_base, Method::GET, "/v1/me", &dev, None).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("user")));

    stop_gateway.cancel();
    gateway.await.unwrap().unwrap();
    second.stop().await;
    mesh.shutdown().await.unwrap();
}

async fn reflected_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    list.service.into_iter().map(|s| s.name).collect()
}

/// The `frameos` binary next to this test's profile directory (`cargo build -p frameos`, which
/// scripts/test runs before the tests, makes it).
fn frameos_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test binary>
    let binary = exe.parent().unwrap().parent().unwrap().join("frameos");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p frameos` first",
        binary.display()
    );
    binary
}

async fn frameos(mesh: &Mesh, key: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(frameos_binary())
        .args(args)
        .env("FRAMEOS_API_URL", &mesh.base_url)
        .env("FRAMEOS_API_KEY", key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "frameos {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_and_revokes_keys() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev-cli", "developer").await.unwrap();

    let created = frameos(
        &mesh,
        &dev,
        &[
            "keys", "create", "--name", "from-cli", "--scope", "read,run", "--output", "json",
        ],
    )
    .await;
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["scopes"], json!(["read", "run"]));
    let id = created["id"].as_str().unwrap();
    let secret = created["api_key"].as_str().unwrap();
    // The new key works, and the table shows it without its secret.
    let table = frameos(&mesh, secret, &["keys", "list"]).await;
    assert!(
        table.contains(id) && table.contains("from-cli") && table.contains("read,run"),
        "{table}"
    );
    assert!(!table.contains(secret), "{table}");
    let text = frameos(&mesh, &dev, &["keys", "create", "--name", "human"]).await;
    assert!(text.contains("shown once"), "{text}");

    let revoked = frameos(&mesh, &dev, &["keys", "revoke", id]).await;
    assert!(revoked.contains(id), "{revoked}");
    let list = frameos(&mesh, &dev, &["keys", "list", "--output", "json"]).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "human"]);
    // A revoked key makes the CLI fail with the API's reason.
    let out = tokio::process::Command::new(frameos_binary())
        .args(["keys", "list"])
        .env("FRAMEOS_API_URL", &mesh.base_url)
        .env("FRAMEOS_API_KEY", secret)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthenticated"));
    mesh.shutdown().await.unwrap();
}
