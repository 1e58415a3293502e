//! The three service images (`images/build.sh`) as an operator runs them: containers on a
//! Docker network of their own, started with the `docker` CLI against the host's engine.
//! Everything a [`Deployment`] starts (containers, the network, the agent containers of its
//! node) is removed when it is dropped, also when the test panics.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

/// The tag the tests build and run (what `k8s/overlays/dev` deploys: a debug build).
pub const TEST_TAG: &str = "dev";

/// Label on every container and network a [`Deployment`] creates (scripts/test removes what a
/// killed run left behind by it).
pub const LABEL: &str = "frameos.it-images";

/// Runs `docker` with `args`; its stdout, trimmed, or an error with its stderr.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .context("run the docker CLI")?;
    ensure!(
        out.status.success(),
        "docker {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds (or keeps, when they hold exactly these binaries) the three images, tagged
/// [`TEST_TAG`], from the binaries next to this test's own profile directory
/// (`$CARGO_TARGET_DIR/debug`): `cargo build --bins` must have made them
/// (scripts/test does; `cargo test` alone builds neither the gateway's nor the node's binary).
pub fn build_images() -> anyhow::Result<()> {
    let crate::build_dir::BuildDir {
        target,
        profile_dir: _,
        profile,
    } = crate::build_dir::BuildDir::of_this_test()?;
    let (target, profile) = (target.as_path(), profile.as_str());
    let script = repo_root().join("images/build.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .args(["--profile", profile, "--no-cargo"])
        .env("CARGO_TARGET_DIR", target)
        .env("TAG", TEST_TAG)
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    let log = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "images/build.sh failed:\n{log}");
    eprintln!(
        "[images] images/build.sh took {:.1} s:\n{log}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A user-defined bridge network and the containers started on it.
pub struct Deployment {
    pub network: String,
    /// The host's address on the network: services the host runs for the containers listen here.
    pub gateway: IpAddr,
    /// Prefix of every container name.
    pub prefix: String,
    /// Unique per deployment (12 hex digits).
    pub id: String,
    /// Node ids started here (their agent containers are removed on drop).
    node_ids: Vec<String>,
    containers: Vec<String>,
}

impl Deployment {
    pub fn create() -> anyhow::Result<Deployment> {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let network = format!("frameos-it-images-{id}");
        docker(&["network", "create", "--label", LABEL, &network])?;
        let mut deployment = Deployment {
            network: network.clone(),
            gateway: IpAddr::from([0, 0, 0, 0]),
            prefix: network.clone(),
            id: id.to_string(),
            node_ids: Vec::new(),
            containers: Vec::new(),
        };
        let gateway = docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
            &network,
        ])?;
        deployment.gateway = gateway
            .split_whitespace()
            .find_map(|a| a.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4))
            .with_context(|| format!("no IPv4 gateway on {network}: {gateway:?}"))?;
        Ok(deployment)
    }

    /// `docker run --rm` to completion on the network (`args` between `run` and the image's
    /// arguments); its output, or an error with it.
    pub fn run_once(&self, name: &str, args: &[&str]) -> anyhow::Result<String> {
        let name = format!("{}-{name}", self.prefix);
        let mut all = vec!["run", "--rm", "--name", &name, "--label", LABEL];
        all.extend(["--network", &self.network]);
        all.extend(args);
        let out = Command::new("docker").args(&all).output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            out.status.success(),
            "{name} failed ({}):\n{text}",
            out.status
        );
        Ok(text)
    }

    /// `docker run -d` on the network under `alias` (`args` as for [`run_once`](Self::run_once)).
    /// Returns the container's name.
    pub fn start(&mut self, alias: &str, args: &[&str]) -> anyhow::Result<String> {
        let name = format!("{}-{alias}", self.prefix);
        let mut all = vec!["run", "-d", "--name", &name, "--label", LABEL];
        all.extend(["--network", &self.network, "--network-alias", alias]);
        all.extend(args);
        self.containers.push(name.clone());
        docker(&all)?;
        Ok(name)
    }

    /// Remembers a node id whose agent containers the drop removes.
    pub fn owns_node(&mut self, node_id: &str) {
        self.node_ids.push(node_id.to_string());
    }

    /// The container's address on the network.
    pub fn address(&self, container: &str) -> anyhow::Result<IpAddr> {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network
        );
        let ip = docker(&["inspect", "-f", &format, container])?;
        ip.parse()
            .with_context(|| format!("address of {container}: {ip:?}"))
    }

    /// Whether the container runs; an error naming its exit and last log lines when not.
    pub fn ensure_running(&self, container: &str) -> anyhow::Result<()> {
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            container,
        ])?;
        if state.starts_with("running") {
            return Ok(());
        }
        bail!("{container} is {state}:\n{}", self.logs(container))
    }

    /// The container's last log lines (stdout and stderr).
    pub fn logs(&self, container: &str) -> String {
        let out = Command::new("docker")
            .args(["logs", "--tail", "40", container])
            .output();
        match out {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// `docker stop` (SIGTERM, SIGKILL after `grace`); the exit code and how long it took.
    pub fn stop(&self, container: &str, grace: Duration) -> anyhow::Result<(i64, Duration)> {
        let started = Instant::now();
        docker(&["stop", "-t", &grace.as_secs().to_string(), container])?;
        let took = started.elapsed();
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.State.OOMKilled}}",
            container,
        ])?;
        let (code, oom) = state.split_once(' ').context("exit code")?;
        ensure!(oom == "false", "{container} was OOM-killed");
        Ok((code.parse()?, took))
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(self.containers.iter().map(String::as_str));
            let _ = docker(&args);
        }
        for node in &self.node_ids {
            let filter = format!("label=frameos.node={node}");
            if let Ok(ids) = docker(&["ps", "-aq", "--filter", &filter]) {
                for id in ids.split_whitespace() {
                    let _ = docker(&["rm", "-f", id]);
                }
            }
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}
