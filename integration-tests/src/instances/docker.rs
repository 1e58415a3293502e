//! A Docker engine of the test's own: a second `dockerd` with its own socket, data root, exec
//! root (and so its own managed containerd), no bridge and no iptables rules. The runtime
//! images are copied in from the machine's engine. The test may stop and start it again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::process::{ServiceProcess, run};

const READY_WITHIN: Duration = Duration::from_secs(60);
/// dockerd stops its containers first (SIGTERM, SIGKILL after `--shutdown-timeout`).
const STOP_WITHIN: Duration = Duration::from_secs(60);
const SHUTDOWN_TIMEOUT_SECS: &str = "2";
const POLL: Duration = Duration::from_millis(100);

pub struct PrivateDocker {
    // Dropped first (see `Drop`): the engine stops before its directory is removed.
    process: Option<ServiceProcess>,
    /// Always `Some` until dropped.
    dir: Option<tempfile::TempDir>,
}

impl PrivateDocker {
    /// Starts the engine and loads `images` from the machine's engine into it.
    pub async fn start(images: &[&str]) -> anyhow::Result<PrivateDocker> {
        // Short: the engine's unix sockets live below it (at most 108 bytes a path).
        let dir = tempfile::Builder::new().prefix("fit-docker-").tempdir()?;
        std::fs::write(dir.path().join("daemon.json"), "{}\n")?;
        let mut docker = PrivateDocker {
            process: None,
            dir: Some(dir),
        };
        docker.launch().await?;
        docker.load(images).await?;
        Ok(docker)
    }

    /// `unix://…/docker.sock`, for `FRAMEOS_DOCKER_HOST` and `docker -H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Containers the engine has, running or not.
    pub fn containers(&self) -> anyhow::Result<Vec<String>> {
        Ok(run(self.cli().args(["ps", "-aq"]))?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Every container but the warm pool's waiting ones (running, still named
    /// `frameos-warm-*`: ADR 0026), which a node keeps by design.
    pub fn containers_but_waiting_pool(&self) -> anyhow::Result<Vec<String>> {
        let waiting = run(self.cli().args([
            "ps",
            "-q",
            "--filter",
            "status=running",
            "--filter",
            "name=^frameos-warm-",
        ]))?;
        let waiting: Vec<&str> = waiting.lines().collect();
        Ok(self
            .containers()?
            .into_iter()
            .filter(|id| !waiting.contains(&id.as_str()))
            .collect())
    }

    /// What `systemctl stop docker` does: SIGTERM; dockerd stops every container, then itself.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match self.process.take() {
            Some(process) => process.stop("TERM", STOP_WITHIN).await,
            None => Ok(()),
        }
    }

    /// Starts the engine again on the same socket and data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        ensure!(self.process.is_none(), "the engine is running");
        self.launch().await
    }

    fn root(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    fn socket(&self) -> PathBuf {
        self.root().join("docker.sock")
    }

    fn cli(&self) -> Command {
        let mut command = Command::new("docker");
        command.args(["-H", &self.host()]);
        command
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let dir = self.root().to_path_buf();
        let mut command = Command::new("dockerd");
        command
            .args(["-H", &self.host()])
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .args(["--shutdown-timeout", SHUTDOWN_TIMEOUT_SECS]);
        let process = ServiceProcess::spawn("dockerd", command, &dir.join("dockerd.log"))?;
        self.process = Some(process);
        let deadline = Instant::now() + READY_WITHIN;
        let socket = self.socket();
        loop {
            let process = self.process.as_mut().context("no process")?;
            if let Some(status) = process.exited() {
                let log = process.log_tail(30);
                self.process = None;
                anyhow::bail!("dockerd exited ({status}):\n{log}");
            }
            if ping(&socket).await {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "dockerd was not ready within {READY_WITHIN:?}:\n{}",
                process.log_tail(30)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `docker save … | docker -H <this> load`.
    async fn load(&self, images: &[&str]) -> anyhow::Result<()> {
        let mut save = Command::new("docker");
        save.arg("save").args(images).stdout(Stdio::piped());
        let mut load = self.cli();
        load.arg("load").stdout(Stdio::null());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut saving = save.spawn().context("docker save")?;
            let stdout = saving.stdout.take().context("docker save output")?;
            let loaded = load.stdin(stdout).status().context("docker load")?;
            let saved = saving.wait()?;
            ensure!(saved.success(), "docker save {saved}");
            ensure!(loaded.success(), "docker load {loaded}");
            Ok(())
        })
        .await?
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        let stopped = self
            .process
            .take()
            .is_none_or(|process| self.stop_for_good(process));
        // Removing an engine's data root (~10k files of image layers) takes many seconds on a
        // busy disk: a process of its own does it, without holding up the test.
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            if !stopped {
                // Container mounts may remain under it: left for a person to look at.
                eprintln!("[instances] left {} behind", path.display());
                return;
            }
            let removal = Command::new("rm")
                .arg("-rf")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if removal.is_err() {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

impl PrivateDocker {
    /// Whether the engine stopped cleanly (else it was killed).
    fn stop_for_good(&self, mut process: ServiceProcess) -> bool {
        // Containers first (a panicked test may leave some running), then a clean stop, which
        // also stops the engine's containerd and unmounts everything under the data root.
        if let Ok(ids) = self.containers()
            && !ids.is_empty()
        {
            let _ = run(self.cli().args(["rm", "-f"]).args(&ids));
        }
        let _ = process.signal("TERM");
        let deadline = Instant::now() + STOP_WITHIN;
        while process.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if process.exited().is_some() {
            return true;
        }
        eprintln!("[instances] dockerd did not stop; killing it and its containerd");
        process.kill();
        kill_pid_file(&self.root().join("exec/containerd/containerd.pid"));
        false
    }
}

fn kill_pid_file(path: &Path) {
    if let Ok(pid) = std::fs::read_to_string(path) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", pid.trim()])
            .status();
    }
}

/// Docker's own liveness probe, `GET /_ping`, answered `200 OK` with body `OK`.
async fn ping(socket: &Path) -> bool {
    let probe = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(answer)) => {
            answer.starts_with("HTTP/1.") && answer.contains(" 200 ") && answer.ends_with("OK")
        }
        _ => false,
    }
}
