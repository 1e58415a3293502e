//! The document against the server's rules: what every route shares, the limits, the upload.

use serde_json::{Value, json};

fn doc() -> Value {
    super::document().clone()
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), operation));
        }
    }
    all
}

fn param<'a>(operation: &'a Value, name: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name}: {operation}"))
}

fn matches(pattern: &Value, text: &str) -> bool {
    regex::Regex::new(pattern.as_str().unwrap())
        .unwrap()
        .is_match(text)
}

#[test]
fn every_route_documents_what_every_route_can_answer() {
    let doc = doc();
    for (method, path, operation) in operations(&doc) {
        let responses = &operation["responses"];
        let route = format!("{method} {path}");
        if path.starts_with("/v1/") {
            for status in ["429", "503"] {
                assert!(responses[status].is_object(), "{route}: no {status}");
            }
        }
        let requires_key = operation["security"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r != &json!({})));
        if requires_key {
            for status in ["401", "403"] {
                assert!(responses[status].is_object(), "{route}: no {status}");
            }
        }
        if operation["requestBody"].is_object() {
            for status in ["400", "413"] {
                assert!(responses[status].is_object(), "{route}: no {status}");
            }
        }
        let has_query = operation["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
        if has_query {
            assert!(responses["400"].is_object(), "{route}: no 400");
        }
    }
    let limited = &doc["components"]["responses"]["RateLimited"];
    assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
}

