//! Reading executions and their logs, with ownership (another user's execution is not found),
//! and canceling them.

use chrono::Utc;
use frameos_core::ExecutionStatus;
use frameos_core::{Error, ErrorCode};
use frameos_proto::ProtoEnum;
use frameos_proto::v1;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait,
};

use super::{Hub, view};
use crate::accounts::auth::Principal;
use crate::db;
use crate::entity::{agent, agent_version, charge, execution, execution_log};

const DEFAULT_PAGE: u64 = 20;
const MAX_PAGE: u64 = 100;
const DEFAULT_LOG_PAGE: u64 = 500;
const MAX_LOG_PAGE: u64 = 1000;

/// The execution if the caller may see it: its user or an admin.
pub async fn owned(
    db: &DatabaseConnection,
    caller: &Principal,
    id: &str,
) -> Result<execution::Model, Error> {
    let row = execution::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db::error)?
        .filter(|row| caller.is_admin() || row.account_id == caller.account_id)
        .ok_or_else(|| Error::not_found(format!("execution {id:?}")))?;
    Ok(row)
}

/// The view of the execution `id` if the caller may see it: the execution, its agent's slug,
/// its version and its charge in one query, since `GET /v1/executions/{id}` is the API's
/// busiest read (ADR 0027).
pub async fn view(
    db: &DatabaseConnection,
    caller: &Principal,
    id: &str,
) -> Result<v1::Execution, Error> {
    let statement = execution::Entity::find_by_id(id)
        .select_also(charge::Entity)
        .join(
            JoinType::LeftJoin,
            execution::Entity::belongs_to(charge::Entity)
                .from(execution::Column::Id)
                .to(charge::Column::ExecutionId)
                .into(),
        )
        .join(
            JoinType::LeftJoin,
            execution::Entity::belongs_to(agent_version::Entity)
                .from(execution::Column::VersionId)
                .to(agent_version::Column::Id)
                .into(),
        )
        .join(JoinType::LeftJoin, agent_version::Relation::Agent.def())
        .column_as(agent::Column::Slug, "agent_slug")
        .column_as(agent_version::Column::Version, "version_name")
        .build(db.get_database_backend());
    let not_found = || Error::not_found(format!("execution {id:?}"));
    let found = db
        .query_one_raw(statement)
        .await
        .map_err(db::error)?
        .ok_or_else(not_found)?;
    // The aliases `select_also` gives the two models' columns.
    let row = execution::Model::from_query_result(&found, "A_").map_err(db::error)?;
    if !(caller.is_admin() || row.account_id == caller.account_id) {
        return Err(not_found());
    }
    let charge = Option::<charge::Model>::from_query_result(&found, "B_").map_err(db::error)?;
    let slug: Option<String> = found.try_get("", "agent_slug").map_err(db::error)?;
    let version: Option<String> = found.try_get("", "version_name").map_err(db::error)?;
    let mut execution = view::execution(
        &row,
        slug.as_deref().unwrap_or_default(),
        version.as_deref().unwrap_or_default(),
    );
    execution.charge = charge.as_ref().map(view::charge);
    Ok(execution)
}

pub async fn list(
    db: &DatabaseConnection,
    caller: &Principal,
    request: &v1::ListExecutionsRequest,
) -> Result<v1::ListExecutionsResponse, Error> {
    let page_size = match u64::from(request.page_size) {
        0 => DEFAULT_PAGE,
        n if n > MAX_PAGE => {
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                "page_size must be at most 100",
            ));
        }
        n => n,
    };
    let mut query =
        execution::Entity::find().filter(execution::Column::AccountId.eq(&caller.account_id));
    if let Some(status) = ExecutionStatus::from_proto_optional(request.status)? {
        query = query.filter(execution::Column::Status.eq(status));
    }
    if !request.agent_slug.is_empty() {
        let Some(agent) = agent::Entity::find()
            .filter(agent::Column::Slug.eq(&request.agent_slug))
            .one(db)
            .await
            .map_err(db::error)?
        else {
            return Ok(v1::ListExecutionsResponse::default());
        };
        query = query.filter(execution::Column::AgentId.eq(agent.id));
    }
    // Ids are UUIDv7, so they sort by creation time: the id is the page cursor.
    if !request.page_token.is_empty() {
        query = query.filter(execution::Column::Id.lt(&request.page_token));
    }
    let mut rows = query
        .order_by_desc(execution::Column::Id)
        .limit(page_size + 1)
        .all(db)
        .await
        .map_err(db::error)?;
    let next_page_token = crate::paging::next_page(&mut rows, page_size, |r| r.id.clone());
    Ok(v1::ListExecutionsResponse {
        items: view::executions(db, &rows).await?,
        next_page_token,
    })
}

pub async fn logs(
    db: &DatabaseConnection,
    execution_id: &str,
    after_seq: u64,
    page_size: u32,
) -> Result<v1::ListLogsResponse, Error> {
    let page_size = match u64::from(page_size) {
        0 => DEFAULT_LOG_PAGE,
        n => n.min(MAX_LOG_PAGE),
    };
    let mut rows = execution_log::Entity::find()
        .filter(execution_log::Column::ExecutionId.eq(execution_id))
        .filter(execution_log::Column::Seq.gt(i64::try_from(after_seq).unwrap_or(i64::MAX)))
        .order_by_asc(execution_log::Column::Seq)
        .limit(page_size + 1)
        .all(db)
        .await
        .map_err(db::error)?;
    let next_page_token = crate::paging::next_page(&mut rows, page_size, |r| r.seq.to_string());
    Ok(v1::ListLogsResponse {
        items: rows.iter().map(view::log_line).collect(),
        next_page_token,
    })
}

/// Cancels a queued or running execution. A running one is stopped by its node, which hears
/// of it through its report stream.
pub async fn cancel(
    db: &DatabaseConnection,
    hub: &Hub,
    billing: &crate::billing::Billing,
    caller: &Principal,
    id: &str,
) -> Result<v1::Execution, Error> {
    let row = owned(db, caller, id).await?;
    let changed = execution::Entity::update_many()
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Canceled),
        )
        .col_expr(execution::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(execution::Column::Id.eq(id))
        .filter(
            execution::Column::Status.is_in([ExecutionStatus::Queued, ExecutionStatus::Running]),
        )
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed > 0 {
        hub.metrics().ended(ExecutionStatus::Canceled);
        tracing::info!(execution_id = id, previous = %row.status, "execution canceled");
        // The user pays nothing for a canceled run; a failure here is left to reconciliation.
        if let Err(e) = crate::billing::settle(db, billing, id).await {
            tracing::warn!(execution_id = id, error = %e, "settlement after cancel failed");
        }
        super::timings::observe_ended(db, hub.metrics(), id).await;
        hub.ended(id);
    }
    let row = owned(db, caller, id).await?;
    view::one(db, &row).await
}
