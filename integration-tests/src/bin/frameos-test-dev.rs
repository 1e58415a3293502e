//! `frameos dev` as a separate process, for tests that kill it (SIGKILL) and start it again on
//! the same data directory: the same parts composed the same way — control plane, gateway and
//! an execution node sharing one in-process queue, on SQLite, a local package directory and
//! Docker. Prints `ready <REST URL>` once it serves.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use frameos_sandbox::{Images, Sandbox};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    control_plane: frameos_control_plane::Config,
    #[arg(long, env = "FRAMEOS_HTTP_ADDR", default_value = "127.0.0.1:0")]
    http_addr: std::net::SocketAddr,
    #[arg(long, env = "FRAMEOS_NODE_ID")]
    node_id: String,
    #[arg(long, env = "FRAMEOS_NODE_CONCURRENCY", default_value_t = 1)]
    concurrency: u16,
    #[arg(long, env = "FRAMEOS_PACKAGE_CACHE")]
    cache_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    frameos_telemetry::init();
    let mut args = Args::parse();
    args.control_plane.migrate = true;
    let store = args.control_plane.store.clone();
    let queue = frameos_queue::Queue::in_process(args.control_plane.topology());
    let control_plane = frameos_control_plane::Server::bind(args.control_plane)
        .await?
        .with_queue(queue.clone());
    let grpc_addr = control_plane.local_addr();

    let mut gateway_config = frameos_gateway::Config::embedded();
    gateway_config.http_addr = args.http_addr;
    gateway_config.control_plane_url = format!("http://{grpc_addr}");
    let gateway = frameos_gateway::Gateway::bind(gateway_config).await?;

    let mut node_config = frameos_execution_node::Config::embedded();
    node_config.control_plane_url = format!("http://{grpc_addr}");
    node_config.store = store;
    node_config.concurrency = Some(args.concurrency);
    node_config.node_token = Some(control_plane.node_token().to_string());
    node_config.node_id = Some(args.node_id.clone());
    node_config.cache_dir = args.cache_dir;
    let sandbox = Sandbox::docker(None, Images::default(), &args.node_id).await?;
    let node =
        frameos_execution_node::Node::start_with(node_config, sandbox, queue.clone()).await?;

    println!("ready http://{}", gateway.local_addr());
    std::io::stdout().flush()?;
    // Runs until killed: what happens to a killed `frameos dev` is what the tests look at.
    let shutdown = CancellationToken::new();
    let (cp, gw, nd) = tokio::join!(
        control_plane.run(shutdown.clone()),
        gateway.run(shutdown.clone()),
        node.run(shutdown.clone()),
    );
    cp?;
    gw?;
    nd?;
    Ok(())
}
