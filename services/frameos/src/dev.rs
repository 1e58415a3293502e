//! `frameos dev`: the control plane and the gateway in one process, on the embedded defaults.

use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    control_plane: frameos_control_plane::Config,
    /// Where the REST gateway listens.
    #[arg(long, env = "FRAMEOS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: std::net::SocketAddr,
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    frameos_telemetry::init();
    args.control_plane.migrate = true;
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
    let shutdown = CancellationToken::new();
    let max_package_bytes = args.control_plane.limits.max_package_bytes;
    let control_plane = frameos_control_plane::Server::bind(args.control_plane).await?;
    let grpc_addr = control_plane.local_addr();
    let mut gateway_config = frameos_gateway::Config::embedded();
    gateway_config.http_addr = args.http_addr;
    gateway_config.control_plane_url = format!("http://{grpc_addr}");
    gateway_config.max_package_bytes = max_package_bytes;
    let gateway = frameos_gateway::Gateway::bind(gateway_config).await?;
    let http_addr = gateway.local_addr();

    println!();
    println!("  FrameOS is running (development mode)");
    println!("  REST API      http://{http_addr}/v1   (OpenAPI: http://{http_addr}/openapi.json)");
    println!("  gRPC          http://{grpc_addr}");
    println!("  admin API key {admin_key}");
    println!();
    println!("  export FRAMEOS_API_URL=http://{http_addr} FRAMEOS_API_KEY={admin_key}");
    println!("  stop with Ctrl-C");
    println!();

    let cp = tokio::spawn(control_plane.run(shutdown.clone()));
    let gw = tokio::spawn(gateway.run(shutdown.clone()));
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    let (cp, gw) = tokio::join!(cp, gw);
    shutdown.cancel();
    cp??;
    gw??;
    Ok(())
}
