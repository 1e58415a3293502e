//! The `agent_secrets` table: writing, listing and deleting an agent's secrets, opening them
//! for a run, and re-sealing every one under the active key (rotation). Values only ever leave
//! here opened for a run; nothing logs one.

use chrono::Utc;
use frameos_core::{Error, ErrorCode};
use frameos_proto::v1;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use super::keyring::{Keyring, OpenError, Sealed};
use crate::db;
use crate::entity::{agent, agent_secret};

/// Most secrets one agent may have.
pub const MAX_SECRETS_PER_AGENT: u64 = 100;
/// Most bytes of one value (UTF-8).
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most characters of a name.
pub const MAX_NAME_CHARS: usize = 64;

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::ValidationFailed, message)
}

/// A name like an environment variable's: `[A-Z_][A-Z0-9_]{0,63}`.
pub fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= MAX_NAME_CHARS {
        Ok(())
    } else {
        Err(invalid(format!(
            "secret name {name:?} must be like an environment variable: A-Z, 0-9 and _, not \
             starting with a digit, 1 to {MAX_NAME_CHARS} characters (e.g. API_TOKEN)"
        )))
    }
}

/// 1 to 4096 bytes; the message never quotes the value.
pub fn check_value(value: &str) -> Result<(), Error> {
    match value.len() {
        0 => Err(invalid("the secret's value must not be empty")),
        n if n > MAX_VALUE_BYTES => Err(invalid(format!(
            "the secret's value is {n} bytes; at most {MAX_VALUE_BYTES} bytes of UTF-8 are allowed"
        ))),
        _ => Ok(()),
    }
}

fn unavailable_without_key() -> Error {
    Error::unavailable(
        "secrets cannot be written: the control plane has no FRAMEOS_SECRETS_KEY; an operator \
         must set one (ADR 0045)",
    )
}

fn info(row: &agent_secret::Model) -> v1::SecretInfo {
    v1::SecretInfo {
        name: row.name.clone(),
        updated_at: Some(crate::view::timestamp(row.updated_at)),
    }
}

fn sealed(row: &agent_secret::Model) -> Sealed {
    Sealed {
        key_id: row.key_id.clone(),
        nonce: row.nonce.clone(),
        ciphertext: row.ciphertext.clone(),
    }
}

