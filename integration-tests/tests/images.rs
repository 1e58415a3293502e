//! Smoke test of the three service images (issue 8, item 3), run as an operator runs them:
//! built by `images/build.sh` (no registry), started with `docker run` on a Docker network of
//! their own, talking to a PostgreSQL and a RabbitMQ the host runs on that network's gateway
//! address; the node gets the host's Docker socket and runs the agent in the host's engine.
//! An account, an approved example agent and one execution through the gateway's REST API;
//! then `docker stop` must end every service with exit code 0.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use frameos_integration_tests::instances::{PrivatePostgres, PrivateRabbitMq};
use frameos_integration_tests::packages;
use frameos_integration_tests::service_images::{Deployment, TEST_TAG, build_images, docker};
use reqwest::Method;
use serde_json::{Value, json};

const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// The uid:gid of every service image.
const SERVICE_UID: u32 = 65532;
const READY_WITHIN: Duration = Duration::from_secs(90);
const RUN_WITHIN: Duration = Duration::from_secs(90);
/// What `docker stop` allows before SIGKILL; a clean stop of an idle service takes far less.
const STOP_GRACE: Duration = Duration::from_secs(30);

fn image(service: &str) -> String {
    format!("frameos/{service}:{TEST_TAG}")
}

/// A host directory the services (uid 65532) may write, at a path the host's engine can
/// bind-mount into agent containers as it is.
fn service_dir(root: &std::path::Path, name: &str) -> anyhow::Result<String> {
    let dir = root.join(name);
    std::fs::create_dir(&dir)?;
    std::os::unix::fs::chown(&dir, Some(SERVICE_UID), Some(SERVICE_UID))?;
    dir.to_str().map(str::to_string).context("utf-8 path")
}

struct Gateway {
    base: String,
    http: reqwest::Client,
}

