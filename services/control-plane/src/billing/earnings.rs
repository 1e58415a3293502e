//! What each agent has earned its developer: the developer's share of every captured charge,
//! grouped by agent and currency in one statement.

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

/// The earnings of the developer `account_id`, highest first.
pub async fn by_agent(
    db: &DatabaseConnection,
    account_id: &str,
) -> Result<Vec<v1::AgentEarnings>, Error> {
    let backend = db.get_database_backend();
    let (account, captured) = match backend {
        DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = SQL
        .replace("{account}", account)
        .replace("{captured}", captured);
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [account_id.into(), ChargeStatus::Captured.as_str().into()],
    );
    let rows = db.query_all_raw(statement).await.map_err(db::error)?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let agent_id: String = row.try_get("", "agent_id").map_err(db::error)?;
        let currency: String = row.try_get("", "currency").map_err(db::error)?;
        let paid: i64 = row.try_get("", "paid").map_err(db::error)?;
        let earned: Option<i64> = row.try_get("", "earned").map_err(db::error)?;
        items.push(v1::AgentEarnings {
            agent_id,
            currency,
            paid_executions: u64::try_from(paid).unwrap_or(0),
            earned_minor: earned.unwrap_or(0),
            ..Default::default()
        });
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
        b.earned_minor
            .cmp(&a.earned_minor)
            .then_with(|| a.agent_slug.cmp(&b.agent_slug))
    });
    Ok(items)
}
