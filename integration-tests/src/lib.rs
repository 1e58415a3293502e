//! Harness for whole-mesh tests: a control plane and a gateway started in-process (the very code
//! production runs) against real PostgreSQL and a real S3 protocol server (s3s-fs), or against
//! the embedded defaults (SQLite and a local directory).

pub mod audit;
pub mod broker_proxy;
mod build_dir;
mod cleanup;
pub mod cli;
pub mod control_plane_process;
pub mod dev_process;
pub mod flows;
pub mod health;
pub mod instances;
pub mod load;
pub mod node_client;
pub mod packages;
mod postgres;
pub mod processes;
pub mod rail;
pub mod replicas;
mod s3;
pub mod service_images;
pub mod stripe;

use std::net::SocketAddr;

use anyhow::Context;
use frameos_blobstore::{S3Config, S3Store, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use postgres::TestDatabase;
pub use s3::S3Server;

/// A running control plane + gateway.
pub struct Mesh {
    /// What execution nodes must present to this control plane.
    pub node_token: String,
    cp_config: frameos_control_plane::Config,
    cp_token: CancellationToken,
    cp_task: Option<JoinHandle<()>>,
    pub base_url: String,
    pub admin_key: String,
    pub grpc_addr: SocketAddr,
    pub store: Store,
    http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// The nodes' stop (a child of `shutdown`) and tasks: [`Mesh::shutdown`] drains them while
    /// the control plane still takes their reports.
    nodes_stop: CancellationToken,
    node_tasks: Vec<JoinHandle<()>>,
    /// The control plane's socket, kept for its whole life: a restart serves on it again. None
    /// while a control plane process of its own owns the address ([`Mesh::spawn_control_plane`]).
    grpc_listener: Option<std::net::TcpListener>,
    /// Nodes started by this mesh, and their Docker host, for the cleanup of a failed test.
    nodes: Vec<(String, Option<String>)>,
    database: Option<TestDatabase>,
    /// The control plane's `/metrics` address (its `FRAMEOS_METRICS_ADDR`, bound), if set.
    pub control_plane_metrics: Option<SocketAddr>,
    /// The `/metrics` addresses of the nodes started with `FRAMEOS_METRICS_ADDR`.
    pub node_metrics: Vec<SocketAddr>,
    _s3: Option<S3Server>,
    _dirs: Vec<tempfile::TempDir>,
    node_base: NodeBase,
}

/// What a node needs to join this mesh.
struct NodeBase {
    store: frameos_blobstore::StoreConfig,
    queue_name: String,
    job_max_attempts: u32,
    job_retry_base_ms: u64,
    amqp_url: Option<String>,
}

/// The RabbitMQ of the tests (`FRAMEOS_TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    std::env::var("FRAMEOS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// How the package store and database are provided.
pub enum Backend {
    /// PostgreSQL on `FRAMEOS_TEST_POSTGRES_URL` (a fresh database) + s3s-fs.
    PostgresS3,
    /// A fresh database on the PostgreSQL server of this URL (e.g. a test's private one) + s3s-fs.
    PostgresS3On(String),
    /// SQLite file + local directory, as `frameos dev`.
    Embedded,
}

impl Mesh {
    pub async fn start(backend: Backend) -> anyhow::Result<Mesh> {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with a chance to adjust the control plane's configuration.
    pub async fn start_with(
        backend: Backend,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
    ) -> anyhow::Result<Mesh> {
        Self::start_inner(backend, adjust, |_| {}, false).await
    }

    /// Starts with RabbitMQ (a queue topology of its own) and a Docker execution node.
    pub async fn with_node(backend: Backend) -> anyhow::Result<Mesh> {
        Self::start_inner(backend, |_| {}, |_| {}, true).await
    }

    /// Starts with adjusted control plane and gateway configurations; with `node`, also with
    /// RabbitMQ and a Docker execution node, as [`Mesh::with_node`].
    pub async fn start_tuned(
        backend: Backend,
        node: bool,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
        adjust_gateway: impl FnOnce(&mut frameos_gateway::Config),
    ) -> anyhow::Result<Mesh> {
        Self::start_inner(backend, adjust, adjust_gateway, node).await
    }

    /// Starts with RabbitMQ (a queue topology of its own) and a chance to adjust the control
    /// plane; nodes are started later with [`Mesh::start_node`].
    pub async fn with_queue(
        backend: Backend,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
    ) -> anyhow::Result<Mesh> {
        Self::start_inner(
            backend,
            |config| {
                config.amqp_url = Some(amqp_url());
                config.queue_name = format!("frameos.it.{}", uuid::Uuid::new_v4().simple());
                adjust(config);
            },
            |_| {},
            false,
        )
        .await
    }

    async fn start_inner(
        backend: Backend,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
        adjust_gateway: impl FnOnce(&mut frameos_gateway::Config),
        node: bool,
    ) -> anyhow::Result<Mesh> {
        let admin_key = frameos_control_plane::generate_api_key();
        let mut config = frameos_control_plane::Config::embedded();
        let grpc_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        config.grpc_addr = grpc_listener.local_addr()?;
        config.migrate = true;
        config.bootstrap_admin_key = Some(admin_key.clone());
        let mut dirs = Vec::new();
        let server_url = match &backend {
            Backend::PostgresS3 => Some(postgres::server_url()),
            Backend::PostgresS3On(url) => Some(url.clone()),
            Backend::Embedded => None,
        };
        let (database, s3, store) = match server_url {
            Some(server_url) => {
                let database = TestDatabase::create_on(&server_url).await?;
                let s3 = S3Server::start().await?;
                config.database_url = database.url.clone();
                config.store.s3_endpoint = Some(s3.endpoint.clone());
                config.store.s3_bucket = Some(s3.bucket.clone());
                config.store.s3_region = "us-east-1".into();
                config.store.aws_access_key_id = s3.access_key.clone();
                config.store.aws_secret_access_key = s3.secret_key.clone();
                config.store.s3_path_style = true;
                let store = Store::S3(S3Store::new(&S3Config {
                    endpoint: Some(s3.endpoint.clone()),
                    bucket: s3.bucket.clone(),
                    region: "us-east-1".into(),
                    access_key_id: s3.access_key.clone(),
                    secret_access_key: s3.secret_key.clone(),
                    path_style: true,
                }));
                (Some(database), Some(s3), store)
            }
            None => {
                let dir = tempfile::tempdir()?;
                config.database_url = format!("sqlite://{}/frameos.db", dir.path().display());
                config.store.package_dir = dir.path().join("packages");
                let store = config.store.build();
                dirs.push(dir);
                (None, None, store)
            }
        };
        if node {
            config.amqp_url = Some(amqp_url());
            config.queue_name = format!("frameos.it.{}", uuid::Uuid::new_v4().simple());
        }
        adjust(&mut config);
        let node_base = NodeBase {
            store: config.store.clone(),
            queue_name: config.queue_name.clone(),
            job_max_attempts: config.job_max_attempts,
            job_retry_base_ms: config.job_retry_base_ms,
            amqp_url: config.amqp_url.clone(),
        };

        let shutdown = CancellationToken::new();
        let cp_config = config.clone();
        let control_plane =
            frameos_control_plane::Server::bind_to(config, listener_of(&grpc_listener)?)
                .await
                .context("control plane start")?;
        let grpc_addr = control_plane.local_addr();
        let control_plane_metrics = control_plane.metrics_addr();
        let node_token = control_plane.node_token().to_string();
        let mut tasks = Vec::new();
        let cp_token = shutdown.child_token();
        let token = cp_token.clone();
        let cp_task = tokio::spawn(async move {
            if let Err(e) = control_plane.run(token).await {
                panic!("control plane failed: {e}");
            }
        });

        let mut gateway_config = frameos_gateway::Config::embedded();
        gateway_config.http_addr = "127.0.0.1:0".parse()?;
        gateway_config.control_plane_url = format!("http://{grpc_addr}");
        adjust_gateway(&mut gateway_config);
        let gateway = frameos_gateway::Gateway::bind(gateway_config)
            .await
            .context("gateway start")?;
        let base_url = format!("http://{}", gateway.local_addr());
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = gateway.run(token).await {
                panic!("gateway failed: {e}");
            }
        }));

        let mut mesh = Mesh {
            node_token,
            cp_config,
            cp_token,
            cp_task: Some(cp_task),
            nodes_stop: shutdown.child_token(),
            node_tasks: Vec::new(),
            base_url,
            admin_key,
            grpc_addr,
            store,
            http: reqwest::Client::new(),
            shutdown,
            tasks,
            grpc_listener: Some(grpc_listener),
            nodes: Vec::new(),
            database,
            control_plane_metrics,
            node_metrics: Vec::new(),
            _s3: s3,
            _dirs: dirs,
            node_base,
        };
        if node {
            mesh.start_node(2).await?;
        }
        Ok(mesh)
    }

    /// Stops the control plane and starts it again on the same address and database, with a
    /// chance to change its configuration: what an operator's restart after a crash does.
    pub async fn restart_control_plane(
        &mut self,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
    ) -> anyhow::Result<()> {
        self.stop_control_plane().await?;
        self.start_control_plane(adjust).await
    }

    /// Starts the control plane [`Mesh::stop_control_plane`] stopped, on the same address and
    /// database, with a chance to change its configuration.
    pub async fn start_control_plane(
        &mut self,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
    ) -> anyhow::Result<()> {
        let mut config = self.cp_config.clone();
        config.grpc_addr = self.grpc_addr;
        config.node_token = Some(self.node_token.clone());
        adjust(&mut config);
        let listener = self.grpc_listener().await?;
        let control_plane = frameos_control_plane::Server::bind_to(config, listener)
            .await
            .context("control plane restart")?;
        self.control_plane_metrics = control_plane.metrics_addr();
        self.cp_token = self.shutdown.child_token();
        let token = self.cp_token.clone();
        self.cp_task = Some(tokio::spawn(async move {
            if let Err(e) = control_plane.run(token).await {
                panic!("control plane failed: {e}");
            }
        }));
        Ok(())
    }

    /// The name of this mesh's job queue.
    pub fn queue_name(&self) -> &str {
        &self.node_base.queue_name
    }

    /// The configuration this mesh's control plane started with: another replica's, with its
    /// own address.
    pub fn control_plane_config(&self) -> frameos_control_plane::Config {
        self.cp_config.clone()
    }

    /// The database URL of this mesh's control plane.
    pub fn database_url(&self) -> &str {
        &self.cp_config.database_url
    }

    /// Starts a Docker execution node on this mesh's queue.
    pub async fn start_node(&mut self, concurrency: u16) -> anyhow::Result<String> {
        self.start_node_with(concurrency, |_| {}).await
    }

    /// Starts a Docker execution node on this mesh's queue, with a chance to adjust its
    /// configuration (e.g. another Docker engine).
    pub async fn start_node_with(
        &mut self,
        concurrency: u16,
        adjust: impl FnOnce(&mut frameos_execution_node::Config),
    ) -> anyhow::Result<String> {
        let amqp_url = self
            .node_base
            .amqp_url
            .clone()
            .context("start the mesh with a queue first")?;
        let cache = tempfile::tempdir()?;
        let mut config = frameos_execution_node::Config::embedded();
        config.control_plane_url = format!("http://{}", self.grpc_addr);
        config.amqp_url = Some(amqp_url);
        config.node_token = Some(self.node_token.clone());
        config.queue_name = self.node_base.queue_name.clone();
        config.job_max_attempts = self.node_base.job_max_attempts;
        config.job_retry_base_ms = self.node_base.job_retry_base_ms;
        config.store = self.node_base.store.clone();
        config.cache_dir = cache.path().to_path_buf();
        config.concurrency = Some(concurrency);
        let node_id = format!("it-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        config.node_id = Some(node_id.clone());
        adjust(&mut config);
        let node_id = config.node_id();
        self.nodes
            .push((node_id.clone(), config.docker_host.clone()));
        let node = frameos_execution_node::Node::start(config)
            .await
            .context("execution node start")?;
        self.node_metrics.extend(node.metrics_addr());
        let token = self.nodes_stop.clone();
        self.node_tasks.push(tokio::spawn(async move {
            if let Err(e) = node.run(token).await {
                panic!("execution node failed: {e}");
            }
        }));
        self._dirs.push(cache);
        Ok(node_id)
    }

    /// Environment for a node process joining this mesh (see `frameos-test-node`).
    pub fn node_env(&self, cache_dir: &std::path::Path) -> Vec<(String, String)> {
        let store = &self.node_base.store;
        let mut env = vec![
            (
                "FRAMEOS_CONTROL_PLANE_URL".into(),
                format!("http://{}", self.grpc_addr),
            ),
            (
                "FRAMEOS_AMQP_URL".into(),
                self.node_base.amqp_url.clone().unwrap_or_else(amqp_url),
            ),
            ("FRAMEOS_NODE_TOKEN".into(), self.node_token.clone()),
            (
                "FRAMEOS_QUEUE_NAME".into(),
                self.node_base.queue_name.clone(),
            ),
            (
                "FRAMEOS_PACKAGE_CACHE".into(),
                cache_dir.display().to_string(),
            ),
            ("FRAMEOS_NODE_CONCURRENCY".into(), "1".into()),
            (
                "FRAMEOS_PACKAGE_DIR".into(),
                store.package_dir.display().to_string(),
            ),
            ("FRAMEOS_S3_REGION".into(), store.s3_region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), store.aws_access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                store.aws_secret_access_key.clone(),
            ),
        ];
        if let Some(endpoint) = &store.s3_endpoint {
            env.push(("FRAMEOS_S3_ENDPOINT".into(), endpoint.clone()));
        }
        if let Some(bucket) = &store.s3_bucket {
            env.push(("FRAMEOS_S3_BUCKET".into(), bucket.clone()));
        }
        env
    }

    pub fn queue_topology(&self) -> frameos_queue::Topology {
        frameos_queue::Topology::configured(
            &self.node_base.queue_name,
            self.node_base.job_max_attempts,
            self.node_base.job_retry_base_ms,
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request builder; `key` becomes the bearer token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Creates an account through the API as the admin and returns its API key.
    pub async fn account(&self, name: &str, role: &str) -> anyhow::Result<String> {
        let response = self
            .request(reqwest::Method::POST, "/v1/accounts", Some(&self.admin_key))
            .json(&serde_json::json!({"name": name, "role": role}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "create account: {}",
            response.text().await?
        );
        let body: serde_json::Value = response.json().await?;
        body["api_key"]
            .as_str()
            .map(str::to_string)
            .context("api_key missing")
    }

    /// Stops both services, waits for them, and drops the test database.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        // Nodes first, as an operator drains them: a node finishing its runs reports them to a
        // control plane that is still there, instead of retrying into its shutdown.
        self.nodes_stop.cancel();
        for task in self.node_tasks.drain(..) {
            task.await.context("node task")?;
        }
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.await.context("service task")?;
        }
        if let Some(task) = self.cp_task.take() {
            task.await.context("control plane task")?;
        }
        if let Some(database) = self.database.take() {
            database.drop_database().await?;
        }
        if let Some(url) = self.node_base.amqp_url.take() {
            frameos_queue::delete_amqp_topology(&url, &self.queue_topology()).await?;
        }
        // The nodes stopped cleanly and removed their containers.
        self.nodes.clear();
        Ok(())
    }

    /// The RabbitMQ this mesh's control plane and nodes use, if any.
    pub fn broker_url(&self) -> Option<&str> {
        self.node_base.amqp_url.as_deref()
    }
}

