//! Warm one-shot containers (ADR 0026): per class, a few runner containers created, attached
//! and started in advance with the cold path's body, each waiting on stdin with an empty slot
//! mounted at `/agent`. A run takes one, fills its slot and hands it the execution; the
//! container serves that one execution and is removed after it, never reused.

mod idle;
mod slot;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{CreateContainerOptionsBuilder, WaitContainerOptionsBuilder};
use futures::stream::{BoxStream, Peekable};
use futures::{FutureExt, StreamExt};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::docker::body::{Class, Tenant, container_body};
use crate::docker::snapshot::Snapshots;
use crate::docker::{attach_and_start, docker_err, remove_patiently, status};
use crate::metrics::{DockerOperation as Op, PoolTake, SandboxMetrics};
use crate::{Error, Images, Runtime, Spec};

pub(crate) use slot::{Slot, fill as fill_slot, sweep as sweep_slots};

/// How the pool is sized (`FRAMEOS_SANDBOX_POOL*`, ADR 0026).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most warm containers kept per class; 0 turns the pool off (every run is cold).
    pub max_per_class: usize,
    /// Warm containers started at once for each runtime's default class ([`Spec::default`]).
    /// Other classes start at none and grow by one per miss, up to `max_per_class`.
    pub initial: usize,
    /// The warm containers' memory limits together stay within this share of the host's memory.
    pub memory_percent: u8,
    /// Where the slots live; must be on the Docker host (bind mounts). Hard links need the
    /// package cache on the same file system, else packages are copied.
    pub slot_dir: PathBuf,
    /// A class no run took from for this long shrinks back (to `initial` for a runtime's
    /// default class, to none for others) and its surplus containers are removed; zero: never.
    pub idle_after: std::time::Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_per_class: 2,
            initial: 2,
            memory_percent: 25,
            slot_dir: std::env::temp_dir().join("frameos-slots"),
            idle_after: std::time::Duration::from_secs(600),
        }
    }
}

/// What the pool has done so far (for tests and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Runs handed to a warm container.
    pub hits: u64,
    /// Runs the pool could not serve (they went cold).
    pub misses: u64,
    /// Warm containers found dead (stopped, engine gone) and dropped unused.
    pub dropped: u64,
    /// Warm containers waiting now.
    pub ready: usize,
}

/// One started runner waiting for its execution.
pub(crate) struct Warm {
    pub name: String,
    pub slot: Slot,
    pub output: Peekable<BoxStream<'static, Result<LogOutput, BollardError>>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    /// Set by its watcher when the container stopped while waiting.
    dead: CancellationToken,
    /// Ends its watcher once taken.
    taken: CancellationToken,
}

impl Warm {
    /// Still running and silent: a waiting runner writes nothing before its hand-off, and its
    /// attach stream ends when the container stops.
    fn alive(&mut self) -> bool {
        !self.dead.is_cancelled() && Pin::new(&mut self.output).peek().now_or_never().is_none()
    }
}

#[derive(Default)]
struct ClassState {
    ready: VecDeque<Warm>,
    starting: usize,
    target: usize,
    failed: Option<String>,
    /// When a run last asked this class for a container (hit or miss).
    last_taken: Option<std::time::Instant>,
}

#[derive(Default)]
struct State {
    classes: HashMap<Class, ClassState>,
    closed: bool,
}

impl State {
    fn memory_mb(&self) -> u64 {
        self.classes
            .iter()
            .map(|(class, s)| class.memory_mb * (s.ready.len() + s.starting) as u64)
            .sum()
    }
}

struct Inner {
    docker: Docker,
    images: Images,
    snapshots: Snapshots,
    node_id: String,
    metrics: SandboxMetrics,
    config: PoolConfig,
    slot_base: PathBuf,
    budget_mb: u64,
    state: Mutex<State>,
    changed: Notify,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    hits: AtomicU64,
    misses: AtomicU64,
    dropped: AtomicU64,
}

