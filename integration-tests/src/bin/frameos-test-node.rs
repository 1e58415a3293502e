//! The production execution node as a separate process, for tests that signal or kill it: the
//! same lifecycle as `services/execution-node/src/main.rs`.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: frameos_execution_node::Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    frameos_telemetry::init_for("frameos-test-node");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    frameos_lifecycle::run_service("execution node", grace, |shutdown| {
        frameos_execution_node::run(args.config, shutdown)
    })
    .await
    .into()
}
