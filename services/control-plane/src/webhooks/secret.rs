//! The account's webhook signing secret. It must be readable to sign, so it cannot be hashed;
//! with `FRAMEOS_SECRETS_KEY` set it is sealed at rest under the agent secrets' keyring (ADR
//! 0045: AES-256-GCM, bound to the account) and re-sealed by `frameos secrets rotate`. Without a
//! keyring it is kept in clear; a clear one is sealed the first time it is read with a keyring.
//!
//! Stored form: `sealed:v1:<key id>:<nonce hex>:<ciphertext hex>`, or the clear `whsec_…`.

use frameos_core::Error;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use super::signature;
use crate::db;
use crate::entity::account;
use crate::secrets::Keyring;
use crate::secrets::keyring::Sealed;

const SEALED_PREFIX: &str = "sealed:v1:";
/// The name the seal is bound to, with the account id: lowercase, so never an agent secret's.
const NAME: &str = "webhook_secret";

/// The account's secret, made (once, whichever replica asks first) on first use.
pub async fn secret(
    db: &DatabaseConnection,
    keyring: Option<&Keyring>,
    account_id: &str,
) -> Result<String, Error> {
    // Read first: every attempt signs, and only the first use of an account writes.
    if let Some(stored) = stored(db, account_id).await? {
        let plain = open(keyring, account_id, &stored)?;
        if let Some(keyring) = keyring
            && !is_sealed(&stored)
        {
            // Kept in clear before a keyring was configured: sealed now, unless another
            // replica already replaced it.
            replace(db, account_id, &stored, &seal(keyring, account_id, &plain)?).await?;
        }
        return Ok(plain);
    }
    let kept = kept_form(keyring, account_id, &signature::new_secret())?;
    account::Entity::update_many()
        .col_expr(account::Column::WebhookSecret, Expr::value(kept))
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::WebhookSecret.is_null())
        .exec(db)
        .await
        .map_err(db::error)?;
    // Ours, or the one a concurrent first use wrote.
    let stored = stored(db, account_id)
        .await?
        .ok_or_else(|| Error::internal("the account's webhook secret vanished"))?;
    open(keyring, account_id, &stored)
}

/// Replaces the account's secret by a new one (the old one leaked); the new one, in clear.
pub async fn replace_with_new(
    db: &DatabaseConnection,
    keyring: Option<&Keyring>,
    account_id: &str,
) -> Result<String, Error> {
    let fresh = signature::new_secret();
    let kept = kept_form(keyring, account_id, &fresh)?;
    account::Entity::update_many()
        .col_expr(account::Column::WebhookSecret, Expr::value(kept))
        .filter(account::Column::Id.eq(account_id))
        .exec(db)
        .await
        .map_err(db::error)?;
    tracing::info!(account_id, "webhook secret replaced");
    Ok(fresh)
}

/// What a rotation of the webhook secrets did: (re-sealed, already current, unreadable).
pub async fn rotate(
    db: &DatabaseConnection,
    keyring: &Keyring,
) -> Result<(u64, u64, Vec<String>), Error> {
    let rows = account::Entity::find()
        .filter(account::Column::WebhookSecret.is_not_null())
        .order_by_asc(account::Column::Id)
        .all(db)
        .await
        .map_err(db::error)?;
    let (mut resealed, mut current, mut unreadable) = (0, 0, Vec::new());
    let active = format!("{SEALED_PREFIX}{}:", keyring.active_id());
    for row in rows {
        let Some(stored) = row.webhook_secret else {
            continue;
        };
        if stored.starts_with(&active) {
            current += 1;
            continue;
        }
        let plain = match open(Some(keyring), &row.id, &stored) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(account_id = %row.id, error = %e.message, "webhook secret cannot be re-sealed");
                unreadable.push(format!("account {} webhook secret", row.id));
                continue;
            }
        };
        if replace(db, &row.id, &stored, &seal(keyring, &row.id, &plain)?).await? {
            resealed += 1;
        }
    }
    Ok((resealed, current, unreadable))
}

