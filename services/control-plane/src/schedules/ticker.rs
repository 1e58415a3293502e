//! The tick: every replica looks for due schedules each FRAMEOS_SCHEDULE_POLL_MS and handles
//! each one inside a transaction holding its row (`FOR UPDATE SKIP LOCKED`), so two replicas
//! never handle the same tick. The run is created through the same path a caller's request
//! takes, with the idempotency key of the tick: if this replica dies after creating it and
//! before advancing the schedule, the row's lock goes with it, the next replica takes the same
//! tick, and its key answers with the run already made.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode, ScheduleStatus, Scopes};
use frameos_proto::v1;
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Timetable, book, run_key};
use crate::accounts::auth::Principal;
use crate::billing::Billing;
use crate::db;
use crate::entity::{account, schedule};
use crate::execution::{self, Intake, Origin};
use crate::metrics::Tick;
use crate::webhooks::Guard;

/// Everything a tick needs to create a run as its schedule's owner would.
pub struct Ticker {
    pub db: DatabaseConnection,
    pub intake: Intake,
    pub billing: Billing,
    pub webhooks: Guard,
    /// Wakes the outbox relay when a run was queued.
    pub outbox: Arc<Notify>,
    /// Counts the ticks by outcome.
    pub metrics: crate::metrics::Metrics,
    pub poll: Duration,
}

/// What became of one tick.
enum Fired {
    /// A run exists for the tick: made now, or (`created == false`) by a replica that died
    /// before advancing the schedule (the tick's key found it).
    Run { execution_id: String, created: bool },
    /// No run: the owner's to fix (the agent was banned, its price rose above the mandate).
    Refused(Error),
    /// The standing mandate has expired: the schedule stops.
    Expired(String),
}

