//! The control plane as a separate process (`frameos-test-control-plane`, the production code
//! with test-only faults), for tests that SIGKILL it at a chosen point: what a crash of the real
//! thing leaves behind, with nothing unwound and nothing flushed.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::Mesh;

/// What the process prints on stdout once it listens (then the address).
pub const LISTENING: &str = "frameos-test-control-plane listening on";

/// A running control plane process; killed if dropped.
pub struct ControlPlaneProcess {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Mesh {
    /// Stops the in-process control plane, freeing its address for a process (or for
    /// [`Mesh::restart_control_plane`]).
    pub async fn stop_control_plane(&mut self) -> anyhow::Result<()> {
        self.cp_token.cancel();
        if let Some(task) = self.cp_task.take() {
            task.await.context("control plane task")?;
        }
        Ok(())
    }

    /// Starts `program` (the `frameos-test-control-plane` binary) with `args` as this mesh's
    /// control plane: its database, address, node token, queue and package store. Returns once
    /// it listens.
    pub async fn spawn_control_plane(
        &mut self,
        program: &Path,
        args: &[&str],
    ) -> anyhow::Result<ControlPlaneProcess> {
        // The in-process control plane is stopped; the process binds the address itself.
        self.release_grpc_address();
        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.control_plane_env())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", program.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut process = ControlPlaneProcess {
            child,
            stdout: BufReader::new(stdout).lines(),
        };
        process
            .wait_for_line(LISTENING, Duration::from_secs(60))
            .await?;
        Ok(process)
    }

    fn control_plane_env(&self) -> Vec<(String, String)> {
        let config = &self.cp_config;
        let store = &config.store;
        let mut env = vec![
            ("FRAMEOS_DATABASE_URL", config.database_url.clone()),
            ("FRAMEOS_GRPC_ADDR", self.grpc_addr.to_string()),
            ("FRAMEOS_NODE_TOKEN", self.node_token.clone()),
            ("FRAMEOS_BOOTSTRAP_ADMIN_KEY", self.admin_key.clone()),
            ("FRAMEOS_QUEUE_NAME", config.queue_name.clone()),
            (
                "FRAMEOS_JOB_MAX_ATTEMPTS",
                config.job_max_attempts.to_string(),
            ),
            (
                "FRAMEOS_JOB_RETRY_BASE_MS",
                config.job_retry_base_ms.to_string(),
            ),
            (
                "FRAMEOS_RECONCILE_INTERVAL_SECS",
                config.billing.reconcile_interval_secs.to_string(),
            ),
            (
                "FRAMEOS_PACKAGE_DIR",
                store.package_dir.display().to_string(),
            ),
            ("FRAMEOS_S3_REGION", store.s3_region.clone()),
            ("FRAMEOS_S3_PATH_STYLE", store.s3_path_style.to_string()),
            ("AWS_ACCESS_KEY_ID", store.aws_access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", store.aws_secret_access_key.clone()),
        ];
        let optional = [
            ("FRAMEOS_AMQP_URL", &config.amqp_url),
            ("FRAMEOS_S3_ENDPOINT", &store.s3_endpoint),
            ("FRAMEOS_S3_BUCKET", &store.s3_bucket),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                env.push((name, value.clone()));
            }
        }
        if let Ok(filter) = std::env::var("RUST_LOG") {
            env.push(("RUST_LOG", filter));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

impl ControlPlaneProcess {
    /// Reads stdout until a line starting with `prefix`; returns the rest of that line.
    pub async fn wait_for_line(
        &mut self,
        prefix: &str,
        within: Duration,
    ) -> anyhow::Result<String> {
        let found = tokio::time::timeout(within, async {
            while let Some(line) = self.stdout.next_line().await? {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Ok(rest.trim().to_string());
                }
            }
            bail!("the control plane's stdout ended before {prefix:?}")
        })
        .await;
        match found {
            Ok(line) => line,
            Err(_) => bail!("no {prefix:?} from the control plane within {within:?}"),
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("SIGKILL")?;
        let status = self.child.wait().await?;
        use std::os::unix::process::ExitStatusExt;
        ensure!(
            status.signal() == Some(9),
            "not killed by SIGKILL: {status}"
        );
        Ok(())
    }
}
