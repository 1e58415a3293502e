//! Paying through Stripe (ADR 0043): the whole mesh with `FRAMEOS_RAIL=stripe` pointed at the
//! fake Stripe. A success is held then captured at Stripe's fee, a failure's hold is canceled,
//! a hold Stripe let expire settles as voided, reconciliation cancels a hold nobody recorded
//! (and no one else's), and a declined card is a 402 before anything is queued. What reached "Stripe" is read from its request log.

mod rail;

use std::time::Duration;

use frameos_control_plane::billing::{RailKind, Secret};
use frameos_integration_tests::stripe::{FakeStripe, LoggedRequest, PM_DECLINED, PM_VISA, Planted};
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

use super::{PRICE, balance, get, me, verify_ledger};

/// The create request of the hold of `execution_id`.
fn create_of<'a>(posts: &'a [LoggedRequest], execution_id: &str) -> (usize, &'a LoggedRequest) {
    let key = format!("authorize:{execution_id}");
    posts
        .iter()
        .enumerate()
        .find(|(_, p)| {
            p.path == "/v1/payment_intents" && p.param("metadata[frameos_key]") == Some(&key)
        })
        .unwrap_or_else(|| panic!("no intent created for {execution_id}: {posts:#?}"))
}

/// The POST to `path` that did it, and its position, after checking every POST to `path` used
/// `key` and all but that one were replays (the reconciler may settle at the same moment).
fn post_to<'a>(posts: &'a [LoggedRequest], path: &str, key: &str) -> (usize, &'a LoggedRequest) {
    let found: Vec<_> = posts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.path == path)
        .collect();
    assert!(
        found
            .iter()
            .all(|(_, p)| p.idempotency_key.as_deref() == Some(key)),
        "{path}: {found:#?}"
    );
    let done: Vec<_> = found.into_iter().filter(|(_, p)| !p.replayed).collect();
    assert_eq!(done.len(), 1, "{path}: {posts:#?}");
    assert_eq!(done[0].1.status, 200, "{:?}", done[0]);
    done[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stripe_captures_a_success_voids_the_rest_and_declines_before_queueing() {
    // Stripe's fee here is 2% + 300: on ₹100, 500 (the configured schedule would say 490).
    let fake = FakeStripe::start().await.unwrap();
    let (base_url, secret) = (fake.base_url.clone(), fake.secret_key.clone());
    let mut mesh = Mesh::start_tuned(
        Backend::PostgresS3,
        true,
        |config| {
            config.billing.rail = RailKind::Stripe;
            config.billing.stripe_api_base = base_url;
            config.billing.stripe_secret_key = Some(Secret::from(secret));
            config.billing.stripe_payment_method = Some(PM_VISA.into());
            // Orphan holds are released once older than one interval.
            config.billing.reconcile_interval_secs = 1;
        },
        |_| {},
    )
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let dev_id = me(&mesh, &dev).await;
    let user_id = me(&mesh, &user).await;
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(PRICE),
    )
    .await
    .unwrap();
    let fails = packages::node_agent_with(
        "fails",
        "module.exports = async () => { throw new Error('nope'); };",
        20_000,
        128,
    );
    mesh.publish_approved(&dev, "fails", fails, Some(PRICE))
        .await
        .unwrap();
    let lingers = packages::node_agent_with(
        "lingers",
        "module.exports = async () => { await new Promise(r => setTimeout(r, 2000)); return {}; };",
        20_000,
        128,
    );
    mesh.publish_approved(&dev, "lingers", lingers, Some(PRICE))
        .await
        .unwrap();

    // A success: held with manual capture, then captured; the split takes Stripe's fee.
    let (_, done) = mesh
        .run(&user, "word-count", json!({"text": "pay by card"}))
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let paid = done["id"].as_str().unwrap().to_string();
    let (_, execution) = get(&mesh, Some(&user), &format!("/v1/executions/{paid}")).await;
    assert_eq!(
        execution["charge"],
        json!({"status": "captured", "amount_minor": PRICE, "currency": "INR",
               "splits": {"developer": 7000, "platform": 2500, "orchestrator": 0, "rail_fee": 500}}),
        "{execution}"
    );
    assert_eq!(balance(&mesh, &dev, &dev_id).await, 7000);
    assert_eq!(balance(&mesh, &user, &user_id).await, -PRICE);
    let posts = fake.posts();
    let (created_at, create) = create_of(&posts, &paid);
    for (name, value) in [
        ("amount", "10000"),
        ("currency", "inr"),
        ("capture_method", "manual"),
        ("confirm", "true"),
        ("payment_method", PM_VISA),
        ("metadata[payer]", user_id.as_str()),
    ] {
        assert_eq!(create.param(name), Some(value), "{name}: {create:?}");
    }
    assert_eq!(create.status, 200);
    let intent = fake
        .intents()
        .into_iter()
        .find(|i| i["metadata"]["frameos_key"] == format!("authorize:{paid}"))
        .unwrap();
    let pi = intent["id"].as_str().unwrap();
    assert_eq!(intent["status"], "succeeded");
    let capture = format!("/v1/payment_intents/{pi}/capture");
    let (captured_at, _) = post_to(&posts, &capture, &format!("capture:{paid}"));
    assert!(captured_at > created_at);

    // A failure: the hold is canceled at Stripe, nothing captured, the charge voided.
    let (_, failed) = mesh.run(&user, "fails", json!({})).await.unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    let unpaid = failed["id"].as_str().unwrap().to_string();
    let (_, execution) = get(&mesh, Some(&user), &format!("/v1/executions/{unpaid}")).await;
    assert_eq!(execution["charge"]["status"], "voided", "{execution}");
    let intent = fake
        .intents()
        .into_iter()
        .find(|i| i["metadata"]["frameos_key"] == format!("authorize:{unpaid}"))
        .unwrap();
    assert_eq!(intent["status"], "canceled", "{intent}");
    let pi = intent["id"].as_str().unwrap();
    let posts = fake.posts();
    post_to(
        &posts,
        &format!("/v1/payment_intents/{pi}/cancel"),
        &format!("void:{unpaid}"),
    );
    assert!(
        !posts
            .iter()
            .any(|p| p.path == format!("/v1/payment_intents/{pi}/capture"))
    );

    // A success whose hold Stripe let expire before the capture (7 days, here at once): the
    // capture is refused, and the books say voided, with nothing posted.
    let accepted = mesh.execute(&user, "lingers", json!({})).await.unwrap();
    let expired = accepted["id"].as_str().unwrap().to_string();
    let intent = fake
        .intents()
        .into_iter()
        .find(|i| i["metadata"]["frameos_key"] == format!("authorize:{expired}"))
        .unwrap();
    let pi = intent["id"].as_str().unwrap().to_string();
    fake.expire(&pi).unwrap();
    let (_, ended) = mesh.follow(&user, &expired).await.unwrap();
    assert_eq!(ended["status"], "succeeded", "{ended}");
    let (_, execution) = get(&mesh, Some(&user), &format!("/v1/executions/{expired}")).await;
    assert_eq!(execution["charge"]["status"], "voided", "{execution}");
    let refused: Vec<_> = fake
        .posts()
        .into_iter()
        .filter(|p| p.path == format!("/v1/payment_intents/{pi}/capture"))
        .collect();
    assert!(
        !refused.is_empty() && refused.iter().all(|p| p.status == 400),
        "{refused:#?}"
    );
    assert_eq!(
        balance(&mesh, &dev, &dev_id).await,
        7000,
        "still the first charge only"
    );

    // A hold this deployment placed and never recorded (a crash before the commit) is released
    // by the polling reconciliation; one another deployment placed is left alone.
    let hour = Duration::from_secs(3600);
    let ghost = format!("authorize:{}", uuid::Uuid::now_v7());
    let orphan = fake.plant(Planted {
        amount: PRICE,
        currency: "inr",
        metadata: &[
            ("frameos_instance", "frameos"),
            ("frameos_key", &ghost),
            ("payer", "p"),
        ],
        age: hour,
    });
    let foreign = fake.plant(Planted {
        amount: PRICE,
        currency: "inr",
        metadata: &[("frameos_instance", "staging"), ("frameos_key", &ghost)],
        age: hour,
    });
    fake.wait_until("the orphan hold canceled", Duration::from_secs(30), |f| {
        f.intent(&orphan).is_some_and(|i| i["status"] == "canceled")
    })
    .await
    .unwrap();
    assert_eq!(fake.intent(&foreign).unwrap()["status"], "requires_capture");
    let posts = fake.posts();
    let release = ghost.replacen("authorize:", "void:", 1);
    post_to(
        &posts,
        &format!("/v1/payment_intents/{orphan}/cancel"),
        &release,
    );

    // Every request carried the key; every POST an idempotency key.
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.authenticated), "{requests:#?}");
    assert!(
        posts.iter().all(|p| p.idempotency_key.is_some()),
        "{posts:#?}"
    );

    // A card that declines: 402 before anything is queued or recorded.
    mesh.restart_control_plane(|config| {
        config.billing.stripe_payment_method = Some(PM_DECLINED.into());
    })
    .await
    .unwrap();
    let dora = mesh.account("dora", "user").await.unwrap();
    let dora_id = me(&mesh, &dora).await;
    let response = mesh
        .request(
            Method::POST,
            "/v1/agents/word-count/executions",
            Some(&dora),
        )
        .json(&json!({"inputs": {"text": "no money"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 402);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payment_declined", "{body}");
    let (_, list) = get(&mesh, Some(&dora), "/v1/executions").await;
    assert_eq!(list["items"], json!([]), "{list}");
    let declined: Vec<_> = fake
        .posts()
        .into_iter()
        .filter(|p| p.param("metadata[payer]") == Some(&dora_id))
        .collect();
    assert_eq!(declined.len(), 1, "{declined:#?}");
    assert_eq!(declined[0].status, 402);
    assert_eq!(declined[0].param("payment_method"), Some(PM_DECLINED));
    assert!(
        fake.intents()
            .iter()
            .filter(|i| i["metadata"]["payer"] == dora_id.as_str())
            .all(|i| i["status"] == "requires_payment_method"),
        "a decline holds nothing"
    );
    assert_eq!(balance(&mesh, &dora, &dora_id).await, 0);

    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 1);
    mesh.shutdown().await.unwrap();
}
