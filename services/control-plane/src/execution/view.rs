//! Execution rows → gRPC messages, with the agent slug and version string attached.

use frameos_core::ChargeStatus;
use std::collections::HashMap;

use frameos_core::Error;
use frameos_proto::{ProtoEnum, v1};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect};

use crate::db;
use crate::entity::{agent, agent_version, charge, execution, execution_log};
use crate::view::timestamp;

pub fn charge(row: &charge::Model) -> v1::Charge {
    charge_of(
        row.status,
        row.amount_minor,
        row.currency.clone(),
        [
            row.developer_minor,
            row.platform_minor,
            row.orchestrator_minor,
            row.rail_fee_minor,
        ],
    )
}

/// A charge's view from the columns it shows; `splits` are the developer's, the platform's,
/// the orchestrator's and the rail's shares, shown once captured.
pub fn charge_of(
    status: ChargeStatus,
    amount_minor: i64,
    currency: String,
    splits: [Option<i64>; 4],
) -> v1::Charge {
    let [developer, platform, orchestrator, rail_fee] = splits.map(|s| s.unwrap_or(0));
    v1::Charge {
        status: status.to_proto(),
        amount_minor,
        currency,
        splits: (status == ChargeStatus::Captured).then_some(v1::Splits {
            developer,
            platform,
            orchestrator,
            rail_fee,
        }),
    }
}

pub fn execution(row: &execution::Model, slug: &str, version: &str) -> v1::Execution {
    let duration_ms = match (row.started_at, row.finished_at) {
        (Some(start), Some(end)) => u64::try_from((end - start).num_milliseconds()).ok(),
        _ => None,
    };
    v1::Execution {
        id: row.id.clone(),
        agent_slug: slug.to_string(),
        version: version.to_string(),
        status: row.status.to_proto(),
        inputs_json: row.inputs.clone(),
        output_json: row.output.clone(),
        error: row.error.clone(),
        exit_code: row.exit_code,
        progress: row.progress,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        created_at: Some(timestamp(row.created_at)),
        started_at: row.started_at.map(timestamp),
        finished_at: row.finished_at.map(timestamp),
        progress_message: row.progress_message.clone(),
        duration_ms,
        account_id: row.account_id.clone(),
        charge: None,
        timings: super::timings::Phases::of(row).to_proto(),
        parent_id: row.parent_id.clone(),
        root_id: row.root_id.clone(),
        children: Vec::new(),
    }
}

/// The executions `parent_id` called, oldest first, as its view lists them.
pub async fn children(db: &DatabaseConnection, parent_id: &str) -> Result<Vec<v1::Child>, Error> {
    let rows = super::tree::children(db, parent_id)
        .await
        .map_err(db::error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    Ok(executions(db, &rows)
        .await?
        .into_iter()
        .map(|child| v1::Child {
            id: child.id,
            agent_slug: child.agent_slug,
            version: child.version,
            status: child.status,
            charge: child.charge,
        })
        .collect())
}

/// Views of many executions, loading their agents and versions in two queries.
pub async fn executions(
    db: &DatabaseConnection,
    rows: &[execution::Model],
) -> Result<Vec<v1::Execution>, Error> {
    let agents: HashMap<String, String> = agent::Entity::find()
        .filter(agent::Column::Id.is_in(rows.iter().map(|r| r.agent_id.as_str())))
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .map(|a| (a.id, a.slug))
        .collect();
    let versions: HashMap<String, String> = agent_version::Entity::find()
        .filter(agent_version::Column::Id.is_in(rows.iter().map(|r| r.version_id.as_str())))
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .map(|v| (v.id, v.version))
        .collect();
    let charges: HashMap<String, charge::Model> = charge::Entity::find()
        .filter(charge::Column::ExecutionId.is_in(rows.iter().map(|r| r.id.as_str())))
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .map(|c| (c.execution_id.clone(), c))
        .collect();
    Ok(rows
        .iter()
        .map(|row| {
            let mut view = execution(
                row,
                agents.get(&row.agent_id).map_or("", String::as_str),
                versions.get(&row.version_id).map_or("", String::as_str),
            );
            view.charge = charges.get(&row.id).map(charge);
            view
        })
        .collect())
}

/// The view of one execution: its agent's slug and version in one query, its charge in another.
pub async fn one(db: &DatabaseConnection, row: &execution::Model) -> Result<v1::Execution, Error> {
    let of_agent = agent_version::Entity::belongs_to(agent::Entity)
        .from(agent_version::Column::AgentId)
        .to(agent::Column::Id)
        .into();
    let names: Option<(String, String)> = agent_version::Entity::find_by_id(&row.version_id)
        .select_only()
        .column(agent::Column::Slug)
        .column(agent_version::Column::Version)
        .join(JoinType::InnerJoin, of_agent)
        .into_tuple()
        .one(db)
        .await
        .map_err(db::error)?;
    let (slug, version) = names.unwrap_or_default();
    let charge = charge::Entity::find()
        .filter(charge::Column::ExecutionId.eq(&row.id))
        .one(db)
        .await
        .map_err(db::error)?;
    let mut view = execution(row, &slug, &version);
    view.charge = charge.as_ref().map(self::charge);
    view.children = children(db, &row.id).await?;
    Ok(view)
}

pub fn log_line(row: &execution_log::Model) -> v1::LogLine {
    v1::LogLine {
        seq: u64::try_from(row.seq).unwrap_or(0),
        stream: row.stream.to_proto(),
        line: row.line.clone(),
        ts: Some(timestamp(row.ts)),
    }
}
