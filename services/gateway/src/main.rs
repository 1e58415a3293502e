use clap::Parser;

/// FrameOS gateway (REST API).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: frameos_gateway::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frameos_telemetry::init_for("frameos-gateway");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    let exit = frameos_lifecycle::run_service("gateway", grace, |shutdown| {
        frameos_gateway::run(args.config, shutdown)
    })
    .await;
    // Spans still buffered for the exporter go out before the process ends.
    frameos_telemetry::shutdown();
    exit.into()
}
