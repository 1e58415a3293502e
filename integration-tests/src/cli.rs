//! The `frameos` command as a user or a script runs it: the real binary of this checkout, in a
//! process of its own, against a mesh's REST API.
//!
//! The binary belongs to another package, so cargo gives tests no `CARGO_BIN_EXE_frameos`
//! here: [`binary`] takes the one next to this test's profile directory (scripts/test's
//! `cargo build --bins` makes it) and has cargo build it first when it is missing or older than
//! the CLI's sources, so a test does not run a stale `frameos`. (Cargo is not asked every time:
//! the tests' own build, with their extra features, makes it rebuild the CLI's dependencies.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, ensure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The `frameos` binary, built by cargo once per test process.
pub fn binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> anyhow::Result<PathBuf> {
    let crate::build_dir::BuildDir {
        target,
        profile_dir,
        profile,
    } = crate::build_dir::BuildDir::of_this_test()?;
    let (target, profile) = (target.as_path(), profile.as_str());
    let binary = profile_dir.join("frameos");
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/frameos");
    if modified(&binary).is_some_and(|built| newest(&sources).is_some_and(|s| s <= built)) {
        return Ok(binary);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args([
            "build", "--locked", "--quiet", "-p", "frameos", "--bin", "frameos",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let out = command.output().context("run cargo build -p frameos")?;
    ensure!(
        out.status.success(),
        "cargo build -p frameos failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(binary.is_file(), "no {} after the build", binary.display());
    Ok(binary)
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The latest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut latest = modified(dir)?;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest(&path)
        } else {
            modified(&path)
        };
        latest = latest.max(time?);
    }
    Some(latest)
}

/// A `frameos` command line against one API, with one key (or none).
#[derive(Clone, Debug)]
pub struct Frameos {
    binary: PathBuf,
    api_url: String,
    key: Option<String>,
}

/// A finished `frameos` command.
#[derive(Debug)]
pub struct Finished {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// stdout as one JSON document.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("stdout is not one JSON document: {self:#?}"))
    }
}

impl Frameos {
    pub fn new(api_url: &str, key: Option<&str>) -> anyhow::Result<Frameos> {
        Ok(Frameos {
            binary: binary()?,
            api_url: api_url.to_string(),
            key: key.map(str::to_string),
        })
    }

    /// The same API with another key.
    pub fn with_key(&self, key: &str) -> Frameos {
        Frameos {
            key: Some(key.to_string()),
            ..self.clone()
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env("FRAMEOS_API_URL", &self.api_url)
            .env_remove("FRAMEOS_API_KEY")
            .env_remove("FRAMEOS_OUTPUT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(key) = &self.key {
            command.env("FRAMEOS_API_KEY", key);
        }
        command
    }

    /// Runs `frameos <args>` to its end (at most a minute).
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Finished> {
        let child = self.command(args).spawn().context("spawn frameos")?;
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .with_context(|| format!("frameos {args:?} did not end within a minute"))??;
        Ok(Finished {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Starts `frameos <args>`, its stderr readable line by line as it comes.
    pub fn spawn(&self, args: &[&str]) -> anyhow::Result<Running> {
        let mut child = self.command(args).spawn().context("spawn frameos")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Running {
            child,
            lines,
            stderr: Vec::new(),
        })
    }
}

/// A `frameos` process still running.
pub struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Vec<String>,
}

impl Running {
    /// Waits for a stderr line containing `text`.
    pub async fn wait_for_stderr(&mut self, text: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while !self.stderr.iter().any(|l| l.contains(text)) {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .with_context(|| format!("no {text:?} on stderr: {:#?}", self.stderr))?
                .with_context(|| format!("frameos exited before {text:?}: {:#?}", self.stderr))?;
            self.stderr.push(line);
        }
        Ok(())
    }

    /// Sends `signal` (`INT`, `TERM`) as a terminal or a supervisor would.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("frameos has exited")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits for the end; everything it printed.
    pub async fn finish(mut self, within: Duration) -> anyhow::Result<Finished> {
        let mut stdout = String::new();
        let mut pipe = self.child.stdout.take().context("stdout")?;
        let status = tokio::time::timeout(within, async {
            pipe.read_to_string(&mut stdout).await?;
            self.child.wait().await
        })
        .await
        .with_context(|| format!("frameos did not exit within {within:?}: {:#?}", self.stderr))??;
        while let Some(line) = self.lines.recv().await {
            self.stderr.push(line);
        }
        Ok(Finished {
            code: status.code(),
            stdout,
            stderr: self.stderr.join("\n"),
        })
    }
}