/// Clones share one pool; when the last clone is dropped without [`Pool::shutdown`], its
/// containers are removed in the background (and by `remove_stale` at the next start).
#[derive(Clone)]
pub(crate) struct Pool {
    owner: Arc<Owner>,
}

struct Owner(Arc<Inner>);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.owner.0.config)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub fn new(
        docker: Docker,
        images: Images,
        snapshots: Snapshots,
        node_id: &str,
        metrics: SandboxMetrics,
        config: PoolConfig,
    ) -> Pool {
        let budget_mb = host_memory_mb() * u64::from(config.memory_percent.min(100)) / 100;
        let inner = Inner {
            docker,
            images,
            snapshots,
            node_id: node_id.to_string(),
            metrics,
            slot_base: slot_base(&config.slot_dir, node_id),
            config,
            budget_mb,
            state: Mutex::default(),
            changed: Notify::new(),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        };
        let inner = Arc::new(inner);
        if tokio::runtime::Handle::try_current().is_ok() {
            idle::start(&inner);
        }
        Pool {
            owner: Arc::new(Owner(inner)),
        }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.owner.0
    }

    /// Starts `initial` warm containers for each runtime's default class, in the background.
    pub fn warm_defaults(&self) {
        let inner = self.inner();
        let initial = inner.config.initial.min(inner.config.max_per_class);
        for runtime in [Runtime::Node, Runtime::Python] {
            let class = Class::of(&Spec {
                runtime,
                ..Spec::default()
            });
            {
                let mut state = inner.lock();
                let entry = state.classes.entry(class.clone()).or_default();
                entry.target = entry.target.max(initial);
            }
            inner.refill(&class);
        }
        tracing::info!(
            initial,
            max_per_class = inner.config.max_per_class,
            budget_mb = inner.budget_mb,
            "warming the sandbox pool"
        );
    }

    /// A live warm container of this class, if one waits; a miss grows the class's target.
    /// Either way the class is refilled in the background.
    pub fn take(&self, class: &Class) -> Option<Warm> {
        let inner = self.inner();
        loop {
            let popped = {
                let mut state = inner.lock();
                if state.closed {
                    return None;
                }
                let entry = state.classes.entry(class.clone()).or_default();
                entry.last_taken = Some(std::time::Instant::now());
                let popped = entry.ready.pop_front();
                if popped.is_none() {
                    entry.target = (entry.target + 1).min(inner.config.max_per_class);
                }
                popped
            };
            match popped {
                Some(mut warm) => {
                    if warm.alive() {
                        warm.taken.cancel();
                        inner.hits.fetch_add(1, Ordering::Relaxed);
                        inner.metrics.pool_take(PoolTake::Hit);
                        inner.refill(class);
                        return Some(warm);
                    }
                    tracing::warn!(container = %warm.name, "warm container is dead; dropping it");
                    inner.dropped.fetch_add(1, Ordering::Relaxed);
                    inner.discard(warm);
                }
                None => {
                    inner.misses.fetch_add(1, Ordering::Relaxed);
                    inner.metrics.pool_take(PoolTake::Miss);
                    inner.refill(class);
                    return None;
                }
            }
        }
    }

    /// Waits until a warm container of this class is ready, starting one if none is (without
    /// raising the class's size: a run that takes it does not cause a refill).
    pub async fn prewarm(&self, class: &Class) -> Result<(), Error> {
        let inner = self.inner();
        let mut asked = false;
        loop {
            let changed = inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let failed = {
                let mut state = inner.lock();
                let entry = state.classes.entry(class.clone()).or_default();
                if !entry.ready.is_empty() {
                    return Ok(());
                }
                if entry.starting > 0 {
                    None
                } else {
                    Some(entry.failed.take())
                }
            };
            match failed {
                None => changed.await,
                Some(Some(message)) => {
                    return Err(Error::Docker {
                        action: "start a warm container",
                        message,
                    });
                }
                Some(None) if asked => {
                    return Err(Error::Docker {
                        action: "start a warm container",
                        message: "the pool is closed or at its memory bound".to_string(),
                    });
                }
                Some(None) => {
                    asked = true;
                    inner.top_up(class, 1);
                }
            }
        }
    }

    /// Removes a container that ran an execution (or failed its hand-off), and then its slot,
    /// off the run's critical path.
    pub fn retire(&self, name: String, slot: Slot) {
        self.inner().retire(name, slot);
    }

    pub fn stats(&self) -> PoolStats {
        let inner = self.inner();
        let ready = inner.lock().classes.values().map(|c| c.ready.len()).sum();
        PoolStats {
            hits: inner.hits.load(Ordering::Relaxed),
            misses: inner.misses.load(Ordering::Relaxed),
            dropped: inner.dropped.load(Ordering::Relaxed),
            ready,
        }
    }

    /// Stops warming, removes every waiting container and slot, and waits for the pool's
    /// tasks (starts in flight, removals of finished runs) to end.
    pub async fn shutdown(&self) {
        let inner = self.inner();
        inner.close();
        inner.tasks.close();
        inner.tasks.wait().await;
        tracing::info!("sandbox pool shut down");
    }

    /// The directory holding this node's slots.
    pub fn slot_base(&self) -> &Path {
        &self.inner().slot_base
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.0.close();
        } else {
            self.0.shutdown.cancel();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn close(&self) {
        let drained: Vec<Warm> = {
            let mut state = self.lock();
            state.closed = true;
            state
                .classes
                .values_mut()
                .flat_map(|c| c.ready.drain(..))
                .collect()
        };
        self.shutdown.cancel();
        for warm in drained {
            self.discard(warm);
        }
        self.changed.notify_waiters();
    }

    /// Starts as many containers as the class lacks, within the memory bound.
    fn refill(self: &Arc<Self>, class: &Class) {
        self.top_up(class, 0);
    }

    /// Starts containers until the class has its target, or `at_least`, waiting or starting.
    fn top_up(self: &Arc<Self>, class: &Class, at_least: usize) {
        let wanted = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            let room = self.budget_mb.saturating_sub(state.memory_mb()) / class.memory_mb.max(1);
            let entry = state.classes.entry(class.clone()).or_default();
            let have = entry.ready.len() + entry.starting;
            let goal = entry.target.max(at_least);
            let wanted = goal.saturating_sub(have).min(room as usize);
            entry.starting += wanted;
            wanted
        };
        for _ in 0..wanted {
            let (inner, class) = (self.clone(), class.clone());
            self.tasks.spawn(async move {
                let started = inner.start(&class).await;
                let mut state = inner.lock();
                let closed = state.closed;
                let entry = state.classes.entry(class.clone()).or_default();
                entry.starting -= 1;
                match started {
                    Ok(warm) if closed => inner.discard(warm),
                    Ok(warm) => {
                        inner.watch(&class, &warm);
                        entry.ready.push_back(warm);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "starting a warm container failed");
                        entry.failed = Some(e.to_string());
                    }
                }
                drop(state);
                inner.changed.notify_waiters();
            });
        }
    }

    /// Create (the cold body, an empty slot as `/agent`), attach, start.
    async fn start(&self, class: &Class) -> Result<Warm, Error> {
        let name = warm_name();
        let base = self.slot_base.clone();
        let slot_name = name.clone();
        let slot = tokio::task::spawn_blocking(move || Slot::create(&base, &slot_name))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(|source| Error::Pool {
                action: "create a slot",
                source,
            })?;
        let image = self.images.for_runtime(class.runtime).to_string();
        let body = container_body(
            class,
            &image,
            &self.node_id,
            slot.path(),
            Tenant::Pool { name: &name },
            &self.snapshots,
        );
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self
            .metrics
            .docker(
                Op::Create,
                self.docker.create_container(Some(options), body),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => return Err(Error::ImageMissing { image }),
            Err(e) => return Err(docker_err("create container", e)),
        }
        let attached = attach_and_start(&self.docker, &self.metrics, &name).await;
        let attached = match attached {
            Ok(io) => {
                let mut output = io.output.boxed();
                match tokio::time::timeout(READY_WAIT, ready(&mut output)).await {
                    Ok(Ok(())) => Ok((output, io.input)),
                    Ok(Err(message)) => Err(Error::Docker {
                        action: "start a warm runner",
                        message,
                    }),
                    Err(_) => Err(Error::Docker {
                        action: "start a warm runner",
                        message: format!("not ready within {READY_WAIT:?}"),
                    }),
                }
            }
            Err(e) => Err(e),
        };
        match attached {
            Ok((output, input)) => Ok(Warm {
                name,
                slot,
                output: output.peekable(),
                input,
                dead: CancellationToken::new(),
                taken: CancellationToken::new(),
            }),
            // Created but never ready (the engine may be going away): removed, with its slot,
            // as patiently as a finished run's container.
            Err(e) => {
                self.retire(name, slot);
                Err(e)
            }
        }
    }

    /// Drops the container from the pool as soon as it stops while waiting.
    fn watch(self: &Arc<Self>, class: &Class, warm: &Warm) {
        let (inner, class, name) = (self.clone(), class.clone(), warm.name.clone());
        let (dead, taken) = (warm.dead.clone(), warm.taken.clone());
        self.tasks.spawn(async move {
            let options = WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build();
            let mut waiting = inner.docker.wait_container(&name, Some(options));
            tokio::select! {
                _ = waiting.next() => {}
                () = taken.cancelled() => return,
                () = inner.shutdown.cancelled() => return,
            }
            dead.cancel();
            let found = {
                let mut state = inner.lock();
                let entry = state.classes.entry(class.clone()).or_default();
                let at = entry.ready.iter().position(|w| w.name == name);
                at.and_then(|at| entry.ready.remove(at))
            };
            if let Some(warm) = found {
                tracing::warn!(container = %name, "warm container stopped while waiting; dropping it");
                inner.dropped.fetch_add(1, Ordering::Relaxed);
                inner.discard(warm);
                inner.refill(&class);
            }
        });
    }

    fn discard(&self, warm: Warm) {
        let Warm { name, slot, .. } = warm;
        self.retire(name, slot);
    }

    fn retire(&self, name: String, slot: Slot) {
        let (docker, metrics) = (self.docker.clone(), self.metrics.clone());
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            remove_patiently(&docker, &name, Some(&metrics), &shutdown).await;
            let _ = tokio::task::spawn_blocking(move || slot.remove()).await;
        });
    }
}

