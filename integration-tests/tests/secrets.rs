//! Agent secrets end to end (API.md §5.3, ADR 0045): written through REST by the agent's owner,
//! sealed in PostgreSQL, opened for that agent's runs only, delivered on the runner's stdin
//! (never in the container's environment, command line or labels), masked as `***` in stored
//! logs, live events and errors, and still delivered across a key rotation. Real PostgreSQL,
//! RabbitMQ, Docker and S3 protocol server; nothing mocked.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_integration_tests::flows::EventStream;
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Plain text: found as it is in `docker inspect`'s JSON and in raw bytes.
const TOKEN: &str = "tok-Qx7v9zz3f81c2e";
/// Needs escaping on its way through the stdin header.
const OTHER: &str = "line \"one\"\\ é\nline two";
const KEY_1: &str = "k1:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
const KEY_2: &str = "k2:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

fn keyring(text: &str) -> frameos_control_plane::Keyring {
    text.parse().unwrap()
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Prints its API_TOKEN in several ways, reports it in progress (and in an error when asked),
/// holds until canceled when asked, and returns what proves the value arrived.
const ECHO: &str = r#"
const crypto = require('crypto');
module.exports = async (inputs, ctx) => {
  const token = ctx.secrets.API_TOKEN;
  console.log(`token=${token}`);
  console.error(`${token} at the start`);
  console.log(token);
  ctx.progress(0.5, `using ${token}`);
  if (inputs.fail) throw new Error(`failed with ${token}`);
  if (inputs.hold) {
    console.log('ready');
    await new Promise((resolve) => setTimeout(resolve, 55000));
  }
  return {
    keys: Object.keys(ctx.secrets).sort(),
    length: token.length,
    sha256: crypto.createHash('sha256').update(token).digest('hex'),
    other_sha256: crypto.createHash('sha256').update(ctx.secrets.OTHER || '').digest('hex'),
    in_env: Object.values(process.env).some((v) => v.includes(token)),
  };
};
"#;

async fn call(
    mesh: &Mesh,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = mesh.request(method, path, Some(key));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn put_secret(mesh: &Mesh, key: &str, slug: &str, name: &str, value: &str) -> (u16, Value) {
    let path = format!("/v1/agents/{slug}/secrets/{name}");
    call(mesh, Method::PUT, &path, key, Some(json!({"value": value}))).await
}

async fn webhook_secret(mesh: &Mesh, key: &str) -> (u16, Value) {
    call(mesh, Method::GET, "/v1/me/webhook-secret", key, None).await
}

fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
}

/// A Node.js agent with dependencies, permissive inputs.
fn node_agent_calling(slug: &str, code: &str, dependencies: Value) -> Vec<u8> {
    let manifest = json!({
        "name": slug, "version": "1.0.0", "runtime": "node", "entrypoint": "index.js",
        "inputs": {"type": "object"}, "dependencies": dependencies,
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 30000}
    });
    packages::tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("index.js", code.as_bytes()),
    ])
}

