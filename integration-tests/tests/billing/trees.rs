//! Agents calling agents (API.md §5.1): child executions paid from the root's mandate, the
//! orchestrator's 10 %, failed children voided, budgets, cycles and depth — through REST, real
//! containers and the ledger.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frameos_integration_tests::cli::Frameos;
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

use super::{PRICE, get, me, verify_ledger};

/// A Node agent whose manifest declares `dependencies`; it accepts any object.
fn caller(slug: &str, dependencies: Value, code: &str) -> Vec<u8> {
    caller_in(("node", "index.js"), slug, dependencies, code)
}

/// The same in Python.
fn python_caller(slug: &str, dependencies: Value, code: &str) -> Vec<u8> {
    caller_in(("python", "main.py"), slug, dependencies, code)
}

fn caller_in(
    (runtime, entrypoint): (&str, &str),
    slug: &str,
    dependencies: Value,
    code: &str,
) -> Vec<u8> {
    let manifest = json!({
        "name": slug,
        "version": "1.0.0",
        "runtime": runtime,
        "entrypoint": entrypoint,
        "description": "calls other agents",
        "dependencies": dependencies,
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 30000}
    });
    packages::tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        (entrypoint, code.as_bytes()),
    ])
}

/// `slow-child` (paid, reports progress, then sleeps `sleep_ms` and returns `{done: n}`) and
/// `waiter` (paid, calls it with `{n: 7}` and returns `{child: …}`).
async fn publish_waiter(mesh: &Mesh, dev: &str, sleep_ms: u64) {
    let slow = format!(
        "module.exports = async (inputs, ctx) => {{ \
           ctx.progress(0.5, 'working'); \
           await new Promise((resolve) => setTimeout(resolve, {sleep_ms})); \
           return {{done: inputs.n}}; }};"
    );
    mesh.publish_approved(
        dev,
        "slow-child",
        packages::node_agent_with("slow-child", &slow, 30_000, 128),
        Some(10_000),
    )
    .await
    .unwrap();
    let waiter =
        "module.exports = async (inputs, ctx) => ({child: await ctx.call('slow-child', {n: 7})});";
    mesh.publish_approved(
        dev,
        "waiter",
        caller("waiter", json!({"slow-child": "^1"}), waiter),
        Some(PRICE),
    )
    .await
    .unwrap();
}

