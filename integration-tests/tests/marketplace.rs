//! What the web front end shows buyers, developers and reviewers (issue 11), through the REST
//! API: marketplace filters and the developer's name, a developer's own agents, the release
//! history with changelogs and examples, and the package file browser of a review.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine;
use frameos_integration_tests::{Backend, Mesh, TestDatabase, packages};
use frameos_migrations::{Migrator, MigratorTrait};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

async fn call(mesh: &Mesh, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
    let response = mesh.request(method, path, key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(mesh: &Mesh, path: &str, key: Option<&str>) -> (u16, Value) {
    call(mesh, Method::GET, path, key).await
}

async fn upload(mesh: &Mesh, key: &str, slug: &str, package: Vec<u8>) -> Value {
    let response = mesh.upload(key, slug, package).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn create(mesh: &Mesh, key: &str, slug: &str, pricing: Value) {
    let response = mesh
        .request(Method::POST, "/v1/agents", Some(key))
        .json(&json!({"slug": slug, "name": slug, "pricing": pricing}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn approve(mesh: &Mesh, slug: &str, version: &str) {
    let path = format!("/v1/agents/{slug}/versions/{version}/approve");
    let (status, body) = call(mesh, Method::POST, &path, Some(&mesh.admin_key)).await;
    assert_eq!(status, 200, "{body}");
}

fn slugs(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marketplace_filters_by_runtime_and_price_and_names_the_developer() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let ada = mesh.account("Ada Lovelace", "developer").await.unwrap();
    let bob = mesh.account("Bob", "developer").await.unwrap();
    let code = "module.exports = async () => 1;\n";
    let py = "def run(inputs, ctx):\n    return 1\n";
    mesh.publish_approved(
        &ada,
        "node-free",
        packages::node_agent("node-free", "1.0.0", code),
        None,
    )
    .await
    .unwrap();
    let python = packages::python_agent("py-cheap", "1.0.0", py, 10_000, 128);
    mesh.publish_approved(&ada, "py-cheap", python, Some(3000))
        .await
        .unwrap();
    let dear = packages::node_agent("node-dear", "1.0.0", code);
    mesh.publish_approved(&bob, "node-dear", dear, Some(50_000))
        .await
        .unwrap();
    // Unpublished: created, and one version waiting for review.
    create(&mesh, &ada, "ada-draft", json!({"model": "free"})).await;
    upload(
        &mesh,
        &ada,
        "ada-draft",
        packages::node_agent("ada-draft", "0.1.0", code),
    )
    .await;

    let (_, all) = get(&mesh, "/v1/agents", None).await;
    assert_eq!(slugs(&all), ["node-dear", "node-free", "py-cheap"]);
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["owner_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bob", "Ada Lovelace", "Ada Lovelace"]);
    let (_, one) = get(&mesh, "/v1/agents/py-cheap", None).await;
    assert_eq!(one["owner_name"], "Ada Lovelace");

    for (query, expected) in [
        ("runtime=python", vec!["py-cheap"]),
        ("runtime=node", vec!["node-dear", "node-free"]),
        ("pricing_model=free", vec!["node-free"]),
        ("pricing_model=per_execution", vec!["node-dear", "py-cheap"]),
        ("max_price_minor=3000", vec!["node-free", "py-cheap"]),
        ("max_price_minor=2999", vec!["node-free"]),
        (
            "runtime=node&pricing_model=per_execution",
            vec!["node-dear"],
        ),
        ("runtime=python&q=nothing-like-it", vec![]),
    ] {
        let (status, page) = get(&mesh, &format!("/v1/agents?{query}"), None).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(slugs(&page), expected, "{query}");
    }
    // Filters page like the plain listing.
    let (_, first) = get(&mesh, "/v1/agents?runtime=node&page_size=1", None).await;
    assert_eq!(slugs(&first), ["node-dear"]);
    let token = first["next_page_token"].as_str().unwrap();
    let (_, second) = get(
        &mesh,
        &format!("/v1/agents?runtime=node&page_size=1&page_token={token}"),
        None,
    )
    .await;
    assert_eq!(slugs(&second), ["node-free"]);

    // A developer's own agents, the draft included; nobody else's.
    let (status, mine) = get(&mesh, "/v1/agents?mine=true", Some(&ada)).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(slugs(&mine), ["ada-draft", "node-free", "py-cheap"]);
    assert!(mine["items"][0]["latest_version"].is_null());
    let (_, mine) = get(&mesh, "/v1/agents?mine=true&runtime=python", Some(&ada)).await;
    assert_eq!(slugs(&mine), ["py-cheap"]);
    let (_, bobs) = get(&mesh, "/v1/agents?mine=true", Some(&bob)).await;
    assert_eq!(slugs(&bobs), ["node-dear"]);

    // Bad filters are the caller's mistake, named.
    let (status, body) = get(&mesh, "/v1/agents?mine=true", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("mine"));
    for (query, needle) in [
        ("runtime=ruby", "runtime"),
        ("pricing_model=monthly", "pricing_model"),
        ("max_price_minor=-1", "max_price_minor"),
        ("max_price_minor=0", "max_price_minor"),
    ] {
        let (status, body) = get(&mesh, &format!("/v1/agents?{query}"), None).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    let (status, _) = get(&mesh, "/v1/agents?max_price_minor=cheap", None).await;
    assert_eq!(status, 400);
    mesh.shutdown().await.unwrap();
}

fn described(version: &str, changelog: &str) -> Vec<u8> {
    let manifest = json!({
        "name": "counter",
        "version": version,
        "runtime": "node",
        "entrypoint": "index.js",
        "inputs": {"type": "object", "properties": {"text": {"type": "string"}}},
        "outputs": {"type": "object", "required": ["words"]},
        "changelog": changelog,
        "examples": [{"title": "Two words", "inputs": {"text": "a b"}, "output": {"words": 2}}]
    });
    packages::tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        (
            "index.js",
            b"module.exports = async (i) => ({ words: 2 });\n",
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_list_published_versions_with_changelogs_and_examples() {
    let mesh = Mesh::start(Backend::Embedded).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let stranger = mesh.account("sam", "user").await.unwrap();
    create(&mesh, &dev, "counter", json!({"model": "free"})).await;
    upload(&mesh, &dev, "counter", described("1.0.0", "First release.")).await;

    // Not published yet: the public cannot see it, its owner sees no releases.
    let (status, _) = get(&mesh, "/v1/agents/counter/releases", Some(&stranger)).await;
    assert_eq!(status, 404);
    let (status, body) = get(&mesh, "/v1/agents/counter/releases", Some(&dev)).await;
    assert_eq!((status, body), (200, json!({"items": []})));

    approve(&mesh, "counter", "1.0.0").await;
    upload(&mesh, &dev, "counter", described("1.1.0", "Faster.")).await;
    let (status, body) = get(&mesh, "/v1/agents/counter/releases", None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the pending 1.1.0 is not a release: {body}");
    assert_eq!(items[0]["version"], "1.0.0");
    assert_eq!(items[0]["status"], "published");
    assert!(items[0]["published_at"].is_string(), "{body}");
    assert!(
        items[0].get("review").is_none(),
        "who reviewed is not public: {body}"
    );
    assert_eq!(items[0]["manifest"]["changelog"], "First release.");
    assert_eq!(
        items[0]["manifest"]["examples"],
        json!([{"title": "Two words", "inputs": {"text": "a b"}, "output": {"words": 2}}])
    );

    approve(&mesh, "counter", "1.1.0").await;
    let (_, body) = get(&mesh, "/v1/agents/counter/releases", None).await;
    let versions: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    assert_eq!(body["items"][0]["manifest"]["changelog"], "Faster.");
    let (status, _) = get(&mesh, "/v1/agents/nobody/releases", None).await;
    assert_eq!(status, 404);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_read_every_file_of_the_package_they_judge() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let admin = mesh.admin_key.clone();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let other = mesh.account("other", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let manifest = json!({
        "name": "browse", "version": "1.0.0", "runtime": "node", "entrypoint": "index.js",
        "inputs": {"type": "object"}
    })
    .to_string();
    let index = "const util = require('./lib/util');\nmodule.exports = async () => util();\n";
    let big = "x".repeat(300 * 1024);
    let binary: &[u8] = &[0x89, b'P', b'N', b'G', 0x00, 0xff];
    let package = packages::tar_gz(&[
        ("agent.json", manifest.as_bytes()),
        ("index.js", index.as_bytes()),
        ("lib/util.js", b"module.exports = () => 42;\n"),
        ("data/big.txt", big.as_bytes()),
        ("logo.png", binary),
    ]);
    create(&mesh, &dev, "browse", json!({"model": "free"})).await;
    upload(&mesh, &dev, "browse", package).await;

    let files = "/v1/agents/browse/versions/1.0.0/files";
    let (status, list) = get(&mesh, files, Some(&admin)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["items"],
        json!([
            {"path": "agent.json", "size_bytes": manifest.len()},
            {"path": "data/big.txt", "size_bytes": big.len()},
            {"path": "index.js", "size_bytes": index.len()},
            {"path": "lib/util.js", "size_bytes": 27},
            {"path": "logo.png", "size_bytes": 6},
        ])
    );
    let (_, owners) = get(&mesh, files, Some(&dev)).await;
    assert_eq!(owners, list, "the developer sees what the reviewer sees");

    let (status, file) = get(&mesh, &format!("{files}/index.js"), Some(&admin)).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(
        file,
        json!({"path": "index.js", "size_bytes": index.len(), "encoding": "utf8",
               "content": index, "truncated": false})
    );
    let (_, nested) = get(&mesh, &format!("{files}/lib/util.js"), Some(&admin)).await;
    assert_eq!(nested["content"], "module.exports = () => 42;\n");
    let (_, png) = get(&mesh, &format!("{files}/logo.png"), Some(&admin)).await;
    assert_eq!(png["encoding"], "base64");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(png["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, binary);
    let (_, cut) = get(&mesh, &format!("{files}/data/big.txt"), Some(&admin)).await;
    assert_eq!(cut["truncated"], true);
    assert_eq!(cut["size_bytes"], big.len());
    assert_eq!(cut["content"].as_str().unwrap().len(), 256 * 1024);

    // Nothing else: a missing file or version, a stranger, another developer, a plain user.
    for (path, key, expected) in [
        (format!("{files}/missing.js"), &admin, 404),
        (
            "/v1/agents/browse/versions/9.9.9/files".to_string(),
            &admin,
            404,
        ),
        (files.to_string(), &other, 404),
        (files.to_string(), &user, 403),
    ] {
        let (status, body) = get(&mesh, &path, Some(key)).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    let (status, _) = get(&mesh, files, None).await;
    assert_eq!(status, 401);
    // Once published, another developer sees the agent but still not its code.
    approve(&mesh, "browse", "1.0.0").await;
    let (status, body) = get(&mesh, files, Some(&other)).await;
    assert_eq!(status, 403, "{body}");
    mesh.shutdown().await.unwrap();
}

/// m0010 gives versions uploaded before it their runtime from the stored manifest, on both
/// databases (their SQL differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_stored_before_the_runtime_column_get_their_runtime_from_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = TestDatabase::create().await.unwrap();
    for url in [
        format!("sqlite://{}/m.db?mode=rwc", dir.path().display()),
        postgres.url.clone(),
    ] {
        let db = Database::connect(&url).await.unwrap();
        Migrator::up(&db, Some(9)).await.unwrap();
        db.execute_unprepared(
            "INSERT INTO accounts (id, name, role, created_at) \
             VALUES ('acc', 'dev', 'developer', '2026-01-01T00:00:00Z')",
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "INSERT INTO agents (id, slug, name, description, owner_id, pricing_model, \
             created_at, updated_at) VALUES ('ag', 'old', 'old', '', 'acc', 'free', \
             '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        )
        .await
        .unwrap();
        for (id, runtime) in [("v1", "python"), ("v2", "node")] {
            db.execute_unprepared(&format!(
                "INSERT INTO agent_versions (id, agent_id, version, status, sha256, size_bytes, \
                 package_key, manifest, scan, created_at) VALUES ('{id}', 'ag', '1.0.{id}', \
                 'published', '', 0, 'k', '{{\"runtime\":\"{runtime}\",\"name\":\"old\"}}', \
                 '{{}}', '2026-01-01T00:00:00Z')"
            ))
            .await
            .unwrap();
        }
        Migrator::up(&db, None).await.unwrap();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT id, runtime FROM agent_versions ORDER BY id",
            ))
            .await
            .unwrap();
        let found: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "id").unwrap(),
                    r.try_get("", "runtime").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [("v1".into(), "python".into()), ("v2".into(), "node".into())],
            "{url}"
        );
        db.close().await.unwrap();
    }
    postgres.drop_database().await.unwrap();
}

fn caller(version: &str, dependencies: Value) -> Vec<u8> {
    let manifest = json!({
        "name": "caller", "version": version, "runtime": "node", "entrypoint": "index.js",
        "inputs": {"type": "object"}, "dependencies": dependencies
    });
    packages::tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("index.js", b"module.exports = async () => 1;\n"),
    ])
}

/// API.md §5.1: a dependency must name a published agent and a range one of its published
/// versions satisfies, or the upload is refused with `invalid_dependency` and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_must_resolve_when_a_version_is_uploaded() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    create(&mesh, &dev, "caller", json!({"model": "free"})).await;
    create(&mesh, &dev, "helper", json!({"model": "free"})).await;
    let try_upload = |package: Vec<u8>| mesh.upload(&dev, "caller", package).send();
    for (dependencies, needles) in [
        (
            json!({"nobody": "^1.0.0"}),
            vec!["nobody", "^1.0.0", "no agent"],
        ),
        (
            json!({"helper": "^1.0.0"}),
            vec!["helper", "no published version"],
        ),
        (json!({"helper": "^^1"}), vec!["helper", "^^1"]),
    ] {
        let response = try_upload(caller("1.0.0", dependencies.clone()))
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{dependencies}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_dependency", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }
    upload(
        &mesh,
        &dev,
        "helper",
        packages::node_agent("helper", "1.2.0", "module.exports = async () => 2;\n"),
    )
    .await;
    approve(&mesh, "helper", "1.2.0").await;
    let response = try_upload(caller("1.0.0", json!({"helper": "^2.0.0"})))
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_dependency", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("satisfies"),
        "{body}"
    );
    // Nothing was stored by the refusals: 1.0.0 is still free to upload.
    let (_, versions) = get(&mesh, "/v1/agents/caller/versions", Some(&dev)).await;
    assert_eq!(versions["items"], json!([]));

    let accepted = upload(
        &mesh,
        &dev,
        "caller",
        caller("1.0.0", json!({"helper": "^1.0.0"})),
    )
    .await;
    assert_eq!(accepted["status"], "pending_review", "{accepted}");
    approve(&mesh, "caller", "1.0.0").await;
    let (_, agent) = get(&mesh, "/v1/agents/caller", None).await;
    assert_eq!(
        agent["latest_version"]["manifest"]["dependencies"],
        json!({"helper": "^1.0.0"})
    );
    mesh.shutdown().await.unwrap();
}
