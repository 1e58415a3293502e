//! The fair-use layer on the router: buckets per account, one per address for the rest.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frameos_core::ErrorCode;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tower::ServiceExt;

use super::forwarding::serve_fake;
use super::{app, assert_error, send};

fn me(authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/v1/me");
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder.body(Body::empty()).unwrap()
}

/// Sends `me(authorization)` until the first 429; returns how many passed before it.
async fn until_limited(app: &axum::Router, authorization: Option<&str>) -> usize {
    for passed in 0..20 {
        let response = app.clone().oneshot(me(authorization)).await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key(header::RETRY_AFTER));
            return passed;
        }
    }
    panic!("20 requests and no 429");
}

#[tokio::test]
async fn accounts_have_buckets_of_their_own_and_keyless_callers_share_their_address() {
    let shutdown = CancellationToken::new();
    let mut config = serve_fake(shutdown.clone(), Routes::default()).await;
    config.rate_limit_per_sec = 1;
    config.rate_limit_burst = 3;
    let app = app(&config);

    // The developer spends its burst (a refill may add one if this test is slow).
    let passed = until_limited(&app, Some("Bearer good")).await;
    assert!((3..=4).contains(&passed), "{passed}");
    let (status, body) = send(&app, me(Some("Bearer good"))).await;
    assert_error(status, &body, ErrorCode::RateLimited);

    // Invalid keys and no key are one caller, the client's address; the handler still
    // answers 401 while that caller is within its rate.
    let (status, body) = send(&app, me(Some("Bearer forged"))).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    let (status, body) = send(&app, me(None)).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    let passed = until_limited(&app, Some("Bearer forged-again")).await;
    assert!(passed <= 2, "{passed}");
    let (status, body) = send(&app, me(None)).await;
    assert_error(status, &body, ErrorCode::RateLimited);

    // Neither exhausted bucket touches the admin's.
    let (status, body) = send(&app, me(Some("Bearer admin"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "acc_admin");
    shutdown.cancel();
}

#[tokio::test]
async fn zero_per_second_is_no_limit() {
    let shutdown = CancellationToken::new();
    let mut config = serve_fake(shutdown.clone(), Routes::default()).await;
    config.rate_limit_per_sec = 0;
    config.rate_limit_burst = 1;
    let app = app(&config);
    for _ in 0..20 {
        let (status, _) = send(&app, me(Some("Bearer good"))).await;
        assert_eq!(status, StatusCode::OK);
    }
    shutdown.cancel();
}
