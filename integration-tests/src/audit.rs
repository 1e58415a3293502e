//! Where the damage of a fault shows: the executions' statuses and attempts, the charges and
//! the rail's own holds, the ledger, the containers and the broker's queues. Read straight from
//! the database and the services, not through the API under test.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, QueryResult, Statement};
use serde_json::Value;

/// How often state without an event (database rows, queue depths) is polled.
const POLL: Duration = Duration::from_millis(250);

/// One row of `executions`.
#[derive(Debug, Clone)]
pub struct ExecutionRow {
    pub id: String,
    pub status: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub node_id: Option<String>,
}

/// The whole state of one control plane's database that a fault could damage.
#[derive(Debug)]
pub struct Snapshot {
    pub executions: Vec<ExecutionRow>,
    /// Charge status by execution id.
    pub charges: BTreeMap<String, String>,
    /// Ledger transactions by execution id.
    pub ledger_transactions: BTreeMap<String, usize>,
    /// Holds the sandbox rail still reports `authorized` in its own records.
    pub rail_holds: usize,
    pub ledger: frameos_control_plane::billing::ledger::Verification,
}

impl Snapshot {
    pub async fn take(database_url: &str) -> anyhow::Result<Snapshot> {
        let db = Database::connect(database_url).await?;
        let snapshot = Self::read(&db, database_url).await;
        let _ = db.close().await;
        snapshot
    }

    async fn read(db: &DatabaseConnection, database_url: &str) -> anyhow::Result<Snapshot> {
        let executions = execution_rows(db).await?;
        let charges = rows(db, "SELECT execution_id, status FROM charges")
            .await?
            .iter()
            .map(|row| Ok((row.try_get("", "execution_id")?, row.try_get("", "status")?)))
            .collect::<Result<BTreeMap<String, String>, sea_orm::DbErr>>()?;
        let mut ledger_transactions = BTreeMap::new();
        for row in rows(db, "SELECT execution_id FROM ledger_transactions").await? {
            let id: String = row.try_get("", "execution_id")?;
            *ledger_transactions.entry(id).or_insert(0) += 1;
        }
        let mut rail_holds = 0;
        for row in rows(db, "SELECT record FROM sandbox_rail_authorizations").await? {
            let record: String = row.try_get("", "record")?;
            let record: Value = serde_json::from_str(&record).context("rail record")?;
            rail_holds += count_status(&record, "authorized");
        }
        let ledger = frameos_control_plane::verify_ledger(database_url).await?;
        Ok(Snapshot {
            executions,
            charges,
            ledger_transactions,
            rail_holds,
            ledger,
        })
    }

    /// Executions by status.
    pub fn statuses(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.executions {
            *counts.entry(e.status.as_str()).or_insert(0) += 1;
        }
        counts
    }

    /// Every way the money could be wrong after executions ended: a charge still `authorized`
    /// (or a hold at the rail), a charge captured for an execution that did not succeed, a
    /// success of a paid agent not captured, more than one ledger transaction for an
    /// execution, or a ledger that does not verify. Empty when all is well.
    pub fn money_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let status: BTreeMap<&str, &str> = self
            .executions
            .iter()
            .map(|e| (e.id.as_str(), e.status.as_str()))
            .collect();
        for (id, charge) in &self.charges {
            let execution = status.get(id.as_str()).copied().unwrap_or("missing");
            match (execution, charge.as_str()) {
                ("succeeded", "captured") => {}
                ("succeeded", other) => problems.push(format!("{id}: succeeded, charge {other}")),
                (_, "voided") => {}
                (other, charge) => problems.push(format!("{id}: {other}, charge {charge}")),
            }
            let transactions = self.ledger_transactions.get(id).copied().unwrap_or(0);
            let expected = usize::from(charge == "captured");
            if transactions != expected {
                problems.push(format!(
                    "{id}: charge {charge} with {transactions} ledger transaction(s)"
                ));
            }
        }
        if self.rail_holds > 0 {
            problems.push(format!(
                "{} hold(s) still authorized at the rail",
                self.rail_holds
            ));
        }
        if !self.ledger.is_clean() {
            problems.push(format!("ledger verify: {:?}", self.ledger));
        }
        problems
    }
}

async fn execution_rows(db: &DatabaseConnection) -> anyhow::Result<Vec<ExecutionRow>> {
    rows(
        db,
        "SELECT id, status, attempts, error, node_id FROM executions",
    )
    .await?
    .iter()
    .map(|row| {
        Ok(ExecutionRow {
            id: row.try_get("", "id")?,
            status: row.try_get("", "status")?,
            attempts: row.try_get("", "attempts")?,
            error: row.try_get("", "error")?,
            node_id: row.try_get("", "node_id")?,
        })
    })
    .collect()
}

