//! Who may do what: the 401/403/404 matrix of API.md §2, and bad packages over REST.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

async fn call(
    mesh: &Mesh,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = mesh.request(method, path, key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn upload(mesh: &Mesh, key: &str, slug: &str, package: Vec<u8>) -> (u16, Value) {
    let response = mesh.upload(key, slug, package).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn free_agent(slug: &str) -> Value {
    json!({"slug": slug, "name": slug, "pricing": {"model": "free"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_ownership_are_enforced() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let admin = mesh.admin_key.clone();
    let user = mesh.account("user-uma", "user").await.unwrap();
    let ada = mesh.account("dev-ada", "developer").await.unwrap();
    let bob = mesh.account("dev-bob", "developer").await.unwrap();

    // 401: no key, or a key that matches nothing. The error has the documented shape.
    for (method, path) in [
        (Method::GET, "/v1/me"),
        (Method::POST, "/v1/agents"),
        (Method::GET, "/v1/reviews"),
        (Method::POST, "/v1/accounts"),
    ] {
        let (status, body) = call(&mesh, method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated");
        assert!(body["error"]["message"].is_string());
        let forged = "fos_0000000000000000000000000000000000000000000000000000000000000000";
        let (status, _) = call(&mesh, method.clone(), path, Some(forged), Some(json!({}))).await;
        assert_eq!(status, 401, "{method} {path} with a forged key");
    }

    // 403: a role too low.
    let (status, body) = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        Some(&user),
        Some(free_agent("by-user")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "permission_denied");
    let (status, _) = call(
        &mesh,
        Method::POST,
        "/v1/accounts",
        Some(&ada),
        Some(json!({"name": "x", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(&mesh, Method::GET, "/v1/reviews", Some(&ada), None).await;
    assert_eq!(status, 403);

    // Ada's agent, not yet published: invisible to Bob (404), not publishable by him.
    let (status, _) = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        Some(&ada),
        Some(free_agent("ada-agent")),
    )
    .await;
    assert_eq!(status, 201);
    let package = packages::node_agent("ada-agent", "1.0.0", "module.exports = async () => 1;\n");
    let (status, body) = upload(&mesh, &bob, "ada-agent", package.clone()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = call(&mesh, Method::GET, "/v1/agents/ada-agent", Some(&bob), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &mesh,
        Method::GET,
        "/v1/agents/ada-agent/versions",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // ... and nothing was stored for Bob's attempt.
    let (status, versions) = call(
        &mesh,
        Method::GET,
        "/v1/agents/ada-agent/versions",
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(versions["items"].as_array().unwrap().len(), 0);

    // A user cannot approve; a developer cannot approve even their own version.
    let (status, _) = upload(&mesh, &ada, "ada-agent", package).await;
    assert_eq!(status, 201);
    let approve = "/v1/agents/ada-agent/versions/1.0.0/approve";
    let (status, _) = call(&mesh, Method::POST, approve, Some(&user), None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&mesh, Method::POST, approve, Some(&ada), None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&mesh, Method::POST, approve, Some(&admin), None).await;
    assert_eq!(status, 200);

    // Once published, its existence is public: Bob gets 403 rather than 404.
    let next = packages::node_agent("ada-agent", "1.0.1", "module.exports = async () => 2;\n");
    let (status, body) = upload(&mesh, &bob, "ada-agent", next).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(
        &mesh,
        Method::GET,
        "/v1/agents/ada-agent/versions",
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Admins see any agent's versions.
    let (status, _) = call(
        &mesh,
        Method::GET,
        "/v1/agents/ada-agent/versions",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // 404s for things that do not exist.
    let (status, _) = call(&mesh, Method::GET, "/v1/agents/nope", None, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &mesh,
        Method::POST,
        "/v1/agents/ada-agent/versions/9.9.9/approve",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // 409s for duplicates.
    let (status, body) = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        Some(&bob),
        Some(free_agent("ada-agent")),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "slug_taken");
    let (status, body) = call(
        &mesh,
        Method::POST,
        "/v1/accounts",
        Some(&admin),
        Some(json!({"name": "dev-bob", "role": "user"})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "account_exists");

    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_write_nothing() {
    let mesh = Mesh::start_with(Backend::PostgresS3, |config| {
        config.limits.max_package_bytes = 64 * 1024;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();

    // Request bodies.
    let cases = [
        (
            json!({"slug": "Bad Slug", "name": "x", "pricing": {"model": "free"}}),
            422,
            "validation_failed",
        ),
        (
            json!({"slug": "ok-slug", "name": "x", "pricing": {"model": "per_execution", "price_minor": 1.5, "currency": "INR"}}),
            400,
            "invalid_request",
        ),
        (
            json!({"slug": "ok-slug", "name": "x", "pricing": {"model": "per_execution", "price_minor": -5, "currency": "INR"}}),
            422,
            "validation_failed",
        ),
        (
            json!({"slug": "ok-slug", "name": "x", "pricing": {"model": "per_execution", "price_minor": 5000, "currency": "rupees"}}),
            422,
            "validation_failed",
        ),
        (json!({"slug": "ok-slug"}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let (got, error) = call(
            &mesh,
            Method::POST,
            "/v1/agents",
            Some(&dev),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (got, error["error"]["code"].as_str().unwrap_or_default()),
            (status, code),
            "{body}: {error}"
        );
    }
    let (status, paid) = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        Some(&dev),
        Some(json!({"slug": "ok-slug", "name": "Paid", "pricing": {"model": "per_execution", "price_minor": 5000, "currency": "INR"}})),
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(
        paid["pricing"],
        json!({"model": "per_execution", "price_minor": 5000, "currency": "INR"})
    );

    // Packages.
    let good_manifest = |extra: Value| {
        let mut m = json!({"name": "ok-slug", "version": "1.0.0", "runtime": "node", "entrypoint": "index.js", "inputs": {"type": "object"}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m.to_string()
    };
    let code = b"module.exports = async () => 1;\n" as &[u8];
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "not gzip",
            b"definitely not a tarball".to_vec(),
            422,
            "invalid_package",
        ),
        (
            "no manifest",
            packages::tar_gz(&[("index.js", code)]),
            422,
            "invalid_manifest",
        ),
        (
            "bad semver",
            packages::tar_gz(&[
                (
                    "agent.json",
                    good_manifest(json!({"version": "1.0"})).as_bytes(),
                ),
                ("index.js", code),
            ]),
            422,
            "invalid_manifest",
        ),
        (
            "name is not the slug",
            packages::tar_gz(&[
                (
                    "agent.json",
                    good_manifest(json!({"name": "other"})).as_bytes(),
                ),
                ("index.js", code),
            ]),
            422,
            "invalid_manifest",
        ),
        (
            "entrypoint missing",
            packages::tar_gz(&[("agent.json", good_manifest(json!({})).as_bytes())]),
            422,
            "invalid_manifest",
        ),
        (
            "memory above the maximum",
            packages::tar_gz(&[
                (
                    "agent.json",
                    good_manifest(json!({"resources": {"memory_mb": 4096}})).as_bytes(),
                ),
                ("index.js", code),
            ]),
            422,
            "invalid_manifest",
        ),
        (
            "inputs not a schema",
            packages::tar_gz(&[
                (
                    "agent.json",
                    good_manifest(json!({"inputs": {"type": "nonsense"}})).as_bytes(),
                ),
                ("index.js", code),
            ]),
            422,
            "invalid_manifest",
        ),
        ("path escape", escape_package(), 422, "unsafe_archive"),
        (
            "too large",
            vec![0u8; 64 * 1024 + 1],
            413,
            "package_too_large",
        ),
    ];
    for (name, package, status, code) in cases {
        let (got, body) = upload(&mesh, &dev, "ok-slug", package).await;
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap_or_default()),
            (status, code),
            "{name}: {body}"
        );
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
    }
    // Wrong content type.
    let response = mesh
        .request(Method::POST, "/v1/agents/ok-slug/versions", Some(&dev))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // None of it left a version or an object behind.
    let (_, versions) = call(
        &mesh,
        Method::GET,
        "/v1/agents/ok-slug/versions",
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 0, "{versions}");
    let key = format!("agents/{}/v1.0.0.tar.gz", paid["id"].as_str().unwrap());
    assert!(mesh.store.get(&key, 1 << 20).await.is_err());

    mesh.shutdown().await.unwrap();
}

/// A tar whose entry is named `../escape.js`, written byte by byte since `tar` refuses to.
fn escape_package() -> Vec<u8> {
    use std::io::Write;
    let manifest = r#"{"name":"ok-slug","version":"1.0.0","runtime":"node","entrypoint":"index.js","inputs":{"type":"object"}}"#;
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("agent.json", manifest.as_bytes()),
        ("index.js", b"module.exports=async()=>1;" as &[u8]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let mut header = tar::Header::new_old();
    let name = b"../escape.js";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(1);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append(&header, &b"x"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_of_one_version_store_exactly_one() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let (status, _) = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        Some(&dev),
        Some(free_agent("racy")),
    )
    .await;
    assert_eq!(status, 201);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let package = packages::node_agent(
            "racy",
            "1.0.0",
            &format!("module.exports = async () => {i};\n"),
        );
        let request = mesh
            .request(Method::POST, "/v1/agents/racy/versions", Some(&dev))
            .header("content-type", "application/gzip")
            .body(package);
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    let (_, versions) = call(
        &mesh,
        Method::GET,
        "/v1/agents/racy/versions",
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 1);
    // The stored bytes are those of the version that won.
    let winner = &versions["items"][0];
    let (_, agent) = call(&mesh, Method::GET, "/v1/agents/racy", Some(&dev), None).await;
    let stored = mesh
        .store
        .get(
            &format!("agents/{}/v1.0.0.tar.gz", agent["id"].as_str().unwrap()),
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!(
        winner["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored))
    );
    mesh.shutdown().await.unwrap();
}
