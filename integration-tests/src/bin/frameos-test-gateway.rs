//! The production gateway as a separate process, for tests that signal it: the same lifecycle
//! as `services/gateway/src/main.rs`.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: frameos_gateway::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frameos_telemetry::init_for("frameos-test-gateway");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    frameos_lifecycle::run_service("gateway", grace, |shutdown| {
        frameos_gateway::run(args.config, shutdown)
    })
    .await
    .into()
}
