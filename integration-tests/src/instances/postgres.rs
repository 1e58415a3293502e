//! A PostgreSQL cluster of the test's own (initdb into a temporary directory, its own port and
//! socket directory), which the test may stop, kill and start again on the same port and data.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};

use super::ports::{Launch, with_free_ports};
use super::process::{ServiceProcess, run};

const READY_WITHIN: Duration = Duration::from_secs(60);
const STOP_WITHIN: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

pub struct PrivatePostgres {
    // Dropped first: the server dies before its directory is removed.
    process: Option<ServiceProcess>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// initdb and postgres refuse to run as root: as root they run as the `postgres` user.
    run_as_postgres: bool,
    port: u16,
    /// A second listen address (e.g. a Docker network's gateway), trusted from its subnet.
    also_on: Option<IpAddr>,
}

impl PrivatePostgres {
    /// initdb, then a server on a port the OS reports free, awaited until it answers a query.
    pub async fn start() -> anyhow::Result<PrivatePostgres> {
        Self::start_also_on(None).await
    }

    /// As [`start`](Self::start), also listening on `address` (on the same port) and trusting
    /// connections from the subnets the host shares with it (`samenet`): reachable from the
    /// containers of a Docker network whose gateway `address` is.
    pub async fn start_reachable_at(address: IpAddr) -> anyhow::Result<PrivatePostgres> {
        Self::start_also_on(Some(address)).await
    }

    async fn start_also_on(also_on: Option<IpAddr>) -> anyhow::Result<PrivatePostgres> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("frameos-it-postgres-")
            .tempdir()?;
        let run_as_postgres = is_root();
        if run_as_postgres {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut postgres = PrivatePostgres {
            process: None,
            dir,
            bin,
            run_as_postgres,
            port: 0,
            also_on,
        };
        run(postgres
            .command("initdb")
            .arg("--pgdata")
            .arg(postgres.data())
            .args(["--auth=trust", "--username=postgres", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"]))?;
        if also_on.is_some() {
            let hba = postgres.data().join("pg_hba.conf");
            let mut rules = std::fs::read_to_string(&hba)?;
            rules.push_str("host all all samenet trust\n");
            std::fs::write(&hba, rules)?;
        }
        std::fs::create_dir(postgres.dir.path().join("socket"))?;
        if run_as_postgres {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(postgres.dir.path().join("socket"), Some(uid), Some(gid))?;
        }
        with_free_ports(1, async |ports| {
            postgres.port = ports[0];
            postgres.launch().await
        })
        .await?;
        Ok(postgres)
    }

    /// The `postgres` database of this cluster (trust authentication).
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A fast shutdown (SIGINT), as `pg_ctl stop -m fast`: sessions are ended, new connections
    /// refused until the server is started again.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match self.process.take() {
            Some(process) => process.stop("INT", STOP_WITHIN).await,
            None => Ok(()),
        }
    }

    /// A crash: SIGKILL to the postmaster and every backend. The next start recovers from WAL.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same port and data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        ensure!(self.process.is_none(), "the server is running");
        self.launch().await.map_err(Launch::into_error)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `program` from the server's bin directory, as the postgres user when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.run_as_postgres {
            // setpriv execs (no fork): the pid we hold is the server's.
            let mut command = Command::new("setpriv");
            command
                .args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    async fn launch(&mut self) -> Result<(), Launch> {
        let listen = match self.also_on {
            Some(address) => format!("listen_addresses=127.0.0.1,{address}"),
            None => "listen_addresses=127.0.0.1".to_string(),
        };
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path().join("socket"))
            .args(["-c", &listen])
            // A test's data need not survive a power cut; it only has to survive the process.
            .args(["-c", "fsync=off", "-c", "max_connections=200"]);
        let log_start = std::fs::metadata(self.log_file()).map_or(0, |m| m.len());
        let process = ServiceProcess::spawn("postgres", command, &self.log_file())?;
        self.process = Some(process);
        let listening = format!(
            "listening on IPv4 address \"127.0.0.1\", port {}",
            self.port
        );
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let log = log_since(&self.log_file(), log_start);
            let process = self.process.as_mut().context("no process")?;
            if let Some(status) = process.exited() {
                let why = anyhow::anyhow!("postgres exited ({status}):\n{log}");
                self.process = None;
                return Err(if log.contains("Address already in use") {
                    Launch::PortTaken(why)
                } else {
                    Launch::Failed(why)
                });
            }
            // Our own server listens (not another one on the port) and answers a query.
            if log.contains(&listening) && query_ok(&self.server_url()).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Launch::Failed(anyhow::anyhow!(
                    "postgres was not ready within {READY_WITHIN:?}:\n{log}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn query_ok(url: &str) -> bool {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(2))
        .sqlx_logging(false);
    let Ok(db) = Database::connect(options).await else {
        return false;
    };
    let ok = db.execute_unprepared("SELECT 1").await.is_ok();
    let _ = db.close().await;
    ok
}

fn log_since(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(text.len());
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Where `initdb` and `postgres` are: `pg_config --bindir`, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps them off the PATH).
fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(out) = run(Command::new("pg_config").arg("--bindir")) {
        let dir = PathBuf::from(out.trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL server installed (/usr/lib/postgresql)")?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        run(Command::new("id").args([flag, "postgres"]))?
            .trim()
            .parse()
            .context("id of the postgres user")
    };
    Ok((id("-u")?, id("-g")?))
}
