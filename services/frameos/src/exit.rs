//! The exit codes of `frameos`, in one place: the enum, how an error maps to one, and the text
//! `frameos --help` shows about them.

use std::fmt;

use crate::api::ApiError;

/// How a `frameos` command ended. Scripts may rely on these numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what it was asked (for `run`/`follow`: the execution succeeded).
    Success,
    /// The execution ended `failed`, `timed_out` or `canceled`; the scanner rejected the
    /// version; the ledger check found a violation; any other failure.
    Failure,
    /// The command line is wrong (clap's own code).
    Usage,
    /// The API refused the key: missing or invalid (401), or not allowed (403).
    Auth,
    /// No such agent, version or execution visible to you (404).
    NotFound,
    /// The request or the package is invalid or conflicts with what exists (400, 409, 413,
    /// 422, or the local package check of `agent publish`): nothing was changed.
    Invalid,
    /// The API cannot be reached, is overloaded (429) or failed (5xx): retrying may help.
    Unavailable,
    /// Interrupted by Ctrl-C (SIGINT): `run`/`follow` asked the platform to cancel the
    /// execution first, unless `--detach` left it running.
    Interrupted,
}

impl Exit {
    /// Every code, in the order `--help` lists them.
    pub const ALL: [Exit; 8] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::Auth,
        Exit::NotFound,
        Exit::Invalid,
        Exit::Unavailable,
        Exit::Interrupted,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Auth => 3,
            Exit::NotFound => 4,
            Exit::Invalid => 5,
            Exit::Unavailable => 6,
            Exit::Interrupted => 130,
        }
    }

    fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success (run/follow: the execution succeeded)",
            Exit::Failure => {
                "failure: the execution ended failed, timed_out or canceled; a rejected version; a ledger violation"
            }
            Exit::Usage => "usage error: unknown command, missing or malformed argument",
            Exit::Auth => "the API key is missing or invalid (401) or not allowed (403)",
            Exit::NotFound => "not found (404): no such agent, version or execution visible to you",
            Exit::Invalid => {
                "invalid or conflicting request (400, 409, 413, 422) or a package that fails the local check; nothing changed"
            }
            Exit::Unavailable => "the API cannot be reached, is overloaded (429) or failed (5xx)",
            Exit::Interrupted => {
                "interrupted (Ctrl-C): run/follow canceled the execution, or left it running with --detach"
            }
        }
    }

    /// The exit code of an HTTP error status.
    pub fn of_status(status: u16) -> Exit {
        match status {
            401 | 403 => Exit::Auth,
            404 => Exit::NotFound,
            400 | 409 | 413 | 422 => Exit::Invalid,
            429 | 500..=599 => Exit::Unavailable,
            _ => Exit::Failure,
        }
    }

    /// The exit code for `error`: the first cause in its chain that says.
    pub fn of(error: &anyhow::Error) -> Exit {
        for cause in error.chain() {
            if let Some(ended) = cause.downcast_ref::<Ended>() {
                return ended.exit;
            }
            if let Some(api) = cause.downcast_ref::<ApiError>() {
                return Exit::of_status(api.status);
            }
            if cause.downcast_ref::<frameos_package::Error>().is_some() {
                return Exit::Invalid;
            }
            if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
                return if http.is_decode() {
                    Exit::Failure
                } else {
                    Exit::Unavailable
                };
            }
        }
        Exit::Failure
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// The `EXIT CODES` section of `frameos --help`.
pub fn help() -> String {
    let mut text = String::from("Exit codes:\n");
    for exit in Exit::ALL {
        text.push_str(&format!("  {:>3}  {}\n", exit.code(), exit.meaning()));
    }
    text.push_str(
        "\nWith --output json, stdout holds only JSON (one document, or one per line for \
         `executions follow`); progress and messages go to stderr.",
    );
    text
}

/// A command that ended with a given exit code and a message for stderr (an execution that
/// did not succeed, an interruption, a refused package).
#[derive(Debug)]
pub struct Ended {
    pub exit: Exit,
    pub message: String,
}

impl Ended {
    /// The error that ends the command with `exit`, `message` on stderr.
    pub fn error(exit: Exit, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Ended {
            exit,
            message: message.into(),
        })
    }
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Ended {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_all_documented() {
        let help = help();
        let mut seen = std::collections::HashSet::new();
        for exit in Exit::ALL {
            assert!(seen.insert(exit.code()), "{exit:?} reuses {}", exit.code());
            let line = format!("{:>3}  {}", exit.code(), exit.meaning());
            assert!(help.contains(&line), "{exit:?} missing from {help}");
        }
    }

    #[test]
    fn errors_map_to_their_codes() {
        let api = |status| {
            anyhow::Error::new(ApiError {
                status,
                code: "x".into(),
                message: "y".into(),
            })
            .context("calling the API")
        };
        assert_eq!(Exit::of(&api(401)), Exit::Auth);
        assert_eq!(Exit::of(&api(403)), Exit::Auth);
        assert_eq!(Exit::of(&api(404)), Exit::NotFound);
        assert_eq!(Exit::of(&api(409)), Exit::Invalid);
        assert_eq!(Exit::of(&api(422)), Exit::Invalid);
        assert_eq!(Exit::of(&api(503)), Exit::Unavailable);
        assert_eq!(Exit::of(&api(429)), Exit::Unavailable);
        let package = anyhow::Error::new(frameos_package::Error::ManifestMissing).context("x");
        assert_eq!(Exit::of(&package), Exit::Invalid);
        assert_eq!(
            Exit::of(&Ended::error(Exit::Interrupted, "interrupted")),
            Exit::Interrupted
        );
        assert_eq!(Exit::of(&anyhow::anyhow!("something")), Exit::Failure);
    }
}
