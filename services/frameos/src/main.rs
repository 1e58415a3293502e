//! `frameos`: run the whole platform locally (`frameos dev`), migrate a database, and drive the
//! REST API (agents, executions, reviews, accounts) from a terminal or a script.

mod agent;
mod api;
mod commands;
mod dev;
mod events;
mod executions;
mod exit;
mod keys;
mod output;
mod pack;
mod run;
mod schedules;
mod secrets;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::exit::Exit;
use crate::output::Output;

#[derive(Parser)]
#[command(name = "frameos", version, about = "FrameOS Agent Runtime")]
struct Cli {
    /// What goes to stdout: readable text, or JSON for scripts. Progress and errors always go
    /// to stderr.
    #[arg(
        long,
        short,
        global = true,
        value_enum,
        env = "FRAMEOS_OUTPUT",
        default_value_t = Output::Text
    )]
    output: Output,
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
    /// Execute an agent, follow its logs on stderr, and print its output alone on stdout.
    Run(run::Args),
    /// Your executions: get, list, cancel, logs, follow.
    #[command(subcommand)]
    Executions(executions::ExecutionsCommand),
    /// Agents run on a cron expression, as you: create, list, get, delete.
    #[command(subcommand, alias = "schedules")]
    Schedule(schedules::ScheduleCommand),
    /// Create, publish and price agents.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
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
    /// The keys of agents' secrets: rotate to a new key, generate one (operators).
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// A shell completion script on stdout, e.g. `frameos completions bash > /etc/bash_completion.d/frameos`.
    Completions { shell: clap_complete::Shell },
}

/// The command line, with the exit codes in `--help`.
fn command() -> clap::Command {
    Cli::command().after_help(exit::help())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let output = cli.output;
    let result = match cli.command {
        Command::Dev(args) => dev::run(*args, output).await,
        Command::Migrate { database_url } => {
            frameos_telemetry::init();
            frameos_control_plane::migrate(&database_url)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    output.emit(&serde_json::json!({"migrated": true}), |_| {
                        println!("migrations applied")
                    })
                })
        }
        Command::Run(args) => run::run(args, output).await,
        Command::Executions(command) => executions::executions(command, output).await,
        Command::Schedule(command) => schedules::schedule(command, output).await,
        Command::Agent(command) => agent::agent(command, output).await,
        Command::Review(command) => commands::review(command, output).await,
        Command::Account(command) => commands::account(command, output).await,
        Command::Ledger(command) => commands::ledger(command, output).await,
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "frameos", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Keys(command) => keys::keys(command, output).await,
        Command::Secrets(command) => secrets::secrets(command, output).await,
    };
    match result {
        Ok(()) => Exit::Success.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::of(&e).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("130"), "{help}");
    }
}
