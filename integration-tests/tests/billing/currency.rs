//! Currencies (issue 7, finding 7): only circulating ISO 4217 currencies can price an agent, and
//! the minimum price (the rail's fee must fit in the platform's share) uses each currency's
//! minor-unit exponent: the fixed ₹2 of the fee is ¥2, $2.00 or 2.000 KWD.

use frameos_integration_tests::{Backend, Mesh};
use reqwest::Method;
use serde_json::{Value, json};

async fn create(
    mesh: &Mesh,
    key: &str,
    slug: &str,
    price_minor: i64,
    currency: &str,
) -> (u16, Value) {
    let response = mesh
        .request(Method::POST, "/v1/agents", Some(key))
        .json(&json!({
            "slug": slug,
            "name": slug,
            "pricing": {"model": "per_execution", "price_minor": price_minor, "currency": currency},
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_iso_4217_currencies_price_an_agent() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    for (code, why) in [
        ("BTC", "not a currency in ISO 4217"),
        ("ZZZ", "not a currency in ISO 4217"),
        ("XAU", "not a payment currency"),
        ("XTS", "not a payment currency"),
        ("HRK", "superseded in ISO 4217 by EUR"),
        ("inr", "three uppercase letters"),
    ] {
        let (status, body) = create(&mesh, &dev, "coin", 1_000_000, code).await;
        assert_eq!(status, 422, "{code}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{code}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("pricing.currency"), "{code}: {message}");
        assert!(message.contains(why), "{code}: {message}");
    }
    let (status, body) = create(&mesh, &dev, "coin", 1_000_000, "EUR").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pricing"]["currency"], "EUR", "{body}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_minimum_price_follows_the_currencys_exponent() {
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    // 2.9% + ₹2 against the 10% the platform keeps at the top tier, orchestrated, with the
    // fixed part in each currency's minor units (computed apart: see the billing crate's tests).
    for (code, minimum) in [
        ("JPY", 37),
        ("INR", 2817),
        ("USD", 2817),
        ("KWD", 28_177),
        ("BHD", 28_177),
    ] {
        let slug = format!("priced-{}", code.to_lowercase());
        let (status, body) = create(&mesh, &dev, &slug, minimum - 1, code).await;
        assert_eq!(status, 422, "{code}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("minimum of {minimum} {code}")),
            "{code}: {message}"
        );
        let (status, body) = create(&mesh, &dev, &slug, minimum, code).await;
        assert_eq!(status, 201, "{code}: {body}");
    }
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_priced_before_currencies_were_checked_is_refused_clearly_and_holds_nothing() {
    use sea_orm::{ConnectionTrait, Database};
    let mesh = Mesh::start(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "word-count",
        frameos_integration_tests::packages::example("word-count"),
        Some(5_000),
    )
    .await
    .unwrap();
    // What a row written before the ISO 4217 check may hold.
    let db = Database::connect(mesh.database_url()).await.unwrap();
    db.execute_unprepared("update agents set currency = 'ZZZ' where slug = 'word-count'")
        .await
        .unwrap();
    db.close().await.unwrap();

    let response = mesh
        .request(
            Method::POST,
            "/v1/agents/word-count/executions",
            Some(&user),
        )
        .json(&json!({"inputs": {"text": "a b"}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("ZZZ"), "{message}");
    // Nothing reached the rail, nothing was written.
    let calls = frameos_integration_tests::rail::calls(mesh.database_url())
        .await
        .unwrap();
    assert!(calls.is_empty(), "{calls:?}");
    let listed: Value = mesh
        .request(Method::GET, "/v1/executions", Some(&user))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "{listed}");
    mesh.shutdown().await.unwrap();
}
