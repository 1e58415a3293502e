//! Without a control plane: everything the gateway answers on its own.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frameos_core::ErrorCode;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{app, assert_error, closed_port, get, post_json, send};

#[tokio::test]
async fn routes_needing_a_key_answer_401_without_calling_the_control_plane() {
    // Every request is one anonymous caller's: more than the default burst.
    let mut config = closed_port();
    config.rate_limit_per_sec = 0;
    let app = app(&config);
    let routes = [
        ("POST", "/v1/accounts"),
        ("GET", "/v1/me"),
        ("POST", "/v1/agents"),
        ("POST", "/v1/agents/word-count/versions"),
        ("GET", "/v1/agents/word-count/versions"),
        ("GET", "/v1/reviews"),
        ("POST", "/v1/agents/word-count/versions/1.0.0/approve"),
        ("POST", "/v1/agents/word-count/versions/1.0.0/reject"),
        ("POST", "/v1/agents/word-count/ban"),
        ("GET", "/v1/me/webhook-secret"),
        ("POST", "/v1/me/webhook-secret/rotate"),
        ("GET", "/v1/executions/ex_1/webhooks"),
        ("POST", "/v1/agents/word-count/schedules"),
        ("GET", "/v1/schedules"),
        ("GET", "/v1/schedules/sch_1"),
        ("DELETE", "/v1/schedules/sch_1"),
        ("PUT", "/v1/agents/word-count/secrets/API_TOKEN"),
        ("GET", "/v1/agents/word-count/secrets"),
        ("DELETE", "/v1/agents/word-count/secrets/API_TOKEN"),
        ("POST", "/v1/agents/word-count/executions"),
        ("GET", "/v1/executions"),
        ("GET", "/v1/executions/ex_1"),
        ("GET", "/v1/executions/ex_1/logs"),
        ("GET", "/v1/executions/ex_1/events"),
        ("POST", "/v1/executions/ex_1/cancel"),
        ("GET", "/v1/executions/ex_1/mandate"),
        ("GET", "/v1/accounts/acc_1/balance"),
    ];
    for (method, path) in routes {
        for authorization in [
            None,
            Some("Bearer "),
            Some("Basic dXNlcjpwdw=="),
            Some("fos_key"),
        ] {
            let mut builder = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(value) = authorization {
                builder = builder.header(header::AUTHORIZATION, value);
            }
            let (status, body) = send(&app, builder.body(Body::from("{}")).unwrap()).await;
            // Had the gateway called the closed port, this would be 503.
            assert_error(status, &body, ErrorCode::Unauthenticated);
        }
    }
    // A public route refuses a malformed key too, rather than silently ignoring it.
    let request = Request::get("/v1/agents")
        .header(header::AUTHORIZATION, "Token abc")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
}

