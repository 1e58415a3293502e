//! The Stripe rail against the fake Stripe, call by call: what goes over the wire, how each
//! answer maps to the rail's outcomes, retries under one idempotency key, and the listing.
//! No mesh: the adapter alone.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use frameos_billing::{AuthState, FeeSchedule, RailError};
use frameos_control_plane::billing::{Secret, StripeRail, StripeSettings};
use frameos_integration_tests::stripe::{
    Failure, FakeStripe, PM_DECLINED, PM_VISA, Planted, Pricing,
};

const INSTANCE: &str = "it";

fn rail(base_url: &str, secret: &str, payment_method: &str, timeout: Duration) -> StripeRail {
    StripeRail::new(
        StripeSettings {
            api_base: base_url.to_string(),
            secret_key: Secret::from(secret.to_string()),
            payment_method: payment_method.to_string(),
            instance: INSTANCE.to_string(),
            timeout,
        },
        FeeSchedule::default(),
    )
    .unwrap()
}

fn rail_of(fake: &FakeStripe, payment_method: &str) -> StripeRail {
    rail(
        &fake.base_url,
        &fake.secret_key,
        payment_method,
        Duration::from_secs(5),
    )
}

#[tokio::test]
async fn stripe_authorize_then_capture_with_the_fee_stripe_reports() {
    let fake = FakeStripe::start_with(Pricing {
        fee_bp: 250,
        fee_fixed_minor: 30,
        settlement_currency: None,
    })
    .await
    .unwrap();
    let rail = rail_of(&fake, PM_VISA);

    let held = rail
        .authorize("authorize:e1", "acct-payer", 10_000, "INR")
        .await
        .unwrap();
    assert_eq!(held.state, AuthState::Authorized);
    assert_eq!(
        (
            held.amount_minor,
            held.currency.as_str(),
            held.payer.as_str()
        ),
        (10_000, "INR", "acct-payer")
    );
    assert_eq!(held.idempotency_key, "authorize:e1");
    let create = &fake.posts()[0];
    assert_eq!(create.path, "/v1/payment_intents");
    assert!(create.authenticated);
    assert_eq!(create.idempotency_key.as_deref(), Some("authorize:e1"));
    for (name, value) in [
        ("amount", "10000"),
        ("currency", "inr"),
        ("capture_method", "manual"),
        ("confirm", "true"),
        ("payment_method", PM_VISA),
        ("metadata[payer]", "acct-payer"),
        ("metadata[frameos_key]", "authorize:e1"),
        ("metadata[frameos_instance]", INSTANCE),
    ] {
        assert_eq!(create.param(name), Some(value), "{name} in {create:?}");
    }
    assert_eq!(fake.intent(&held.id).unwrap()["status"], "requires_capture");

    // 2.5% of 10000 + 30: Stripe's fee, not the schedule's (2.9% + 200 = 490).
    let captured = rail.capture(&held.id, "capture:e1").await.unwrap();
    assert_eq!(captured.state, AuthState::Captured { fee_minor: 280 });
    assert_eq!(fake.intent(&held.id).unwrap()["status"], "succeeded");
    // The same capture again (a retry after a crash) is Stripe's replay, not a second capture.
    let again = rail.capture(&held.id, "capture:e1").await.unwrap();
    assert_eq!(again, captured);
    let posts = fake.posts();
    assert_eq!(posts.len(), 3, "{posts:#?}");
    assert!(posts[2].replayed && posts[2].path.ends_with("/capture"));
    assert_eq!(rail.get(&held.id).await.unwrap(), Some(captured));
    // A captured hold cannot be voided.
    assert_eq!(
        rail.void(&held.id, "void:e1").await,
        Err(RailError::InvalidState {
            state: "captured".into()
        })
    );
}

#[tokio::test]
async fn stripe_card_decline_is_declined_and_holds_nothing() {
    let fake = FakeStripe::start().await.unwrap();
    let rail = rail_of(&fake, PM_DECLINED);
    for _ in 0..2 {
        match rail.authorize("authorize:e2", "acct", 5_000, "INR").await {
            Err(RailError::Declined { reason }) => {
                assert!(reason.contains("declined"), "{reason}");
                assert!(reason.contains("generic_decline"), "{reason}");
            }
            other => panic!("not a decline: {other:?}"),
        }
    }
    let posts = fake.posts();
    assert_eq!(
        posts
            .iter()
            .map(|p| (p.status, p.replayed))
            .collect::<Vec<_>>(),
        [(402, false), (402, true)],
        "a decline is not retried, and its repeat is the replay"
    );
    assert_eq!(fake.intents().len(), 1);
    assert_eq!(fake.intents()[0]["status"], "requires_payment_method");
    assert_eq!(rail.list().await.unwrap(), vec![], "it never held money");
}

