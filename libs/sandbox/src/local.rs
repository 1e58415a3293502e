//! Development only: the runner as a plain local process, with no isolation whatsoever. It
//! gets no more than a container would: the runner protocol's variables (never the platform's
//! environment, which holds its keys) and a scratch directory as its working and home directory.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures::StreamExt;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use crate::drive::{Ended, decide, drive, out_of_memory, runner_command};
use crate::frames::{Pipe, Pump};
use crate::{Error, Event, Outcome, Runtime, Spec};

const NOT_ISOLATED: &str = "NOT ISOLATED — development only: agents run as local processes";
/// Where the interpreters are looked for when this process has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Clone, Debug)]
pub struct LocalSandbox {
    node_id: String,
    runner_dir: PathBuf,
}

impl LocalSandbox {
    /// `runner_dir` holds `node/runner.js` and `python/runner.py` (the repo's `runtime-images/`).
    pub fn new(node_id: &str, runner_dir: impl Into<PathBuf>) -> Self {
        let runner_dir = runner_dir.into();
        tracing::warn!(node_id, runner_dir = %runner_dir.display(), "{NOT_ISOLATED}");
        LocalSandbox {
            node_id: node_id.to_string(),
            runner_dir,
        }
    }

    /// `runtime-images/` of the source tree this crate was built from.
    pub fn default_runner_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-images")
    }

    fn runner(&self, runtime: Runtime) -> PathBuf {
        match runtime {
            Runtime::Node => self.runner_dir.join("node/runner.js"),
            Runtime::Python => self.runner_dir.join("python/runner.py"),
        }
    }

    pub(crate) fn check_runners(&self) -> Result<(), Error> {
        for runtime in [Runtime::Node, Runtime::Python] {
            let path = self.runner(runtime);
            if !path.is_file() {
                return Err(Error::RunnerMissing { path });
            }
        }
        Ok(())
    }

    pub(crate) async fn run(
        &self,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Outcome, Error> {
        tracing::warn!(node_id = %self.node_id, execution_id = %spec.execution_id, "{NOT_ISOLATED}");
        if !spec.allow_domains.is_empty() {
            // No proxy here: a local process reaches whatever the host reaches.
            tracing::warn!(execution_id = %spec.execution_id, "allow_domains is not enforced by the local runner");
        }
        let runner = self.runner(spec.runtime);
        if !runner.is_file() {
            return Err(Error::RunnerMissing { path: runner });
        }
        let program = crate::interpreter(spec.runtime);
        let scratch = tempfile::Builder::new()
            .prefix("frameos-local-")
            .tempdir()
            .map_err(|source| Error::Spawn { program, source })?;
        let mut command = runner_command(spec.runtime, &runner.to_string_lossy(), spec.memory_mb);
        let mut child = Command::new(command.remove(0))
            .args(command)
            .env_clear()
            .envs(protocol_env(&spec, scratch.path()))
            .current_dir(scratch.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn { program, source })?;
        spec.started.mark();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::Spawn {
                program,
                source: std::io::Error::other("stdio pipes missing"),
            });
        };
        let tagged = |pipe: Pipe| {
            move |item: std::io::Result<bytes::Bytes>| async move {
                match item {
                    Ok(data) => Some((pipe, data)),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading agent output failed");
                        None
                    }
                }
            }
        };
        let chunks = futures::stream::select(
            ReaderStream::new(stdout).filter_map(tagged(Pipe::Stdout)),
            ReaderStream::new(stderr).filter_map(tagged(Pipe::Stderr)),
        );
        let mut pump = Pump::new(events, spec.log_limit_bytes).redacting(&spec.secrets);
        let mut status = None;
        let ended = drive(
            Box::pin(chunks),
            stdin,
            &crate::drive::first_lines(&spec, false),
            spec.calls.as_ref(),
            async { status = child.wait().await.ok() },
            &mut pump,
            spec.timeout,
            &cancel,
        )
        .await;
        if ended != Ended::Exited {
            if let Err(e) = child.kill().await {
                tracing::warn!(error = %e, "killing agent process failed");
            }
            status = child.wait().await.ok();
        }
        // A signal death reads like a container's exit code: 128 + signal.
        let exit_code = status
            .and_then(|s| s.code().or(s.signal().map(|n| 128 + n)))
            .map(i64::from);
        let scratch_path = scratch.path().to_path_buf();
        if let Err(e) = scratch.close() {
            tracing::warn!(dir = %scratch_path.display(), error = %e, "removing the scratch directory failed");
        }
        Ok(match ended {
            Ended::TimedOut => Outcome::TimedOut,
            Ended::Canceled => Outcome::Canceled,
            Ended::Exited | Ended::Lingered | Ended::Settled => {
                let oom = out_of_memory(false, &pump, exit_code);
                decide(pump.into_terminal(), exit_code, oom)
            }
        })
    }
}

/// All the agent's process gets: what the runtime images set, the runner protocol's variables
/// (`FRAMEOS_AGENT_DIR` points the runner at the package instead of `/agent`), and `scratch`
/// as its home. Never a secret: those arrive on stdin.
fn protocol_env(spec: &Spec, scratch: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let mut env = vec![
        ("PATH", path),
        ("HOME", scratch.as_os_str().to_owned()),
        ("LANG", "C.UTF-8".into()),
        ("FRAMEOS_AGENT_DIR", spec.package_dir.as_os_str().to_owned()),
        ("FRAMEOS_ENTRYPOINT", spec.entrypoint.clone().into()),
        ("FRAMEOS_EXECUTION_ID", spec.execution_id.clone().into()),
        // The stdin header carries the secrets (never this environment).
        ("FRAMEOS_HEADER", "1".into()),
    ];
    if spec.runtime == Runtime::Python {
        env.push(("PYTHONDONTWRITEBYTECODE", "1".into()));
        env.push(("PYTHONUNBUFFERED", "1".into()));
    }
    env
}
