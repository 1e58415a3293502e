//! Claims (ADR 0008): which registration of which node runs which attempt of an execution.
//! A live claim is never taken over, so a duplicated job message cannot start a second run of
//! a running execution; a dead claim is taken over by the next claim, or the reaper queues the
//! execution again.
//!
//! A claim is live while its registration is the node's current one (a node restarted under
//! the same node id registers anew) and the node's heartbeats keep listing the execution as
//! running (they renew the claim), for at most `FRAMEOS_NODE_DEAD_AFTER_SECS` between two.

use frameos_core::ExecutionStatus;
use std::time::Duration;

use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use super::{Hub, system_log};
use crate::db;
use crate::entity::{execution, execution_claim, node};

/// Executions one heartbeat may renew; a node runs far fewer at once.
const MAX_RENEWED: usize = 1_024;

/// How long a claim lives without its node renewing it.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    pub dead_after: Duration,
    /// When this control plane started listening to heartbeats: silence while no replica
    /// listened (all were down) is not held against a node.
    pub since: DateTime<Utc>,
}

impl Liveness {
    pub fn new(dead_after: Duration) -> Self {
        Liveness {
            dead_after: dead_after.max(Duration::from_secs(1)),
            since: Utc::now(),
        }
    }

    /// What nodes are told to use: at least three heartbeats fit in `dead_after`.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.dead_after / 3).clamp(Duration::from_millis(300), Duration::from_secs(5))
    }

    fn dead_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.dead_after).unwrap_or(chrono::Duration::MAX)
    }
}

/// Whether the attempt that owns a running execution is still being run by someone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Live,
    /// Why not, in words fit for the execution's system log.
    Dead(String),
}

/// Judges the claim of `attempt`, given the claim on record and the node row it names.
pub fn verdict(
    claim: Option<&execution_claim::Model>,
    node: Option<&node::Model>,
    attempt: i32,
    now: DateTime<Utc>,
    liveness: Liveness,
) -> Verdict {
    let Some(claim) = claim.filter(|c| c.attempt == attempt) else {
        return Verdict::Dead("no claim of this attempt is on record".into());
    };
    let Some(node) = node.filter(|n| n.id == claim.node_id) else {
        return Verdict::Dead(format!("node {} is unknown", claim.node_id));
    };
    if node.registration != claim.registration {
        return Verdict::Dead(format!("node {} restarted", claim.node_id));
    }
    let silent = now - claim.renewed_at.max(liveness.since);
    if silent > liveness.dead_after() {
        return Verdict::Dead(format!(
            "node {} has not reported it running for {} s",
            claim.node_id,
            silent.num_seconds()
        ));
    }
    Verdict::Live
}

/// The verdict on the claim of a running execution, read from the database.
pub async fn judge<C: ConnectionTrait>(
    conn: &C,
    row: &execution::Model,
    liveness: Liveness,
) -> Result<Verdict, sea_orm::DbErr> {
    let claim = execution_claim::Entity::find_by_id(&row.id)
        .one(conn)
        .await?;
    let node = match &claim {
        Some(claim) => node::Entity::find_by_id(&claim.node_id).one(conn).await?,
        None => None,
    };
    Ok(verdict(
        claim.as_ref(),
        node.as_ref(),
        row.attempts,
        Utc::now(),
        liveness,
    ))
}

/// A node process: its node id and the instance id it was started with.
#[derive(Clone, Copy, Debug)]
pub struct Claimant<'a> {
    pub node_id: &'a str,
    pub instance_id: &'a str,
}

/// Records that the node speaks as `instance_id` (registration, heartbeat or claim). A new
/// instance id is a new registration: the claims of the former one are dead from now on.
pub async fn register(
    db: &DatabaseConnection,
    claimant: Claimant<'_>,
    concurrency: Option<u32>,
) -> Result<(), Error> {
    let now = Utc::now();
    let before = node::Entity::find_by_id(claimant.node_id)
        .one(db)
        .await
        .map_err(db::error)?;
    let renewed = before
        .as_ref()
        .is_none_or(|n| n.registration != claimant.instance_id);
    let row = node::ActiveModel {
        id: Set(claimant.node_id.to_string()),
        concurrency: Set(concurrency.and_then(|c| i32::try_from(c).ok()).unwrap_or(0)),
        registered_at: Set(now),
        last_heartbeat_at: Set(now),
        registration: Set(claimant.instance_id.to_string()),
    };
    let mut on_conflict = OnConflict::column(node::Column::Id);
    on_conflict.update_column(node::Column::LastHeartbeatAt);
    if renewed {
        on_conflict.update_columns([node::Column::Registration, node::Column::RegisteredAt]);
    }
    if concurrency.is_some() {
        on_conflict.update_column(node::Column::Concurrency);
    }
    node::Entity::insert(row)
        .on_conflict(on_conflict)
        .exec(db)
        .await
        .map_err(db::error)?;
    if renewed && before.is_some() {
        tracing::info!(
            node_id = claimant.node_id,
            instance_id = claimant.instance_id,
            "node registered anew; claims of its former instance are dead"
        );
    }
    Ok(())
}