#[tokio::test]
async fn stripe_expired_authorization_captures_as_voided() {
    let fake = FakeStripe::start().await.unwrap();
    let rail = rail_of(&fake, PM_VISA);
    let held = rail
        .authorize("authorize:e3", "acct", 5_000, "INR")
        .await
        .unwrap();
    fake.expire(&held.id).unwrap();

    assert_eq!(
        rail.capture(&held.id, "capture:e3").await,
        Err(RailError::InvalidState {
            state: AuthState::Voided.as_str().into()
        })
    );
    let capture = fake.posts().pop().unwrap();
    assert_eq!(capture.status, 400, "Stripe refused the capture itself");
    let intent = fake.intent(&held.id).unwrap();
    assert_eq!(
        (&intent["status"], &intent["cancellation_reason"]),
        (&"canceled".into(), &"automatic".into())
    );
    // Voiding it is a release already done: the books may say voided.
    let voided = rail.void(&held.id, "void:e3").await.unwrap();
    assert_eq!(voided.state, AuthState::Voided);
    let listed = rail.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, AuthState::Voided);
}

#[tokio::test]
async fn stripe_failed_calls_are_retried_under_the_same_key_and_charge_once() {
    let fake = FakeStripe::start().await.unwrap();
    let rail = rail_of(&fake, PM_VISA);

    // The intent is created, the answer lost: the retry is Stripe's replay of it.
    fake.fail_next(Failure::AfterExecution);
    let held = rail
        .authorize("authorize:e4", "acct", 5_000, "INR")
        .await
        .unwrap();
    let posts = fake.posts();
    assert_eq!(
        posts
            .iter()
            .map(|p| (p.idempotency_key.as_deref(), p.status, p.replayed))
            .collect::<Vec<_>>(),
        [
            (Some("authorize:e4"), 500, false),
            (Some("authorize:e4"), 200, true)
        ]
    );
    assert_eq!(fake.intents().len(), 1, "one intent for one key");
    assert_eq!(fake.intents()[0]["id"], held.id.as_str());

    // A 500 before anything ran: the retry does it, once.
    fake.fail_next(Failure::BeforeExecution);
    let captured = rail.capture(&held.id, "capture:e4").await.unwrap();
    assert!(matches!(captured.state, AuthState::Captured { .. }));
    let captures: Vec<_> = fake
        .posts()
        .into_iter()
        .filter(|p| p.path.ends_with("/capture"))
        .map(|p| (p.idempotency_key, p.status, p.replayed))
        .collect();
    assert_eq!(
        captures,
        [
            (Some("capture:e4".to_string()), 500, false),
            (Some("capture:e4".to_string()), 200, false)
        ]
    );

    // The caller's own retry after a crash: the same hold, nothing new at Stripe.
    let replayed = rail
        .authorize("authorize:e4", "acct", 5_000, "INR")
        .await
        .unwrap();
    assert_eq!(replayed.id, held.id);
    assert_eq!(fake.intents().len(), 1);
}

#[tokio::test]
async fn stripe_key_reused_with_other_parameters_is_invalid() {
    let fake = FakeStripe::start().await.unwrap();
    let rail = rail_of(&fake, PM_VISA);
    rail.authorize("authorize:e5", "acct", 5_000, "INR")
        .await
        .unwrap();
    let reused = rail.authorize("authorize:e5", "acct", 6_000, "INR").await;
    assert!(
        matches!(reused, Err(RailError::Invalid { .. })),
        "{reused:?}"
    );
    assert_eq!(fake.intents().len(), 1);
}

