#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;
use crate::split::FeeSchedule;

fn rail() -> SandboxRail {
    SandboxRail::new(FeeSchedule::default())
}

fn invalid(r: Result<Authorization, RailError>) -> bool {
    matches!(r, Err(RailError::Invalid { .. }))
}

#[test]
fn authorize_is_idempotent_with_ids_from_the_key() {
    let rail = rail();
    let a = rail
        .authorize("auth:exec-1", "acct_user", 5000, "INR")
        .unwrap();
    let expected = format!(
        "auth_{}",
        &hex::encode(Sha256::digest(b"auth:exec-1"))[..24]
    );
    assert_eq!(a.id, expected);
    assert_eq!(a.state, AuthState::Authorized);
    assert_eq!(
        rail.authorize("auth:exec-1", "acct_user", 5000, "INR")
            .unwrap(),
        a
    );
    // Same key, other parameters: refused, and the first authorization is untouched.
    assert!(invalid(rail.authorize(
        "auth:exec-1",
        "acct_user",
        5001,
        "INR"
    )));
    assert!(invalid(rail.authorize(
        "auth:exec-1",
        "acct_other",
        5000,
        "INR"
    )));
    assert!(invalid(rail.authorize(
        "auth:exec-1",
        "acct_user",
        5000,
        "USD"
    )));
    let b = rail
        .authorize("auth:exec-2", "acct_user", 5000, "INR")
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(rail.list().unwrap().len(), 2);
    assert_eq!(rail.get(&a.id).unwrap(), Some(a));
    assert_eq!(rail.get("auth_nope").unwrap(), None);
}

#[test]
fn authorize_refuses_bad_requests() {
    let rail = rail();
    for (key, payer, amount, currency) in [
        ("", "p", 1, "INR"),
        ("k", "", 1, "INR"),
        ("k", "p", 0, "INR"),
        ("k", "p", -1, "INR"),
        ("k", "p", crate::MAX_MINOR + 1, "INR"),
        ("k", "p", 1, "inr"),
        ("k", "p", 1, "ZZZ"),
    ] {
        assert!(invalid(rail.authorize(key, payer, amount, currency)));
    }
    assert!(rail.list().unwrap().is_empty());
}

#[test]
fn test_payers_decline_and_fail_authorize() {
    let rail = rail();
    let declined = rail.authorize("k1", "test_decline_card", 5000, "INR");
    assert!(matches!(declined, Err(RailError::Declined { .. })));
    assert!(!declined.unwrap_err().is_retryable());
    let failed = rail.authorize("k2", "test_fail_authorize", 5000, "INR");
    assert!(matches!(failed, Err(RailError::Failed { .. })));
    assert!(failed.unwrap_err().is_retryable());
    assert!(rail.list().unwrap().is_empty(), "nothing is held");
}

#[test]
fn capture_happens_once_and_reports_the_fee() {
    let rail = rail();
    let a = rail
        .authorize("auth:e", "acct_user", 10_000, "INR")
        .unwrap();
    let captured = rail.capture(&a.id, "capture:e").unwrap();
    assert_eq!(captured.state, AuthState::Captured { fee_minor: 490 });
    assert_eq!(captured.state.as_str(), "captured");
    assert_eq!(captured.amount_minor, 10_000);
    assert_eq!(rail.capture(&a.id, "capture:e").unwrap(), captured);
    assert_eq!(
        rail.capture(&a.id, "capture:other"),
        Err(RailError::InvalidState {
            state: "captured".into()
        })
    );
    assert_eq!(
        rail.void(&a.id, "void:e"),
        Err(RailError::InvalidState {
            state: "captured".into()
        })
    );
    // Replaying the authorize now shows the captured state.
    assert_eq!(
        rail.authorize("auth:e", "acct_user", 10_000, "INR")
            .unwrap(),
        captured
    );
    assert_eq!(
        rail.capture("auth_nope", "capture:x"),
        Err(RailError::NotFound)
    );
    assert!(invalid(rail.capture(&a.id, "")));
}

