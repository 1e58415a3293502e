//! Reading executions and their logs, with ownership (another user's execution is not found),
//! and canceling them.

use frameos_core::{ChargeStatus, ExecutionStatus};
use frameos_core::{Error, ErrorCode};
use frameos_proto::ProtoEnum;
use frameos_proto::v1;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QueryResult, QuerySelect, Statement, TryGetable,
};

use super::{Hub, view};
use crate::accounts::auth::Principal;
use crate::db;
use crate::entity::{agent, execution, execution_log};

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

/// The statement behind `view`, up to its one parameter's placeholder: the execution's columns
/// in `execution::Model`'s order, its agent's slug and version, then only the charge columns the
/// view shows (not the signed mandate). Hand-written and read by index because
/// `GET /v1/executions/{id}` is the API's busiest read (ADR 0027): no SQL built per call, no
/// column looked up by a formatted name.
macro_rules! view_sql {
    () => {
        "SELECT e.id, e.account_id, e.agent_id, e.version_id, e.status, e.inputs, e.output, \
         e.error, e.exit_code, e.progress, e.progress_message, e.attempts, e.priority, \
         e.idempotency_key, e.request_hash, e.node_id, e.log_seq, e.log_bytes, e.created_at, \
         e.started_at, e.finished_at, e.claimed_at, e.running_at, e.parent_id, e.root_id, \
         e.depth, a.slug, v.version, c.status, \
         c.amount_minor, c.currency, c.developer_minor, c.platform_minor, c.orchestrator_minor, \
         c.rail_fee_minor \
         FROM executions e \
         LEFT JOIN agent_versions v ON v.id = e.version_id \
         LEFT JOIN agents a ON a.id = v.agent_id \
         LEFT JOIN charges c ON c.execution_id = e.id \
         WHERE e.id = "
    };
}

/// The view of the execution `id` if the caller may see it: the execution, its agent's slug,
/// its version and its charge in one prepared statement, then the executions it called.
pub async fn view(
    db: &DatabaseConnection,
    caller: &Principal,
    id: &str,
) -> Result<v1::Execution, Error> {
    full(db, id, |row| {
        caller.is_admin() || row.account_id == caller.account_id
    })
    .await?
    .ok_or_else(|| Error::not_found(format!("execution {id:?}")))
}

/// The whole view of `id` (with its children) when `may_see` its row; what a webhook sends.
pub async fn full(
    db: &DatabaseConnection,
    id: &str,
    may_see: impl FnOnce(&execution::Model) -> bool,
) -> Result<Option<v1::Execution>, Error> {
    let Some(found) = viewed(db, id).await?.filter(|found| may_see(&found.row)) else {
        return Ok(None);
    };
    let mut view = found.view;
    view.children = view::children(db, id).await?;
    Ok(Some(view))
}

/// An execution read with everything its view shows, in one statement.
pub struct Viewed {
    pub row: execution::Model,
    pub view: v1::Execution,
    /// The status of its charge, if it has one.
    pub charge: Option<ChargeStatus>,
}

/// The execution `id` and its view (agent slug, version, charge), whoever owns it.
pub async fn viewed(db: &DatabaseConnection, id: &str) -> Result<Option<Viewed>, Error> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => concat!(view_sql!(), "$1"),
        _ => concat!(view_sql!(), "?"),
    };
    let statement = Statement::from_sql_and_values(backend, sql, [id.into()]);
    let Some(found) = db.query_one_raw(statement).await.map_err(db::error)? else {
        return Ok(None);
    };
    let mut columns = Columns {
        row: &found,
        next: 0,
    };
    let row = execution::Model {
        id: columns.read()?,
        account_id: columns.read()?,
        agent_id: columns.read()?,
        version_id: columns.read()?,
        status: columns.read()?,
        inputs: columns.read()?,
        output: columns.read()?,
        error: columns.read()?,
        exit_code: columns.read()?,
        progress: columns.read()?,
        progress_message: columns.read()?,
        attempts: columns.read()?,
        priority: columns.read()?,
        idempotency_key: columns.read()?,
        request_hash: columns.read()?,
        node_id: columns.read()?,
        log_seq: columns.read()?,
        log_bytes: columns.read()?,
        created_at: columns.read()?,
        started_at: columns.read()?,
        finished_at: columns.read()?,
        claimed_at: columns.read()?,
        running_at: columns.read()?,
        parent_id: columns.read()?,
        root_id: columns.read()?,
        depth: columns.read()?,
    };
    let slug: Option<String> = columns.read()?;
    let version: Option<String> = columns.read()?;
    let mut execution = view::execution(
        &row,
        slug.as_deref().unwrap_or_default(),
        version.as_deref().unwrap_or_default(),
    );
    // Every charge has a status: a null one is the left join finding none.
    let charge: Option<ChargeStatus> = columns.read()?;
    if let Some(status) = charge {
        let amount_minor = columns.read()?;
        let currency = columns.read()?;
        let splits = [
            columns.read()?,
            columns.read()?,
            columns.read()?,
            columns.read()?,
        ];
        execution.charge = Some(view::charge_of(status, amount_minor, currency, splits));
    }
    Ok(Some(Viewed {
        row,
        view: execution,
        charge,
    }))
}

/// A result row read column by column in select order.
struct Columns<'a> {
    row: &'a QueryResult,
    next: usize,
}

impl Columns<'_> {
    fn read<T: TryGetable>(&mut self) -> Result<T, Error> {
        let value = self.row.try_get_by_index(self.next).map_err(db::error)?;
        self.next += 1;
        Ok(value)
    }
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
    if super::tree::end_canceled(db, hub, billing, id, None).await? {
        tracing::info!(execution_id = id, previous = %row.status, "execution canceled");
    }
    // Its children too, also when it had ended on its own before a child did.
    super::tree::cancel_children(db, hub, billing, id).await?;
    let row = owned(db, caller, id).await?;
    view::one(db, &row).await
}

/// Cancels every queued or running execution of `agent_id` (and the calls they made), each
/// voided and ended with `why` as its error: a ban (ADR 0044). Returns how many ended here.
pub async fn cancel_agent_runs(
    db: &DatabaseConnection,
    hub: &Hub,
    billing: &crate::billing::Billing,
    agent_id: &str,
    why: &str,
) -> Result<usize, Error> {
    let live = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::AgentId.eq(agent_id))
        .filter(
            execution::Column::Status.is_in([ExecutionStatus::Queued, ExecutionStatus::Running]),
        )
        .into_tuple::<String>()
        .all(db)
        .await
        .map_err(db::error)?;
    let mut canceled = 0;
    for id in live {
        if super::tree::end_canceled(db, hub, billing, &id, Some(why)).await? {
            tracing::info!(execution_id = %id, agent_id, "execution canceled by a ban");
            canceled += 1;
        }
        super::tree::cancel_children(db, hub, billing, &id).await?;
    }
    Ok(canceled)
}
