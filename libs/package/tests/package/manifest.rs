//! agent.json validation, field by field.

use frameos_core::ErrorCode;
use frameos_package::PlatformMaxima;
use frameos_package::manifest::{self, Capability, Manifest, Resources, Runtime};
use serde_json::{Value, json};

fn minimal() -> Value {
    json!({
        "name": "word-count",
        "version": "1.2.0",
        "runtime": "node",
        "entrypoint": "index.js",
        "inputs": { "type": "object", "properties": { "text": { "type": "string" } } }
    })
}

fn parse(value: &Value) -> Result<Manifest, frameos_package::Error> {
    manifest::parse(value.to_string().as_bytes(), &PlatformMaxima::default())
}

fn with(field: &str, value: Value) -> Value {
    let mut manifest = minimal();
    manifest[field] = value;
    manifest
}

/// Asserts the manifest is refused as invalid and the message contains every `needle`.
fn refused(value: &Value, needles: &[&str]) {
    let error = parse(value).expect_err(&value.to_string());
    assert_eq!(error.code(), ErrorCode::InvalidManifest);
    let message = frameos_core::Error::from(error).message;
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

#[test]
fn a_minimal_manifest_gets_the_defaults() {
    let manifest = parse(&minimal()).unwrap();
    assert_eq!(manifest.name, "word-count");
    assert_eq!(manifest.version, semver::Version::new(1, 2, 0));
    assert_eq!(manifest.runtime, Runtime::Node);
    assert_eq!(manifest.description, "");
    assert_eq!(manifest.outputs, None);
    assert!(manifest.capabilities.is_empty());
    assert_eq!(manifest.resources, Resources::default());
    assert_eq!(
        manifest.resources,
        Resources {
            cpu_cores: 1.0,
            memory_mb: 256,
            timeout_ms: 60_000
        }
    );
}

#[test]
fn a_full_manifest_is_read_completely() {
    let full = json!({
        "name": "py-agent-2",
        "version": "2.0.0-beta.1+build.7",
        "runtime": "python",
        "entrypoint": "./src/main.py",
        "description": "Does things.",
        "inputs": { "$schema": "http://json-schema.org/draft-07/schema#", "type": "object" },
        "outputs": { "type": "array", "items": { "type": "number" } },
        "capabilities": [
            { "type": "http_request", "allow_domains": ["api.example.com", "*.example.org"] }
        ],
        "resources": { "cpu_cores": 0.5, "memory_mb": 2048, "timeout_ms": 300000 }
    });
    let manifest = parse(&full).unwrap();
    assert_eq!(manifest.runtime, Runtime::Python);
    assert_eq!(manifest.entrypoint, "src/main.py");
    assert_eq!(manifest.version.pre.as_str(), "beta.1");
    assert_eq!(manifest.outputs, Some(full["outputs"].clone()));
    assert_eq!(
        manifest.capabilities,
        [Capability::HttpRequest {
            allow_domains: vec!["api.example.com".into(), "*.example.org".into()]
        }]
    );
    assert_eq!(
        manifest.resources,
        Resources {
            cpu_cores: 0.5,
            memory_mb: 2048,
            timeout_ms: 300_000
        }
    );
}

#[test]
fn to_json_fills_in_defaults_and_round_trips() {
    let manifest = parse(&minimal()).unwrap();
    let canonical = manifest.to_json();
    assert_eq!(canonical["description"], "");
    assert_eq!(canonical["capabilities"], json!([]));
    assert_eq!(
        canonical["resources"],
        json!({ "cpu_cores": 1.0, "memory_mb": 256, "timeout_ms": 60000 })
    );
    assert_eq!(canonical["version"], "1.2.0");
    assert!(canonical.get("outputs").is_none());
    assert_eq!(parse(&canonical).unwrap(), manifest);

    let mut full = minimal();
    full["outputs"] = json!({ "type": "string" });
    full["capabilities"] = json!([{ "type": "http_request", "allow_domains": ["a.example.com"] }]);
    let manifest = parse(&full).unwrap();
    assert_eq!(manifest.to_json()["capabilities"], full["capabilities"]);
    assert_eq!(parse(&manifest.to_json()).unwrap(), manifest);
}

#[test]
fn capabilities_serialize_in_the_contract_shape() {
    let capability = Capability::HttpRequest {
        allow_domains: vec!["x.example.com".into()],
    };
    assert_eq!(
        serde_json::to_value(&capability).unwrap(),
        json!({ "type": "http_request", "allow_domains": ["x.example.com"] })
    );
    assert_eq!(serde_json::to_value(Runtime::Python).unwrap(), "python");
    assert_eq!(Runtime::Node.as_str(), "node");
}

#[test]
fn the_document_must_be_a_json_object_of_known_fields() {
    for bad in [&b"not json"[..], b"[]", b"\"x\"", b""] {
        let error = manifest::parse(bad, &PlatformMaxima::default()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidManifest);
    }
    refused(&with("extra", json!(1)), &["extra", "unknown field"]);
    let huge = vec![b' '; (1 << 20) + 1];
    assert!(manifest::parse(&huge, &PlatformMaxima::default()).is_err());
}

#[test]
fn required_fields_are_required() {
    for field in ["name", "version", "runtime", "entrypoint", "inputs"] {
        let mut manifest = minimal();
        manifest.as_object_mut().unwrap().remove(field);
        refused(&manifest, &[field, "required"]);
    }
}

#[test]
fn the_name_is_a_slug() {
    for bad in [
        json!("a"),
        json!("Word-Count"),
        json!("word_count"),
        json!("x".repeat(65)),
        json!(7),
    ] {
        refused(&with("name", bad), &["\"name\""]);
    }
    assert!(parse(&with("name", json!("x".repeat(64)))).is_ok());
    assert!(parse(&with("name", json!("a1"))).is_ok());
}

#[test]
fn the_version_is_strict_semver() {
    for bad in ["1.0", "v1.0.0", "01.0.0", "1.0.0.0", "latest", ""] {
        refused(&with("version", json!(bad)), &["\"version\"", bad]);
    }
    for good in ["0.0.1", "1.0.0-alpha", "1.0.0+sha.5114f85"] {
        assert!(parse(&with("version", json!(good))).is_ok(), "{good}");
    }
}

#[test]
fn semver_orders_numerically_and_prereleases_first() {
    let v = |s: &str| parse(&with("version", json!(s))).unwrap().version;
    assert!(v("1.10.0") > v("1.9.0"));
    assert!(v("1.0.0-alpha") < v("1.0.0"));
    assert!(v("1.0.0-alpha") < v("1.0.0-beta"));
    assert!(v("2.0.0") > v("1.99.99"));
}

#[test]
fn the_runtime_is_node_or_python() {
    refused(&with("runtime", json!("ruby")), &["\"runtime\"", "ruby"]);
}

#[test]
fn the_entrypoint_is_a_safe_path_matching_the_runtime() {
    for bad in [
        "",
        "../index.js",
        "/index.js",
        "a/../index.js",
        "lib/",
        "main.py",
        "index.ts",
    ] {
        refused(&with("entrypoint", json!(bad)), &["\"entrypoint\""]);
    }
    assert!(parse(&with("entrypoint", json!("lib/main.cjs"))).is_ok());
    let mut python = with("runtime", json!("python"));
    python["entrypoint"] = json!("index.js");
    refused(&python, &["\"entrypoint\"", ".py"]);
}

#[test]
fn the_description_is_a_bounded_string() {
    refused(&with("description", json!(5)), &["\"description\""]);
    refused(&with("description", json!("é".repeat(2001))), &["2000"]);
    assert!(parse(&with("description", json!("é".repeat(2000)))).is_ok());
}

#[test]
fn inputs_and_outputs_must_be_valid_json_schemas() {
    for field in ["inputs", "outputs"] {
        for bad in [
            json!("object"),
            json!({ "type": "nope" }),
            json!({ "type": "string", "pattern": "(" }),
            json!({ "$schema": "https://evil.example.com/schema", "type": "object" }),
            json!({ "$ref": "https://example.com/other.json" }),
            json!({ "properties": { "a": { "minLength": -1 } } }),
        ] {
            refused(&with(field, bad), &[&format!("\"{field}\"")]);
        }
    }
    assert!(
        parse(&with("outputs", Value::Null))
            .unwrap()
            .outputs
            .is_none()
    );
}

#[test]
fn capabilities_are_checked_entry_by_entry() {
    let cap = |value: Value| with("capabilities", value);
    refused(&cap(json!({})), &["\"capabilities\"", "array"]);
    refused(
        &cap(json!([{ "type": "shell" }])),
        &["capabilities[0].type", "shell"],
    );
    refused(
        &cap(json!([{ "allow_domains": ["a.com"] }])),
        &["capabilities[0].type"],
    );
    refused(
        &cap(json!([{ "type": "http_request" }])),
        &["allow_domains", "required"],
    );
    refused(
        &cap(json!([{ "type": "http_request", "allow_domains": [] }])),
        &["allow_domains"],
    );
    refused(
        &cap(json!([{ "type": "http_request", "allow_domains": ["a.com"], "methods": [] }])),
        &["capabilities[0].methods"],
    );
    for bad in [
        "*",
        "https://a.com",
        "a.com:443",
        "a.com/x",
        "10.0.0.1",
        "A.com",
        "localhost",
    ] {
        refused(
            &cap(json!([{ "type": "http_request", "allow_domains": ["ok.example.com", bad] }])),
            &["capabilities[0].allow_domains[1]", bad],
        );
    }
}

#[test]
fn resources_have_floors_and_platform_maxima() {
    let res = |value: Value| with("resources", value);
    refused(&res(json!({ "cpu_cores": 0 })), &["resources.cpu_cores"]);
    refused(&res(json!({ "cpu_cores": -1.5 })), &["resources.cpu_cores"]);
    // Above 0 is not enough: Docker refuses below 0.01 and every run would fail.
    for tiny in [0.001, 0.0099, 0.01, 0.049] {
        refused(
            &res(json!({ "cpu_cores": tiny })),
            &["resources.cpu_cores", "at least 0.05", &tiny.to_string()],
        );
    }
    let floor = parse(&res(json!({ "cpu_cores": 0.05 }))).unwrap();
    assert_eq!(floor.resources.cpu_cores, 0.05);
    refused(
        &res(json!({ "cpu_cores": "1" })),
        &["resources.cpu_cores", "number"],
    );
    refused(
        &res(json!({ "cpu_cores": 2.5 })),
        &["resources.cpu_cores", "at most 2", "2.5"],
    );
    refused(
        &res(json!({ "memory_mb": 8 })),
        &["resources.memory_mb", "16"],
    );
    refused(
        &res(json!({ "memory_mb": 4096 })),
        &["resources.memory_mb", "at most 2048"],
    );
    refused(
        &res(json!({ "memory_mb": 256.5 })),
        &["resources.memory_mb", "whole number"],
    );
    refused(
        &res(json!({ "timeout_ms": 50 })),
        &["resources.timeout_ms", "100"],
    );
    refused(
        &res(json!({ "timeout_ms": 300001 })),
        &["resources.timeout_ms", "at most 300000"],
    );
    refused(&res(json!({ "gpus": 1 })), &["resources.gpus"]);
    refused(&res(json!([])), &["\"resources\""]);

    // A partial object keeps the other defaults; the maxima are configurable.
    let manifest = parse(&res(json!({ "memory_mb": 512 }))).unwrap();
    assert_eq!(manifest.resources.cpu_cores, 1.0);
    assert_eq!(manifest.resources.memory_mb, 512);
    let roomy = PlatformMaxima {
        cpu_cores: 8.0,
        memory_mb: 8192,
        timeout_ms: 900_000,
    };
    let big = res(json!({ "cpu_cores": 8, "memory_mb": 8192, "timeout_ms": 900000 }));
    assert!(manifest::parse(big.to_string().as_bytes(), &roomy).is_ok());
}

#[test]
fn instances_are_validated_against_a_schema_with_the_place_named() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"text": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
        "required": ["text"],
        "additionalProperties": false
    });
    assert!(
        frameos_package::manifest::validate_json(&schema, &serde_json::json!({"text": "hi"}))
            .is_ok()
    );
    let error =
        frameos_package::manifest::validate_json(&schema, &serde_json::json!({"text": 5, "n": 0}))
            .unwrap_err();
    assert!(error.contains("/text"), "{error}");
    assert!(error.contains("/n"), "{error}");
    let missing =
        frameos_package::manifest::validate_json(&schema, &serde_json::json!({})).unwrap_err();
    assert!(missing.contains("text"), "{missing}");
}

