use clap::Parser;

/// FrameOS control plane (gRPC).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: frameos_control_plane::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frameos_telemetry::init_for("frameos-control-plane");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    let exit = frameos_lifecycle::run_service("control plane", grace, |shutdown| {
        frameos_control_plane::run(args.config, shutdown)
    })
    .await;
    // Spans still buffered for the exporter go out before the process ends.
    frameos_telemetry::shutdown();
    exit.into()
}