/// A heartbeat: the claims of the executions the node still runs live on.
pub async fn renew(
    db: &DatabaseConnection,
    claimant: Claimant<'_>,
    running: &[String],
) -> Result<(), Error> {
    if running.is_empty() {
        return Ok(());
    }
    let ids = running.iter().take(MAX_RENEWED).cloned();
    execution_claim::Entity::update_many()
        .col_expr(execution_claim::Column::RenewedAt, Expr::value(Utc::now()))
        .filter(execution_claim::Column::NodeId.eq(claimant.node_id))
        .filter(execution_claim::Column::Registration.eq(claimant.instance_id))
        .filter(execution_claim::Column::ExecutionId.is_in(ids))
        .exec(db)
        .await
        .map_err(db::error)?;
    Ok(())
}

/// What a claim decided.
pub enum Decision {
    /// Run `attempt` of this execution.
    Run {
        row: Box<execution::Model>,
        attempt: i32,
    },
    /// Nothing to run: ended, unknown, or running under another live claim.
    Skip,
}

/// Claims the execution for `claimant`: a guarded transition to `running` that hands out the
/// next attempt, unless the execution ended or another live claim runs it. A claim by the
/// very registration that holds it takes over: a node never claims what it still runs (it
/// acks such a duplicate itself), so it gave that attempt up.
pub async fn claim(
    db: &DatabaseConnection,
    hub: &Hub,
    claimant: Claimant<'_>,
    execution_id: &str,
    liveness: Liveness,
) -> Result<Decision, Error> {
    register(db, claimant, None).await?;
    // A concurrent claim or the reaper may move the row under us: read and decide again.
    for _ in 0..3 {
        let Some(row) = execution::Entity::find_by_id(execution_id)
            .one(db)
            .await
            .map_err(db::error)?
        else {
            tracing::warn!(execution_id, "claim of an unknown execution");
            return Ok(Decision::Skip);
        };
        if row.status.is_terminal() {
            return Ok(Decision::Skip);
        }
        let mut lost = None;
        if row.status == ExecutionStatus::Running {
            let claim = execution_claim::Entity::find_by_id(execution_id)
                .one(db)
                .await
                .map_err(db::error)?;
            let ours = claim.as_ref().is_some_and(|c| {
                c.attempt == row.attempts
                    && c.node_id == claimant.node_id
                    && c.registration == claimant.instance_id
            });
            if !ours {
                match judge(db, &row, liveness).await.map_err(db::error)? {
                    Verdict::Live => {
                        tracing::info!(
                            execution_id,
                            node_id = claimant.node_id,
                            attempt = row.attempts,
                            "duplicate delivery of an execution running under a live claim; skipped"
                        );
                        return Ok(Decision::Skip);
                    }
                    Verdict::Dead(why) => lost = Some(why),
                }
            }
        }
        let attempt = row.attempts + 1;
        if let Some(row) = take(db, claimant, &row, attempt, lost.as_deref()).await? {
            hub.touch(execution_id);
            tracing::info!(
                execution_id,
                node_id = claimant.node_id,
                attempt,
                "execution claimed"
            );
            return Ok(Decision::Run {
                row: Box::new(row),
                attempt,
            });
        }
    }
    Err(Error::new(
        ErrorCode::Conflict,
        "the execution changed while it was being claimed; try again",
    ))
}

