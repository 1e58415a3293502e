//! The production control plane as a separate process, for tests that signal it (the same
//! lifecycle as `services/control-plane/src/main.rs`) or kill it (SIGKILL) at a chosen point
//! with test-only faults. Built only with the `fault-injection` feature, which only this
//! package's tests enable.

use clap::Parser;
use frameos_control_plane::faults::Faults;
use frameos_integration_tests::control_plane_process::LISTENING;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: frameos_control_plane::Config,
    /// After the rail's capture, print the marker line and block before the ledger commit.
    #[arg(long)]
    block_after_capture: bool,
    /// After a schedule's tick made its run, print the marker line and block before the
    /// schedule is advanced.
    #[arg(long)]
    block_after_scheduled_run: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    frameos_telemetry::init_for("frameos-test-control-plane");
    let args = Args::parse();
    let grace = args.config.shutdown_grace();
    let faults = Faults {
        block_after_capture: args.block_after_capture,
        block_after_scheduled_run: args.block_after_scheduled_run,
    };
    let server = frameos_control_plane::Server::bind(args.config)
        .await?
        .with_faults(faults);
    println!("{LISTENING} {}", server.local_addr());
    let exit = frameos_lifecycle::run_service("control plane", grace, move |shutdown| async move {
        server.run(shutdown).await
    })
    .await;
    Ok(exit.into())
}