/// How `plain` is stored: sealed with a keyring, in clear without one.
fn kept_form(keyring: Option<&Keyring>, account_id: &str, plain: &str) -> Result<String, Error> {
    match keyring {
        Some(keyring) => seal(keyring, account_id, plain),
        None => Ok(plain.to_string()),
    }
}

fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

fn seal(keyring: &Keyring, account_id: &str, plain: &str) -> Result<String, Error> {
    let sealed = keyring
        .seal(account_id, NAME, plain)
        .map_err(|e| Error::internal(format!("sealing a webhook secret: {e}")))?;
    Ok(format!(
        "{SEALED_PREFIX}{}:{}:{}",
        sealed.key_id,
        hex::encode(&sealed.nonce),
        hex::encode(&sealed.ciphertext)
    ))
}

fn open(keyring: Option<&Keyring>, account_id: &str, stored: &str) -> Result<String, Error> {
    let Some(sealed) = stored.strip_prefix(SEALED_PREFIX) else {
        return Ok(stored.to_string());
    };
    let keyring = keyring.ok_or_else(|| {
        Error::unavailable("webhook secrets are sealed and FRAMEOS_SECRETS_KEY is not set")
    })?;
    let unreadable = || Error::internal("a stored webhook secret is malformed");
    let mut parts = sealed.splitn(3, ':');
    let (Some(key_id), Some(nonce), Some(ciphertext)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(unreadable());
    };
    let sealed = Sealed {
        key_id: key_id.to_string(),
        nonce: hex::decode(nonce).map_err(|_| unreadable())?,
        ciphertext: hex::decode(ciphertext).map_err(|_| unreadable())?,
    };
    keyring
        .open(account_id, NAME, &sealed)
        .map_err(|e| Error::internal(format!("opening a webhook secret: {e}")))
}

async fn stored(db: &DatabaseConnection, account_id: &str) -> Result<Option<String>, Error> {
    Ok(account::Entity::find_by_id(account_id)
        .one(db)
        .await
        .map_err(db::error)?
        .and_then(|a| a.webhook_secret))
}

/// Replaces `old` by `new` unless the row changed meanwhile; whether it did.
async fn replace(
    db: &DatabaseConnection,
    account_id: &str,
    old: &str,
    new: &str,
) -> Result<bool, Error> {
    let replaced = account::Entity::update_many()
        .col_expr(account::Column::WebhookSecret, Expr::value(new))
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::WebhookSecret.eq(old))
        .exec(db)
        .await
        .map_err(db::error)?;
    Ok(replaced.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(entries: &str) -> Keyring {
        entries.parse().unwrap()
    }

    const K1: &str = "k1:1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "k2:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn sealed_for_one_account_opens_for_it_alone() {
        let ring = keyring(K1);
        let stored = seal(&ring, "acct-a", "whsec_abc").unwrap();
        assert!(stored.starts_with("sealed:v1:k1:"), "{stored}");
        assert!(!stored.contains("whsec_abc"));
        assert_eq!(open(Some(&ring), "acct-a", &stored).unwrap(), "whsec_abc");
        // Bound to the account: copying the column to another account does not move it.
        assert!(open(Some(&ring), "acct-b", &stored).is_err());
        // Without the keyring the platform cannot sign, and says why.
        let err = open(None, "acct-a", &stored).unwrap_err();
        assert_eq!(err.code, frameos_core::ErrorCode::Unavailable);
        assert!(
            err.message.contains("FRAMEOS_SECRETS_KEY"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_clear_secret_reads_as_itself_and_old_keys_still_open() {
        assert_eq!(open(None, "acct-a", "whsec_clear").unwrap(), "whsec_clear");
        let old = seal(&keyring(K1), "acct-a", "whsec_abc").unwrap();
        let rotated = keyring(&format!("{K2},{K1}"));
        assert_eq!(open(Some(&rotated), "acct-a", &old).unwrap(), "whsec_abc");
        assert!(
            seal(&rotated, "acct-a", "whsec_abc")
                .unwrap()
                .starts_with("sealed:v1:k2:")
        );
        assert!(open(Some(&keyring(K2)), "acct-a", &old).is_err());
    }
}