/// The claiming transaction; `None` when the row moved since it was read.
async fn take(
    db: &DatabaseConnection,
    claimant: Claimant<'_>,
    row: &execution::Model,
    attempt: i32,
    lost: Option<&str>,
) -> Result<Option<execution::Model>, Error> {
    let now = Utc::now();
    let txn = db.begin().await.map_err(db::error)?;
    let changed = execution::Entity::update_many()
        .col_expr(execution::Column::Attempts, Expr::value(attempt))
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Running),
        )
        .col_expr(execution::Column::NodeId, Expr::value(claimant.node_id))
        .col_expr(
            execution::Column::StartedAt,
            Expr::value(row.started_at.unwrap_or(now)),
        )
        // Each attempt's own phases (ADR 0025): the last claim ends the queue wait.
        .col_expr(execution::Column::ClaimedAt, Expr::value(now))
        .col_expr(
            execution::Column::RunningAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(execution::Column::Id.eq(&row.id))
        .filter(execution::Column::Attempts.eq(row.attempts))
        .filter(
            execution::Column::Status.is_in([ExecutionStatus::Queued, ExecutionStatus::Running]),
        )
        .exec(&txn)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        return Ok(None);
    }
    let claim = execution_claim::ActiveModel {
        execution_id: Set(row.id.clone()),
        attempt: Set(attempt),
        node_id: Set(claimant.node_id.to_string()),
        registration: Set(claimant.instance_id.to_string()),
        claimed_at: Set(now),
        renewed_at: Set(now),
    };
    execution_claim::Entity::insert(claim)
        .on_conflict(
            OnConflict::column(execution_claim::Column::ExecutionId)
                .update_columns([
                    execution_claim::Column::Attempt,
                    execution_claim::Column::NodeId,
                    execution_claim::Column::Registration,
                    execution_claim::Column::ClaimedAt,
                    execution_claim::Column::RenewedAt,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await
        .map_err(db::error)?;
    // Marks where a later attempt's lines start, so two attempts' logs are never joined unmarked.
    let line = match lost {
        Some(why) => Some(format!(
            "attempt {} was lost ({why}); attempt {attempt} runs on node {}",
            row.attempts, claimant.node_id
        )),
        None if attempt > 1 => Some(format!(
            "attempt {attempt} runs on node {}",
            claimant.node_id
        )),
        None => None,
    };
    if let Some(line) = line {
        system_log::append(&txn, &row.id, &line)
            .await
            .map_err(db::error)?;
    }
    txn.commit().await.map_err(db::error)?;
    let claimed = execution::Model {
        attempts: attempt,
        status: ExecutionStatus::Running,
        node_id: Some(claimant.node_id.to_string()),
        started_at: Some(row.started_at.unwrap_or(now)),
        claimed_at: Some(now),
        running_at: None,
        parent_id: None,
        root_id: None,
        depth: 1,
        ..row.clone()
    };
    Ok(Some(claimed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn claim(attempt: i32, registration: &str, renewed: i64) -> execution_claim::Model {
        execution_claim::Model {
            execution_id: "e".into(),
            attempt,
            node_id: "n".into(),
            registration: registration.into(),
            claimed_at: at(0),
            renewed_at: at(renewed),
        }
    }

    fn node(registration: &str) -> node::Model {
        node::Model {
            id: "n".into(),
            concurrency: 1,
            registered_at: at(0),
            last_heartbeat_at: at(0),
            registration: registration.into(),
        }
    }

    #[test]
    fn a_claim_lives_while_renewed_by_the_registration_that_made_it() {
        let liveness = Liveness {
            dead_after: Duration::from_secs(30),
            since: at(0),
        };
        let live = claim(2, "a", 100);
        let verdict_at = |c: Option<&execution_claim::Model>, n: Option<&node::Model>, now| {
            verdict(c, n, 2, at(now), liveness)
        };
        assert_eq!(
            verdict_at(Some(&live), Some(&node("a")), 130),
            Verdict::Live
        );
        let silent = verdict_at(Some(&live), Some(&node("a")), 131);
        assert!(
            matches!(silent, Verdict::Dead(ref why) if why.contains("31 s")),
            "{silent:?}"
        );
        let restarted = verdict_at(Some(&live), Some(&node("b")), 101);
        assert!(matches!(restarted, Verdict::Dead(ref why) if why.contains("restarted")));
        assert!(matches!(
            verdict_at(Some(&live), None, 101),
            Verdict::Dead(_)
        ));
        assert!(matches!(
            verdict_at(None, Some(&node("a")), 101),
            Verdict::Dead(_)
        ));
        // The claim on record is of another attempt: this one has none.
        let older = claim(1, "a", 100);
        assert!(matches!(
            verdict_at(Some(&older), Some(&node("a")), 101),
            Verdict::Dead(_)
        ));
    }

    #[test]
    fn silence_while_no_control_plane_listened_does_not_count() {
        let restarted = Liveness {
            dead_after: Duration::from_secs(30),
            since: at(500),
        };
        let old = claim(1, "a", 100);
        assert_eq!(
            verdict(Some(&old), Some(&node("a")), 1, at(520), restarted),
            Verdict::Live
        );
        assert!(matches!(
            verdict(Some(&old), Some(&node("a")), 1, at(531), restarted),
            Verdict::Dead(_)
        ));
        // A restart of the node is no silence: it is dead at once.
        assert!(matches!(
            verdict(Some(&old), Some(&node("b")), 1, at(501), restarted),
            Verdict::Dead(_)
        ));
    }

    #[test]
    fn heartbeats_fit_three_times_into_the_dead_time() {
        let interval = |secs| Liveness::new(Duration::from_secs(secs)).heartbeat_interval();
        assert_eq!(interval(30), Duration::from_secs(5));
        assert_eq!(interval(3), Duration::from_secs(1));
        // Never a dead time below a second, whatever is configured.
        assert_eq!(interval(0), Duration::from_secs(1) / 3);
    }
}
