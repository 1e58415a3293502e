//! The sandbox rail's own records, read and planted with plain SQL: what the "processor" knows,
//! independent of the control plane's charges and ledger.

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement, TransactionTrait, Value};
use serde_json::json;
use sha2::{Digest, Sha256};

/// One hold (authorization) as the rail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub idempotency_key: String,
    pub amount_minor: i64,
    pub currency: String,
    /// `authorized`, `captured` or `voided`.
    pub state: String,
}

/// One request in the rail's request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: String,
    pub idempotency_key: String,
    pub authorization_id: Option<String>,
    pub outcome: String,
}

const STATE: &str = "SELECT record FROM sandbox_rail_authorizations WHERE id = 'state'";

/// Every hold the rail knows.
pub async fn holds(database_url: &str) -> anyhow::Result<Vec<Hold>> {
    let db = Database::connect(database_url).await?;
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), STATE))
        .await?
        .context("the rail has no records")?;
    let record: String = row.try_get("", "record")?;
    db.close().await?;
    let state: serde_json::Value = serde_json::from_str(&record)?;
    let authorizations = state["authorizations"]
        .as_object()
        .context("authorizations")?;
    Ok(authorizations
        .values()
        .map(|a| Hold {
            id: a["id"].as_str().unwrap_or_default().to_string(),
            idempotency_key: a["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            amount_minor: a["amount_minor"].as_i64().unwrap_or_default(),
            currency: a["currency"].as_str().unwrap_or_default().to_string(),
            state: a["state"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
        .collect())
}

/// How many holds are in `state`.
pub fn count(holds: &[Hold], state: &str) -> usize {
    holds.iter().filter(|h| h.state == state).count()
}

/// The rail's request log, oldest first.
pub async fn calls(database_url: &str) -> anyhow::Result<Vec<Call>> {
    let db = Database::connect(database_url).await?;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT operation, idempotency_key, authorization_id, outcome \
             FROM sandbox_rail_calls ORDER BY id",
        ))
        .await?;
    db.close().await?;
    rows.into_iter()
        .map(|row| {
            Ok(Call {
                operation: row.try_get("", "operation")?,
                idempotency_key: row.try_get("", "idempotency_key")?,
                authorization_id: row.try_get("", "authorization_id")?,
                outcome: row.try_get("", "outcome")?,
            })
        })
        .collect()
}

/// Places a hold directly at the rail, as a request that authorized and then died before its
/// commit would have left it: `authorize:{execution_id}`, placed `age` ago. Returns its id.
pub async fn plant_hold(
    database_url: &str,
    execution_id: &str,
    amount_minor: i64,
    age: chrono::Duration,
) -> anyhow::Result<String> {
    let key = format!("authorize:{execution_id}");
    let id = format!(
        "auth_{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..24]
    );
    edit_records(database_url, |state| {
        state["authorizations"][&id] = json!({
            "id": id,
            "idempotency_key": key,
            "payer": "planted-payer",
            "amount_minor": amount_minor,
            "currency": "INR",
            "state": {"status": "authorized"},
            "created_at": chrono::Utc::now() - age,
        });
    })
    .await?;
    Ok(id)
}

/// Releases a hold at the rail behind the platform's back (as an operator's dashboard could).
pub async fn void_at_the_rail(database_url: &str, hold: &str) -> anyhow::Result<()> {
    edit_records(database_url, |state| {
        state["authorizations"][hold]["state"] = json!({"status": "voided"});
    })
    .await
}

/// Changes the rail's records under the rail's own lock, so no call of it interleaves.
async fn edit_records(
    database_url: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> anyhow::Result<()> {
    let db = Database::connect(database_url).await?;
    let backend = db.get_database_backend();
    let txn = db.begin().await?;
    let lock = if backend == DatabaseBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = txn
        .query_one_raw(Statement::from_string(backend, format!("{STATE}{lock}")))
        .await?
        .context("the rail has no records")?;
    let record: String = row.try_get("", "record")?;
    let mut state: serde_json::Value = serde_json::from_str(&record)?;
    edit(&mut state);
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "UPDATE sandbox_rail_authorizations SET record = $1 WHERE id = 'state'"
        }
        _ => "UPDATE sandbox_rail_authorizations SET record = ? WHERE id = 'state'",
    };
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(state.to_string())],
    ))
    .await?;
    txn.commit().await?;
    db.close().await?;
    Ok(())
}
