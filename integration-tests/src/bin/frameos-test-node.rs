//! The production execution node as a separate process, for tests that kill it (SIGKILL).

use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: frameos_execution_node::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    frameos_execution_node::run(args.config, CancellationToken::new()).await?;
    Ok(())
}
