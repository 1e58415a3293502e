//! The JSON of schedules, both ways.

use serde_json::json;

use super::*;

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn body(value: Value) -> CreateSchedule {
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_minimal_body_runs_the_latest_version_in_utc_with_empty_inputs() {
    let message = request("word-count".into(), body(json!({"cron": "*/5 * * * *"}))).unwrap();
    assert_eq!(message.agent_slug, "word-count");
    assert_eq!(message.cron, "*/5 * * * *");
    assert_eq!(message.inputs_json, "{}");
    assert_eq!(
        (message.version, message.timezone, message.webhook_url),
        (String::new(), String::new(), String::new())
    );
    assert_eq!(message.mandate, None);
}

#[test]
fn a_full_body_carries_the_mandate_terms() {
    let message = request(
        "word-count".into(),
        body(json!({
            "cron": "0 9 * * 1",
            "inputs": {"text": "a b"},
            "timezone": "Europe/Paris",
            "version": "1.2.0",
            "webhook_url": "https://example.com/hook",
            "mandate": {"max_amount_minor": 500, "expires_at": "2030-01-31T01:00:00+01:00"},
        })),
    )
    .unwrap();
    assert_eq!(message.inputs_json, r#"{"text":"a b"}"#);
    assert_eq!(message.timezone, "Europe/Paris");
    assert_eq!(message.version, "1.2.0");
    assert_eq!(message.webhook_url, "https://example.com/hook");
    let terms = message.mandate.unwrap();
    assert_eq!(terms.max_amount_minor, 500);
    assert_eq!(terms.expires_at, at(1_896_048_000));
    let open = request(
        "x".into(),
        body(json!({"cron": "* * * * *", "mandate": {"max_amount_minor": 1}})),
    )
    .unwrap();
    assert_eq!(open.mandate.unwrap().expires_at, None);
}

#[test]
fn bad_terms_are_refused_and_a_bad_shape_does_not_decode() {
    for mandate in [
        json!({"max_amount_minor": 0}),
        json!({"max_amount_minor": 5, "expires_at": "next week"}),
    ] {
        let error = request(
            "x".into(),
            body(json!({"cron": "* * * * *", "mandate": mandate})),
        );
        assert_eq!(error.unwrap_err().code(), ErrorCode::ValidationFailed);
    }
    for bad in [
        json!({}),
        json!({"cron": "* * * * *", "inputs": [1]}),
        json!({"cron": "* * * * *", "mandate": {}}),
        json!({"cron": "* * * * *", "mandate": {"max_amount_minor": 1.5}}),
    ] {
        assert!(
            serde_json::from_value::<CreateSchedule>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn empty_fields_are_absent_from_a_schedule() {
    let schedule = v1::Schedule {
        id: "sch_1".into(),
        agent_slug: "word-count".into(),
        cron: "*/5 * * * *".into(),
        timezone: "UTC".into(),
        inputs_json: r#"{"text":"a b"}"#.into(),
        status: "active".into(),
        next_run_at: at(1_700_000_300),
        created_at: at(1_700_000_000),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(ScheduleView::try_from(schedule).unwrap()).unwrap(),
        json!({
            "id": "sch_1",
            "agent": "word-count",
            "cron": "*/5 * * * *",
            "timezone": "UTC",
            "inputs": {"text": "a b"},
            "status": "active",
            "next_run_at": "2023-11-14T22:18:20Z",
            "runs": 0,
            "created_at": "2023-11-14T22:13:20Z",
        })
    );
}

#[test]
fn a_paid_schedule_shows_its_last_run_and_its_mandate() {
    let schedule = v1::Schedule {
        id: "sch_2".into(),
        agent_slug: "translate".into(),
        version: "1.2.0".into(),
        cron: "0 9 * * 1".into(),
        timezone: "Europe/Paris".into(),
        inputs_json: "{}".into(),
        webhook_url: "https://example.com/hook".into(),
        status: "expired".into(),
        last_run_at: at(1_700_000_000),
        last_execution_id: "ex_9".into(),
        last_error: "budget_exceeded: over the mandate".into(),
        runs: 3,
        created_at: at(1_600_000_000),
        mandate: Some(v1::StandingMandate {
            mandate_id: "sm_1".into(),
            max_amount_minor: 500,
            currency: "EUR".into(),
            expires_at: at(1_700_000_000),
            kid: "mk_1".into(),
            payload: br#"{"type":"frameos.standing_mandate.v1"}"#.to_vec(),
            signature: vec![0xab, 0x01],
        }),
        ..Default::default()
    };
    let view = serde_json::to_value(ScheduleView::try_from(schedule).unwrap()).unwrap();
    assert_eq!(view["version"], "1.2.0");
    assert_eq!(view["status"], "expired");
    assert_eq!(view["webhook_url"], "https://example.com/hook");
    assert_eq!(view["last_execution_id"], "ex_9");
    assert_eq!(view["last_error"], "budget_exceeded: over the mandate");
    assert_eq!(view["runs"], 3);
    assert!(view.get("next_run_at").is_none(), "{view}");
    assert_eq!(
        view["mandate"],
        json!({
            "mandate_id": "sm_1",
            "max_amount_minor": 500,
            "currency": "EUR",
            "expires_at": "2023-11-14T22:13:20Z",
            "kid": "mk_1",
            "payload": "eyJ0eXBlIjoiZnJhbWVvcy5zdGFuZGluZ19tYW5kYXRlLnYxIn0=",
            "signature": "qwE=",
        })
    );
}

#[test]
fn an_unknown_status_or_unreadable_inputs_are_internal_errors() {
    let good = v1::Schedule {
        id: "sch_1".into(),
        status: "active".into(),
        inputs_json: "{}".into(),
        created_at: at(0),
        ..Default::default()
    };
    assert!(ScheduleView::try_from(good.clone()).is_ok());
    for bad in [
        v1::Schedule {
            status: "paused".into(),
            ..good.clone()
        },
        v1::Schedule {
            inputs_json: "[1]".into(),
            ..good.clone()
        },
        v1::Schedule {
            created_at: None,
            ..good
        },
    ] {
        let error = ScheduleView::try_from(bad).unwrap_err();
        assert_eq!(error.code, ErrorCode::Internal);
    }
}

#[test]
fn the_document_links_a_new_schedule_and_uses_its_status_words() {
    let doc = crate::openapi::document();
    let created = &doc["paths"]["/v1/agents/{slug}/schedules"]["post"]["responses"]["201"];
    assert_eq!(
        created["links"]["GetSchedule"]["operationId"],
        "get_schedule"
    );
    assert_eq!(
        created["links"]["DeleteSchedule"]["operationId"],
        "delete_schedule"
    );
    assert!(created["headers"]["Location"].is_object(), "{created}");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ScheduleStatus"]["enum"],
        json!(["active", "expired"])
    );
    let terms = &schemas["StandingMandateTerms"]["properties"]["max_amount_minor"];
    assert_eq!(terms["minimum"], 1, "{terms}");
}
