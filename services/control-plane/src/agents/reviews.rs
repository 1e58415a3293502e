//! The admin review: the queues, approve (→ published) and reject (→ rejected, with a reason).
//! A spot check (API.md §5.2) decides a version the auto mode published: approving keeps it
//! published, rejecting unpublishes it.

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

/// Which versions an admin lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Every version in this status.
    Status(VersionStatus),
    /// Published versions sampled for a spot check that has not happened yet.
    SpotCheck,
}

pub async fn queue(db: &DatabaseConnection, queue: Queue) -> Result<Vec<v1::Version>, Error> {
    let select = match queue {
        Queue::Status(status) => {
            agent_version::Entity::find().filter(agent_version::Column::Status.eq(status))
        }
        Queue::SpotCheck => agent_version::Entity::find()
            .filter(agent_version::Column::Status.eq(VersionStatus::Published))
            .filter(agent_version::Column::SpotCheck.eq(true)),
    };
    let rows = select
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
    for_admins(db, rows, &slugs).await
}

/// The versions as admins see them: with their spot-check mark.
async fn for_admins(
    db: &DatabaseConnection,
    rows: Vec<agent_version::Model>,
    slugs: &HashMap<String, String>,
) -> Result<Vec<v1::Version>, Error> {
    let marks: Vec<bool> = rows.iter().map(|r| r.spot_check).collect();
    let mut out = versions::with_reviews(db, rows, slugs).await?;
    for (version, spot_check) in out.iter_mut().zip(marks) {
        version.spot_check = spot_check;
    }
    Ok(out)
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
    let spot_check = row.status == VersionStatus::Published && row.spot_check;
    let txn = db.begin().await.map_err(db::error)?;
    // Guarded transition: only a version still waiting for review (or for its spot check)
    // changes, so two admins deciding at once cannot both win.
    let mut update = agent_version::Entity::update_many()
        .col_expr(agent_version::Column::Status, Expr::value(status))
        .col_expr(agent_version::Column::SpotCheck, Expr::value(false))
        .filter(agent_version::Column::Id.eq(&row.id));
    update = if spot_check {
        update
            .filter(agent_version::Column::Status.eq(VersionStatus::Published))
            .filter(agent_version::Column::SpotCheck.eq(true))
    } else {
        update.filter(agent_version::Column::Status.eq(VersionStatus::PendingReview))
    };
    if matches!(decision, Decision::Approve) && !spot_check {
        update = update.col_expr(agent_version::Column::PublishedAt, Expr::value(now));
    }
    let changed = update.exec(&txn).await.map_err(db::error)?.rows_affected;
    if changed == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "version {} of {} is {}; only versions pending review or a spot check can be decided",
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
        spot_check,
        reviewer = %admin.account_id,
        "version reviewed"
    );
    let updated = agent_version::Entity::find_by_id(&row.id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("reviewed version vanished"))?;
    let slugs = HashMap::from([(agent.id.clone(), agent.slug.clone())]);
    let mut out = for_admins(db, vec![updated], &slugs).await?;
    out.pop()
        .ok_or_else(|| Error::internal("reviewed version vanished"))
}
