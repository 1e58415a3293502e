//! `frameos`: run the whole platform locally (`frameos dev`), migrate a database, and drive the
//! REST API (agents, reviews, accounts) from a terminal.

mod api;
mod commands;
mod dev;
mod keys;
mod pack;
mod run;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "frameos", version, about = "FrameOS Agent Runtime")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Control plane, gateway and an execution node in one process on the embedded defaults
    /// (SQLite and a local directory under ./.frameos/, an in-process queue).
    Dev(Box<dev::Args>),
    /// Apply pending database migrations.
    Migrate {
        #[arg(
            long,
            env = "FRAMEOS_DATABASE_URL",
            default_value = "sqlite://./.frameos/frameos.db"
        )]
        database_url: String,
    },
    /// Execute an agent and follow its logs until the result.
    Run(run::Args),
    /// Create and publish agents.
    #[command(subcommand)]
    Agent(commands::AgentCommand),
    /// The admin review queue.
    #[command(subcommand)]
    Review(commands::ReviewCommand),
    /// Ledger balances and the ledger's own check.
    #[command(subcommand)]
    Ledger(commands::LedgerCommand),
    /// Accounts and API keys (admin).
    #[command(subcommand)]
    Account(commands::AccountCommand),
    /// Your named API keys: create (with scopes and an expiry), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(*args).await,
        Command::Migrate { database_url } => {
            frameos_telemetry::init();
            frameos_control_plane::migrate(&database_url)
                .await
                .map(|()| println!("migrations applied"))
                .map_err(anyhow::Error::from)
        }
        Command::Run(args) => run::run(args).await,
        Command::Agent(command) => commands::agent(command).await,
        Command::Review(command) => commands::review(command).await,
        Command::Account(command) => commands::account(command).await,
        Command::Ledger(command) => commands::ledger(command).await,
        Command::Keys(command) => keys::keys(command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