/// Polls the executions (a database offers no event for this) until `done` holds for them;
/// fails after `within` with the last rows seen.
pub async fn wait_for_executions(
    database_url: &str,
    within: Duration,
    what: &str,
    mut done: impl FnMut(&[ExecutionRow]) -> bool,
) -> anyhow::Result<Vec<ExecutionRow>> {
    let db = Database::connect(database_url).await?;
    let deadline = Instant::now() + within;
    let result = loop {
        let executions = execution_rows(&db).await?;
        if done(&executions) {
            break Ok(executions);
        }
        if Instant::now() > deadline {
            let mut counts = BTreeMap::new();
            for e in &executions {
                *counts.entry(e.status.clone()).or_insert(0) += 1;
            }
            break Err(anyhow::anyhow!(
                "{what}: not within {within:?}; executions by status: {counts:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = db.close().await;
    result
}

/// Waits until every execution of `ids` has ended; returns their rows.
pub async fn wait_until_ended(
    database_url: &str,
    ids: &[String],
    within: Duration,
) -> anyhow::Result<Vec<ExecutionRow>> {
    let wanted: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let rows = wait_for_executions(database_url, within, "executions to end", |rows| {
        rows.iter()
            .filter(|e| wanted.contains(e.id.as_str()))
            .filter(|e| is_terminal(&e.status))
            .count()
            == wanted.len()
    })
    .await?;
    Ok(rows
        .into_iter()
        .filter(|e| wanted.contains(e.id.as_str()))
        .collect())
}

/// Polls a snapshot until the money is settled (reconciliation may take its interval);
/// fails with the problems still seen after `within`.
pub async fn wait_for_settled_money(
    database_url: &str,
    within: Duration,
) -> anyhow::Result<Snapshot> {
    let deadline = Instant::now() + within;
    loop {
        let snapshot = Snapshot::take(database_url).await?;
        let problems = snapshot.money_problems();
        if problems.is_empty() {
            return Ok(snapshot);
        }
        if Instant::now() > deadline {
            anyhow::bail!("money not settled within {within:?}: {problems:#?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "timed_out" | "canceled")
}

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<QueryResult>> {
    Ok(db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?)
}

/// Objects anywhere in `value` whose `status` is `status`.
fn count_status(value: &Value, status: &str) -> usize {
    match value {
        Value::Object(map) => {
            usize::from(map.get("status").and_then(Value::as_str) == Some(status))
                + map.values().map(|v| count_status(v, status)).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(|v| count_status(v, status)).sum(),
        _ => 0,
    }
}

/// Containers (running or not) a node left on a Docker engine (`None`: the machine's).
pub fn containers_of_node(node_id: &str, docker_host: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut command = Command::new("docker");
    if let Some(host) = docker_host {
        command.args(["-H", host]);
    }
    let output = command
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=frameos.node={node_id}"),
            // Executions' containers; not the warm pool's waiting ones (ADR 0026).
            "--filter",
            "name=^frameos-exec-",
        ])
        .stdin(Stdio::null())
        .output()
        .context("docker ps")?;
    anyhow::ensure!(
        output.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Polls until a node has no execution containers left on a Docker engine. A node removes an
/// execution's container after it reports the result (off the critical path), so an ended
/// execution's container may still exist for a moment.
pub async fn wait_for_no_containers_of_node(
    node_id: &str,
    docker_host: Option<&str>,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let left = containers_of_node(node_id, docker_host)?;
        if left.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "node {node_id} still has containers after {within:?}: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages in every queue of `topology` (jobs, dead letters, one per retry delay), by name;
/// `None` for a queue that does not exist.
pub async fn queue_depths(
    amqp_url: &str,
    topology: &frameos_queue::Topology,
) -> anyhow::Result<BTreeMap<String, Option<u32>>> {
    let mut names = vec![topology.name.clone(), format!("{}.dead", topology.name)];
    for attempt in 1..topology.max_attempts {
        let name = format!(
            "{}.retry.{}",
            topology.name,
            topology.backoff(attempt).as_millis()
        );
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut depths = BTreeMap::new();
    for name in names {
        let depth = crate::instances::queue_depth(amqp_url, &name).await?;
        depths.insert(name, depth);
    }
    Ok(depths)
}

/// Polls until every queue of `topology` exists and is empty (acks and dead letters settled).
pub async fn wait_for_empty_queues(
    amqp_url: &str,
    topology: &frameos_queue::Topology,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let depths = queue_depths(amqp_url, topology).await?;
        if depths.values().all(|d| *d == Some(0)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("queues not empty within {within:?}: {depths:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}
