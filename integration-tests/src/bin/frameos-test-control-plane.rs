//! The production control plane as a separate process, with test-only faults, for tests that
//! kill it (SIGKILL) at a chosen point. Built only with the `fault-injection` feature, which only
//! this package's tests enable.

use clap::Parser;
use frameos_control_plane::faults::Faults;
use frameos_integration_tests::control_plane_process::LISTENING;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: frameos_control_plane::Config,
    /// After the rail's capture, print the marker line and block before the ledger commit.
    #[arg(long)]
    block_after_capture: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    frameos_telemetry::init_for("frameos-test-control-plane");
    let args = Args::parse();
    let faults = Faults {
        block_after_capture: args.block_after_capture,
    };
    let server = frameos_control_plane::Server::bind(args.config)
        .await?
        .with_faults(faults);
    println!("{LISTENING} {}", server.local_addr());
    server.run(CancellationToken::new()).await?;
    Ok(())
}