#[test]
fn void_releases_the_hold_once() {
    let rail = rail();
    let a = rail.authorize("auth:e", "acct_user", 5000, "INR").unwrap();
    let voided = rail.void(&a.id, "void:e").unwrap();
    assert_eq!(voided.state, AuthState::Voided);
    assert_eq!(rail.void(&a.id, "void:e").unwrap(), voided);
    assert_eq!(
        rail.void(&a.id, "void:again"),
        Err(RailError::InvalidState {
            state: "voided".into()
        })
    );
    assert_eq!(
        rail.capture(&a.id, "capture:e"),
        Err(RailError::InvalidState {
            state: "voided".into()
        })
    );
    // A key belongs to one operation on one authorization.
    assert!(invalid(rail.capture(&a.id, "void:e")));
    let b = rail.authorize("auth:f", "acct_user", 5000, "INR").unwrap();
    assert!(invalid(rail.void(&b.id, "void:e")));
    assert_eq!(rail.void("auth_nope", "void:x"), Err(RailError::NotFound));
}

#[test]
fn capture_outages_for_test_payers() {
    let rail = rail();
    let always = rail
        .authorize("a1", "test_fail_capture", 5000, "INR")
        .unwrap();
    for _ in 0..3 {
        let err = rail.capture(&always.id, "c1").unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
    assert_eq!(
        rail.get(&always.id).unwrap().unwrap().state,
        AuthState::Authorized
    );
    assert_eq!(
        rail.void(&always.id, "v1").unwrap().state,
        AuthState::Voided
    );

    let once = rail
        .authorize("a2", "test_fail_capture_once", 5000, "INR")
        .unwrap();
    assert!(matches!(
        rail.capture(&once.id, "c2"),
        Err(RailError::Failed { .. })
    ));
    let captured = rail.capture(&once.id, "c2").unwrap();
    assert!(matches!(captured.state, AuthState::Captured { .. }));
    assert_eq!(rail.capture(&once.id, "c2").unwrap(), captured);
}

#[test]
fn state_snapshot_round_trips_through_serde() {
    let rail = rail();
    let captured = rail.authorize("a1", "acct_user", 5000, "INR").unwrap();
    rail.capture(&captured.id, "c1").unwrap();
    let voided = rail.authorize("a2", "acct_user", 7000, "INR").unwrap();
    rail.void(&voided.id, "v2").unwrap();
    let held = rail.authorize("a3", "acct_user", 9000, "INR").unwrap();
    let flaky = rail
        .authorize("a4", "test_fail_capture_once_x", 9000, "INR")
        .unwrap();
    assert!(rail.capture(&flaky.id, "c4").is_err());

    let json = serde_json::to_string(&rail.state()).unwrap();
    let state: SandboxState = serde_json::from_str(&json).unwrap();
    assert_eq!(state, rail.state());
    let restarted = SandboxRail::with_state(FeeSchedule::default(), state);
    assert_eq!(restarted.list().unwrap(), rail.list().unwrap());
    // The restarted rail remembers keys, outcomes and the outage already suffered.
    let replayed = restarted.capture(&captured.id, "c1").unwrap();
    assert_eq!(replayed, rail.get(&captured.id).unwrap().unwrap());
    assert!(matches!(
        restarted.capture(&voided.id, "c2"),
        Err(RailError::InvalidState { .. })
    ));
    assert!(restarted.capture(&held.id, "c3").is_ok());
    assert!(restarted.capture(&flaky.id, "c4").is_ok());
    // The two are independent copies.
    assert_eq!(
        rail.get(&held.id).unwrap().unwrap().state,
        AuthState::Authorized
    );
}

#[test]
fn concurrent_retries_hold_and_capture_once() {
    let rail: Arc<dyn PaymentRail> = Arc::new(rail());
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let rail = Arc::clone(&rail);
            std::thread::spawn(move || {
                let a = rail
                    .authorize("auth:same", "acct_user", 5000, "INR")
                    .unwrap();
                rail.capture(&a.id, "capture:same").unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(rail.list().unwrap().len(), 1);
}

#[test]
fn every_call_is_logged_with_what_came_of_it() {
    let rail = rail();
    let before = chrono::Utc::now();
    let a = rail
        .authorize("auth:e", "acct_user", 10_000, "INR")
        .unwrap();
    assert!(a.created_at >= before && a.created_at <= chrono::Utc::now());
    rail.authorize("auth:e", "acct_user", 10_000, "INR")
        .unwrap();
    rail.capture(&a.id, "capture:e").unwrap();
    rail.capture(&a.id, "capture:e").unwrap();
    assert!(rail.capture(&a.id, "capture:again").is_err());
    assert!(rail.void(&a.id, "void:e").is_err());
    assert!(
        rail.authorize("auth:d", "test_decline_x", 10, "INR")
            .is_err()
    );
    assert!(rail.capture("auth_nope", "capture:n").is_err());
    let log: Vec<_> = rail
        .take_journal()
        .into_iter()
        .map(|c| {
            (
                c.operation.as_str(),
                c.idempotency_key,
                c.outcome.as_str(),
                c.amount_minor,
            )
        })
        .collect();
    let entry = |op: &'static str, key: &str, outcome: &'static str, amount: Option<i64>| {
        (op, key.to_string(), outcome, amount)
    };
    assert_eq!(
        log,
        vec![
            entry("authorize", "auth:e", "authorized", Some(10_000)),
            entry("authorize", "auth:e", "replayed", Some(10_000)),
            entry("capture", "capture:e", "captured", Some(10_000)),
            entry("capture", "capture:e", "replayed", Some(10_000)),
            entry("capture", "capture:again", "invalid_state", None),
            entry("void", "void:e", "invalid_state", None),
            entry("authorize", "auth:d", "declined", None),
            entry("capture", "capture:n", "not_found", None),
        ]
    );
    assert!(rail.take_journal().is_empty(), "taking the log drains it");
    // Only a fresh capture counts as one: a second, under another key, would be logged as
    // `captured` too, which is what a crash test counts.
    let b = rail.authorize("auth:f", "acct_user", 5000, "INR").unwrap();
    rail.void(&b.id, "void:f").unwrap();
    rail.void(&b.id, "void:f").unwrap();
    let outcomes: Vec<_> = rail
        .take_journal()
        .iter()
        .map(|c| (c.outcome.as_str(), c.authorization_id.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("authorized", Some(b.id.clone())),
            ("voided", Some(b.id.clone())),
            ("replayed", Some(b.id.clone())),
        ]
    );
}

#[test]
fn the_fee_of_a_capture_is_in_the_holds_currency() {
    let rail = rail();
    // 2.9% + the fixed ₹2 as ¥2, $2.00 and 2.000 KWD.
    for (currency, amount, fee) in [
        ("INR", 10_000, 290 + 200),
        ("JPY", 1000, 29 + 2),
        ("USD", 10_000, 290 + 200),
        ("KWD", 100_000, 2900 + 2000),
    ] {
        let a = rail
            .authorize(&format!("auth:{currency}"), "acct_user", amount, currency)
            .unwrap();
        let captured = rail.capture(&a.id, &format!("capture:{currency}")).unwrap();
        assert_eq!(
            captured.state,
            AuthState::Captured { fee_minor: fee },
            "{currency}"
        );
    }
    assert!(invalid(rail.authorize("auth:btc", "acct_user", 100, "BTC")));
}

#[test]
fn records_without_a_creation_time_read_as_old() {
    let json = r#"{"id":"auth_1","idempotency_key":"authorize:x","payer":"p","amount_minor":5,
        "currency":"INR","state":{"status":"authorized"}}"#;
    let a: Authorization = serde_json::from_str(json).unwrap();
    assert_eq!(a.created_at, chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
}