impl Gateway {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(
            status == expect,
            "{path}: expected {expect}, got {status}: {body}"
        );
        Ok(body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_images_serve_an_execution_and_stop_cleanly() {
    let started = Instant::now();
    build_images().unwrap();
    let built = started.elapsed();

    let mut deployment = Deployment::create().unwrap();
    let host = deployment.gateway;
    let (postgres, rabbit) = tokio::join!(
        PrivatePostgres::start_reachable_at(host),
        PrivateRabbitMq::start_reachable_at(host)
    );
    let (postgres, rabbit) = (postgres.unwrap(), rabbit.unwrap());
    let database_url = format!("postgres://postgres@{host}:{}/postgres", postgres.port());
    let amqp_url = format!("amqp://guest:guest@{host}:{}/%2f", rabbit.port());

    // Host directories: packages (shared by control plane and node: the local package store),
    // the node's cache and temp directory at the same path inside and outside its container,
    // since the host's engine bind-mounts from them into the agent containers.
    let data = tempfile::Builder::new()
        .prefix("frameos-it-images-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let packages_dir = service_dir(data.path(), "packages").unwrap();
    let cache_dir = service_dir(data.path(), "cache").unwrap();
    let tmp_dir = service_dir(data.path(), "tmp").unwrap();
    let admin_key = frameos_control_plane::generate_api_key();
    let node_token = frameos_control_plane::generate_api_key();
    let node_id = format!("it-images-{}", deployment.id);
    deployment.owns_node(&node_id);

    // 1. The migration step: the `frameos` CLI of the control-plane image.
    let out = deployment
        .run_once(
            "migrate",
            &[
                "--entrypoint",
                "/usr/local/bin/frameos",
                "-e",
                &format!("FRAMEOS_DATABASE_URL={database_url}"),
                &image("control-plane"),
                "migrate",
            ],
        )
        .unwrap();
    assert!(out.contains("migrations applied"), "{out}");

    // 2. Control plane, gateway, node.
    let env = |k: &str, v: &str| format!("{k}={v}");
    let packages_mount = format!("{packages_dir}:/srv/packages");
    let control_plane = deployment
        .start(
            "control-plane",
            &[
                "-e",
                &env("FRAMEOS_DATABASE_URL", &database_url),
                "-e",
                &env("FRAMEOS_AMQP_URL", &amqp_url),
                "-e",
                &env("FRAMEOS_NODE_TOKEN", &node_token),
                "-e",
                &env("FRAMEOS_BOOTSTRAP_ADMIN_KEY", &admin_key),
                "-e",
                "FRAMEOS_PACKAGE_DIR=/srv/packages",
                "-v",
                &packages_mount,
                &image("control-plane"),
            ],
        )
        .unwrap();
    let gateway = deployment
        .start(
            "gateway",
            &[
                "-e",
                "FRAMEOS_CONTROL_PLANE_URL=http://control-plane:50051",
                &image("gateway"),
            ],
        )
        .unwrap();
    let socket_gid = std::fs::metadata(DOCKER_SOCKET)
        .with_context(|| format!("{DOCKER_SOCKET}: the node needs the host's engine"))
        .unwrap()
        .gid()
        .to_string();
    let node = deployment
        .start(
            "execution-node",
            &[
                "-v",
                &format!("{DOCKER_SOCKET}:{DOCKER_SOCKET}"),
                "--group-add",
                &socket_gid,
                "-v",
                &packages_mount,
                "-v",
                &format!("{cache_dir}:{cache_dir}"),
                "-v",
                &format!("{tmp_dir}:{tmp_dir}"),
                "-e",
                "FRAMEOS_CONTROL_PLANE_URL=http://control-plane:50051",
                "-e",
                &env("FRAMEOS_AMQP_URL", &amqp_url),
                "-e",
                &env("FRAMEOS_NODE_TOKEN", &node_token),
                "-e",
                &env("FRAMEOS_NODE_ID", &node_id),
                "-e",
                "FRAMEOS_NODE_CONCURRENCY=2",
                "-e",
                "FRAMEOS_PACKAGE_DIR=/srv/packages",
                "-e",
                &env("FRAMEOS_PACKAGE_CACHE", &cache_dir),
                "-e",
                &env("TMPDIR", &tmp_dir),
                &image("execution-node"),
            ],
        )
        .unwrap();

    // 3. Ready: the gateway's /readyz (it asks the control plane, which needs its database).
    let gateway_url = format!("http://{}:8080", deployment.address(&gateway).unwrap());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ready_at = Instant::now();
    loop {
        for container in [&control_plane, &gateway, &node] {
            deployment.ensure_running(container).unwrap();
        }
        let ready = http.get(format!("{gateway_url}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            ready_at.elapsed() < READY_WITHIN,
            "not ready within {READY_WITHIN:?}:\n{}\n{}",
            deployment.logs(&control_plane),
            deployment.logs(&gateway)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = started.elapsed();

    // 4. An account, an approved example agent, one execution.
    let api = Gateway {
        base: gateway_url,
        http,
    };
    let result = execute_word_count(&api, &admin_key).await;
    let done = match result {
        Ok(done) => done,
        Err(e) => panic!(
            "{e:#}\n--- control plane\n{}\n--- node\n{}",
            deployment.logs(&control_plane),
            deployment.logs(&node)
        ),
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], 5, "{done}");
    assert_eq!(
        done["output"]["top_words"],
        json!([{"word": "the", "count": 2}])
    );
    let executed = started.elapsed();

    // 5. SIGTERM (docker stop): each service drains and exits 0 well within the grace.
    let mut stops = Vec::new();
    for container in [&node, &gateway, &control_plane] {
        let (code, took) = deployment.stop(container, STOP_GRACE).unwrap();
        assert_eq!(
            code,
            0,
            "{container} exited {code}:\n{}",
            deployment.logs(container)
        );
        assert!(took < STOP_GRACE, "{container} needed {took:?} to stop");
        stops.push(format!("{:.1} s", took.as_secs_f64()));
    }
    eprintln!(
        "[images] build {:.1} s, ready at {:.1} s, executed at {:.1} s, stopped at {:.1} s \
         (node, gateway, control plane: {})",
        built.as_secs_f64(),
        ready.as_secs_f64(),
        executed.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        stops.join(", ")
    );
    drop(deployment);
    drop((postgres, rabbit));
}

/// A developer publishes the word-count example, the admin approves it, a user runs it; the
/// finished execution.
async fn execute_word_count(api: &Gateway, admin: &str) -> anyhow::Result<Value> {
    let account = |name: &str, role: &str| json!({"name": name, "role": role});
    let dev = api
        .call(
            Method::POST,
            "/v1/accounts",
            admin,
            Some(account("dev", "developer")),
            201,
        )
        .await?;
    let dev = dev["api_key"].as_str().context("api_key")?.to_string();
    let user = api
        .call(
            Method::POST,
            "/v1/accounts",
            admin,
            Some(account("uma", "user")),
            201,
        )
        .await?;
    let user = user["api_key"].as_str().context("api_key")?.to_string();
    let agent = json!({"slug": "word-count", "name": "word-count", "pricing": {"model": "free"}});
    api.call(Method::POST, "/v1/agents", &dev, Some(agent), 201)
        .await?;
    let upload = api
        .http
        .post(format!("{}/v1/agents/word-count/versions", api.base))
        .bearer_auth(&dev)
        .header("content-type", "application/gzip")
        .body(packages::example("word-count"))
        .send()
        .await?;
    ensure!(
        upload.status().as_u16() == 201,
        "upload: {}",
        upload.text().await?
    );
    let version: Value = upload.json().await?;
    let v = version["version"].as_str().context("version")?;
    let approve = format!("/v1/agents/word-count/versions/{v}/approve");
    api.call(Method::POST, &approve, admin, None, 200).await?;

    let inputs = json!({"inputs": {"text": "the cat and the hat", "top_n": 1}});
    let execution = api
        .call(
            Method::POST,
            "/v1/agents/word-count/executions",
            &user,
            Some(inputs),
            202,
        )
        .await?;
    let id = execution["id"].as_str().context("id")?;
    let deadline = Instant::now() + RUN_WITHIN;
    loop {
        let path = format!("/v1/executions/{id}");
        let execution = api.call(Method::GET, &path, &user, None, 200).await?;
        if !matches!(execution["status"].as_str(), Some("queued" | "running")) {
            return Ok(execution);
        }
        ensure!(Instant::now() < deadline, "not done: {execution}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Dockerfiles (for registries; they cannot be built here) and images/build.sh must make
/// the same images: entrypoint, user, working directory, exposed ports, FRAMEOS_* environment
/// and the binaries in /usr/local/bin are compared with the images the script built.
#[test]
fn the_dockerfiles_describe_the_images_the_script_builds() {
    build_images().unwrap();
    for service in ["control-plane", "gateway", "execution-node"] {
        let path = format!(
            "{}/../services/{service}/Dockerfile",
            env!("CARGO_MANIFEST_DIR")
        );
        let dockerfile = Dockerfile::parse(&std::fs::read_to_string(&path).unwrap());
        let image = image(service);
        let config: Value = serde_json::from_str(
            &docker(&["image", "inspect", "-f", "{{json .Config}}", &image]).unwrap(),
        )
        .unwrap();
        let ours = |what: &str| format!("{service}: {what} of {path} and of {image}");
        assert_eq!(
            config["Entrypoint"],
            dockerfile.entrypoint,
            "{}",
            ours("ENTRYPOINT")
        );
        assert_eq!(config["User"], dockerfile.user.as_str(), "{}", ours("USER"));
        assert_eq!(config["User"], "65532:65532");
        assert_eq!(
            config["WorkingDir"],
            dockerfile.workdir.as_str(),
            "{}",
            ours("WORKDIR")
        );
        let mut exposed: Vec<String> = config["ExposedPorts"]
            .as_object()
            .map(|ports| ports.keys().cloned().collect())
            .unwrap_or_default();
        exposed.sort();
        assert_eq!(exposed, dockerfile.exposed, "{}", ours("EXPOSE"));
        let mut env: Vec<String> = config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|e| e.starts_with("FRAMEOS_"))
            .map(str::to_string)
            .collect();
        env.sort();
        assert_eq!(env, dockerfile.env, "{}", ours("FRAMEOS_* ENV"));
        let listing = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/ls",
            &image,
            "/usr/local/bin",
        ])
        .unwrap();
        let mut binaries: Vec<&str> = listing.split_whitespace().collect();
        binaries.sort();
        assert_eq!(binaries, dockerfile.binaries, "{}", ours("binaries"));
    }
}

/// What the final stage of a service Dockerfile says about the image.
#[derive(Debug, Default)]
struct Dockerfile {
    entrypoint: Value,
    user: String,
    workdir: String,
    /// `50051/tcp`, sorted.
    exposed: Vec<String>,
    /// `FRAMEOS_*=…`, sorted.
    env: Vec<String>,
    /// The names the build stage copies out of target/release, sorted.
    binaries: Vec<String>,
}

impl Dockerfile {
    fn parse(text: &str) -> Dockerfile {
        let joined = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("\\\n", " ");
        let mut file = Dockerfile::default();
        let mut final_stage = false;
        for line in joined.lines().map(str::trim) {
            let (instruction, rest) = line.split_once(' ').unwrap_or((line, ""));
            let rest = rest.trim();
            match instruction {
                "FROM" => {
                    final_stage = !rest.contains(" AS ");
                    file = Dockerfile {
                        binaries: std::mem::take(&mut file.binaries),
                        ..Dockerfile::default()
                    };
                }
                "RUN" if !final_stage => file.binaries.extend(
                    rest.split_whitespace()
                        .filter_map(|w| w.strip_prefix("target/release/"))
                        .map(str::to_string),
                ),
                "ENTRYPOINT" => file.entrypoint = serde_json::from_str(rest).unwrap(),
                "USER" => file.user = rest.to_string(),
                "WORKDIR" => file.workdir = rest.to_string(),
                "EXPOSE" => file
                    .exposed
                    .extend(rest.split_whitespace().map(|p| format!("{p}/tcp"))),
                "ENV" => file.env.push(rest.to_string()),
                _ => {}
            }
        }
        file.exposed.sort();
        file.env.sort();
        file.binaries.sort();
        file
    }
}
