//! The append-only double-entry ledger. Every transaction's debits equal its credits; entries
//! are only inserted; balances are derived from entries.

use chrono::Utc;
use frameos_core::{Error, ErrorCode};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::db;
use crate::entity::{ledger_entry, ledger_transaction};

mod verify;

pub use verify::{Verification, verify};

pub const PLATFORM: &str = "platform";
pub const ORCHESTRATOR: &str = "orchestrator";
pub const RAIL_FEES: &str = "rail_fees";

pub fn user_account(account_id: &str) -> String {
    format!("user:{account_id}")
}

pub fn developer_account(account_id: &str) -> String {
    format!("developer:{account_id}")
}

/// The parts of a captured gross amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub gross: i64,
    pub developer: i64,
    pub orchestrator: i64,
    pub platform: i64,
    pub rail_fee: i64,
}

/// Posts the capture of one execution: the payer is debited the gross, the developer, the
/// orchestrator side (the calling agent's developer for a child execution, ADR 0040), the
/// platform and the rail's fees are credited their parts. Fails with
/// `conflict` if this execution was posted already (one capture transaction per execution).
pub async fn post_capture<C: ConnectionTrait>(
    txn: &C,
    execution_id: &str,
    currency: &str,
    payer: &str,
    developer: &str,
    orchestrator: Option<&str>,
    parts: Parts,
) -> Result<String, Error> {
    let postings = postings(payer, developer, orchestrator, parts);
    check_balanced(&postings)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    ledger_transaction::Entity::insert(ledger_transaction::ActiveModel {
        id: Set(id.clone()),
        kind: Set("capture".to_string()),
        execution_id: Set(execution_id.to_string()),
        created_at: Set(now),
    })
    .exec(txn)
    .await
    .map_err(|e| {
        db::unique_or(
            e,
            ErrorCode::Conflict,
            format!("execution {execution_id} is posted already"),
        )
    })?;
    let entries =
        postings
            .into_iter()
            .map(|(account, direction, amount)| ledger_entry::ActiveModel {
                transaction_id: Set(id.clone()),
                account: Set(account),
                direction: Set(direction.to_string()),
                amount_minor: Set(amount),
                currency: Set(currency.to_string()),
                created_at: Set(now),
                ..Default::default()
            });
    ledger_entry::Entity::insert_many(entries)
        .exec(txn)
        .await
        .map_err(db::error)?;
    Ok(id)
}

/// The entries of a capture: the payer debited the gross, every non-zero part credited.
pub(crate) fn postings(
    payer: &str,
    developer: &str,
    orchestrator: Option<&str>,
    parts: Parts,
) -> Vec<(String, &'static str, i64)> {
    let mut postings = vec![(user_account(payer), ledger_entry::DEBIT, parts.gross)];
    let orchestrator = orchestrator.map_or_else(|| ORCHESTRATOR.to_string(), developer_account);
    for (account, amount) in [
        (developer_account(developer), parts.developer),
        (orchestrator, parts.orchestrator),
        (PLATFORM.to_string(), parts.platform),
        (RAIL_FEES.to_string(), parts.rail_fee),
    ] {
        if amount > 0 {
            postings.push((account, ledger_entry::CREDIT, amount));
        }
    }
    postings
}

fn check_balanced(postings: &[(String, &str, i64)]) -> Result<(), Error> {
    let mut debits: i64 = 0;
    let mut credits: i64 = 0;
    for (_, direction, amount) in postings {
        if *amount < 0 {
            return Err(Error::internal("a ledger entry cannot be negative"));
        }
        let side = if *direction == ledger_entry::DEBIT {
            &mut debits
        } else {
            &mut credits
        };
        *side = side
            .checked_add(*amount)
            .ok_or_else(|| Error::internal("ledger amount overflow"))?;
    }
    if debits != credits {
        return Err(Error::internal(format!(
            "unbalanced ledger transaction: debits {debits} != credits {credits}"
        )));
    }
    Ok(())
}

/// A ledger account's balance (credits − debits) in one currency, with its latest entries.
pub struct Balance {
    pub balance_minor: i64,
    pub entries: Vec<ledger_entry::Model>,
}

pub async fn balance(
    db: &DatabaseConnection,
    account: &str,
    currency: &str,
    recent: u64,
) -> Result<Balance, Error> {
    let all = ledger_entry::Entity::find()
        .filter(ledger_entry::Column::Account.eq(account))
        .filter(ledger_entry::Column::Currency.eq(currency))
        .order_by_desc(ledger_entry::Column::Id)
        .all(db)
        .await
        .map_err(db::error)?;
    let mut balance: i64 = 0;
    for entry in &all {
        balance = if entry.direction == ledger_entry::CREDIT {
            balance.checked_add(entry.amount_minor)
        } else {
            balance.checked_sub(entry.amount_minor)
        }
        .ok_or_else(|| Error::internal("balance overflow"))?;
    }
    let entries = all
        .into_iter()
        .take(usize::try_from(recent).unwrap_or(usize::MAX))
        .collect();
    Ok(Balance {
        balance_minor: balance,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbalanced_or_negative_postings_are_refused() {
        let ok = [
            ("user:a".to_string(), ledger_entry::DEBIT, 100),
            ("developer:b".to_string(), ledger_entry::CREDIT, 70),
            ("platform".to_string(), ledger_entry::CREDIT, 30),
        ];
        assert!(check_balanced(&ok).is_ok());
        let unbalanced = [
            ("user:a".to_string(), ledger_entry::DEBIT, 100),
            ("platform".to_string(), ledger_entry::CREDIT, 99),
        ];
        assert!(check_balanced(&unbalanced).is_err());
        let negative = [
            ("user:a".to_string(), ledger_entry::DEBIT, -1),
            ("platform".to_string(), ledger_entry::CREDIT, -1),
        ];
        assert!(check_balanced(&negative).is_err());
    }
}