#[tokio::test]
async fn stripe_listing_pages_through_every_intent_of_this_deployment() {
    let fake = FakeStripe::start().await.unwrap();
    let rail = rail_of(&fake, PM_VISA);
    let mut held = Vec::new();
    for n in 0..230 {
        let key = format!("authorize:list-{n}");
        held.push(rail.authorize(&key, "acct", 5_000, "INR").await.unwrap());
    }
    let ours: HashSet<String> = held.iter().map(|a| a.id.clone()).collect();
    let captured = rail.capture(&held[6].id, "capture:list-6").await.unwrap();
    let voided = rail.void(&held[7].id, "void:list-7").await.unwrap();
    // Holds someone else placed on the same account: not ours to list, nor to release.
    let hour = Duration::from_secs(3600);
    fake.plant(Planted {
        amount: 1_000,
        currency: "inr",
        metadata: &[],
        age: hour,
    });
    fake.plant(Planted {
        amount: 1_000,
        currency: "inr",
        metadata: &[
            ("frameos_instance", "staging"),
            ("frameos_key", "authorize:x"),
        ],
        age: hour,
    });

    let listed = rail.list().await.unwrap();
    let ids: HashSet<String> = listed.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids, ours);
    assert_eq!(listed.len(), 230, "each once");
    let state_of = |id: &str| listed.iter().find(|a| a.id == id).unwrap().state.clone();
    // Captured; the fee of a listing is the schedule's (a listing does not expand charges).
    assert_eq!(
        state_of(&captured.id),
        AuthState::Captured {
            fee_minor: FeeSchedule::default().fee(5_000)
        }
    );
    assert_eq!(state_of(&voided.id), AuthState::Voided);
    let authorized = listed
        .iter()
        .filter(|a| a.state == AuthState::Authorized)
        .count();
    assert_eq!(authorized, 228);
    // 232 intents in three pages of at most 100, each after the last one seen.
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v1/payment_intents")
        .collect();
    assert_eq!(pages.len(), 3, "{pages:#?}");
    assert!(pages.iter().all(|p| p.param("limit") == Some("100")));
    assert!(pages.iter().all(|p| p.param("created[gte]").is_some()));
    assert_eq!(pages[0].param("starting_after"), None);
    assert!(pages[1].param("starting_after").is_some());
    assert_ne!(
        pages[1].param("starting_after"),
        pages[2].param("starting_after")
    );
}

#[tokio::test]
async fn stripe_refused_key_is_a_failure_that_does_not_repeat_the_key() {
    let fake = FakeStripe::start().await.unwrap();
    let wrong = "sk_test_not_the_fakes_key_0123456789";
    let rail = rail(&fake.base_url, wrong, PM_VISA, Duration::from_secs(5));
    match rail.authorize("authorize:e6", "acct", 5_000, "INR").await {
        Err(RailError::Failed { reason }) => {
            assert!(!reason.contains(wrong), "{reason}");
            assert!(reason.contains("401"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "a refused key is not retried");
    assert!(!requests[0].authenticated);
    assert!(fake.intents().is_empty());
}

#[tokio::test]
async fn stripe_that_never_answers_times_out() {
    let fake = FakeStripe::start().await.unwrap();
    let rail = rail(
        &fake.base_url,
        &fake.secret_key,
        PM_VISA,
        Duration::from_millis(500),
    );
    fake.fail_next(Failure::Hang);
    fake.fail_next(Failure::Hang);
    let started = Instant::now();
    let result = rail.authorize("authorize:e7", "acct", 5_000, "INR").await;
    assert!(
        matches!(result, Err(RailError::Failed { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), 2, "tried twice, then gave up");
}

#[tokio::test]
async fn stripe_oversized_answer_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "x".repeat(2 << 20) });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let rail = rail(&base, "sk_test_any", PM_VISA, Duration::from_secs(5));
    match rail.list().await {
        Err(RailError::Failed { reason }) => assert!(reason.contains("bytes"), "{reason}"),
        other => panic!("{other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn stripe_fee_settled_in_another_currency_falls_back_to_the_schedule() {
    let fake = FakeStripe::start_with(Pricing {
        settlement_currency: Some("usd".into()),
        ..Pricing::default()
    })
    .await
    .unwrap();
    let rail = rail_of(&fake, PM_VISA);
    let held = rail
        .authorize("authorize:e8", "acct", 10_000, "INR")
        .await
        .unwrap();
    let captured = rail.capture(&held.id, "capture:e8").await.unwrap();
    // No exchange rate: the schedule's 2.9% + ₹2 of ₹100.
    assert_eq!(captured.state, AuthState::Captured { fee_minor: 490 });
}
