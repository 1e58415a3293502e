use clap::Parser;

/// FrameOS execution node.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    config: frameos_execution_node::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frameos_telemetry::init_for("frameos-execution-node");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    let exit = frameos_lifecycle::run_service("execution node", grace, |shutdown| {
        frameos_execution_node::run(args.config, shutdown)
    })
    .await;
    // Spans still buffered for the exporter go out before the process ends.
    frameos_telemetry::shutdown();
    exit.into()
}