/// Creates or replaces secret `name` of `agent`, sealed under the active key.
pub async fn put(
    db: &DatabaseConnection,
    keyring: Option<&Keyring>,
    agent: &agent::Model,
    name: &str,
    value: &str,
) -> Result<v1::SecretInfo, Error> {
    check_name(name)?;
    check_value(value)?;
    let keyring = keyring.ok_or_else(unavailable_without_key)?;
    let sealed = keyring
        .seal(&agent.id, name, value)
        .map_err(|e| Error::internal(e.to_string()))?;
    let txn = db.begin().await.map_err(db::error)?;
    // Touching the agent row serializes concurrent writes of one agent's secrets (a row lock
    // on PostgreSQL, the write lock on SQLite), so the count below cannot race.
    agent::Entity::update_many()
        .col_expr(agent::Column::Id, Expr::col(agent::Column::Id))
        .filter(agent::Column::Id.eq(&agent.id))
        .exec(&txn)
        .await
        .map_err(db::error)?;
    let exists = agent_secret::Entity::find_by_id((agent.id.clone(), name.to_string()))
        .one(&txn)
        .await
        .map_err(db::error)?
        .is_some();
    if !exists {
        let count = agent_secret::Entity::find()
            .filter(agent_secret::Column::AgentId.eq(&agent.id))
            .count(&txn)
            .await
            .map_err(db::error)?;
        if count >= MAX_SECRETS_PER_AGENT {
            return Err(invalid(format!(
                "agent {:?} has {count} secrets, the most allowed; delete one first",
                agent.slug
            )));
        }
    }
    let now = Utc::now();
    let row = agent_secret::Model {
        agent_id: agent.id.clone(),
        name: name.to_string(),
        key_id: sealed.key_id,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
        created_at: now,
        updated_at: now,
    };
    let active = agent_secret::ActiveModel {
        agent_id: Set(row.agent_id.clone()),
        name: Set(row.name.clone()),
        key_id: Set(row.key_id.clone()),
        nonce: Set(row.nonce.clone()),
        ciphertext: Set(row.ciphertext.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    agent_secret::Entity::insert(active)
        .on_conflict(
            OnConflict::columns([agent_secret::Column::AgentId, agent_secret::Column::Name])
                .update_columns([
                    agent_secret::Column::KeyId,
                    agent_secret::Column::Nonce,
                    agent_secret::Column::Ciphertext,
                    agent_secret::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db::error)?;
    txn.commit().await.map_err(db::error)?;
    tracing::info!(agent_id = %agent.id, name, key_id = %row.key_id, replaced = exists, "secret written");
    Ok(info(&row))
}

/// The agent's secrets by name, without values.
pub async fn list(db: &DatabaseConnection, agent_id: &str) -> Result<Vec<v1::SecretInfo>, Error> {
    let rows = agent_secret::Entity::find()
        .filter(agent_secret::Column::AgentId.eq(agent_id))
        .order_by_asc(agent_secret::Column::Name)
        .all(db)
        .await
        .map_err(db::error)?;
    Ok(rows.iter().map(info).collect())
}

/// Deletes secret `name` of `agent`: `not_found` when it has none by that name.
pub async fn delete(
    db: &DatabaseConnection,
    agent: &agent::Model,
    name: &str,
) -> Result<(), Error> {
    let deleted = agent_secret::Entity::delete_many()
        .filter(agent_secret::Column::AgentId.eq(&agent.id))
        .filter(agent_secret::Column::Name.eq(name))
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if deleted == 0 {
        return Err(Error::not_found(format!(
            "secret {name:?} of agent {:?}",
            agent.slug
        )));
    }
    tracing::info!(agent_id = %agent.id, name, "secret deleted");
    Ok(())
}

/// The opened secrets of agent `agent_id`, for one claimed run of it. A value that does not
/// open is the platform's failure (a key missing from FRAMEOS_SECRETS_KEY, a damaged row): the
/// run must not start without it, so the claim fails and the node retries it later.
pub async fn for_run(
    db: &DatabaseConnection,
    keyring: Option<&Keyring>,
    agent_id: &str,
) -> Result<Vec<v1::RunSecret>, Error> {
    let rows = agent_secret::Entity::find()
        .filter(agent_secret::Column::AgentId.eq(agent_id))
        .order_by_asc(agent_secret::Column::Name)
        .all(db)
        .await
        .map_err(db::error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let Some(keyring) = keyring else {
        tracing::error!(
            agent_id,
            "agent has secrets but FRAMEOS_SECRETS_KEY is not set"
        );
        return Err(Error::unavailable(
            "the agent's secrets cannot be opened: the control plane has no FRAMEOS_SECRETS_KEY",
        ));
    };
    rows.iter()
        .map(|row| {
            let value = keyring
                .open(&row.agent_id, &row.name, &sealed(row))
                .map_err(|e| {
                    tracing::error!(agent_id, name = %row.name, key_id = %row.key_id, error = %e, "secret does not open");
                    match e {
                        OpenError::UnknownKey { .. } => Error::unavailable(format!(
                            "the agent's secret {:?} cannot be opened: {e}",
                            row.name
                        )),
                        OpenError::NotAuthentic => Error::internal(format!(
                            "the agent's secret {:?} cannot be opened: {e}",
                            row.name
                        )),
                    }
                })?;
            Ok(v1::RunSecret {
                name: row.name.clone(),
                value,
            })
        })
        .collect()
}

/// What a rotation did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The key every secret is now sealed with.
    pub active_key: String,
    /// Re-sealed under the active key by this run.
    pub resealed: u64,
    /// Already sealed under it.
    pub current: u64,
    /// Written anew while this ran (so sealed under the writer's active key): left alone.
    pub changed_meanwhile: u64,
    /// Sealed with keys this keyring does not hold, as `agent_id/NAME (key)`: still unreadable.
    pub unreadable: Vec<String>,
}

/// Re-seals every secret not sealed with the active key under it (agents' secrets and the
/// accounts' webhook signing secrets), so the older keys can be removed from FRAMEOS_SECRETS_KEY. Safe to run while the platform serves: a row is replaced
/// only if it is still the one that was read, so a value written meanwhile is never undone.
pub async fn rotate(db: &DatabaseConnection, keyring: &Keyring) -> Result<Rotation, Error> {
    let active = keyring.active_id();
    let mut rotation = Rotation {
        active_key: active.to_string(),
        current: agent_secret::Entity::find()
            .filter(agent_secret::Column::KeyId.eq(active))
            .count(db)
            .await
            .map_err(db::error)?,
        ..Rotation::default()
    };
    let stale = agent_secret::Entity::find()
        .filter(agent_secret::Column::KeyId.ne(active))
        .order_by_asc(agent_secret::Column::AgentId)
        .order_by_asc(agent_secret::Column::Name)
        .all(db)
        .await
        .map_err(db::error)?;
    for row in stale {
        let value = match keyring.open(&row.agent_id, &row.name, &sealed(&row)) {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(agent_id = %row.agent_id, name = %row.name, key_id = %row.key_id, error = %e, "secret cannot be re-sealed");
                rotation
                    .unreadable
                    .push(format!("{}/{} ({})", row.agent_id, row.name, row.key_id));
                continue;
            }
        };
        let fresh = keyring
            .seal(&row.agent_id, &row.name, &value)
            .map_err(|e| Error::internal(e.to_string()))?;
        let replaced = agent_secret::Entity::update_many()
            .col_expr(agent_secret::Column::KeyId, Expr::value(fresh.key_id))
            .col_expr(agent_secret::Column::Nonce, Expr::value(fresh.nonce))
            .col_expr(
                agent_secret::Column::Ciphertext,
                Expr::value(fresh.ciphertext),
            )
            .filter(agent_secret::Column::AgentId.eq(&row.agent_id))
            .filter(agent_secret::Column::Name.eq(&row.name))
            .filter(agent_secret::Column::KeyId.eq(&row.key_id))
            .filter(agent_secret::Column::Nonce.eq(row.nonce.clone()))
            .exec(db)
            .await
            .map_err(db::error)?
            .rows_affected;
        if replaced == 1 {
            rotation.resealed += 1;
        } else {
            rotation.changed_meanwhile += 1;
        }
    }
    // The accounts' webhook signing secrets are sealed with the same keyring.
    let (resealed, current, unreadable) = crate::webhooks::secret::rotate(db, keyring).await?;
    rotation.resealed += resealed;
    rotation.current += current;
    rotation.unreadable.extend(unreadable);
    tracing::info!(
        active_key = %rotation.active_key,
        resealed = rotation.resealed,
        current = rotation.current,
        changed_meanwhile = rotation.changed_meanwhile,
        unreadable = rotation.unreadable.len(),
        "secrets rotated"
    );
    Ok(rotation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_like_environment_variables() {
        for good in ["A", "_", "API_TOKEN", "X9", "_9", &"A".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "9A", "api_token", "A-B", "A B", "É", &"A".repeat(65)] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationFailed, "{bad}");
        }
    }

    #[test]
    fn values_are_1_to_4096_bytes_and_never_quoted() {
        assert!(check_value("x").is_ok());
        assert!(check_value(&"é".repeat(2048)).is_ok());
        let long = "s3cr3t".repeat(700);
        let e = check_value(&long).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(!e.message.contains("s3cr3t"), "{}", e.message);
        assert_eq!(
            check_value("").unwrap_err().code,
            ErrorCode::ValidationFailed
        );
        assert!(check_value(&"é".repeat(2049)).is_err());
    }
}