/// Every string of `value`, recursively.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_reach_their_agent_only_and_never_show() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |c| {
        c.secrets.secrets_key = Some(keyring(KEY_1));
    })
    .await
    .unwrap();
    mesh.start_node(2).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let rival = mesh.account("rival", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let echo = packages::node_agent_with("secret-echo", ECHO, 60_000, 128);
    mesh.publish_approved(&dev, "secret-echo", echo, None)
        .await
        .unwrap();

    // Written by the owner: the answer names it and never echoes the value.
    let written = put_secret(&mesh, &dev, "secret-echo", "API_TOKEN", TOKEN).await;
    assert_eq!(written.0, 200, "{}", written.1);
    assert_eq!(written.1["name"], "API_TOKEN");
    assert!(written.1["updated_at"].is_string(), "{}", written.1);
    assert_eq!(written.1.as_object().unwrap().len(), 2, "{}", written.1);
    assert_eq!(
        put_secret(&mesh, &dev, "secret-echo", "OTHER", OTHER)
            .await
            .0,
        200
    );
    // Listed by name, in order, without values.
    let listed = call(
        &mesh,
        Method::GET,
        "/v1/agents/secret-echo/secrets",
        &dev,
        None,
    )
    .await;
    assert_eq!(listed.0, 200, "{}", listed.1);
    let names: Vec<&str> = listed.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API_TOKEN", "OTHER"]);
    assert!(!listed.1.to_string().contains(TOKEN), "{}", listed.1);
    assert!(listed.1["items"][0].get("value").is_none());

    // Sealed at rest: no column holds the value, and the key that sealed it is named.
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT name, key_id, nonce, ciphertext FROM agent_secrets ORDER BY name",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.try_get::<String>("", "key_id").unwrap(), "k1");
        assert_eq!(row.try_get::<Vec<u8>>("", "nonce").unwrap().len(), 12);
        let sealed = row.try_get::<Vec<u8>>("", "ciphertext").unwrap();
        for value in [TOKEN, OTHER, "tok-Qx7"] {
            assert!(
                !sealed.windows(value.len()).any(|w| w == value.as_bytes()),
                "the database holds a value in clear"
            );
        }
    }
    let dump = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT row_to_json(s)::text AS row FROM agent_secrets s",
        ))
        .await
        .unwrap();
    for row in dump {
        let text = row.try_get::<String>("", "row").unwrap();
        assert!(!text.contains(TOKEN), "{text}");
    }

    // A run: the output proves the value arrived; logs and live events show `***` instead.
    let (events, done) = mesh.run(&user, "secret-echo", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let output = &done["output"];
    assert_eq!(output["keys"], json!(["API_TOKEN", "OTHER"]), "{done}");
    assert_eq!(output["length"], TOKEN.len(), "{done}");
    assert_eq!(output["sha256"], sha256_hex(TOKEN), "{done}");
    assert_eq!(output["other_sha256"], sha256_hex(OTHER), "{done}");
    assert_eq!(output["in_env"], false, "{done}");
    let id = done["id"].as_str().unwrap();
    let stored: Vec<String> = mesh
        .log_lines(&user, id)
        .await
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        stored,
        ["token=***", "*** at the start", "***"],
        "stored log lines"
    );
    let live_logs: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "log")
        .map(|e| e.data["line"].as_str().unwrap())
        .collect();
    assert_eq!(live_logs, ["token=***", "*** at the start", "***"]);
    let progress: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "progress")
        .map(|e| e.data["message"].as_str().unwrap())
        .collect();
    assert_eq!(progress, ["using ***"]);
    let mut everything = Vec::new();
    for event in &events {
        strings(&event.data, &mut everything);
    }
    let got = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{id}"),
        &user,
        None,
    )
    .await;
    strings(&got.1, &mut everything);
    for text in &everything {
        assert!(!text.contains(TOKEN), "a value left the node: {text}");
    }

    // The error an agent reports is masked too.
    let (_, failed) = mesh
        .run(&user, "secret-echo", json!({"fail": true}))
        .await
        .unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"], "failed with ***", "{failed}");

    // While it runs, Docker shows no value: not in its environment, command, labels or
    // anywhere else `docker inspect` reports.
    let accepted = mesh
        .execute(&user, "secret-echo", json!({"hold": true}))
        .await
        .unwrap();
    let held = accepted["id"].as_str().unwrap().to_string();
    let mut stream = EventStream::open(mesh.request(
        Method::GET,
        &format!("/v1/executions/{held}/events"),
        Some(&user),
    ))
    .await
    .unwrap();
    loop {
        let event = stream.next_event().await.unwrap().expect("the run holds");
        if event.kind == "log" && event.data["line"] == "ready" {
            break;
        }
    }
    let inspected = std::process::Command::new("docker")
        .args(["inspect", &format!("frameos-exec-{held}")])
        .output()
        .unwrap();
    assert!(inspected.status.success(), "docker inspect: {inspected:?}");
    let text = String::from_utf8(inspected.stdout).unwrap();
    assert!(!text.contains(TOKEN), "docker inspect shows the value");
    assert!(!text.contains("line two"), "docker inspect shows a value");
    let container: Value = serde_json::from_str::<Value>(&text).unwrap()[0].clone();
    let env = container["Config"]["Env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|v| v == "FRAMEOS_HEADER=1" || v == "FRAMEOS_WARM=1"),
        "the container of this run: {env:?}"
    );
    for part in [
        &container["Config"]["Env"],
        &container["Config"]["Cmd"],
        &container["Args"],
        &container["Config"]["Labels"],
    ] {
        assert!(!part.to_string().contains(TOKEN), "{part}");
    }
    let canceled = call(
        &mesh,
        Method::POST,
        &format!("/v1/executions/{held}/cancel"),
        &user,
        None,
    )
    .await;
    assert_eq!(canceled.0, 200, "{}", canceled.1);
    let (_, ended) = mesh.follow(&user, &held).await.unwrap();
    assert_eq!(ended["status"], "canceled", "{ended}");

    // Another agent's run gets none of them; a called agent (Python) gets its own, not its
    // caller's.
    let child = packages::python_agent(
        "secret-child",
        "1.0.0",
        "def run(inputs, ctx):\n\
         \x20   print('child has ' + ctx.secrets.CHILD_TOKEN)\n\
         \x20   return {'keys': sorted(ctx.secrets), 'length': len(ctx.secrets['CHILD_TOKEN'])}\n",
        30_000,
        128,
    );
    mesh.publish_approved(&dev, "secret-child", child, None)
        .await
        .unwrap();
    assert_eq!(
        put_secret(&mesh, &dev, "secret-child", "CHILD_TOKEN", "child-value-77")
            .await
            .0,
        200
    );
    let parent = node_agent_calling(
        "secret-parent",
        "module.exports = async (inputs, ctx) => ({\n\
           mine: Object.keys(ctx.secrets),\n\
           child: await ctx.call('secret-child', {}),\n\
         });\n",
        json!({"secret-child": "^1.0.0"}),
    );
    mesh.publish_approved(&dev, "secret-parent", parent, None)
        .await
        .unwrap();
    let (_, done) = mesh.run(&user, "secret-parent", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["mine"], json!([]), "{done}");
    assert_eq!(
        done["output"]["child"],
        json!({"keys": ["CHILD_TOKEN"], "length": 14}),
        "{done}"
    );
    let parent_id = done["id"].as_str().unwrap();
    let (_, parent) = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{parent_id}"),
        &user,
        None,
    )
    .await;
    let child_id = parent["children"][0]["id"].as_str().unwrap();
    let child_lines = mesh.log_lines(&user, child_id).await.unwrap();
    assert_eq!(child_lines[0]["line"], "child has ***", "{child_lines:?}");

    // Who may: another developer sees the published agent but may not touch its secrets (403);
    // a user may not at all (403); an admin may list names but not write; an agent nobody else
    // can see is not found (404).
    assert_error(
        &put_secret(&mesh, &rival, "secret-echo", "API_TOKEN", "stolen").await,
        403,
        "permission_denied",
    );
    assert_error(
        &call(
            &mesh,
            Method::GET,
            "/v1/agents/secret-echo/secrets",
            &rival,
            None,
        )
        .await,
        403,
        "permission_denied",
    );
    assert_error(
        &call(
            &mesh,
            Method::DELETE,
            "/v1/agents/secret-echo/secrets/API_TOKEN",
            &rival,
            None,
        )
        .await,
        403,
        "permission_denied",
    );
    assert_error(
        &put_secret(&mesh, &user, "secret-echo", "API_TOKEN", "stolen").await,
        403,
        "permission_denied",
    );
    assert_error(
        &put_secret(&mesh, &mesh.admin_key, "secret-echo", "API_TOKEN", "admin").await,
        403,
        "permission_denied",
    );
    let by_admin = call(
        &mesh,
        Method::GET,
        "/v1/agents/secret-echo/secrets",
        &mesh.admin_key,
        None,
    )
    .await;
    assert_eq!(by_admin.0, 200, "{}", by_admin.1);
    let created = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        &dev,
        Some(json!({"slug": "unlisted", "name": "Unlisted", "pricing": {"model": "free"}})),
    )
    .await;
    assert_eq!(created.0, 201, "{}", created.1);
    assert_error(
        &put_secret(&mesh, &rival, "unlisted", "API_TOKEN", "x").await,
        404,
        "not_found",
    );
    assert_eq!(
        put_secret(&mesh, &dev, "unlisted", "API_TOKEN", "x")
            .await
            .0,
        200
    );
    // The rival's attempts changed nothing.
    let (_, done) = mesh.run(&user, "secret-echo", json!({})).await.unwrap();
    assert_eq!(done["output"]["sha256"], sha256_hex(TOKEN), "{done}");

    // What is refused, each clearly: 422 `validation_failed`.
    for (name, value) in [
        ("api_token", "x"),
        ("9LIVES", "x"),
        ("A-B", "x"),
        (&"A".repeat(65) as &str, "x"),
        ("EMPTY", ""),
        ("LONG", &"x".repeat(4097) as &str),
    ] {
        let refused = put_secret(&mesh, &dev, "unlisted", name, value).await;
        assert_error(&refused, 422, "validation_failed");
        assert!(!refused.1.to_string().contains("xxxx"), "{}", refused.1);
    }
    assert_eq!(
        put_secret(&mesh, &dev, "unlisted", "LONGEST", &"é".repeat(2048))
            .await
            .0,
        200
    );
    for n in 2..100 {
        let written = put_secret(&mesh, &dev, "unlisted", &format!("S{n}"), "v").await;
        assert_eq!(written.0, 200, "secret {n}: {}", written.1);
    }
    let refused = put_secret(&mesh, &dev, "unlisted", "ONE_TOO_MANY", "v").await;
    assert_error(&refused, 422, "validation_failed");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100"),
        "{}",
        refused.1
    );
    // Replacing one is not adding one.
    assert_eq!(put_secret(&mesh, &dev, "unlisted", "S2", "v2").await.0, 200);

    // Deleted: no longer listed nor delivered.
    let deleted = mesh
        .request(
            Method::DELETE,
            "/v1/agents/secret-echo/secrets/OTHER",
            Some(&dev),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(
        &call(
            &mesh,
            Method::DELETE,
            "/v1/agents/secret-echo/secrets/OTHER",
            &dev,
            None,
        )
        .await,
        404,
        "not_found",
    );
    let (_, done) = mesh.run(&user, "secret-echo", json!({})).await.unwrap();
    assert_eq!(done["output"]["keys"], json!(["API_TOKEN"]), "{done}");

    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_survive_a_key_rotation() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |c| {
        c.secrets.secrets_key = Some(keyring(KEY_1));
    })
    .await
    .unwrap();
    mesh.start_node(1).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let code = "module.exports = async (i, ctx) => Object.entries(ctx.secrets).sort();\n";
    let agent = packages::node_agent_with("rotating", code, 30_000, 128);
    mesh.publish_approved(&dev, "rotating", agent, None)
        .await
        .unwrap();
    assert_eq!(
        put_secret(&mesh, &dev, "rotating", "OLD", "sealed-by-k1")
            .await
            .0,
        200
    );
    let delivered = |done: &Value| done["output"].clone();
    let (_, done) = mesh.run(&dev, "rotating", json!({})).await.unwrap();
    assert_eq!(delivered(&done), json!([["OLD", "sealed-by-k1"]]), "{done}");
    // The account's webhook signing secret is sealed with the same keyring.
    let (status, body) = webhook_secret(&mesh, &dev).await;
    assert_eq!(status, 200, "{body}");
    let signing = body["secret"].as_str().unwrap().to_string();
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let stored_webhook_secret = || async {
        db.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT webhook_secret FROM accounts WHERE webhook_secret IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "webhook_secret")
        .unwrap()
    };
    let stored = stored_webhook_secret().await;
    assert!(stored.starts_with("sealed:v1:k1:"), "{stored}");
    assert!(
        !stored.contains(&signing[6..]),
        "the secret is stored in clear"
    );

    // A new active key in front of the old one: old values still open, new ones use it.
    let both = format!("{KEY_2},{KEY_1}");
    mesh.restart_control_plane(|c| c.secrets.secrets_key = Some(keyring(&both)))
        .await
        .unwrap();
    assert_eq!(
        put_secret(&mesh, &dev, "rotating", "NEW", "sealed-by-k2")
            .await
            .0,
        200
    );
    let (_, done) = mesh.run(&dev, "rotating", json!({})).await.unwrap();
    assert_eq!(
        delivered(&done),
        json!([["NEW", "sealed-by-k2"], ["OLD", "sealed-by-k1"]]),
        "{done}"
    );
    let key_ids = || async {
        db.query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT name, key_id FROM agent_secrets ORDER BY name",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "name").unwrap(),
                r.try_get::<String>("", "key_id").unwrap(),
            )
        })
        .collect::<Vec<_>>()
    };
    let pair = |n: &str, k: &str| (n.to_string(), k.to_string());
    assert_eq!(key_ids().await, [pair("NEW", "k2"), pair("OLD", "k1")]);

    // The rotation re-seals what the old key sealed; a second one has nothing left to do.
    let rotation = frameos_control_plane::rotate_secrets(mesh.database_url(), &keyring(&both))
        .await
        .unwrap();
    // OLD and the webhook secret re-sealed, NEW already current.
    assert_eq!(
        (rotation.resealed, rotation.current),
        (2, 1),
        "{rotation:?}"
    );
    assert!(stored_webhook_secret().await.starts_with("sealed:v1:k2:"));
    assert!(rotation.unreadable.is_empty(), "{rotation:?}");
    assert_eq!(key_ids().await, [pair("NEW", "k2"), pair("OLD", "k2")]);
    let again = frameos_control_plane::rotate_secrets(mesh.database_url(), &keyring(&both))
        .await
        .unwrap();
    assert_eq!((again.resealed, again.current), (0, 3), "{again:?}");

    // The old key can go: everything still opens with the new one alone.
    mesh.restart_control_plane(|c| c.secrets.secrets_key = Some(keyring(KEY_2)))
        .await
        .unwrap();
    let (_, done) = mesh.run(&dev, "rotating", json!({})).await.unwrap();
    assert_eq!(
        delivered(&done),
        json!([["NEW", "sealed-by-k2"], ["OLD", "sealed-by-k1"]]),
        "{done}"
    );
    assert_eq!(
        webhook_secret(&mesh, &dev).await.1["secret"],
        signing.as_str()
    );
    // A rotation with only the old key cannot open what the new one sealed, and says so.
    let stale = frameos_control_plane::rotate_secrets(mesh.database_url(), &keyring(KEY_1))
        .await
        .unwrap();
    assert_eq!(stale.unreadable.len(), 3, "{stale:?}");
    assert_eq!(key_ids().await, [pair("NEW", "k2"), pair("OLD", "k2")]);

    // Without any key, secrets cannot be written (503), but names are still listed.
    mesh.restart_control_plane(|c| c.secrets.secrets_key = None)
        .await
        .unwrap();
    let refused = put_secret(&mesh, &dev, "rotating", "MORE", "x").await;
    assert_error(&refused, 503, "unavailable");
    // Nor can webhooks be signed: the sealed secret needs the key.
    assert_error(&webhook_secret(&mesh, &dev).await, 503, "unavailable");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FRAMEOS_SECRETS_KEY"),
        "{}",
        refused.1
    );
    let listed = call(
        &mesh,
        Method::GET,
        "/v1/agents/rotating/secrets",
        &dev,
        None,
    )
    .await;
    assert_eq!(listed.0, 200, "{}", listed.1);
    assert_eq!(listed.1["items"].as_array().unwrap().len(), 2);

    mesh.shutdown().await.unwrap();
}
