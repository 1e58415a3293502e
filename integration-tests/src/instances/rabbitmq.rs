//! A RabbitMQ node of the test's own (own node name, ports, Mnesia and log directories), which
//! the test may stop, kill and start again on the same port and data.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::ports::{Launch, with_free_ports};
use super::process::{ServiceProcess, tail};

/// The server script under Debian's `/usr/sbin/rabbitmq-server`, which would switch to the
/// `rabbitmq` user with `su` and lose this process's environment.
const SERVER_SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// A cold boot takes 5–10 s here; a loaded CI machine may take much longer.
const BOOT_WITHIN: Duration = Duration::from_secs(120);
const STOP_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

pub struct PrivateRabbitMq {
    // Dropped first: the node dies before its directory is removed.
    process: Option<ServiceProcess>,
    dir: tempfile::TempDir,
    node: String,
    port: u16,
    dist_port: u16,
    /// A second listen address (e.g. a Docker network's gateway), where guest may log in too.
    also_on: Option<IpAddr>,
}

impl PrivateRabbitMq {
    /// Boots a fresh node on ports the OS reports free, and waits until it accepts AMQP.
    pub async fn start() -> anyhow::Result<PrivateRabbitMq> {
        Self::start_also_on(None).await
    }

    /// As [`start`](Self::start), also listening on `address` (on the same port), where the
    /// guest user may log in as well: reachable from the containers of a Docker network whose
    /// gateway `address` is.
    pub async fn start_reachable_at(address: IpAddr) -> anyhow::Result<PrivateRabbitMq> {
        Self::start_also_on(Some(address)).await
    }

    async fn start_also_on(also_on: Option<IpAddr>) -> anyhow::Result<PrivateRabbitMq> {
        let dir = tempfile::Builder::new()
            .prefix("frameos-it-rabbitmq-")
            .tempdir()?;
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")?;
        // The machine's rabbitmq-env.conf names the shared node; this one must not read it.
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "")?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut rabbit = PrivateRabbitMq {
            process: None,
            dir,
            node: format!("frameos-it-{}@localhost", &id[..12]),
            port: 0,
            dist_port: 0,
            also_on,
        };
        with_free_ports(2, async |ports| {
            rabbit.port = ports[0];
            rabbit.dist_port = ports[1];
            // A node that failed half-way must not leave its Mnesia to the next attempt.
            let _ = std::fs::remove_dir_all(rabbit.dir.path().join("mnesia"));
            rabbit.launch().await
        })
        .await?;
        Ok(rabbit)
    }

    /// `amqp://guest:guest@127.0.0.1:{port}/%2f` (guest may log in over loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A clean stop, as `docker stop` or systemd would do it: SIGTERM to the server script,
    /// whose trap stops the node gracefully (closing every client connection).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match self.process.take() {
            Some(process) => process.stop("TERM", STOP_WITHIN).await,
            None => Ok(()),
        }
    }

    /// A crash: SIGKILL to the node and everything it started.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the node again on the same port, name and data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.process.is_none(), "the node is running");
        self.launch().await.map_err(Launch::into_error)
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("rabbit.log")
    }

    async fn launch(&mut self) -> Result<(), Launch> {
        let dir = self.dir.path();
        let mut conf = format!("listeners.tcp.1 = 127.0.0.1:{}\n", self.port);
        if let Some(address) = self.also_on {
            // guest is refused anywhere but on loopback unless told otherwise
            conf.push_str(&format!(
                "listeners.tcp.2 = {address}:{}\nloopback_users = none\n",
                self.port
            ));
        }
        std::fs::write(dir.join("rabbitmq.conf"), conf).context("write rabbitmq.conf")?;
        // Only this start's lines count when looking for the listener below.
        let _ = std::fs::remove_file(self.log_file());
        let mut command = Command::new(SERVER_SCRIPT);
        command
            .current_dir(dir)
            // The Erlang cookie lives in $HOME: one of its own, shared with nobody.
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_LOGS", self.log_file())
            .env("RABBITMQ_PID_FILE", dir.join("rabbit.pid"))
            .env_remove("RABBITMQ_NODE_IP_ADDRESS");
        let process = ServiceProcess::spawn("rabbitmq", command, &dir.join("server.out"))?;
        self.process = Some(process);
        let listening = format!("started TCP listener on 127.0.0.1:{}", self.port);
        let deadline = Instant::now() + BOOT_WITHIN;
        loop {
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            let process = self.process.as_mut().context("no process")?;
            if let Some(status) = process.exited() {
                let why = anyhow::anyhow!(
                    "rabbitmq exited ({status}):\n{}\n{}",
                    process.log_tail(20),
                    tail(&self.log_file(), 20)
                );
                self.process = None;
                return Err(if log.contains("eaddrinuse") || log.contains("in use") {
                    Launch::PortTaken(why)
                } else {
                    Launch::Failed(why)
                });
            }
            // Our own node listens (not some other server on the port) and speaks AMQP.
            if log.contains(&listening) && amqp_handshake(&self.url()).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Launch::Failed(anyhow::anyhow!(
                    "rabbitmq was not ready within {BOOT_WITHIN:?}:\n{}",
                    tail(&self.log_file(), 20)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A whole AMQP connection handshake (login included), then a clean close.
pub async fn amqp_handshake(url: &str) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    connection.close(200, "probe".into()).await?;
    Ok(())
}

/// Messages waiting in a queue; `None` when the queue does not exist.
pub async fn queue_depth(url: &str, queue: &str) -> anyhow::Result<Option<u32>> {
    use lapin::options::QueueDeclareOptions;
    let connection =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let name = lapin::types::ShortString::try_new(queue).context("queue name")?;
    // A missing queue closes the channel with 404; that is the answer, not a failure.
    let depth = channel
        .queue_declare(name, passive, lapin::types::FieldTable::default())
        .await
        .ok()
        .map(|q| q.message_count());
    let _ = connection.close(200, "probe".into()).await;
    Ok(depth)
}
