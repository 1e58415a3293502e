//! `frameos dev`: control plane, gateway and an execution node in one process, on the embedded
//! defaults (SQLite, a local package directory, an in-process queue, the Docker sandbox).

use std::path::Path;
use std::time::Duration;

use frameos_lifecycle::{StopSequence, Supervisor};
use frameos_sandbox::{Images, Sandbox, SandboxKind};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    control_plane: frameos_control_plane::Config,
    /// Where the REST gateway listens.
    #[arg(long, env = "FRAMEOS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: std::net::SocketAddr,
    /// Docker socket or URL.
    #[arg(long, env = "FRAMEOS_DOCKER_HOST")]
    docker_host: Option<String>,
    /// `docker`, or `local` to run agents as plain processes: NOT ISOLATED.
    #[arg(long, env = "FRAMEOS_SANDBOX", default_value_t = SandboxKind::Docker)]
    sandbox: SandboxKind,
    /// Executions run at once by the in-process node.
    #[arg(long, env = "FRAMEOS_NODE_CONCURRENCY")]
    concurrency: Option<u16>,
}

pub async fn run(mut args: Args, output: crate::output::Output) -> anyhow::Result<()> {
    frameos_telemetry::init();
    args.control_plane.migrate = true;
    // The three services talk over loopback in one process: plain HTTP/2, whatever FRAMEOS_TLS_*
    // the shell has set (ADR 0018).
    args.control_plane.tls = Default::default();
    // Agent secrets need a key; without FRAMEOS_SECRETS_KEY a development key is kept beside
    // the embedded database (ADR 0045).
    if args.control_plane.secrets.secrets_key.is_none() {
        let path = Path::new(crate::secrets::DEV_KEY_FILE);
        args.control_plane.secrets.secrets_key = Some(crate::secrets::dev_keyring(path)?);
    }
    // A fresh admin key each start unless one is configured: dev keys are disposable, and the
    // database keeps only their hashes.
    let admin_key = match &args.control_plane.bootstrap_admin_key {
        Some(key) => key.clone(),
        None => {
            let key = frameos_control_plane::generate_api_key();
            args.control_plane.bootstrap_admin_key = Some(key.clone());
            key
        }
    };
    let max_package_bytes = args.control_plane.limits.max_package_bytes;
    let topology = args.control_plane.topology();
    let control_plane_grace = args.control_plane.shutdown_grace();
    let amqp_url = args.control_plane.amqp_url.clone();
    let store = args.control_plane.store.clone();
    let queue = frameos_queue::Queue::in_process(topology);
    // One registry for the three services: the gateway's /metrics shows them all.
    let registry = frameos_metrics::Registry::new();

    let mut control_plane =
        frameos_control_plane::Server::bind_with_registry(args.control_plane, registry.clone())
            .await?;
    if amqp_url.is_none() {
        control_plane = control_plane.with_queue(queue.clone());
    }
    let grpc_addr = control_plane.local_addr();
    let mut gateway_config = frameos_gateway::Config::embedded();
    gateway_config.http_addr = args.http_addr;
    gateway_config.control_plane_url = format!("http://{grpc_addr}");
    gateway_config.tls = Default::default();
    gateway_config.max_package_bytes = max_package_bytes;
    gateway_config.shutdown_grace_secs = control_plane_grace.as_secs();
    let gateway =
        frameos_gateway::Gateway::bind_with_registry(gateway_config, registry.clone()).await?;
    let http_addr = gateway.local_addr();

    let mut node_config = frameos_execution_node::Config::embedded();
    node_config.control_plane_url = format!("http://{grpc_addr}");
    node_config.tls = Default::default();
    node_config.store = store;
    node_config.concurrency = args.concurrency;
    node_config.amqp_url = amqp_url.clone();
    node_config.node_token = Some(control_plane.node_token().to_string());
    let node_id = node_config.node_id();
    node_config.node_id = Some(node_id.clone());
    node_config.sandbox = args.sandbox;
    node_config.docker_host = args.docker_host.clone();
    // The shared registry is served by the gateway (and FRAMEOS_METRICS_ADDR, if set, by the
    // control plane): the node must not bind that address a second time.
    node_config.metrics_addr = None;
    let sandbox = sandbox(args.sandbox, args.docker_host.as_deref(), &node_id).await;
    let sandbox_shown = sandbox.clone();
    let node_grace = node_config.shutdown_grace();
    let node = match amqp_url {
        Some(_) => frameos_execution_node::Node::start_with_registry(node_config, registry).await?,
        None => {
            frameos_execution_node::Node::start_sharing(node_config, sandbox, queue, registry)
                .await?
        }
    };

    let sandbox_name = match &sandbox_shown {
        Sandbox::Docker(_) => "docker",
        Sandbox::Local(_) => "local",
        Sandbox::Unavailable(_) => "unavailable",
    };
    if output.is_json() {
        // One line a script reads for where to connect; the banner goes to stderr instead.
        crate::output::json_line(&serde_json::json!({
            "api_url": format!("http://{http_addr}"),
            "grpc_url": format!("http://{grpc_addr}"),
            "sandbox": sandbox_name,
            "admin_api_key": admin_key,
        }))?;
    }
    banner(
        output,
        &format!("http://{http_addr}"),
        &format!("http://{grpc_addr}"),
        &sandbox_shown,
        &admin_key,
    );

    serve(
        control_plane,
        gateway,
        node,
        control_plane_grace,
        node_grace,
    )
    .await
}