/// The signed payload of an execution's mandate, as JSON.
async fn mandate(mesh: &Mesh, key: &str, id: &str) -> Value {
    let (status, body) = get(mesh, Some(key), &format!("/v1/executions/{id}/mandate")).await;
    assert_eq!(status, 200, "{body}");
    let bytes = STANDARD.decode(body["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The ledger's capture entries of one execution: `(account, direction, amount)`.
async fn entries_of(mesh: &Mesh, execution_id: &str) -> Vec<(String, String, i64)> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(mesh.database_url())
        .await
        .unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT e.account, e.direction, e.amount_minor FROM ledger_entries e \
                 JOIN ledger_transactions t ON t.id = e.transaction_id \
                 WHERE t.execution_id = '{execution_id}' ORDER BY e.id"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "account").unwrap(),
                r.try_get::<String>("", "direction").unwrap(),
                r.try_get::<i64>("", "amount_minor").unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_orchestrator_pays_its_children_from_the_root_mandate_and_earns_ten_percent() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let words = mesh.account("wendy", "developer").await.unwrap();
    let moods = mesh.account("mo", "developer").await.unwrap();
    let orchestrator = mesh.account("orla", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let (words_id, moods_id, orchestrator_id, user_id) = (
        me(&mesh, &words).await,
        me(&mesh, &moods).await,
        me(&mesh, &orchestrator).await,
        me(&mesh, &user).await,
    );
    for (key, slug, price) in [
        (&words, "word-count", 10_000),
        (&moods, "sentiment", 20_000),
        (&orchestrator, "text-report", PRICE),
    ] {
        mesh.publish_approved(key, slug, packages::example(slug), Some(price))
            .await
            .unwrap();
    }

    let (_, done) = mesh
        .run(
            &user,
            "text-report",
            json!({"text": "What a wonderful, delightful day."}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["output"],
        json!({
            "summary": "5 words (most frequent: \"a\"); the mood is positive (0.6705).",
            "words": 5, "top_word": "a", "mood": "positive", "score": 0.6705
        })
    );
    let root = done["id"].as_str().unwrap();
    let (_, parent) = get(&mesh, Some(&user), &format!("/v1/executions/{root}")).await;
    assert!(parent.get("parent_id").is_none(), "{parent}");
    let children = parent["children"].as_array().unwrap();
    assert_eq!(children.len(), 2, "{parent}");
    let mut agents: Vec<&str> = children
        .iter()
        .map(|c| c["agent"].as_str().unwrap())
        .collect();
    agents.sort_unstable();
    assert_eq!(agents, ["sentiment", "word-count"]);

    // The root's mandate is the tree's budget: its own price and both dependencies'.
    let root_mandate = mandate(&mesh, &user, root).await;
    assert_eq!(root_mandate["amount_minor"], PRICE + 10_000 + 20_000);
    assert!(root_mandate.get("parent_mandate_id").is_none());
    assert_eq!(parent["charge"]["amount_minor"], PRICE);
    assert_eq!(parent["charge"]["status"], "captured");

    for child in children {
        let id = child["id"].as_str().unwrap();
        let price = if child["agent"] == "word-count" {
            10_000
        } else {
            20_000
        };
        assert_eq!(child["status"], "succeeded", "{child}");
        assert_eq!(child["version"], "1.0.0");
        assert_eq!(child["charge"]["status"], "captured", "{child}");
        assert_eq!(child["charge"]["amount_minor"], price);
        let (_, full) = get(&mesh, Some(&user), &format!("/v1/executions/{id}")).await;
        assert_eq!(full["parent_id"], root);
        assert_eq!(full["root_id"], root);
        // Each child's own mandate names the root's, verifiable like any other.
        let own = mandate(&mesh, &user, id).await;
        assert_eq!(own["parent_mandate_id"], root_mandate["mandate_id"]);
        assert_eq!(own["amount_minor"], price);
        assert_eq!(own["execution_id"], id);
        // 70 % to the child's developer, 10 % to text-report's, the rest to the platform and
        // the rail; every part ≥ 0 and the parts add up to the price.
        let splits = &child["charge"]["splits"];
        assert_eq!(splits["developer"], price * 70 / 100);
        assert_eq!(splits["orchestrator"], price / 10);
        let parts: i64 = ["developer", "orchestrator", "platform", "rail_fee"]
            .iter()
            .map(|k| splits[*k].as_i64().unwrap())
            .inspect(|part| assert!(*part >= 0))
            .sum();
        assert_eq!(parts, price);
        let developer = if child["agent"] == "word-count" {
            &words_id
        } else {
            &moods_id
        };
        let entries = entries_of(&mesh, id).await;
        assert!(
            entries.contains(&(format!("user:{user_id}"), "debit".into(), price)),
            "{entries:?}"
        );
        assert!(
            entries.contains(&(
                format!("developer:{developer}"),
                "credit".into(),
                price * 70 / 100
            )),
            "{entries:?}"
        );
        assert!(
            entries.contains(&(
                format!("developer:{orchestrator_id}"),
                "credit".into(),
                price / 10
            )),
            "{entries:?}"
        );
    }
    // text-report's developer sees each share with the execution it came from: 70 % of the
    // root's price, 10 % of each child's.
    let (status, statement) = get(
        &mesh,
        Some(&orchestrator),
        &format!("/v1/accounts/{orchestrator_id}/balance"),
    )
    .await;
    assert_eq!(status, 200, "{statement}");
    assert_eq!(statement["balance_minor"], PRICE * 70 / 100 + 1_000 + 2_000);
    let mut credits: Vec<(String, i64)> = statement["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["execution_id"].as_str().unwrap().to_string(),
                e["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect();
    credits.sort();
    let mut expected: Vec<(String, i64)> = children
        .iter()
        .map(|c| {
            let share = if c["agent"] == "word-count" {
                1_000
            } else {
                2_000
            };
            (c["id"].as_str().unwrap().to_string(), share)
        })
        .chain([(root.to_string(), PRICE * 70 / 100)])
        .collect();
    expected.sort();
    assert_eq!(credits, expected);
    let earned = super::earnings(&mesh, &orchestrator).await;
    assert_eq!(
        earned,
        json!([{
            "agent": "text-report", "agent_name": "text-report", "currency": "INR",
            "paid_executions": 1, "earned_minor": PRICE * 70 / 100,
            "paid_calls": 2, "orchestrator_minor": 3_000
        }])
    );
    // The root pays no orchestrator share: nobody called it.
    assert_eq!(parent["charge"]["splits"]["orchestrator"], 0);

    // The parent's log says when each call started and ended, as `system` lines.
    let lines = mesh.log_lines(&user, root).await.unwrap();
    let system: Vec<&str> = lines
        .iter()
        .filter(|l| l["stream"] == "system")
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        system
            .iter()
            .filter(|l| l.contains("started as execution"))
            .count(),
        2,
        "{system:?}"
    );
    assert_eq!(
        system.iter().filter(|l| l.contains("succeeded")).count(),
        2,
        "{system:?}"
    );

    let verification = verify_ledger(&mesh).await;
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(
        verification.transactions, 3,
        "three captures: the root and two children"
    );

    // The same tree through the CLI: the output alone on stdout, the calls in `executions get`.
    let frameos = Frameos::new(&mesh.base_url, Some(&user)).unwrap();
    let run = frameos
        .run(&[
            "run",
            "text-report",
            "--input",
            r#"{"text": "not good"}"#,
            "-o",
            "json",
        ])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.json().unwrap()["mood"], "negative", "{run:#?}");
    let shown = frameos.run(&["executions", "get", root]).await.unwrap();
    assert_eq!(shown.code, Some(0), "{shown:#?}");
    for child in children {
        let line = format!(
            "called    {}@1.0.0 {} succeeded",
            child["agent"].as_str().unwrap(),
            child["id"].as_str().unwrap()
        );
        assert!(shown.stdout.contains(&line), "{line}: {shown:#?}");
    }
    let verification = verify_ledger(&mesh).await;
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(verification.transactions, 6);

    // `ledger verify` proves the tree's invariants: shown a child captured above its own
    // mandate and a root mandate smaller than what its tree captured, it names both.
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(mesh.database_url())
        .await
        .unwrap();
    let child = children[0]["id"].as_str().unwrap();
    let budget = PRICE + 10_000 + 20_000;
    for statement in [
        format!(
            "UPDATE charges SET amount_minor = amount_minor + 1 WHERE execution_id = '{child}'"
        ),
        format!(
            "UPDATE charges SET mandate_payload = replace(mandate_payload, '\"amount_minor\":{budget}', \
             '\"amount_minor\":{}') WHERE execution_id = '{root}'",
            budget - 1
        ),
    ] {
        let changed = db
            .execute_raw(Statement::from_string(db.get_database_backend(), statement))
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
    }
    let verification = verify_ledger(&mesh).await;
    assert_eq!(verification.captures_above_mandate, [child.to_string()]);
    assert_eq!(verification.trees_over_budget, [root.to_string()]);
    assert!(!verification.is_clean());
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_child_is_voided_its_sibling_captured_and_refusals_charge_nothing() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let child = |slug: &str, code: &str| packages::node_agent(slug, "1.0.0", code);
    mesh.publish_approved(
        &dev,
        "fine",
        child("fine", "module.exports = async (i) => ({ok: i.n});"),
        Some(10_000),
    )
    .await
    .unwrap();
    mesh.publish_approved(
        &dev,
        "broken",
        child(
            "broken",
            "module.exports = async () => { throw new Error('boom'); };",
        ),
        Some(10_000),
    )
    .await
    .unwrap();
    // Calls `fine` twice (its budget covers one), `broken` once, something undeclared, and
    // `fine` with a cap below its price; reports what each call said.
    let code = r#"
        const attempt = async (slug, inputs, options) => {
          try { return {output: await ctx_.call(slug, inputs, options)}; }
          catch (e) { return {code: e.code, status: e.status === undefined ? null : e.status}; }
        };
        let ctx_;
        module.exports = async (inputs, ctx) => {
          ctx_ = ctx;
          const first = await attempt('fine', {n: 1});
          const failed = await attempt('broken', {});
          const second = await attempt('fine', {n: 2});
          const undeclared = await attempt('word-count', {text: 'x'});
          const capped = await attempt('fine', {n: 3}, {max_amount_minor: 5});
          return {first, failed, second, undeclared, capped};
        };
    "#;
    mesh.publish_approved(
        &dev,
        "boss",
        caller("boss", json!({"fine": "^1.0.0", "broken": "^1.0.0"}), code),
        Some(PRICE),
    )
    .await
    .unwrap();

    // A newer `fine` that no admin approved: runs never resolve to it.
    let pending = packages::node_agent(
        "fine",
        "1.1.0",
        "module.exports = async () => 'unreviewed';",
    );
    let uploaded = mesh.upload(&dev, "fine", pending).send().await.unwrap();
    assert_eq!(uploaded.status(), 201);

    let (_, done) = mesh.run(&user, "boss", json!({})).await.unwrap();
    assert_eq!(
        done["status"], "succeeded",
        "the parent decides its own outcome: {done}"
    );
    let output = &done["output"];
    assert_eq!(output["first"], json!({"output": {"ok": 1}}));
    assert_eq!(
        output["failed"],
        json!({"code": "child_failed", "status": "failed"})
    );
    // The budget was the root's price plus one call of each dependency: `broken` was voided,
    // so its part is free again and the second call of `fine` fits.
    assert_eq!(output["second"], json!({"output": {"ok": 2}}));
    assert_eq!(
        output["undeclared"],
        json!({"code": "undeclared_dependency", "status": null})
    );
    assert_eq!(
        output["capped"],
        json!({"code": "budget_exceeded", "status": null})
    );

    let root = done["id"].as_str().unwrap();
    let (_, parent) = get(&mesh, Some(&user), &format!("/v1/executions/{root}")).await;
    let children = parent["children"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = children
        .iter()
        .map(|c| {
            (
                c["agent"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["charge"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("fine".into(), "succeeded".into(), "captured".into()),
            ("broken".into(), "failed".into(), "voided".into()),
            ("fine".into(), "succeeded".into(), "captured".into()),
        ],
        "refused calls create no execution and hold nothing"
    );
    assert!(
        children.iter().all(|c| c["version"] == "1.0.0"),
        "only published versions are resolved: {children:?}"
    );
    let verification = verify_ledger(&mesh).await;
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(
        verification.transactions, 3,
        "the root and the two successes"
    );

    // A third call of `fine` would not fit: the budget is spent.
    let code = r#"
        module.exports = async (inputs, ctx) => {
          await ctx.call('fine', {n: 1});
          await ctx.call('fine', {n: 2});
          return 'unreachable';
        };
    "#;
    mesh.publish_approved(
        &dev,
        "greedy",
        caller("greedy", json!({"fine": "^1"}), code),
        Some(PRICE),
    )
    .await
    .unwrap();
    let (_, done) = mesh.run(&user, "greedy", json!({})).await.unwrap();
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("budget_exceeded"),
        "{done}"
    );
    let (_, parent) = get(
        &mesh,
        Some(&user),
        &format!("/v1/executions/{}", done["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(parent["children"].as_array().unwrap().len(), 1, "{parent}");
    assert_eq!(
        parent["charge"]["status"], "voided",
        "a failed parent pays nothing itself"
    );
    assert_eq!(
        parent["children"][0]["charge"]["status"], "captured",
        "its succeeded child stays paid"
    );
    let verification = verify_ledger(&mesh).await;
    assert!(verification.is_clean(), "{verification:?}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cycles_and_a_sixth_level_are_refused() {
    // One slot: each waiting level lends it to the level below (ADR 0041), or the chain would
    // wait for a slot nobody frees.
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    mesh.start_node(1).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    // A chain: level-1 calls level-2 … level-5 calls level-6, which would be the sixth level.
    // Each returns what its callee said, or the error code it got.
    let relay = |next: &str| {
        format!(
            r#"module.exports = async (inputs, ctx) => {{
                 try {{ return {{below: await ctx.call('{next}', {{}})}}; }}
                 catch (e) {{ return {{refused: e.code}}; }}
               }};"#
        )
    };
    mesh.publish_approved(
        &dev,
        "level-6",
        packages::node_agent("level-6", "1.0.0", "module.exports = async () => 'bottom';"),
        None,
    )
    .await
    .unwrap();
    for level in (1..=5).rev() {
        let slug = format!("level-{level}");
        let next = format!("level-{}", level + 1);
        mesh.publish_approved(
            &dev,
            &slug,
            caller(&slug, json!({ next.clone(): "^1" }), &relay(&next)),
            None,
        )
        .await
        .unwrap();
    }
    let (_, done) = mesh.run(&user, "level-1", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["output"],
        json!({"below": {"below": {"below": {"below": {"refused": "too_deep"}}}}}),
        "five levels run; the sixth is refused"
    );

    // The Python runner's ctx.call: blocking, the output returned, a refusal raised.
    let code = r#"
def run(inputs, ctx):
    below = ctx.call("level-6", {})
    try:
        ctx.call("level-1", {})
        refused = None
    except Exception as e:
        refused = e.code
    return {"below": below, "refused": refused}
"#;
    mesh.publish_approved(
        &dev,
        "py-caller",
        python_caller("py-caller", json!({"level-6": "^1"}), code),
        None,
    )
    .await
    .unwrap();
    let (_, done) = mesh.run(&user, "py-caller", json!({})).await.unwrap();
    assert_eq!(
        done["output"],
        json!({"below": "bottom", "refused": "undeclared_dependency"}),
        "{done}"
    );

    // A cycle: ping 1.0.0 calls pong, whose 1.0.0 calls ping again.
    mesh.publish_approved(
        &dev,
        "ping",
        packages::node_agent("ping", "1.0.0", "module.exports = async () => 'ping';"),
        None,
    )
    .await
    .unwrap();
    mesh.publish_approved(
        &dev,
        "pong",
        caller("pong", json!({"ping": "^1"}), &relay("ping")),
        None,
    )
    .await
    .unwrap();
    let mut ping = caller("ping", json!({"pong": "^1"}), &relay("pong"));
    ping = repackage_version(ping, "1.1.0");
    let uploaded = mesh.upload(&dev, "ping", ping).send().await.unwrap();
    assert_eq!(uploaded.status(), 201);
    let approved = mesh
        .request(
            Method::POST,
            "/v1/agents/ping/versions/1.1.0/approve",
            Some(&admin(&mesh)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let (_, done) = mesh.run(&user, "ping", json!({})).await.unwrap();
    assert_eq!(
        done["output"],
        json!({"below": {"refused": "cycle"}}),
        "{done}"
    );
    mesh.shutdown().await.unwrap();
}

fn admin(mesh: &Mesh) -> String {
    mesh.admin_key.clone()
}

/// The same package with another version in its manifest.
fn repackage_version(package: Vec<u8>, version: &str) -> Vec<u8> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(package.as_slice()));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if path == "agent.json" {
            let mut manifest: Value = serde_json::from_slice(&bytes).unwrap();
            manifest["version"] = json!(version);
            bytes = manifest.to_string().into_bytes();
        }
        files.push((path, bytes));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    packages::tar_gz(&refs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_while_a_child_runs_charges_the_tree_once_and_the_tree_ends() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.recovery.reaper_interval_secs = 1;
        config.recovery.node_dead_after_secs = 3;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let user_id = me(&mesh, &user).await;
    publish_waiter(&mesh, &dev, 4_000).await;

    // A node in a process of its own, with room for the parent and its child.
    let cache = tempfile::tempdir().unwrap();
    let doomed = format!("doomed-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut process = tokio::process::Command::new(env!("CARGO_BIN_EXE_frameos-test-node"))
        .envs(mesh.node_env(cache.path()))
        .env("FRAMEOS_NODE_ID", &doomed)
        .env("FRAMEOS_NODE_CONCURRENCY", "2")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let accepted = mesh.execute(&user, "waiter", json!({})).await.unwrap();
    let root = accepted["id"].as_str().unwrap().to_string();
    // Wait until the child runs, then kill -9 the node that runs both.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let child = loop {
        let (_, parent) = get(&mesh, Some(&user), &format!("/v1/executions/{root}")).await;
        if let Some(child) = parent["children"]
            .get(0)
            .filter(|c| c["status"] == "running")
        {
            break child["id"].as_str().unwrap().to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child never ran: {parent}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    mesh.wait_for_event(&user, &child, "progress")
        .await
        .unwrap();
    process.start_kill().unwrap();
    process.wait().await.unwrap();

    // Another node: the reaper queues both again; the parent's retried call finds its child.
    mesh.start_node(2).await.unwrap();
    let (_, done) = mesh.follow(&user, &root).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], json!({"child": {"done": 7}}));
    assert!(done["attempts"].as_u64().unwrap() >= 2, "{done}");
    let (_, parent) = get(&mesh, Some(&user), &format!("/v1/executions/{root}")).await;
    let children = parent["children"].as_array().unwrap();
    assert_eq!(
        children.len(),
        1,
        "the retried call ran no second child: {parent}"
    );
    assert_eq!(children[0]["id"], child.as_str());
    assert_eq!(children[0]["charge"]["status"], "captured", "{parent}");
    assert_eq!(parent["charge"]["status"], "captured", "{parent}");

    // Where a double charge would show: the payer's debits in the ledger.
    let mut entries = entries_of(&mesh, &root).await;
    entries.extend(entries_of(&mesh, &child).await);
    let payer = format!("user:{user_id}");
    let debits: i64 = entries
        .iter()
        .filter(|(account, direction, _)| *account == payer && direction == "debit")
        .map(|(_, _, amount)| amount)
        .sum();
    assert_eq!(debits, PRICE + 10_000);
    let verification = verify_ledger(&mesh).await;
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(verification.transactions, 2);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canceling_a_parent_cancels_its_running_child_and_nothing_is_charged() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    publish_waiter(&mesh, &dev, 20_000).await;
    let accepted = mesh.execute(&user, "waiter", json!({})).await.unwrap();
    let root = accepted["id"].as_str().unwrap().to_string();
    // The parent's live stream announces the call as a `system` line.
    let call = mesh.wait_for_event(&user, &root, "log").await.unwrap();
    assert_eq!(call.data["stream"], "system", "{:?}", call.data);
    let line = call.data["line"].as_str().unwrap();
    let child = line.rsplit(' ').next().unwrap().to_string();
    assert!(
        line.starts_with("call 1: slow-child 1.0.0 started as execution"),
        "{line}"
    );
    mesh.wait_for_event(&user, &child, "progress")
        .await
        .unwrap();

    let canceled = mesh
        .request(
            Method::POST,
            &format!("/v1/executions/{root}/cancel"),
            Some(&user),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 200);
    let (_, child_done) = mesh.follow(&user, &child).await.unwrap();
    assert_eq!(child_done["status"], "canceled", "{child_done}");
    assert_eq!(child_done["charge"]["status"], "voided", "{child_done}");
    let (_, parent) = get(&mesh, Some(&user), &format!("/v1/executions/{root}")).await;
    assert_eq!(parent["status"], "canceled");
    assert_eq!(parent["charge"]["status"], "voided");
    assert_eq!(parent["children"][0]["status"], "canceled");
    let verification = verify_ledger(&mesh).await;
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(verification.transactions, 0);
    mesh.shutdown().await.unwrap();
}