#[test]
fn a_changelog_and_examples_are_kept_for_the_agents_page() {
    let mut value = with("changelog", json!("Counts words in Hindi too."));
    value["outputs"] = json!({ "type": "object", "required": ["words"] });
    value["examples"] = json!([
        { "title": "Two words", "inputs": { "text": "hello world" }, "output": { "words": 2 } },
        { "inputs": { "text": "" } }
    ]);
    let manifest = parse(&value).unwrap();
    assert_eq!(
        manifest.changelog.as_deref(),
        Some("Counts words in Hindi too.")
    );
    assert_eq!(manifest.examples.len(), 2);
    assert_eq!(manifest.examples[0].title.as_deref(), Some("Two words"));
    assert_eq!(manifest.examples[1].output, None);
    // Stored and served back as given.
    let stored = manifest.to_json();
    assert_eq!(stored["changelog"], value["changelog"]);
    assert_eq!(stored["examples"], value["examples"]);
    // Absent fields stay absent.
    let plain = parse(&minimal()).unwrap().to_json();
    assert!(plain.get("changelog").is_none() && plain.get("examples").is_none());
}

#[test]
fn an_example_the_agent_would_refuse_is_refused_with_its_place() {
    let strict = json!({
        "type": "object",
        "properties": { "text": { "type": "string" } },
        "required": ["text"]
    });
    let mut value = with("inputs", strict);
    value["examples"] = json!([{ "inputs": { "text": "ok" } }, { "inputs": { "text": 5 } }]);
    refused(&value, &["examples[1].inputs", "inputs schema"]);

    value["outputs"] = json!({ "type": "integer" });
    value["examples"] = json!([{ "inputs": { "text": "a" }, "output": "two" }]);
    refused(&value, &["examples[0].output", "outputs schema"]);

    value["examples"] = json!([{ "inputs": { "text": "a" }, "extra": 1 }]);
    refused(&value, &["examples[0].extra"]);

    value["examples"] = json!([{ "output": 1 }]);
    refused(&value, &["examples[0].inputs", "required"]);

    let six: Vec<Value> = (0..6)
        .map(|_| json!({ "inputs": { "text": "a" } }))
        .collect();
    value["examples"] = Value::Array(six);
    refused(&value, &["examples", "at most 5"]);

    refused(
        &with("changelog", json!("x".repeat(4001))),
        &["changelog", "4000"],
    );
    refused(&with("changelog", json!(3)), &["changelog"]);
}

