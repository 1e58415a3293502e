//! `frameos ledger verify`: the ledger's invariants, checked from the tables alone. Every
//! transaction balances; every entry is a positive debit or credit of a known currency that
//! belongs to an existing transaction; a captured charge has exactly the capture transaction its
//! recorded split implies (so an edited, missing or extra entry shows even when the sums still
//! balance); nothing else has one. Call trees (API.md §5.1): no charge is captured above its
//! own mandate, and what a tree captured stays within its root mandate's budget.

use frameos_core::ChargeStatus;
use std::collections::{HashMap, HashSet};

use frameos_core::Error;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use super::{Parts, postings};
use crate::db;
use crate::entity::{charge, execution, ledger_entry, ledger_transaction};

/// What `frameos ledger verify` found. Clean when every list is empty and the totals agree.
#[derive(Debug, Default, serde::Serialize)]
pub struct Verification {
    pub transactions: u64,
    pub entries: u64,
    pub total_debits: i64,
    pub total_credits: i64,
    /// Transactions whose debits differ from their credits, or that move nothing.
    pub unbalanced_transactions: Vec<String>,
    /// Captured charges (execution ids) with no capture transaction.
    pub captures_without_transaction: Vec<String>,
    /// Capture transactions (execution ids) whose charge is not captured, or missing.
    pub transactions_without_capture: Vec<String>,
    /// Voided charges (execution ids) with a capture transaction.
    pub voided_with_transaction: Vec<String>,
    /// Capture transactions (execution ids) whose entries are not the ones the charge's
    /// recorded split implies: an entry edited, missing, added or moved to another account.
    pub transactions_not_matching_charge: Vec<String>,
    /// Entries (ids) that are not a positive debit or credit in a known currency.
    pub malformed_entries: Vec<i64>,
    /// Entries (ids) whose transaction does not exist.
    pub entries_without_transaction: Vec<i64>,
    /// Captured charges (execution ids) above the amount of their own mandate, or whose mandate
    /// is unreadable.
    pub captures_above_mandate: Vec<String>,
    /// Roots (execution ids) whose tree captured more than the root mandate's budget.
    pub trees_over_budget: Vec<String>,
}

impl Verification {
    pub fn is_clean(&self) -> bool {
        self.total_debits == self.total_credits
            && self.unbalanced_transactions.is_empty()
            && self.captures_without_transaction.is_empty()
            && self.transactions_without_capture.is_empty()
            && self.voided_with_transaction.is_empty()
            && self.transactions_not_matching_charge.is_empty()
            && self.malformed_entries.is_empty()
            && self.entries_without_transaction.is_empty()
            && self.captures_above_mandate.is_empty()
            && self.trees_over_budget.is_empty()
    }
}

/// One entry as compared with what a charge implies.
type Posting = (String, String, i64, String);