#[tokio::test]
async fn an_unreachable_control_plane_is_503_in_the_usual_shape() {
    let app = app(&closed_port());
    let (status, body) = send(&app, get("/v1/agents")).await;
    assert_error(status, &body, ErrorCode::Unavailable);
    let (status, body) = send(&app, get("/readyz")).await;
    assert_error(status, &body, ErrorCode::Unavailable);
    let (status, body) = send(&app, get("/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = app(&closed_port());
    let (status, body) = send(&app, get("/v1/nothing-here")).await;
    assert_error(status, &body, ErrorCode::NotFound);
    let (status, body) = send(&app, get("/")).await;
    assert_error(status, &body, ErrorCode::NotFound);

    let response = app
        .clone()
        .oneshot(Request::delete("/v1/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(header::ALLOW));
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    let (status, body) = send(&app, Request::post("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
}

#[tokio::test]
async fn malformed_bodies_are_400_with_serde_s_message() {
    // With the control plane down the key cannot be checked; the body error stands.
    let app = app(&closed_port());
    let cases = [
        (
            r#"{"slug": "a", "name": "A", "pricing": {"model": "per_execution", "price_minor": 1.5, "currency": "INR"}}"#,
            "floating point",
        ),
        (
            r#"{"slug": "a", "name": "A", "pricing": {"model": "per_execution", "price_minor": "500", "currency": "INR"}}"#,
            "string",
        ),
        (
            r#"{"slug": "a", "name": "A", "pricing": {"model": "gratis"}}"#,
            "gratis",
        ),
        (r#"{"slug": "a"}"#, "missing field `name`"),
        (
            r#"{"slug": 7, "name": "A", "pricing": {"model": "free"}}"#,
            "invalid type",
        ),
        ("not json", "expected"),
        ("", "EOF"),
    ];
    for (body, needle) in cases {
        let (status, error) = send(&app, post_json("/v1/agents", Some("fos_key"), body)).await;
        assert_error(status, &error, ErrorCode::InvalidRequest);
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    for (body, needle) in [
        (r#"{"version": "1.0.0"}"#, "missing field `inputs`"),
        (r#"{"inputs": {}, "version": 1}"#, "invalid type"),
    ] {
        let (status, error) = send(
            &app,
            post_json("/v1/agents/a/executions", Some("fos_key"), body),
        )
        .await;
        assert_error(status, &error, ErrorCode::InvalidRequest);
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let request = Request::post("/v1/agents/a/versions/1.0.0/reject")
        .header(header::AUTHORIZATION, "Bearer fos_key")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"reason": "no"}"#))
        .unwrap();
    let (status, error) = send(&app, request).await;
    assert_error(status, &error, ErrorCode::InvalidRequest);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );

    let (status, error) = send(
        &app,
        Request::get("/v1/agents?page_size=lots")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(status, &error, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn bad_execution_headers_are_400() {
    let app = app(&closed_port());
    let create = |idempotency_key: &str| {
        let mut request = post_json(
            "/v1/agents/a/executions",
            Some("fos_key"),
            r#"{"inputs": 1}"#,
        );
        request
            .headers_mut()
            .insert("idempotency-key", idempotency_key.parse().unwrap());
        request
    };
    let (status, error) = send(&app, create(&"k".repeat(256))).await;
    assert_error(status, &error, ErrorCode::InvalidRequest);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );
    // At the limit the key is fine, and the request goes on to the (absent) control plane.
    let (status, error) = send(&app, create(&"k".repeat(255))).await;
    assert_error(status, &error, ErrorCode::Unavailable);

    let request = Request::get("/v1/executions/ex_1/events")
        .header(header::AUTHORIZATION, "Bearer fos_key")
        .header("last-event-id", "not-a-seq")
        .body(Body::empty())
        .unwrap();
    let (status, error) = send(&app, request).await;
    assert_error(status, &error, ErrorCode::InvalidRequest);
    for path in [
        "/v1/executions/ex_1/events?after_seq=-1",
        "/v1/executions/ex_1/logs?after_seq=x",
        "/v1/executions?page_size=lots",
    ] {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, "Bearer fos_key")
            .body(Body::empty())
            .unwrap();
        let (status, error) = send(&app, request).await;
        assert_error(status, &error, ErrorCode::InvalidRequest);
    }
    // Well formed, a stream request goes on to the (absent) control plane: a JSON 503, no stream.
    let request = Request::get("/v1/executions/ex_1/events")
        .header(header::AUTHORIZATION, "Bearer fos_key")
        .body(Body::empty())
        .unwrap();
    let (status, error) = send(&app, request).await;
    assert_error(status, &error, ErrorCode::Unavailable);
}

#[tokio::test]
async fn oversized_bodies_are_413_with_their_own_codes() {
    let mut config = closed_port();
    config.max_json_bytes = 64;
    config.max_package_bytes = 1024;
    let app = app(&config);

    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(100));
    let (status, error) = send(
        &app,
        post_json("/v1/agents/a/versions/1.0.0/reject", Some("k"), &big),
    )
    .await;
    assert_error(status, &error, ErrorCode::PayloadTooLarge);

    let upload = |bytes: usize, content_type: &str| {
        Request::post("/v1/agents/a/versions")
            .header(header::AUTHORIZATION, "Bearer fos_key")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(vec![0u8; bytes]))
            .unwrap()
    };
    let (status, error) = send(&app, upload(1025, "application/gzip")).await;
    assert_error(status, &error, ErrorCode::PackageTooLarge);
    assert!(error["error"]["message"].as_str().unwrap().contains("1024"));

    // A body without Content-Length is cut off one byte past the limit, too.
    let stream = futures::stream::iter((0..11).map(|_| Ok::<_, std::io::Error>(vec![0u8; 100])));
    let request = Request::post("/v1/agents/a/versions")
        .header(header::AUTHORIZATION, "Bearer fos_key")
        .header(header::CONTENT_TYPE, "application/x-gzip")
        .body(Body::from_stream(stream))
        .unwrap();
    let (status, error) = send(&app, request).await;
    assert_error(status, &error, ErrorCode::PackageTooLarge);

    let (status, error) = send(&app, upload(10, "application/json")).await;
    assert_error(status, &error, ErrorCode::InvalidRequest);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/gzip")
    );

    // Within the limit and of the right type, the upload goes on to the (absent) control plane.
    let (status, error) = send(&app, upload(1024, "application/octet-stream")).await;
    assert_error(status, &error, ErrorCode::Unavailable);
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = app(&closed_port());
    let (status, doc) = send(&app, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let routes = [
        ("post", "/v1/accounts"),
        ("get", "/v1/me"),
        ("post", "/v1/me/keys"),
        ("get", "/v1/me/keys"),
        ("delete", "/v1/me/keys/{id}"),
        ("post", "/v1/agents"),
        ("get", "/v1/agents"),
        ("get", "/v1/agents/{slug}"),
        ("patch", "/v1/agents/{slug}"),
        ("put", "/v1/agents/{slug}/secrets/{name}"),
        ("get", "/v1/agents/{slug}/secrets"),
        ("delete", "/v1/agents/{slug}/secrets/{name}"),
        ("post", "/v1/agents/{slug}/versions"),
        ("get", "/v1/agents/{slug}/versions"),
        ("get", "/v1/agents/{slug}/releases"),
        ("get", "/v1/agents/{slug}/versions/{version}/files"),
        ("get", "/v1/agents/{slug}/versions/{version}/files/{path}"),
        ("get", "/v1/me/earnings"),
        ("get", "/v1/reviews"),
        ("post", "/v1/agents/{slug}/versions/{version}/approve"),
        ("post", "/v1/agents/{slug}/versions/{version}/reject"),
        ("post", "/v1/agents/{slug}/ban"),
        ("get", "/v1/me/webhook-secret"),
        ("post", "/v1/me/webhook-secret/rotate"),
        ("get", "/v1/executions/{id}/webhooks"),
        ("post", "/v1/agents/{slug}/schedules"),
        ("get", "/v1/schedules"),
        ("get", "/v1/schedules/{id}"),
        ("delete", "/v1/schedules/{id}"),
        ("post", "/v1/agents/{slug}/executions"),
        ("get", "/v1/executions"),
        ("get", "/v1/executions/{id}"),
        ("get", "/v1/executions/{id}/logs"),
        ("get", "/v1/executions/{id}/events"),
        ("post", "/v1/executions/{id}/cancel"),
        ("post", "/v1/executions/{id}/stream-token"),
        ("get", "/v1/accounts/{id}/balance"),
        ("get", "/v1/billing/mandate-keys"),
        ("get", "/v1/executions/{id}/mandate"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    for (method, path) in routes {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "undocumented extras or duplicates"
    );

    // Errors are documented with their shape, and the key with its scheme.
    let unauthorized = &doc["paths"]["/v1/me"]["get"]["responses"]["401"];
    assert_eq!(
        unauthorized["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    let codes = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
    assert!(
        codes
            .as_array()
            .unwrap()
            .contains(&json!("package_too_large")),
        "{codes}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let upload = &doc["paths"]["/v1/agents/{slug}/versions"]["post"]["requestBody"]["content"];
    assert!(upload["application/gzip"].is_object(), "{upload}");

    let create = &doc["paths"]["/v1/agents/{slug}/executions"]["post"];
    assert!(create["responses"]["202"].is_object(), "{create}");
    let headers: Vec<&Value> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header")
        .map(|p| &p["name"])
        .collect();
    assert!(headers.contains(&&json!("Idempotency-Key")), "{create}");
    let events = &doc["paths"]["/v1/executions/{id}/events"]["get"]["responses"]["200"];
    assert!(
        events["content"]["text/event-stream"].is_object(),
        "{events}"
    );
    let execution = &doc["components"]["schemas"]["ExecutionView"];
    let required = execution["required"].as_array().unwrap();
    for field in ["id", "agent", "version", "status", "inputs", "attempts"] {
        assert!(required.contains(&json!(field)), "{field}: {execution}");
    }
    assert!(!required.contains(&json!("output")), "{execution}");
    assert!(!required.contains(&json!("charge")), "{execution}");
    assert_eq!(
        execution["properties"]["charge"]["$ref"],
        "#/components/schemas/ChargeView"
    );
    assert!(!required.contains(&json!("timings")), "{execution}");
    assert_eq!(
        execution["properties"]["timings"]["$ref"],
        "#/components/schemas/TimingsView"
    );
    let timings = &doc["components"]["schemas"]["TimingsView"];
    assert!(timings.get("required").is_none(), "{timings}");
    for phase in ["queue_wait_ms", "start_ms", "run_ms"] {
        assert_eq!(timings["properties"][phase]["minimum"], 0, "{timings}");
    }
    let splits = &doc["components"]["schemas"]["ChargeView"]["required"];
    assert!(
        splits.as_array().unwrap().contains(&json!("splits")),
        "{splits}"
    );

    // Mandate keys are public; the mandate and balances need a key.
    for public in ["/v1/billing/mandate-keys", "/.well-known/jwks.json"] {
        let keys = &doc["paths"][public]["get"];
        assert!(keys.get("security").is_none(), "{keys}");
    }
    // The mandate: the envelope or, asked for, a JWS.
    let forms = &doc["components"]["schemas"]["MandateBody"]["oneOf"];
    assert_eq!(
        forms[0]["$ref"], "#/components/schemas/MandateView",
        "{forms}"
    );
    assert_eq!(
        forms[1]["$ref"], "#/components/schemas/MandateJws",
        "{forms}"
    );
    for (path, schema) in [
        ("/v1/executions/{id}/mandate", "MandateBody"),
        ("/v1/accounts/{id}/balance", "BalanceView"),
    ] {
        let operation = &doc["paths"][path]["get"];
        assert!(operation["security"].is_array(), "{operation}");
        assert_eq!(
            operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{schema}")
        );
    }
    let balance = doc["paths"]["/v1/accounts/{id}/balance"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        balance
            .iter()
            .any(|p| p["name"] == "currency" && p["in"] == "query"),
        "{balance:?}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = app(&closed_port());
    send(&app, get("/healthz")).await;
    send(&app, get("/healthz")).await;
    send(&app, get("/v1/agents/some-slug/versions")).await;
    send(&app, get("/no/such/route")).await;
    let response = app.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for line in [
        "# TYPE frameos_http_requests_total counter",
        r#"frameos_http_requests_total{method="GET",route="/healthz",status="200"} 2"#,
        r#"frameos_http_requests_total{method="GET",route="/v1/agents/{slug}/versions",status="401"} 1"#,
        r#"frameos_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"frameos_http_request_duration_seconds_count{method="GET",route="/healthz"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    // OpenMetrics only when the scrape asks for it (as Prometheus does).
    let asking = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(asking).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(bytes.ends_with(b"# EOF\n"));
    // Each gateway has its own registry.
    let other = super::app(&closed_port());
    let (_, text) = send(&other, get("/metrics")).await;
    assert!(!text.as_str().unwrap().contains("/healthz"), "{text}");
}

#[tokio::test]
async fn browsers_from_a_configured_origin_get_cors_headers_and_others_do_not() {
    use axum::http::Method;

    let allowed = "https://app.example.com";
    let mut config = closed_port();
    config.cors_origins = vec![crate::cors::parse_origin(allowed).unwrap()];
    let app = app(&config);
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/agents/word-count/executions")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type,idempotency-key",
            )
            .body(Body::empty())
            .unwrap()
    };
    // A preflight from the configured origin: answered here, never routed (no 405).
    let response = app.clone().oneshot(preflight(allowed)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], allowed);
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );

    // Any other origin gets no grant, so the browser refuses the call.
    let response = app
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    // The real call carries the grant too (here a 401: no key).
    let request = Request::get("/v1/me")
        .header(header::ORIGIN, allowed)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        allowed
    );

    // Without FRAMEOS_CORS_ORIGINS nothing is granted to anyone.
    let response = super::app(&closed_port())
        .oneshot(preflight(allowed))
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[test]
fn only_bare_origins_are_accepted_as_cors_origins() {
    for good in ["https://app.example.com", "http://localhost:3000"] {
        assert!(crate::cors::parse_origin(good).is_ok(), "{good}");
    }
    for bad in [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "ftp://files.example.com",
        "*",
        "https://user@app.example.com",
    ] {
        let error = crate::cors::parse_origin(bad).unwrap_err();
        assert!(error.contains("not an origin"), "{bad}: {error}");
    }
}