#[test]
fn dependencies_are_npm_ranges_on_other_agents() {
    let value = with(
        "dependencies",
        json!({"counter": "^1.2.0", "sentiment": ">=1.0.0 <2.0.0"}),
    );
    let manifest = parse(&value).unwrap();
    assert_eq!(manifest.dependencies.len(), 2);
    assert!(manifest.dependencies["counter"].satisfied_by("1.9.0"));
    assert!(!manifest.dependencies["sentiment"].satisfied_by("2.0.0"));
    assert_eq!(manifest.to_json()["dependencies"], value["dependencies"]);
    assert!(
        parse(&minimal())
            .unwrap()
            .to_json()
            .get("dependencies")
            .is_none()
    );

    let refused_as_dependency = |value: Value, needles: &[&str]| {
        let error = parse(&value).expect_err(&value.to_string());
        assert_eq!(error.code(), ErrorCode::InvalidDependency, "{error}");
        let message = frameos_core::Error::from(error).message;
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    };
    refused_as_dependency(
        with("dependencies", json!({"counter": "^^1"})),
        &["counter", "^^1"],
    );
    refused_as_dependency(
        with("dependencies", json!({"counter": 1})),
        &["counter", "string"],
    );
    refused_as_dependency(
        with("dependencies", json!({"Word Count": "^1"})),
        &["Word Count", "slug"],
    );
    refused_as_dependency(
        with("dependencies", json!({"counter": "^1", "x": "1"})),
        &["\"x\""],
    );
    // Itself: a cycle of one.
    let mut own = minimal();
    own["dependencies"] = json!({"word-count": "^1"});
    refused_as_dependency(own, &["itself"]);
    let many: serde_json::Map<String, Value> = (0..21)
        .map(|i| (format!("agent-{i}"), json!("^1")))
        .collect();
    refused(
        &with("dependencies", Value::Object(many)),
        &["dependencies", "at most 20"],
    );
    refused(
        &with("dependencies", json!(["word-count"])),
        &["dependencies", "object"],
    );
}
