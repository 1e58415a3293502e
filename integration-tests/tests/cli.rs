//! The `frameos` command as a script uses it: the real binary against a real mesh (PostgreSQL,
//! RabbitMQ, a Docker execution node). stdout holds only the result or JSON, exit codes say
//! what happened, Ctrl-C cancels the execution it interrupts.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use frameos_integration_tests::cli::Frameos;
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

const TALKER: &str = "module.exports = async (inputs, ctx) => { \
    console.log('hello on stdout'); console.error('warning on stderr'); \
    ctx.progress(0.5, 'half way'); return {answer: 42, text: inputs.text || null}; };";
const FAILING: &str = "module.exports = async () => { throw new Error('boom'); };";
const SLOW: &str = "module.exports = async (inputs, ctx) => { ctx.progress(0.1, 'started'); \
    await new Promise(r => setTimeout(r, 60000)); };";

async fn execution(mesh: &Mesh, key: &str, id: &str) -> Value {
    mesh.request(Method::GET, &format!("/v1/executions/{id}"), Some(key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_prints_the_result_alone_and_executions_answer_in_json() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    for (slug, code) in [("talker", TALKER), ("failing", FAILING)] {
        let package = packages::node_agent_with(slug, code, 30_000, 128);
        mesh.publish_approved(&dev, slug, package, None)
            .await
            .unwrap();
    }
    let frameos = Frameos::new(&mesh.base_url, Some(&user)).unwrap();

    // `| jq`: stdout is the output alone, in either mode; the agent's lines went to stderr.
    let run = frameos
        .run(&[
            "run",
            "talker",
            "--input",
            r#"{"text": "hi"}"#,
            "--output",
            "json",
        ])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.json().unwrap(), json!({"answer": 42, "text": "hi"}));
    assert_eq!(run.stdout.lines().count(), 1, "{run:#?}");
    for expected in [
        "hello on stdout",
        "warning on stderr",
        "half way",
        "status: succeeded",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {run:#?}");
    }
    let id = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("execution ")?.strip_suffix(" queued"))
        .unwrap()
        .to_string();
    let text = frameos.run(&["run", "talker"]).await.unwrap();
    assert_eq!(text.code, Some(0), "{text:#?}");
    assert_eq!(text.json().unwrap(), json!({"answer": 42, "text": null}));

    // An execution that fails: exit 1, nothing on stdout, the error on stderr.
    let failed = frameos
        .run(&["run", "failing", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    assert_eq!(failed.stdout, "");
    assert!(
        failed.stderr.contains("failed") && failed.stderr.contains("boom"),
        "{failed:#?}"
    );

    // executions get / list / logs / cancel / follow, as JSON.
    let got = frameos
        .run(&["executions", "get", &id, "-o", "json"])
        .await
        .unwrap();
    assert_eq!(got.code, Some(0), "{got:#?}");
    let got = got.json().unwrap();
    assert_eq!(got, execution(&mesh, &user, &id).await);
    assert_eq!(got["status"], "succeeded");
    assert_eq!(got["output"]["answer"], 42);

    let list = frameos
        .run(&["executions", "list", "--agent", "talker", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(list.code, Some(0), "{list:#?}");
    let items = list.json().unwrap()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:#?}");
    assert!(items.iter().all(|e| e["agent"] == "talker"));
    let failures = frameos
        .run(&["executions", "list", "--status", "failed", "-o", "json"])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(failures["items"].as_array().unwrap().len(), 1, "{failures}");
    assert_eq!(failures["items"][0]["agent"], "failing");
    let page = frameos
        .run(&["executions", "list", "--page-size", "1", "-o", "json"])
        .await
        .unwrap()
        .json()
        .unwrap();
    let token = page["next_page_token"].as_str().unwrap();
    let next = frameos
        .run(&[
            "executions",
            "list",
            "--page-size",
            "1",
            "--page-token",
            token,
            "-o",
            "json",
        ])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_ne!(page["items"][0]["id"], next["items"][0]["id"]);

    let stored = mesh.log_lines(&user, &id).await.unwrap();
    assert!(stored.len() >= 2, "{stored:#?}");
    let logs = frameos
        .run(&["executions", "logs", &id, "-o", "json"])
        .await
        .unwrap();
    assert_eq!(logs.code, Some(0), "{logs:#?}");
    assert_eq!(logs.json().unwrap()["items"], json!(stored));
    let first = frameos
        .run(&["executions", "logs", &id, "--page-size", "1", "-o", "json"])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(first["items"], json!([stored[0]]));
    let after = first["next_page_token"].as_str().unwrap();
    let rest = frameos
        .run(&[
            "executions",
            "logs",
            &id,
            "--after-seq",
            after,
            "-o",
            "json",
        ])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(rest["items"], json!(stored[1..]));
    let all = frameos
        .run(&[
            "executions",
            "logs",
            &id,
            "--page-size",
            "1",
            "--all",
            "-o",
            "json",
        ])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all, json!({"items": stored}));

    // follow of an ended execution: its events, one JSON line each, the final status last.
    let follow = frameos
        .run(&["executions", "follow", &id, "-o", "json"])
        .await
        .unwrap();
    assert_eq!(follow.code, Some(0), "{follow:#?}");
    let events: Vec<Value> = follow
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "status", "{events:#?}");
    assert_eq!(last["data"]["status"], "succeeded");
    assert!(events.iter().any(|e| e["event"] == "log"), "{events:#?}");

    // Cancel an ended execution: it stays as it was, and that is not an error.
    let cancel = frameos
        .run(&["executions", "cancel", &id, "-o", "json"])
        .await
        .unwrap();
    assert_eq!(cancel.code, Some(0), "{cancel:#?}");
    assert_eq!(cancel.json().unwrap()["status"], "succeeded");

    // Exit codes: not found 4, a bad key 3, an invalid request 5.
    let missing = frameos
        .run(&["executions", "get", "0190aaaa-0000-7000-8000-000000000000"])
        .await
        .unwrap();
    assert_eq!(missing.code, Some(4), "{missing:#?}");
    assert_eq!(missing.stdout, "");
    let stranger = frameos
        .with_key("frameos_sk_not-a-key")
        .run(&["executions", "list", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(stranger.code, Some(3), "{stranger:#?}");
    let invalid = frameos
        .run(&["run", "talker", "--input", "[1]"])
        .await
        .unwrap();
    assert_eq!(invalid.code, Some(5), "{invalid:#?}");
    assert!(invalid.stderr.contains("invalid_inputs"), "{invalid:#?}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_cancels_the_run_unless_detached() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let package = packages::node_agent_with("slow", SLOW, 120_000, 128);
    mesh.publish_approved(&dev, "slow", package, None)
        .await
        .unwrap();
    let frameos = Frameos::new(&mesh.base_url, Some(&user)).unwrap();
    let within = Duration::from_secs(60);

    // Ctrl-C once the agent runs: the platform is asked to cancel, and says it did.
    let mut run = frameos.spawn(&["run", "slow", "-o", "json"]).unwrap();
    run.wait_for_stderr("started", within).await.unwrap();
    run.signal("INT").unwrap();
    let done = run.finish(within).await.unwrap();
    assert_eq!(done.code, Some(130), "{done:#?}");
    assert_eq!(done.stdout, "");
    assert!(done.stderr.contains("canceled"), "{done:#?}");
    let id = queued_id(&done.stderr);
    assert_eq!(execution(&mesh, &user, &id).await["status"], "canceled");

    // --detach: the execution goes on, and stderr says how to reach it.
    let mut run = frameos.spawn(&["run", "slow", "--detach"]).unwrap();
    run.wait_for_stderr("started", within).await.unwrap();
    run.signal("INT").unwrap();
    let done = run.finish(within).await.unwrap();
    assert_eq!(done.code, Some(130), "{done:#?}");
    let id = queued_id(&done.stderr);
    assert!(
        done.stderr
            .contains(&format!("frameos executions cancel {id}")),
        "{done:#?}"
    );
    assert_eq!(execution(&mesh, &user, &id).await["status"], "running");

    // Following it and pressing Ctrl-C cancels it too.
    let mut follow = frameos.spawn(&["executions", "follow", &id]).unwrap();
    follow
        .wait_for_stderr("status: running", within)
        .await
        .unwrap();
    follow.signal("INT").unwrap();
    let done = follow.finish(within).await.unwrap();
    assert_eq!(done.code, Some(130), "{done:#?}");
    assert!(
        done.stderr.contains(&format!("execution {id} canceled")),
        "{done:#?}"
    );
    assert_eq!(execution(&mesh, &user, &id).await["status"], "canceled");
    mesh.shutdown().await.unwrap();
}

fn queued_id(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("execution ")?.strip_suffix(" queued"))
        .unwrap_or_else(|| panic!("no execution id in {stderr}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_checks_the_package_before_creating_anything_and_price_changes_pricing() {
    let mesh = Mesh::start(Backend::Embedded).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let other = mesh.account("oz", "developer").await.unwrap();
    let frameos = Frameos::new(&mesh.base_url, Some(&dev)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("checked");
    std::fs::create_dir(&agent).unwrap();
    std::fs::write(agent.join("index.js"), "module.exports = async () => 1;").unwrap();
    let mut manifest = json!({
        "name": "checked",
        "version": "one",
        "runtime": "node",
        "entrypoint": "index.js",
        "inputs": {"type": "object"}
    });
    let agent_path = agent.to_str().unwrap();
    let agent_exists = |key: String| {
        let request = mesh.request(Method::GET, "/v1/agents/checked", Some(&key));
        async move { request.send().await.unwrap().status() != 404 }
    };

    // A broken manifest, then resources over the platform maxima: refused locally, exit 5,
    // and no agent was created.
    for (field, broken) in [
        ("version", json!("one")),
        ("resources", json!({"memory_mb": 999_999})),
    ] {
        manifest[field] = broken;
        if field == "resources" {
            manifest["version"] = json!("1.0.0");
        }
        std::fs::write(agent.join("agent.json"), manifest.to_string()).unwrap();
        let refused = frameos
            .run(&["agent", "publish", agent_path, "-o", "json"])
            .await
            .unwrap();
        assert_eq!(refused.code, Some(5), "{refused:#?}");
        assert_eq!(refused.stdout, "");
        assert!(refused.stderr.contains(field), "{refused:#?}");
        assert!(
            !agent_exists(dev.clone()).await,
            "{field}: an agent was created"
        );
    }

    // Fixed: the agent is created with the price asked for, the version uploaded.
    manifest.as_object_mut().unwrap().remove("resources");
    std::fs::write(agent.join("agent.json"), manifest.to_string()).unwrap();
    let published = frameos
        .run(&[
            "agent", "publish", agent_path, "--price", "10000", "-o", "json",
        ])
        .await
        .unwrap();
    assert_eq!(published.code, Some(0), "{published:#?}");
    let version = published.json().unwrap();
    assert_eq!(version["version"], "1.0.0");
    assert_eq!(version["status"], "pending_review");
    let pricing = |key: String| {
        let request = mesh.request(Method::GET, "/v1/agents/checked", Some(&key));
        async move {
            let agent: Value = request.send().await.unwrap().json().await.unwrap();
            agent["pricing"].clone()
        }
    };
    assert_eq!(
        pricing(dev.clone()).await,
        json!({"model": "per_execution", "price_minor": 10000, "currency": "INR"})
    );

    // agent price: free, then a price again; the API agrees each time.
    let free = frameos
        .run(&["agent", "price", "checked", "free", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(free.code, Some(0), "{free:#?}");
    assert_eq!(free.json().unwrap()["pricing"], json!({"model": "free"}));
    assert_eq!(pricing(dev.clone()).await, json!({"model": "free"}));
    let priced = frameos
        .run(&["agent", "price", "checked", "25000", "--currency", "INR"])
        .await
        .unwrap();
    assert_eq!(priced.code, Some(0), "{priced:#?}");
    assert!(
        priced.stdout.contains("250.00 INR per execution"),
        "{priced:#?}"
    );
    assert_eq!(pricing(dev.clone()).await["price_minor"], 25000);

    // Not a price (usage, 2); a price the server refuses (5); not your agent (4: it is
    // unpublished, so another developer cannot see it); a user cannot price (3).
    let not_a_price = frameos
        .run(&["agent", "price", "checked", "5.00"])
        .await
        .unwrap();
    assert_eq!(not_a_price.code, Some(2), "{not_a_price:#?}");
    let unknown = frameos
        .run(&["agent", "price", "checked", "10000", "--currency", "QQQ"])
        .await
        .unwrap();
    assert_eq!(unknown.code, Some(5), "{unknown:#?}");
    let theirs = frameos
        .with_key(&other)
        .run(&["agent", "price", "checked", "free"])
        .await
        .unwrap();
    assert_eq!(theirs.code, Some(4), "{theirs:#?}");
    let user = mesh.account("uma", "user").await.unwrap();
    let user_price = frameos
        .with_key(&user)
        .run(&["agent", "price", "checked", "free"])
        .await
        .unwrap();
    assert_eq!(user_price.code, Some(3), "{user_price:#?}");
    assert_eq!(pricing(dev.clone()).await["price_minor"], 25000);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedule_create_list_get_delete_and_a_refused_cron() {
    let mesh = Mesh::start(Backend::Embedded).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let package = packages::node_agent_with("talker", TALKER, 30_000, 128);
    mesh.publish_approved(&dev, "talker", package, None)
        .await
        .unwrap();
    let frameos = Frameos::new(&mesh.base_url, Some(&user)).unwrap();

    // create: the schedule as JSON, as the API answered it; in text, its id and next run.
    let created = frameos
        .run(&[
            "schedule",
            "create",
            "talker",
            "--cron",
            "*/5 * * * *",
            "--timezone",
            "Europe/Paris",
            "--input",
            r#"{"text": "hi"}"#,
            "-o",
            "json",
        ])
        .await
        .unwrap();
    assert_eq!(created.code, Some(0), "{created:#?}");
    let schedule = created.json().unwrap();
    let id = schedule["id"].as_str().unwrap().to_string();
    assert_eq!(schedule["agent"], "talker");
    assert_eq!(schedule["cron"], "*/5 * * * *");
    assert_eq!(schedule["timezone"], "Europe/Paris");
    assert_eq!(schedule["inputs"], json!({"text": "hi"}));
    assert_eq!(schedule["status"], "active");
    assert!(schedule["next_run_at"].is_string(), "{schedule}");
    let text = frameos
        .run(&["schedule", "create", "talker", "--cron", "@hourly"])
        .await
        .unwrap();
    assert_eq!(text.code, Some(0), "{text:#?}");
    let other = text
        .stdout
        .strip_prefix("created schedule ")
        .and_then(|rest| rest.split(':').next())
        .unwrap()
        .to_string();
    assert!(text.stdout.contains("next run"), "{text:#?}");

    // list: both, newest first, in JSON and in the table; get: the one asked for.
    let list = frameos
        .run(&["schedule", "list", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(list.code, Some(0), "{list:#?}");
    let items = list.json().unwrap()["items"].as_array().unwrap().clone();
    let ids: Vec<&str> = items.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [other.as_str(), id.as_str()], "{items:#?}");
    assert_eq!(items[1], schedule);
    let table = frameos.run(&["schedule", "list"]).await.unwrap();
    assert_eq!(table.code, Some(0), "{table:#?}");
    assert!(table.stdout.starts_with("ID "), "{table:#?}");
    let row = table.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    for cell in ["talker", "*/5 * * * *", "Europe/Paris", "active"] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    let got = frameos
        .run(&["schedule", "get", &id, "-o", "json"])
        .await
        .unwrap();
    assert_eq!(got.code, Some(0), "{got:#?}");
    assert_eq!(got.json().unwrap(), schedule);

    // delete: gone from the list; deleting it again is the API's not_found, exit 4.
    let deleted = frameos.run(&["schedule", "delete", &id]).await.unwrap();
    assert_eq!(deleted.code, Some(0), "{deleted:#?}");
    assert_eq!(deleted.stdout, format!("deleted schedule {id}\n"));
    let left = frameos
        .run(&["schedule", "list", "-o", "json"])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["items"][0]["id"], other.as_str());
    let again = frameos
        .run(&["schedule", "delete", &id, "-o", "json"])
        .await
        .unwrap();
    assert_eq!(again.code, Some(4), "{again:#?}");
    assert_eq!(again.stdout, "");
    assert!(
        again.stderr.contains(&format!("no schedule {id}")) && again.stderr.contains("not_found"),
        "{again:#?}"
    );

    // A cron expression of three fields: validation_failed, exit 5, the API's reason on stderr,
    // and nothing created.
    let refused = frameos
        .run(&[
            "schedule", "create", "talker", "--cron", "* * *", "-o", "json",
        ])
        .await
        .unwrap();
    assert_eq!(refused.code, Some(5), "{refused:#?}");
    assert_eq!(refused.stdout, "");
    assert!(
        refused.stderr.contains("must have five fields")
            && refused.stderr.contains("validation_failed"),
        "{refused:#?}"
    );
    let still = frameos
        .run(&["schedule", "list", "-o", "json"])
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(still["items"].as_array().unwrap().len(), 1, "{still}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test]
async fn completions_help_and_exit_codes_without_a_platform() {
    // Nothing listens on port 9 of loopback.
    let frameos = Frameos::new("http://127.0.0.1:9", Some("frameos_sk_x")).unwrap();

    let bash = frameos.run(&["completions", "bash"]).await.unwrap();
    assert_eq!(bash.code, Some(0), "{bash:#?}");
    for expected in [
        "_frameos()",
        "complete -F _frameos",
        "executions",
        "schedule",
        "--cron",
        "--output",
    ] {
        assert!(bash.stdout.contains(expected), "{expected} missing");
    }

    let help = frameos.run(&["--help"]).await.unwrap();
    assert_eq!(help.code, Some(0));
    for line in [
        "Exit codes:",
        "  0  success",
        "  1  failure",
        "  2  usage error",
        "  3  the API key",
        "  4  not found",
        "  5  invalid",
        "  6  the API cannot be reached",
        "130  interrupted",
    ] {
        assert!(
            help.stdout.contains(line),
            "{line:?} missing from {}",
            help.stdout
        );
    }

    let usage = frameos.run(&["executions", "frobnicate"]).await.unwrap();
    assert_eq!(usage.code, Some(2), "{usage:#?}");
    let bad_input = frameos.run(&["run", "x", "--input", "{"]).await.unwrap();
    assert_eq!(bad_input.code, Some(2), "{bad_input:#?}");
    let unreachable = frameos
        .run(&["executions", "get", "x", "-o", "json"])
        .await
        .unwrap();
    assert_eq!(unreachable.code, Some(6), "{unreachable:#?}");
    assert_eq!(unreachable.stdout, "");
    assert!(
        unreachable.stderr.contains("cannot reach"),
        "{unreachable:#?}"
    );
}
