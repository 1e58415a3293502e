//! What each agent has earned its developer: the developer's share of every captured charge of
//! its runs, and the orchestrator share of every captured charge of the agents it called (ADR
//! 0040), grouped by agent and currency, one statement each.

use std::collections::HashMap;

use frameos_core::{ChargeStatus, Error};
use frameos_proto::v1;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};

use crate::db;
use crate::entity::agent;

/// `CAST(SUM … AS BIGINT)`: PostgreSQL sums a bigint column to numeric.
const SQL: &str = "SELECT e.agent_id, c.currency, COUNT(*) AS paid, \
     CAST(SUM(c.developer_minor) AS BIGINT) AS earned \
     FROM charges c JOIN executions e ON e.id = c.execution_id \
     WHERE c.payee_account = {account} AND c.status = {captured} \
     GROUP BY e.agent_id, c.currency";

/// The calls: a child's charge names the calling agent's developer; its parent, the agent.
const CALLS_SQL: &str = "SELECT p.agent_id, c.currency, COUNT(*) AS paid, \
     CAST(SUM(c.orchestrator_minor) AS BIGINT) AS earned \
     FROM charges c JOIN executions e ON e.id = c.execution_id \
     JOIN executions p ON p.id = e.parent_id \
     WHERE c.orchestrator_account = {account} AND c.status = {captured} \
     GROUP BY p.agent_id, c.currency";

/// `(agent_id, currency, paid, earned)` rows of `sql` for `account_id`.
async fn sums(
    db: &DatabaseConnection,
    sql: &str,
    account_id: &str,
) -> Result<Vec<(String, String, u64, i64)>, Error> {
    let backend = db.get_database_backend();
    let (account, captured) = match backend {
        DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = sql
        .replace("{account}", account)
        .replace("{captured}", captured);
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [account_id.into(), ChargeStatus::Captured.as_str().into()],
    );
    let rows = db.query_all_raw(statement).await.map_err(db::error)?;
    rows.iter()
        .map(|row| {
            let paid: i64 = row.try_get("", "paid")?;
            let earned: Option<i64> = row.try_get("", "earned")?;
            Ok((
                row.try_get("", "agent_id")?,
                row.try_get("", "currency")?,
                u64::try_from(paid).unwrap_or(0),
                earned.unwrap_or(0),
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(db::error)
}

/// The earnings of the developer `account_id`, highest first.
pub async fn by_agent(
    db: &DatabaseConnection,
    account_id: &str,
) -> Result<Vec<v1::AgentEarnings>, Error> {
    let mut items: Vec<v1::AgentEarnings> = sums(db, SQL, account_id)
        .await?
        .into_iter()
        .map(|(agent_id, currency, paid, earned)| v1::AgentEarnings {
            agent_id,
            currency,
            paid_executions: paid,
            earned_minor: earned,
            ..Default::default()
        })
        .collect();
    for (agent_id, currency, paid, earned) in sums(db, CALLS_SQL, account_id).await? {
        let index = match items
            .iter()
            .position(|i| i.agent_id == agent_id && i.currency == currency)
        {
            Some(index) => index,
            None => {
                items.push(v1::AgentEarnings {
                    agent_id,
                    currency,
                    ..Default::default()
                });
                items.len() - 1
            }
        };
        items[index].paid_calls = paid;
        items[index].orchestrator_minor = earned;
    }
    let agents: HashMap<String, agent::Model> = agent::Entity::find()
        .filter(agent::Column::Id.is_in(items.iter().map(|i| i.agent_id.as_str())))
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    for item in &mut items {
        if let Some(agent) = agents.get(&item.agent_id) {
            item.agent_slug.clone_from(&agent.slug);
            item.agent_name.clone_from(&agent.name);
        }
    }
    items.sort_by(|a, b| {
        (b.earned_minor + b.orchestrator_minor)
            .cmp(&(a.earned_minor + a.orchestrator_minor))
            .then_with(|| a.agent_slug.cmp(&b.agent_slug))
    });
    Ok(items)
}