pub async fn verify(db: &DatabaseConnection) -> Result<Verification, Error> {
    let mut report = Verification::default();
    let transactions = ledger_transaction::Entity::find()
        .all(db)
        .await
        .map_err(db::error)?;
    report.transactions = transactions.len() as u64;
    let known: HashSet<&str> = transactions.iter().map(|t| t.id.as_str()).collect();

    // Per transaction: debits, credits and the entries themselves.
    let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
    let mut entries_of: HashMap<String, Vec<Posting>> = HashMap::new();
    let entries = ledger_entry::Entity::find()
        .all(db)
        .await
        .map_err(db::error)?;
    for e in entries {
        report.entries += 1;
        let well_formed = e.amount_minor > 0
            && [ledger_entry::DEBIT, ledger_entry::CREDIT].contains(&e.direction.as_str())
            && frameos_billing::Currency::parse(&e.currency).is_ok();
        if !well_formed {
            report.malformed_entries.push(e.id);
        }
        if !known.contains(e.transaction_id.as_str()) {
            report.entries_without_transaction.push(e.id);
        }
        let sum = sums.entry(e.transaction_id.clone()).or_default();
        if e.direction == ledger_entry::DEBIT {
            sum.0 = sum.0.saturating_add(e.amount_minor);
            report.total_debits = report.total_debits.saturating_add(e.amount_minor);
        } else {
            sum.1 = sum.1.saturating_add(e.amount_minor);
            report.total_credits = report.total_credits.saturating_add(e.amount_minor);
        }
        entries_of.entry(e.transaction_id).or_default().push((
            e.account,
            e.direction,
            e.amount_minor,
            e.currency,
        ));
    }

    let mut posted: HashMap<String, String> = HashMap::new();
    for t in transactions {
        let (debits, credits) = sums.get(&t.id).copied().unwrap_or_default();
        if debits != credits || debits == 0 {
            report.unbalanced_transactions.push(t.id.clone());
        }
        posted.insert(t.execution_id, t.id);
    }

    let charges = charge::Entity::find().all(db).await.map_err(db::error)?;
    check_trees(db, &charges, &mut report).await?;
    let mut captured = HashSet::new();
    for c in charges {
        match c.status {
            ChargeStatus::Captured => {
                captured.insert(c.execution_id.clone());
                match posted.get(&c.execution_id) {
                    None => report.captures_without_transaction.push(c.execution_id),
                    Some(transaction) => {
                        let mut found = entries_of.remove(transaction).unwrap_or_default();
                        let mut expected = implied_postings(&c);
                        found.sort();
                        expected.sort();
                        if found != expected {
                            report.transactions_not_matching_charge.push(c.execution_id);
                        }
                    }
                }
            }
            ChargeStatus::Voided if posted.contains_key(&c.execution_id) => {
                report.voided_with_transaction.push(c.execution_id);
            }
            _ => {}
        }
    }
    for execution_id in posted.into_keys() {
        if !captured.contains(&execution_id) {
            report.transactions_without_capture.push(execution_id);
        }
    }
    for list in [
        &mut report.unbalanced_transactions,
        &mut report.captures_without_transaction,
        &mut report.transactions_without_capture,
        &mut report.voided_with_transaction,
        &mut report.transactions_not_matching_charge,
    ] {
        list.sort();
    }
    report.malformed_entries.sort_unstable();
    report.entries_without_transaction.sort_unstable();
    Ok(report)
}

/// Every captured charge within its own mandate; every tree's captures within its root's.
async fn check_trees(
    db: &DatabaseConnection,
    charges: &[charge::Model],
    report: &mut Verification,
) -> Result<(), Error> {
    let by_execution: HashMap<&str, &charge::Model> = charges
        .iter()
        .map(|c| (c.execution_id.as_str(), c))
        .collect();
    // The tree of each captured charge: its root's id (itself for a root).
    let mut roots: HashMap<String, String> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .column(execution::Column::RootId)
        .filter(execution::Column::RootId.is_not_null())
        .into_tuple::<(String, String)>()
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .collect();
    let mut captured_in: HashMap<String, i64> = HashMap::new();
    for c in charges
        .iter()
        .filter(|c| c.status == ChargeStatus::Captured)
    {
        if c.mandated_minor()
            .is_none_or(|allowed| c.amount_minor > allowed)
        {
            report.captures_above_mandate.push(c.execution_id.clone());
        }
        let root = roots
            .remove(&c.execution_id)
            .unwrap_or_else(|| c.execution_id.clone());
        let sum = captured_in.entry(root).or_default();
        *sum = sum.saturating_add(c.amount_minor);
    }
    for (root, sum) in captured_in {
        let budget = by_execution
            .get(root.as_str())
            .and_then(|c| c.mandated_minor());
        if budget.is_none_or(|budget| sum > budget) {
            report.trees_over_budget.push(root);
        }
    }
    report.captures_above_mandate.sort();
    report.trees_over_budget.sort();
    Ok(())
}

/// The entries a captured charge's recorded split implies, in its currency.
fn implied_postings(c: &charge::Model) -> Vec<Posting> {
    let parts = Parts {
        gross: c.amount_minor,
        developer: c.developer_minor.unwrap_or_default(),
        orchestrator: c.orchestrator_minor.unwrap_or_default(),
        platform: c.platform_minor.unwrap_or_default(),
        rail_fee: c.rail_fee_minor.unwrap_or_default(),
    };
    postings(
        &c.payer_account,
        &c.payee_account,
        c.orchestrator_account.as_deref(),
        parts,
    )
    .into_iter()
    .map(|(account, direction, amount)| {
        (account, direction.to_string(), amount, c.currency.clone())
    })
    .collect()
}