/// Runs the three services until SIGTERM/SIGINT or until one fails, then stops them in the
/// order of one service lifecycle (ADR 0009): readiness off and no new requests or jobs → the
/// node drains (or hands back) its executions while the control plane still records them →
/// the control plane flushes its outbox and closes.
async fn serve(
    control_plane: frameos_control_plane::Server,
    gateway: frameos_gateway::Gateway,
    node: frameos_execution_node::Node,
    control_plane_grace: Duration,
    node_grace: Duration,
) -> anyhow::Result<()> {
    let process = CancellationToken::new();
    let _signals = frameos_lifecycle::cancel_on_signal(process.clone())?;
    let supervisor = Supervisor::new(&process);
    let stopping = supervisor.stopping();
    let (cp_stop, gw_stop, node_stop) = (
        CancellationToken::new(),
        CancellationToken::new(),
        CancellationToken::new(),
    );
    let control_plane = control_plane.not_ready_on(stopping.clone());
    let mut cp = supervisor.component("control plane", control_plane.run(cp_stop.clone()));
    let mut gw = supervisor.component("gateway", gateway.run(gw_stop.clone()));
    let mut nd = supervisor.component("execution node", node.run(node_stop.clone()));

    stopping.cancelled().await;
    let stop = StopSequence::begin("frameos dev", node_grace + control_plane_grace);
    gw_stop.cancel();
    node_stop.cancel();
    if stop
        .stage("gateway stops", control_plane_grace + MARGIN, &mut gw)
        .await
        .is_none()
    {
        gw.abort();
    }
    if stop
        .stage("node drains", node_grace + MARGIN, &mut nd)
        .await
        .is_none()
    {
        nd.abort();
    }
    cp_stop.cancel();
    if stop
        .stage("control plane stops", control_plane_grace + MARGIN, &mut cp)
        .await
        .is_none()
    {
        cp.abort();
    }
    supervisor.wait(MARGIN).await;
    stop.finish();
    match supervisor.failure() {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// The start banner: on stdout, or on stderr when stdout is for JSON.
fn banner(
    output: crate::output::Output,
    api_url: &str,
    grpc_url: &str,
    sandbox_shown: &Sandbox,
    admin_key: &str,
) {
    macro_rules! say {
        () => {
            if output.is_json() { eprintln!() } else { println!() }
        };
        ($($arg:tt)*) => {
            if output.is_json() { eprintln!($($arg)*) } else { println!($($arg)*) }
        };
    }
    say!();
    say!("  FrameOS is running (development mode)");
    say!("  REST API      {api_url}/v1   (OpenAPI: {api_url}/openapi.json)");
    say!("  gRPC          {grpc_url}");
    match sandbox_shown {
        Sandbox::Docker(_) => say!("  sandbox       Docker"),
        Sandbox::Local(_) => {
            say!("  sandbox       local processes — NOT ISOLATED, development only")
        }
        Sandbox::Unavailable(u) => {
            say!(
                "  sandbox       UNAVAILABLE — every execution fails: {}",
                u.reason()
            )
        }
    }
    say!("  admin API key {admin_key}");
    say!();
    say!("  export FRAMEOS_API_URL={api_url} FRAMEOS_API_KEY={admin_key}");
    say!("  stop with Ctrl-C (twice to skip the graceful stop)");
    say!();
}

/// Room for each service's last short stages beyond its grace.
const MARGIN: Duration = Duration::from_secs(30);

/// What `FRAMEOS_SANDBOX` asks for, never anything else. Docker that does not answer, or whose
/// runtime images cannot be built, gives a sandbox that fails every execution naming why: this
/// node is the only one, so nothing else could run them, and they must never run unisolated.
async fn sandbox(kind: SandboxKind, docker_host: Option<&str>, node_id: &str) -> Sandbox {
    let sandbox = match Sandbox::select(kind, docker_host, Images::default(), node_id).await {
        Ok(sandbox) => sandbox,
        Err(e) => return unavailable(format!("FRAMEOS_SANDBOX=docker, but {e}")),
    };
    if kind == SandboxKind::Local {
        eprintln!(
            "WARNING: FRAMEOS_SANDBOX=local: agents run as local processes, NOT ISOLATED; \
             never use this with agents you do not trust"
        );
        return sandbox;
    }
    if let Err(missing) = sandbox.check_images().await {
        let script = Path::new("runtime-images/build.sh");
        if !script.exists() {
            return unavailable(format!(
                "{missing}, and runtime-images/build.sh is not here (run from the repository root)"
            ));
        }
        eprintln!("building the runtime images (first start only; a few minutes)…");
        let status = tokio::process::Command::new("bash")
            .arg(script)
            .status()
            .await;
        if !matches!(status, Ok(s) if s.success()) {
            return unavailable(format!("{missing}, and runtime-images/build.sh failed"));
        }
    }
    sandbox
}

fn unavailable(reason: String) -> Sandbox {
    eprintln!(
        "ERROR: the Docker sandbox is unavailable ({reason}).\n\
         Every execution will fail until Docker answers and frameos dev is restarted;\n\
         FRAMEOS_SANDBOX=local runs agents as local processes instead, NOT ISOLATED."
    );
    Sandbox::unavailable(reason)
}
