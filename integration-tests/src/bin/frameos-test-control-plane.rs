//! The production control plane as a separate process, for tests that signal it: the same
//! lifecycle as `services/control-plane/src/main.rs`.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: frameos_control_plane::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frameos_telemetry::init_for("frameos-test-control-plane");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    frameos_lifecycle::run_service("control plane", grace, |shutdown| {
        frameos_control_plane::run(args.config, shutdown)
    })
    .await
    .into()
}
