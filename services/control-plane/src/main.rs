use clap::Parser;
use tokio_util::sync::CancellationToken;

/// FrameOS control plane (gRPC).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: frameos_control_plane::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    frameos_telemetry::init_for("frameos-control-plane");
    let args = Args::parse();
    let shutdown = CancellationToken::new();
    tokio::spawn(frameos_telemetry_signal(shutdown.clone()));
    let result = frameos_control_plane::run(args.config, shutdown).await;
    // Spans still buffered for the exporter go out before the process ends.
    frameos_telemetry::shutdown();
    result?;
    Ok(())
}

async fn frameos_telemetry_signal(shutdown: CancellationToken) {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