/// What a warm runner writes once it is up and waiting on stdin (runner.js, runner.py).
const READY_LINE: &[u8] = b"{\"frameos\":1,\"type\":\"ready\"}\n";
/// How long a started runner may take to say it is ready.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the runner's ready line: only then is the container worth handing an execution
/// (started is not enough: the interpreter still has to boot).
async fn ready(
    output: &mut BoxStream<'static, Result<LogOutput, BollardError>>,
) -> Result<(), String> {
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        match output.next().await {
            Some(Ok(LogOutput::StdOut { message })) => line.extend_from_slice(&message),
            Some(Ok(other)) => return Err(format!("wrote {other:?} before it was ready")),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("exited before it was ready".to_string()),
        }
        if line.len() > READY_LINE.len() {
            break;
        }
    }
    if line == READY_LINE {
        Ok(())
    } else {
        Err(format!(
            "wrote {:?} instead of its ready line",
            String::from_utf8_lossy(&line)
        ))
    }
}

/// `<slot_dir>/<node id>`: one node's slots, swept whole by `remove_stale`.
pub(crate) fn slot_base(slot_dir: &Path, node_id: &str) -> PathBuf {
    let safe: String = node_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    slot_dir.join(safe)
}

fn warm_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("frameos-warm-{}-{n}-{nanos}", std::process::id())
}

/// The host's memory in MiB (MemTotal of /proc/meminfo); 4 GiB when it cannot be read.
pub fn host_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(4096, |kib| kib / 1024)
}
