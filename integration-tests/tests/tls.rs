//! gRPC over TLS between the services, node mTLS, the errors bad PEM files give at start, and
//! the per-service gRPC health statuses (readiness, each service, liveness) through a drain and
//! a database outage. Certificates are made here, per test (rcgen); nothing is mocked.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use frameos_integration_tests::health::{
    NOT_SERVING, SERVING, Served, check, embedded_config, next_status, unchanged, watch,
};
use frameos_integration_tests::instances::PrivatePostgres;
use frameos_integration_tests::{Backend, Mesh, amqp_url, packages};
use frameos_proto::v1::RegisterNodeRequest;
use frameos_proto::v1::node_service_client::NodeServiceClient;
use frameos_tls::{ClientTlsConfig, ServerTlsConfig};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The control plane's services, by the names gRPC health answers for.
const SERVICES: [&str; 5] = [
    "frameos.v1.AccountService",
    "frameos.v1.AgentService",
    "frameos.v1.BillingService",
    "frameos.v1.ExecutionService",
    "frameos.v1.NodeService",
];

/// A certificate authority of the test's own, and the PEM files it issued.
struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

#[derive(Clone, Copy)]
enum Usage {
    Server,
    Client,
}

/// A certificate and its key, as files.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn issue(&self, name: &str, names: &[&str], usage: Usage) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert: self.path(&format!("{name}.pem")),
            key: self.path(&format!("{name}-key.pem")),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}

fn server_tls(server: &Leaf, client_ca: Option<PathBuf>) -> ServerTlsConfig {
    ServerTlsConfig {
        tls_cert: Some(server.cert.clone()),
        tls_key: Some(server.key.clone()),
        tls_client_ca: client_ca,
    }
}

fn client_tls(ca: Option<PathBuf>, client: Option<&Leaf>) -> ClientTlsConfig {
    ClientTlsConfig {
        control_plane_ca: ca,
        tls_client_cert: client.map(|c| c.cert.clone()),
        tls_client_key: client.map(|c| c.key.clone()),
    }
}

