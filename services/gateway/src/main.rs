use clap::Parser;
use tokio_util::sync::CancellationToken;

/// FrameOS gateway (REST API).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: frameos_gateway::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    frameos_telemetry::init_for("frameos-gateway");
    let args = Args::parse();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let result = frameos_gateway::run(args.config, shutdown).await;
    // Spans still buffered for the exporter go out before the process ends.
    frameos_telemetry::shutdown();
    result?;
    Ok(())
}

/// Ctrl-C, or SIGTERM: what Kubernetes and Docker send before they kill a container.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
