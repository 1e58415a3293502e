//! The agent lifecycle over REST: create developer → create agent → publish → scanner →
//! admin review → marketplace, on real PostgreSQL + S3 and on the embedded defaults.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn publish(mesh: &Mesh, key: &str, slug: &str, package: Vec<u8>) -> (u16, Value) {
    json_of(mesh.upload(key, slug, package).send().await.unwrap()).await
}

async fn create_agent(mesh: &Mesh, key: &str, slug: &str) -> (u16, Value) {
    json_of(
        mesh.request(Method::POST, "/v1/agents", Some(key))
            .json(&json!({"slug": slug, "name": slug, "description": "an agent", "pricing": {"model": "free"}}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn lifecycle(backend: Backend) {
    let mesh = Mesh::start(backend).await.unwrap();
    let admin = mesh.admin_key.clone();

    // An admin creates a developer; the key works at once.
    let dev = mesh.account("dev-ada", "developer").await.unwrap();
    let (status, me) = json_of(
        mesh.request(Method::GET, "/v1/me", Some(&dev))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "developer");
    assert_eq!(me["name"], "dev-ada");

    // The developer creates an agent and publishes a real example package.
    let (status, agent) = create_agent(&mesh, &dev, "word-count").await;
    assert_eq!(status, 201, "{agent}");
    assert_eq!(agent["pricing"]["model"], "free");
    assert_eq!(agent["owner_id"], me["id"]);
    let package = packages::example("word-count");
    let (status, version) = publish(&mesh, &dev, "word-count", package.clone()).await;
    assert_eq!(status, 201, "{version}");
    assert_eq!(version["status"], "pending_review");
    assert_eq!(version["version"], "1.0.0");
    assert_eq!(version["scan"]["passed"], true, "{version}");
    assert_eq!(version["sha256"], hex::encode(Sha256::digest(&package)));
    assert_eq!(version["size_bytes"], package.len());
    assert_eq!(version["manifest"]["runtime"], "node");

    // The exact bytes are in the package store under agents/{agent_id}/v{version}.tar.gz.
    let key = format!("agents/{}/v1.0.0.tar.gz", agent["id"].as_str().unwrap());
    let stored = mesh.store.get(&key, 1 << 24).await.unwrap();
    assert_eq!(&stored[..], &package[..]);

    // Not in the marketplace before review; the owner still sees it.
    let (status, list) = json_of(
        mesh.request(Method::GET, "/v1/agents", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    let (status, _) = json_of(
        mesh.request(Method::GET, "/v1/agents/word-count", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, own) = json_of(
        mesh.request(Method::GET, "/v1/agents/word-count", Some(&dev))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(own["latest_version"], Value::Null);

    // The scanner rejects a package that spawns processes, at once, with the place it found.
    let (status, _) = create_agent(&mesh, &dev, "sneaky").await;
    assert_eq!(status, 201);
    let bad = packages::node_agent(
        "sneaky",
        "1.0.0",
        "// harmless\nconst cp = require('child_process');\nmodule.exports = async () => cp.execSync('id').toString();\n",
    );
    let (status, rejected) = publish(&mesh, &dev, "sneaky", bad).await;
    assert_eq!(status, 201, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["scan"]["passed"], false);
    let violation = rejected["scan"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "node.child_process")
        .cloned()
        .unwrap_or_else(|| panic!("no child_process finding in {rejected}"));
    assert_eq!(violation["severity"], "high");
    assert_eq!(violation["path"], "index.js");
    assert_eq!(violation["line"], 2);
    assert_eq!(rejected["review"]["reviewer"], "scanner");

    // The review queue holds the clean version only.
    let (status, queue) = json_of(
        mesh.request(
            Method::GET,
            "/v1/reviews?status=pending_review",
            Some(&admin),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{queue}");
    let queued: Vec<(&str, &str)> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["agent"].as_str().unwrap(), v["version"].as_str().unwrap()))
        .collect();
    assert_eq!(queued, vec![("word-count", "1.0.0")]);

    // An admin approves: published, with who and when.
    let (status, approved) = json_of(
        mesh.request(
            Method::POST,
            "/v1/agents/word-count/versions/1.0.0/approve",
            Some(&admin),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "published");
    assert_eq!(approved["review"]["decision"], "approved");
    let (_, admin_me) = json_of(
        mesh.request(Method::GET, "/v1/me", Some(&admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(approved["review"]["reviewer"], admin_me["id"]);
    assert!(approved["review"]["decided_at"].is_string());

    // Deciding twice is a conflict, not a second decision.
    let (status, again) = json_of(
        mesh.request(
            Method::POST,
            "/v1/agents/word-count/versions/1.0.0/reject",
            Some(&admin),
        )
        .json(&json!({"reason": "changed my mind"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "conflict");

    // Now the marketplace lists it, to anyone, with its latest published version.
    let (status, list) = json_of(
        mesh.request(Method::GET, "/v1/agents", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["slug"], "word-count");
    assert_eq!(items[0]["latest_version"]["version"], "1.0.0");
    let (status, found) = json_of(
        mesh.request(Method::GET, "/v1/agents?q=WORD", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, none) = json_of(
        mesh.request(Method::GET, "/v1/agents?q=sneaky", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    // Versions are immutable and must grow.
    let (status, exists) = publish(&mesh, &dev, "word-count", package.clone()).await;
    assert_eq!(status, 409, "{exists}");
    assert_eq!(exists["error"]["code"], "version_exists");
    let older = packages::node_agent("word-count", "0.9.0", "module.exports = async () => 1;\n");
    let (status, lower) = publish(&mesh, &dev, "word-count", older).await;
    assert_eq!(status, 422, "{lower}");
    assert_eq!(lower["error"]["code"], "version_not_greater");

    // A newer version goes through review and can be rejected with a reason (required).
    let newer = packages::node_agent("word-count", "1.1.0", "module.exports = async () => 2;\n");
    let (status, v110) = publish(&mesh, &dev, "word-count", newer).await;
    assert_eq!(status, 201, "{v110}");
    let path = "/v1/agents/word-count/versions/1.1.0/reject";
    let (status, no_reason) = json_of(
        mesh.request(Method::POST, path, Some(&admin))
            .json(&json!({"reason": " "}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{no_reason}");
    let (status, rejected) = json_of(
        mesh.request(Method::POST, path, Some(&admin))
            .json(&json!({"reason": "does not count anything"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["review"]["reason"], "does not count anything");
    // The rejected version never reaches the marketplace.
    let (_, agent) = json_of(
        mesh.request(Method::GET, "/v1/agents/word-count", None)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(agent["latest_version"]["version"], "1.0.0");

    // The owner sees every version with its status.
    let (status, versions) = json_of(
        mesh.request(Method::GET, "/v1/agents/word-count/versions", Some(&dev))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let statuses: Vec<(&str, &str)> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap(),
                v["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![("1.1.0", "rejected"), ("1.0.0", "published")]
    );

    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_postgres_and_s3() {
    lifecycle(Backend::PostgresS3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_embedded_defaults() {
    lifecycle(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_agent_passes_the_scanner() {
    let mesh = Mesh::start(Backend::Embedded).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let examples =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/agents")).unwrap();
    // Agents that call others after the agents they call: a dependency must be published.
    let mut slugs: Vec<(bool, String)> = examples
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|path| {
            let manifest: Value =
                serde_json::from_slice(&std::fs::read(path.join("agent.json")).unwrap()).unwrap();
            let slug = path.file_name().unwrap().to_string_lossy().to_string();
            (manifest.get("dependencies").is_some(), slug)
        })
        .collect();
    slugs.sort();
    let mut count = 0;
    for (_, slug) in slugs {
        let (status, _) = create_agent(&mesh, &dev, &slug).await;
        assert_eq!(status, 201);
        let (status, version) = publish(&mesh, &dev, &slug, packages::example(&slug)).await;
        assert_eq!(status, 201, "{slug}: {version}");
        assert_eq!(version["status"], "pending_review", "{slug}: {version}");
        let approved = mesh
            .request(
                Method::POST,
                &format!("/v1/agents/{slug}/versions/1.0.0/approve"),
                Some(&mesh.admin_key),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), 200, "{slug}");
        count += 1;
    }
    assert!(count >= 3, "expected at least three example agents");
    mesh.shutdown().await.unwrap();
}