#[test]
fn public_routes_need_no_key() {
    let doc = doc();
    for (method, path) in [
        ("get", "/v1/agents"),
        ("get", "/v1/agents/{slug}"),
        ("get", "/v1/billing/mandate-keys"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        let operation = &doc["paths"][path][method];
        assert!(operation["security"].is_null(), "{method} {path}");
        assert!(operation["responses"]["403"].is_null(), "{method} {path}");
    }
}

#[test]
fn the_package_upload_is_a_binary_body() {
    let doc = doc();
    let content = &doc["paths"]["/v1/agents/{slug}/versions"]["post"]["requestBody"]["content"];
    // One media type: generators build one body per type and trip over several (the server
    // accepts the common aliases anyway).
    assert_eq!(content.as_object().map(|c| c.len()), Some(1), "{content}");
    let schema = &content["application/gzip"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => &doc["components"]["schemas"][reference.rsplit('/').next().unwrap()],
        None => schema,
    };
    assert_eq!(schema["type"], "string", "{schema}");
    assert_eq!(schema["format"], "binary", "{schema}");
}

#[test]
fn the_limits_are_the_servers() {
    let doc = doc();
    for path in ["/v1/agents", "/v1/executions"] {
        let page_size = &param(&doc["paths"][path]["get"], "page_size")["schema"];
        assert_eq!(page_size["maximum"], 100, "{path}");
        assert_eq!(page_size["minimum"], 0, "{path}");
    }
    let q = &param(&doc["paths"]["/v1/agents"]["get"], "q")["schema"]["pattern"];
    assert!(matches(q, "") && matches(q, &"q".repeat(200)) && !matches(q, &"q".repeat(201)));

    let schemas = &doc["components"]["schemas"];
    let agent = &schemas["CreateAgent"]["properties"];
    assert!(matches(&agent["slug"]["pattern"], "word-count"));
    assert!(!matches(&agent["slug"]["pattern"], "Word Count"));
    assert!(!matches(&agent["name"]["pattern"], &"n".repeat(129)));
    assert_eq!(agent["description"]["maxLength"], 2000);
    let account = &schemas["CreateAccount"]["properties"];
    assert!(!matches(&account["name"]["pattern"], " \u{0} "));
    assert_eq!(
        account["role"]["enum"],
        json!(["user", "developer", "admin"])
    );
    let reason = &schemas["RejectVersion"]["properties"]["reason"]["pattern"];
    assert!(matches(reason, "malware") && !matches(reason, " \n "));

    let create = &doc["paths"]["/v1/agents/{slug}/executions"]["post"];
    let key = &param(create, "Idempotency-Key")["schema"]["pattern"];
    // What the gateway accepts (trimmed, 1 to 255 visible ASCII characters) and nothing else.
    for good in ["order-17", " a b ", &"k".repeat(255)] {
        assert!(matches(key, good), "{good:?}");
    }
    for bad in ["", "  ", "é", &"k".repeat(256)] {
        assert!(!matches(key, bad), "{bad:?}");
    }
}

#[test]
fn prices_are_integers_in_circulating_currencies() {
    let doc = doc();
    let pricing = serde_json::to_string(&doc["components"]["schemas"]["Pricing"]).unwrap();
    assert!(pricing.contains(r#""minimum":1"#), "{pricing}");
    assert!(pricing.contains(r#""maximum":1000000000000"#), "{pricing}");
    assert!(
        pricing.contains(r#""INR""#) && !pricing.contains(r#""XAU""#),
        "{pricing}"
    );
}

#[test]
fn links_name_their_operation_as_the_specification_does() {
    let doc = doc();
    let links = &doc["paths"]["/v1/agents"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["GetAgent"]["operationId"], "get_agent", "{links}");
    assert!(links["GetAgent"]["operation_id"].is_null(), "{links}");
    let ids: Vec<String> = operations(&doc)
        .iter()
        .filter_map(|(_, _, operation)| operation["operationId"].as_str().map(String::from))
        .collect();
    for (_, _, operation) in operations(&doc) {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"].as_object().into_iter().flatten() {
                let target = link.1["operationId"].as_str().unwrap();
                assert!(ids.iter().any(|id| id == target), "{target}");
            }
        }
    }
}

/// `web/` generates its TypeScript types from its copy of this document, so a change of the
/// API's shape fails here until the copy is updated (`FRAMEOS_UPDATE_OPENAPI=1 cargo test -p
/// frameos-gateway web_front_end`), and then fails the front end's type check where it breaks.
#[test]
fn the_web_front_ends_copy_is_the_served_document() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json");
    let served = format!(
        "{}\n",
        serde_json::to_string_pretty(super::document()).unwrap()
    );
    if std::env::var_os("FRAMEOS_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let copy = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        copy == served,
        "{} is not the document the gateway serves; run FRAMEOS_UPDATE_OPENAPI=1 cargo test -p \
         frameos-gateway web_front_end, then `npm run types` in web/",
        path.display()
    );
}

#[test]
fn the_fixed_sets_are_documented_as_enums_of_their_words() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let words = |name: &str| schemas[name]["enum"].clone();
    assert_eq!(words("LogStream"), json!(["stdout", "stderr", "system"]));
    assert_eq!(
        words("ExecutionStatus"),
        json!([
            "queued",
            "running",
            "succeeded",
            "failed",
            "timed_out",
            "canceled"
        ])
    );
    assert_eq!(
        words("VersionStatus"),
        json!(["pending_review", "published", "rejected", "banned"])
    );
    assert_eq!(words("ReviewDecision"), json!(["approved", "rejected"]));
    assert_eq!(
        words("ChargeStatus"),
        json!(["authorized", "captured", "voided"])
    );
    assert_eq!(words("Role"), json!(["user", "developer", "admin"]));
    // ...and the views use them, not plain strings.
    let uses = |view: &str, field: &str, name: &str| {
        let property = &schemas[view]["properties"][field];
        let reference = format!("#/components/schemas/{name}");
        let found = property["$ref"] == reference.as_str()
            || property["allOf"]
                .as_array()
                .is_some_and(|all| all.iter().any(|s| s["$ref"] == reference.as_str()));
        assert!(found, "{view}.{field}: {property}");
    };
    uses("LogLineView", "stream", "LogStream");
    uses("ExecutionView", "status", "ExecutionStatus");
    uses("VersionView", "status", "VersionStatus");
    uses("ReviewView", "decision", "ReviewDecision");
    uses("ChargeView", "status", "ChargeStatus");
    uses("AccountView", "role", "Role");
    uses("NewAccountView", "role", "Role");
}
