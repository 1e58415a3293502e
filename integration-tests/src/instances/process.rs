//! A service process of a test: its output in a log file, killed with every process it started
//! when dropped, also when the test panics. It stays in the test's process group, so the
//! signals nextest sends a timed-out test (SIGTERM, then SIGKILL) reach it too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

/// How often a process is checked while waiting for it to exit (no event exists for a child
/// we also have to be able to wait for in `Drop`).
const EXIT_POLL: Duration = Duration::from_millis(25);

pub(crate) struct ServiceProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ServiceProcess {
    /// Starts `command`, appending its output to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command.spawn().with_context(|| format!("start {name}"))?;
        eprintln!("[instances] {name} started (pid {})", child.id());
        Ok(ServiceProcess {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `QUIT`, `KILL`) to the process alone.
    pub(crate) fn signal(&self, signal: &str) -> anyhow::Result<()> {
        send(signal, &self.pid().to_string())
    }

    /// The exit status, once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            ensure!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// A clean stop: `signal`, then wait (bounded) for the exit, then reap whatever is left.
    pub(crate) async fn stop(mut self, signal: &str, within: Duration) -> anyhow::Result<()> {
        self.signal(signal)?;
        self.wait_exit(within).await?;
        self.kill();
        Ok(())
    }

    /// SIGKILL to the process and everything it started (a wrapper script's server, a
    /// postmaster's backends), then the process reaped.
    pub(crate) fn kill(&mut self) {
        if self.exited().is_none() {
            // Found before the process dies: its children would be re-parented.
            let tree = descendants(self.pid());
            let _ = self.child.kill();
            for pid in tree {
                let _ = send("KILL", &pid.to_string());
            }
        }
        let _ = self.child.wait();
    }

    /// The last `lines` lines of the process's own log, for error messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A group that has already gone is fine; one that has not must not outlive the test.
        if self.exited().is_none() {
            eprintln!("[instances] killing {} (pid {})", self.name, self.pid());
        }
        self.kill();
    }
}

/// The last `lines` lines of a text file (empty when it cannot be read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every process below `root`, by walking the parent ids of `/proc/*/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// `kill -s SIGNAL -- PID`: the workspace forbids `unsafe`, so no `libc::kill`.
fn send(signal: &str, target: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-s", signal, "--", target])
        .stderr(Stdio::null())
        .status()
        .context("run kill")?;
    ensure!(status.success(), "kill -s {signal} -- {target} failed");
    Ok(())
}

/// Runs a short command to completion; its output, or an error with its stderr.
pub(crate) fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
