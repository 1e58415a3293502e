//! The admin review: the queue, approve (→ published) and reject (→ rejected, with a reason).

use frameos_core::{ReviewDecision, VersionStatus};
use std::collections::HashMap;

use chrono::Utc;
use frameos_core::{Error, ErrorCode};
use frameos_proto::v1;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use crate::accounts::auth::Principal;
use crate::agents::versions;
use crate::db;
use crate::entity::{agent, agent_version, review};

pub async fn queue(
    db: &DatabaseConnection,
    status: VersionStatus,
) -> Result<Vec<v1::Version>, Error> {
    let rows = agent_version::Entity::find()
        .filter(agent_version::Column::Status.eq(status))
        .order_by_asc(agent_version::Column::CreatedAt)
        .all(db)
        .await
        .map_err(db::error)?;
    let agents = agent::Entity::find()
        .filter(agent::Column::Id.is_in(rows.iter().map(|r| r.agent_id.as_str())))
        .all(db)
        .await
        .map_err(db::error)?;
    let slugs: HashMap<String, String> = agents.into_iter().map(|a| (a.id, a.slug)).collect();
    versions::with_reviews(db, rows, &slugs).await
}

/// An admin's decision; a rejection carries its reason for the developer.
#[derive(Clone, Copy)]
pub enum Decision<'a> {
    Approve,
    Reject(&'a str),
}

/// The version a decision is about.
pub struct Target<'a> {
    pub agent_slug: &'a str,
    pub version: &'a str,
}

impl<'a> Target<'a> {
    pub fn new(agent_slug: &'a str, version: &'a str) -> Self {
        Target {
            agent_slug,
            version,
        }
    }
}

pub async fn decide(
    db: &DatabaseConnection,
    admin: &Principal,
    request: &Target<'_>,
    decision: Decision<'_>,
) -> Result<v1::Version, Error> {
    let reason = match decision {
        Decision::Approve => "",
        Decision::Reject(reason) => reason.trim(),
    };
    if matches!(decision, Decision::Reject(_)) && reason.is_empty() {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            "a rejection needs a reason for the developer",
        ));
    }
    if reason.chars().count() > 2000 {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            "reason must be at most 2000 characters",
        ));
    }
    let agent = agent::Entity::find()
        .filter(agent::Column::Slug.eq(request.agent_slug))
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::not_found(format!("agent {:?}", request.agent_slug)))?;
    let row = agent_version::Entity::find()
        .filter(agent_version::Column::AgentId.eq(&agent.id))
        .filter(agent_version::Column::Version.eq(request.version))
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| {
            Error::not_found(format!("version {} of {}", request.version, agent.slug))
        })?;
    let now = Utc::now();
    let (status, label) = match decision {
        Decision::Approve => (VersionStatus::Published, ReviewDecision::Approved),
        Decision::Reject(_) => (VersionStatus::Rejected, ReviewDecision::Rejected),
    };
    let txn = db.begin().await.map_err(db::error)?;
    // Guarded transition: only a version still waiting for review changes, so two admins
    // deciding at once cannot both win.
    let mut update = agent_version::Entity::update_many()
        .col_expr(agent_version::Column::Status, Expr::value(status))
        .filter(agent_version::Column::Id.eq(&row.id))
        .filter(agent_version::Column::Status.eq(VersionStatus::PendingReview));
    if matches!(decision, Decision::Approve) {
        update = update.col_expr(agent_version::Column::PublishedAt, Expr::value(now));
    }
    let changed = update.exec(&txn).await.map_err(db::error)?.rows_affected;
    if changed == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "version {} of {} is {}; only versions pending review can be decided",
                row.version, agent.slug, row.status
            ),
        ));
    }
    review::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        version_id: Set(row.id.clone()),
        decision: Set(label),
        reviewer: Set(admin.account_id.clone()),
        reason: Set(reason.to_string()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(db::error)?;
    txn.commit().await.map_err(db::error)?;
    tracing::info!(
        slug = %agent.slug,
        version = %row.version,
        decision = %label,
        reviewer = %admin.account_id,
        "version reviewed"
    );
    let updated = agent_version::Entity::find_by_id(&row.id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("reviewed version vanished"))?;
    let slugs = HashMap::from([(agent.id.clone(), agent.slug.clone())]);
    let mut out = versions::with_reviews(db, vec![updated], &slugs).await?;
    out.pop()
        .ok_or_else(|| Error::internal("reviewed version vanished"))
}