/// Registers as a node would, presenting `token`, over a connection made with `tls`.
async fn register(url: &str, tls: &ClientTlsConfig, token: &str) -> Result<(), tonic::Status> {
    let channel = match tls.endpoint(url).unwrap().connect().await {
        Ok(channel) => channel,
        Err(e) => return Err(tonic::Status::unavailable(format!("{e:?}"))),
    };
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut client =
        NodeServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        });
    client
        .register_node(RegisterNodeRequest {
            node_id: format!("tls-{}", uuid::Uuid::new_v4().simple()),
            concurrency: 1,
            instance_id: uuid::Uuid::new_v4().simple().to_string(),
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_execution_runs_end_to_end_over_tls_with_node_mtls() {
    let pki = Pki::new("frameos test CA");
    let server = pki.issue("control-plane", &["localhost", "127.0.0.1"], Usage::Server);
    let node = pki.issue("node-1", &["node-1"], Usage::Client);
    let ca = pki.ca();

    let mut mesh = Mesh::start_tuned(
        Backend::PostgresS3,
        false,
        |config| {
            config.amqp_url = Some(amqp_url());
            config.queue_name = format!("frameos.it.{}", uuid::Uuid::new_v4().simple());
            config.tls = server_tls(&server, Some(ca.clone()));
        },
        |gateway| {
            // The gateway needs no client certificate: node mTLS is for nodes.
            gateway.control_plane_url = gateway.control_plane_url.replace("http://", "https://");
            gateway.tls = client_tls(Some(ca.clone()), None);
        },
    )
    .await
    .unwrap();
    let url = format!("https://{}", mesh.grpc_addr);
    mesh.start_node_with(2, |config| {
        config.control_plane_url = url.clone();
        config.tls = client_tls(Some(ca.clone()), Some(&node));
    })
    .await
    .unwrap();

    // REST → gateway →(TLS) control plane → RabbitMQ → node →(mTLS) control plane → back.
    let ready = reqwest::get(mesh.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let (_, done) = mesh
        .run(&user, "word-count", json!({"text": "over tls", "top_n": 1}))
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], 2, "{done}");

    // A node with the right token but no client certificate is refused, naming why.
    let token = mesh.node_token.clone();
    let refused = register(&url, &client_tls(Some(ca.clone()), None), &token)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(
        refused.message().contains("client certificate"),
        "{refused:?}"
    );
    // The certificate does not replace the token: both are required.
    let refused = register(&url, &client_tls(Some(ca.clone()), Some(&node)), "wrong")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    register(&url, &client_tls(Some(ca.clone()), Some(&node)), &token)
        .await
        .unwrap();
    // A client certificate from another CA fails the handshake: the server sends an alert
    // (UnknownCA) or closes the connection, which a TLS 1.3 client learns at its first call;
    // either way a transport error, the call never reaches the service.
    let stranger = Pki::new("another CA");
    let impostor = stranger.issue("impostor", &["node-2"], Usage::Client);
    let refused = register(&url, &client_tls(Some(ca.clone()), Some(&impostor)), &token)
        .await
        .unwrap_err();
    assert!(
        std::error::Error::source(&refused).is_some()
            && refused.code() != tonic::Code::Unauthenticated,
        "{refused:?}"
    );

    // A client that does not trust the control plane's CA does not connect: neither one on the
    // system's roots nor one trusting another CA. A gateway like that is not ready.
    for tls in [
        client_tls(None, None),
        client_tls(Some(stranger.ca()), None),
    ] {
        let error = tls.endpoint(&url).unwrap().connect().await.unwrap_err();
        let chain = format!("{error:?}");
        assert!(chain.contains("UnknownIssuer"), "{chain}");
    }
    let mut untrusting = frameos_gateway::Config::embedded();
    untrusting.http_addr = "127.0.0.1:0".parse().unwrap();
    untrusting.control_plane_url = url.clone();
    let gateway = frameos_gateway::Gateway::bind(untrusting).await.unwrap();
    let gateway_url = format!("http://{}", gateway.local_addr());
    let stop = CancellationToken::new();
    let running = tokio::spawn(gateway.run(stop.clone()));
    let ready = reqwest::get(format!("{gateway_url}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    // Its readiness says why, for the operator who asks.
    let body: serde_json::Value = ready.json().await.unwrap();
    let why = body["error"]["message"].as_str().unwrap_or_default();
    assert!(why.contains("UnknownIssuer"), "{body}");
    // Liveness does not depend on the control plane.
    let live = reqwest::get(format!("{gateway_url}/healthz"))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    stop.cancel();
    running.await.unwrap().unwrap();

    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pem_files_stop_the_start_with_an_error_naming_the_file() {
    let pki = Pki::new("frameos test CA");
    let server = pki.issue("control-plane", &["localhost"], Usage::Server);
    let other = pki.issue("other", &["localhost"], Usage::Server);
    let not_pem = pki.path("not.pem");
    std::fs::write(&not_pem, "this is not PEM\n").unwrap();
    let missing = pki.path("missing.pem");
    let dir = tempfile::tempdir().unwrap();

    let control_plane = |tls: ServerTlsConfig| {
        let mut config = frameos_control_plane::Config::embedded();
        config.grpc_addr = "127.0.0.1:0".parse().unwrap();
        config.database_url = format!("sqlite://{}/frameos.db", dir.path().display());
        config.store.package_dir = dir.path().join("packages");
        config.migrate = true;
        config.tls = tls;
        async move {
            match frameos_control_plane::Server::bind(config).await {
                Ok(_) => panic!("the control plane started with bad TLS files"),
                Err(e) => e.to_string(),
            }
        }
    };
    let mut mismatched = server_tls(&server, None);
    mismatched.tls_key = Some(other.key.clone());
    let mut no_cert = server_tls(&server, None);
    no_cert.tls_cert = Some(not_pem.clone());
    let mut absent = server_tls(&server, None);
    absent.tls_cert = Some(missing.clone());
    let shown = |path: &std::path::Path| path.display().to_string();
    let cases = [
        (
            absent,
            ["FRAMEOS_TLS_CERT: cannot read".into(), shown(&missing)],
        ),
        (no_cert, ["no PEM certificate".into(), shown(&not_pem)]),
        (
            mismatched,
            [
                "does not belong to the certificate".into(),
                shown(&other.key),
            ],
        ),
        (
            server_tls(&server, Some(not_pem.clone())),
            ["FRAMEOS_TLS_CLIENT_CA".to_string(), shown(&not_pem)],
        ),
    ];
    for (tls, expected) in cases {
        let message = control_plane(tls).await;
        for part in expected {
            assert!(message.contains(&part), "{message:?} lacks {part:?}");
        }
    }

    // The gateway, likewise, before it listens.
    let mut gateway = frameos_gateway::Config::embedded();
    gateway.http_addr = "127.0.0.1:0".parse().unwrap();
    gateway.control_plane_url = "https://127.0.0.1:50051".into();
    gateway.tls = client_tls(Some(not_pem.clone()), None);
    let message = match frameos_gateway::Gateway::bind(gateway).await {
        Ok(_) => panic!("the gateway started with a bad CA file"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("FRAMEOS_CONTROL_PLANE_CA"), "{message}");
    assert!(message.contains(&shown(&not_pem)), "{message}");

    // What an operator sees: the binary exits 1 with the file named on stderr.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_frameos-test-control-plane"))
        .env_clear()
        .env(
            "FRAMEOS_DATABASE_URL",
            format!("sqlite://{}/frameos.db", dir.path().display()),
        )
        .env("FRAMEOS_GRPC_ADDR", "127.0.0.1:0")
        .env("FRAMEOS_TLS_CERT", &missing)
        .env("FRAMEOS_TLS_KEY", &server.key)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FRAMEOS_TLS_CERT: cannot read") && stderr.contains(&shown(&missing)),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_drain_every_service_goes_not_serving_while_liveness_stays_serving() {
    let dir = tempfile::tempdir().unwrap();
    let draining = CancellationToken::new();
    let server = frameos_control_plane::Server::bind(embedded_config(dir.path()))
        .await
        .unwrap()
        .not_ready_on(draining.clone());
    let served = Served::start(server);
    let mut health = served.health().await;

    let mut watches = Vec::new();
    for name in std::iter::once("").chain(SERVICES) {
        let mut stream = watch(&mut health, name).await;
        assert_eq!(next_status(&mut stream).await, SERVING, "{name:?}");
        watches.push((name, stream));
    }
    let mut liveness = watch(&mut health, "liveness").await;
    assert_eq!(next_status(&mut liveness).await, SERVING);

    // The drain's first stage (what SIGTERM starts; `frameos dev` triggers it alone).
    draining.cancel();
    for (name, stream) in &mut watches {
        assert_eq!(next_status(stream).await, NOT_SERVING, "{name:?}");
    }
    // Still serving, and alive: liveness has not changed and answers SERVING.
    assert_eq!(check(&mut health, "liveness").await, SERVING);
    assert_eq!(
        check(&mut health, "frameos.v1.AgentService").await,
        NOT_SERVING
    );

    // Nor did it change meanwhile: its watch has nothing new to report.
    assert!(unchanged(&mut liveness).await, "liveness reported a change");

    drop((watches, liveness, health));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_stays_serving_while_postgres_is_down_and_readiness_does_not() {
    let mut postgres = PrivatePostgres::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(dir.path());
    config.database_url = postgres.server_url();
    let served = Served::start(frameos_control_plane::Server::bind(config).await.unwrap());
    let mut health = served.health().await;
    let mut readiness = watch(&mut health, "").await;
    assert_eq!(next_status(&mut readiness).await, SERVING);
    let mut liveness = watch(&mut health, "liveness").await;
    assert_eq!(next_status(&mut liveness).await, SERVING);

    postgres.stop().await.unwrap();
    assert_eq!(next_status(&mut readiness).await, NOT_SERVING);
    // Alive, and not draining: liveness and the services still answer SERVING.
    assert_eq!(check(&mut health, "liveness").await, SERVING);
    for name in SERVICES {
        assert_eq!(check(&mut health, name).await, SERVING, "{name}");
    }

    postgres.start_again().await.unwrap();
    assert_eq!(next_status(&mut readiness).await, SERVING);
    // Liveness never changed through the outage.
    assert!(unchanged(&mut liveness).await, "liveness reported a change");

    drop((readiness, liveness, health));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_health_listener_answers_probes_while_the_api_is_tls_only() {
    let pki = Pki::new("frameos test CA");
    let server = pki.issue("control-plane", &["localhost", "127.0.0.1"], Usage::Server);
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(dir.path());
    config.grpc_health_addr = Some("127.0.0.1:0".parse().unwrap());
    config.tls = server_tls(&server, None);
    let control_plane = frameos_control_plane::Server::bind(config).await.unwrap();
    let probes = control_plane.health_addr().unwrap();
    let served = Served::start(control_plane);
    let api = served.addr;

    // What the kubelet's gRPC probe does: plain HTTP/2 to the health port.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{probes}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(plain.clone());
    assert_eq!(check(&mut health, "liveness").await, SERVING);
    assert_eq!(check(&mut health, "").await, SERVING);
    // It serves health and nothing else.
    let api_call = frameos_proto::v1::account_service_client::AccountServiceClient::new(plain)
        .who_am_i(frameos_proto::v1::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(api_call.code(), tonic::Code::Unimplemented, "{api_call:?}");
    // The API port itself speaks TLS only.
    let cleartext = tonic::transport::Endpoint::from_shared(format!("http://{api}"))
        .unwrap()
        .connect()
        .await;
    let refused = match cleartext {
        Err(e) => format!("{e:?}"),
        Ok(channel) => {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .unwrap_err();
            format!("{status:?}")
        }
    };
    assert!(!refused.is_empty());
    let secure = client_tls(Some(pki.ca()), None)
        .endpoint(&format!("https://{api}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(check(&mut HealthClient::new(secure), "").await, SERVING);

    drop(health);
    served.stop().await;
}