impl Mesh {
    /// A listener on the control plane's address: the kept socket, or, after a control plane
    /// process owned the address, the address bound again and kept from then on.
    async fn grpc_listener(&mut self) -> anyhow::Result<tokio::net::TcpListener> {
        if self.grpc_listener.is_none() {
            // The process that held it was killed; its port is free again (a listening socket
            // leaves no TIME_WAIT, and tokio binds with SO_REUSEADDR).
            let listener = tokio::net::TcpListener::bind(self.grpc_addr)
                .await
                .with_context(|| format!("bind {} again", self.grpc_addr))?;
            self.grpc_listener = Some(listener.into_std()?);
        }
        let kept = self
            .grpc_listener
            .as_ref()
            .context("no control plane socket")?;
        listener_of(kept)
    }

    /// Gives the control plane's address up, for a control plane process to bind it.
    pub(crate) fn release_grpc_address(&mut self) {
        self.grpc_listener = None;
    }
}

/// A tokio listener on the same socket as `kept` (a duplicate of its descriptor).
fn listener_of(kept: &std::net::TcpListener) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = kept.try_clone()?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // What a test that failed before `shutdown` leaves behind: its queues, its database
        // and its nodes' containers.
        cleanup::Leftovers {
            amqp: self
                .node_base
                .amqp_url
                .take()
                .map(|url| (url, self.queue_topology())),
            database: self.database.take(),
            nodes: std::mem::take(&mut self.nodes),
        }
        .remove();
    }
}