impl Ticker {
    /// Handles due ticks until `shutdown`; a tick under way when it fires is finished.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = self.poll.max(Duration::from_millis(10));
        loop {
            // Ticks whose run could not be made for now (the rail or the database is down)
            // wait for the next pass, without holding up the others.
            let mut postponed = Vec::new();
            while !shutdown.is_cancelled() {
                match self.tick(&postponed).await {
                    Ok(Some(Ok(()))) => {}
                    Ok(Some(Err(id))) => postponed.push(id),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "schedule ticker cannot read its schedules");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Takes one due schedule (none left: `None`) and handles its tick; `Some(Err(id))` when
    /// the tick is postponed. On PostgreSQL the row stays locked until the schedule is
    /// advanced; SQLite (`frameos dev`: one process, one replica) has no row locks, and its one
    /// writer must stay free for the run's own insert, so there the row is read outside any
    /// transaction (the tick's idempotency key still keeps one run per tick).
    async fn tick(&self, postponed: &[String]) -> Result<Option<Result<(), String>>, Error> {
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return self.tick_on(&self.db, postponed).await;
        }
        let txn = self.db.begin().await.map_err(db::error)?;
        let handled = self.tick_on(&txn, postponed).await?;
        // Nothing is written for a postponed tick or when none was due: commit either way.
        txn.commit().await.map_err(db::error)?;
        Ok(handled)
    }

    async fn tick_on<C: ConnectionTrait>(
        &self,
        conn: &C,
        postponed: &[String],
    ) -> Result<Option<Result<(), String>>, Error> {
        let now = Utc::now();
        let mut due = schedule::Entity::find()
            .filter(schedule::Column::Status.eq(ScheduleStatus::Active))
            .filter(schedule::Column::NextRunAt.lte(now))
            .filter(schedule::Column::Id.is_not_in(postponed.iter().map(String::as_str)))
            .order_by_asc(schedule::Column::NextRunAt)
            .limit(1);
        if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
            due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let Some(row) = due.one(conn).await.map_err(db::error)? else {
            return Ok(None);
        };
        let tick = row.next_run_at;
        let fired = match self.fire(&row, tick, now).await {
            Ok(fired) => fired,
            Err(e) if e.code == ErrorCode::Unavailable => {
                tracing::warn!(schedule_id = %row.id, %tick, error = %e, "scheduled run postponed");
                self.metrics.tick(Tick::Postponed);
                return Ok(Some(Err(row.id)));
            }
            Err(e) => Fired::Refused(e),
        };
        #[cfg(feature = "fault-injection")]
        if let Fired::Run { execution_id, .. } = &fired
            && self.billing.faults().block_after_scheduled_run
        {
            crate::faults::block_after_scheduled_run(&row.id, execution_id).await;
        }
        let mut update = schedule::ActiveModel {
            id: Set(row.id.clone()),
            last_run_at: Set(Some(now)),
            ..Default::default()
        };
        match fired {
            Fired::Run {
                execution_id,
                created,
            } => {
                tracing::info!(schedule_id = %row.id, %tick, %execution_id, created, "scheduled run");
                self.metrics.tick(Tick::Run);
                update.last_execution_id = Set(Some(execution_id));
                update.last_error = Set(None);
                // A run made by a replica that died before counting it is counted now.
                update.runs = Set(row.runs + 1);
            }
            Fired::Refused(e) => {
                tracing::info!(schedule_id = %row.id, %tick, code = %e.code, error = %e.message, "scheduled run refused");
                self.metrics.tick(Tick::Refused);
                update.last_execution_id = Set(None);
                update.last_error = Set(Some(format!("{}: {}", e.code, e.message)));
            }
            Fired::Expired(why) => {
                tracing::info!(schedule_id = %row.id, %tick, "schedule expired with its standing mandate");
                self.metrics.tick(Tick::Expired);
                update.status = Set(ScheduleStatus::Expired);
                update.last_execution_id = Set(None);
                update.last_error = Set(Some(why));
            }
        }
        // From now, not from the tick: ticks missed while no replica ran make one run.
        update.next_run_at = Set(next_tick(&row, tick.max(now)));
        update.update(conn).await.map_err(db::error)?;
        Ok(Some(Ok(())))
    }

    async fn fire(
        &self,
        row: &schedule::Model,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Fired, Error> {
        if let Some(expires_at) = row.mandate_expires_at
            && expires_at <= now
        {
            return Ok(Fired::Expired(format!(
                "{}: the standing mandate expired at {}",
                ErrorCode::BudgetExceeded,
                expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        if let Some(kid) = &row.mandate_kid {
            // Signed by the replica that took the request, maybe with a key newer than ours.
            self.billing.learn_key(&self.db, kid).await?;
        }
        let standing = book::standing(&self.billing, row)?;
        let owner = account::Entity::find_by_id(&row.account_id)
            .one(&self.db)
            .await
            .map_err(db::error)?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "the schedule's account is gone"))?;
        let caller = Principal {
            account_id: owner.id,
            role: owner.role,
            key_id: format!("schedule:{}", row.id),
            scopes: Scopes::of_role(owner.role),
        };
        let request = v1::CreateExecutionRequest {
            agent_slug: book::slug_of(&self.db, &row.agent_id).await?,
            version: row.version.clone(),
            inputs_json: row.inputs.clone(),
            idempotency_key: run_key(&row.id, tick),
            webhook_url: row.webhook_url.clone().unwrap_or_default(),
        };
        let (execution, created) = execution::create(
            &self.db,
            &self.intake,
            &self.billing,
            &self.webhooks,
            &caller,
            &request,
            Origin::Schedule {
                standing: standing.as_ref(),
            },
        )
        .await?;
        if created {
            self.outbox.notify_one();
        }
        Ok(Fired::Run {
            execution_id: execution.id,
            created,
        })
    }
}

/// The first tick after `after`; an expression that no longer parses or matches (it did when
/// the schedule was made) is looked at again in an hour rather than every pass.
fn next_tick(row: &schedule::Model, after: DateTime<Utc>) -> DateTime<Utc> {
    Timetable::parse(&row.cron, &row.timezone)
        .ok()
        .and_then(|t| t.next_after(after))
        .unwrap_or_else(|| {
            tracing::warn!(schedule_id = %row.id, cron = %row.cron, "a stored cron expression no longer has a next tick");
            after + chrono::Duration::hours(1)
        })
}
