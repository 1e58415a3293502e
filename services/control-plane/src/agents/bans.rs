//! Banning an agent (API.md §5.2, ADR 0044): every version `banned` (so not listed, not
//! runnable, not callable, no new versions), its queued and running executions canceled and
//! voided, and the reason kept for the owner. A ban is final and idempotent: banning again
//! keeps the first reason and sweeps again.

use chrono::Utc;
use frameos_core::{Error, ErrorCode, VersionStatus};
use frameos_proto::v1;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};

use crate::accounts::auth::Principal;
use crate::agents::catalog;
use crate::db;
use crate::entity::{agent, agent_version};
use crate::execution::Hub;

/// The longest reason an admin may give.
const MAX_REASON_CHARS: usize = 2000;

/// `agent_banned` for a banned agent, naming the reason.
pub fn refuse_banned(agent: &agent::Model) -> Result<(), Error> {
    match agent.banned_at {
        None => Ok(()),
        Some(_) => Err(Error::new(
            ErrorCode::AgentBanned,
            format!(
                "agent {:?} is banned: {}",
                agent.slug,
                agent.ban_reason.as_deref().unwrap_or("no reason given")
            ),
        )),
    }
}

/// What a ban did.
pub struct Banned {
    pub agent: v1::Agent,
    /// Executions of the agent that the ban (this call) canceled.
    pub canceled_executions: usize,
}

/// Bans `slug` for `reason`; see the module doc.
pub async fn ban(
    db: &DatabaseConnection,
    hub: &Hub,
    billing: &crate::billing::Billing,
    admin: &Principal,
    slug: &str,
    reason: &str,
) -> Result<Banned, Error> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            "a ban needs a reason for the owner",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            format!("reason must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let row = agent::Entity::find()
        .filter(agent::Column::Slug.eq(slug))
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::not_found(format!("agent {slug:?}")))?;

    let now = Utc::now();
    let txn = db.begin().await.map_err(db::error)?;
    // The first ban's reason stands; a repeated ban only sweeps again.
    let first = agent::Entity::update_many()
        .col_expr(agent::Column::BannedAt, Expr::value(now))
        .col_expr(agent::Column::BanReason, Expr::value(reason))
        .col_expr(agent::Column::BannedBy, Expr::value(&admin.account_id))
        .col_expr(agent::Column::UpdatedAt, Expr::value(now))
        .filter(agent::Column::Id.eq(&row.id))
        .filter(agent::Column::BannedAt.is_null())
        .exec(&txn)
        .await
        .map_err(db::error)?
        .rows_affected
        == 1;
    let versions = agent_version::Entity::update_many()
        .col_expr(
            agent_version::Column::Status,
            Expr::value(VersionStatus::Banned),
        )
        .col_expr(agent_version::Column::SpotCheck, Expr::value(false))
        .filter(agent_version::Column::AgentId.eq(&row.id))
        .filter(agent_version::Column::Status.ne(VersionStatus::Banned))
        .exec(&txn)
        .await
        .map_err(db::error)?
        .rows_affected;
    txn.commit().await.map_err(db::error)?;
    if first {
        tracing::warn!(slug, agent_id = %row.id, admin = %admin.account_id, versions, "agent banned");
    }

    // After the commit, so a run claimed meanwhile is refused by its claim (the version is
    // banned now) and this sweep finds everything that was queued or running before.
    let banned = agent::Entity::find_by_id(&row.id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the banned agent vanished"))?;
    let why = format!(
        "canceled: agent {slug:?} was banned: {}",
        banned.ban_reason.as_deref().unwrap_or(reason)
    );
    let canceled_executions =
        crate::execution::cancel_agent_runs(db, hub, billing, &row.id, &why).await?;
    let agent = catalog::present(db, vec![banned])
        .await?
        .pop()
        .ok_or_else(|| Error::internal("the banned agent vanished"))?;
    Ok(Banned {
        agent,
        canceled_executions,
    })
}
