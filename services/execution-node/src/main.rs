use clap::Parser;
use tokio_util::sync::CancellationToken;

/// FrameOS execution node.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: frameos_execution_node::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    frameos_telemetry::init_for("frameos-execution-node");
    let args = Args::parse();
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing running executions");
        signal.cancel();
    });
    let result = frameos_execution_node::run(args.config, shutdown).await;
    // Spans still buffered for the exporter go out before the process ends.
    frameos_telemetry::shutdown();
    result?;
    Ok(())
}
