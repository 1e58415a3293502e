//! `ctx.call` on the control plane (API.md §5.1, ADR 0040): a running execution's call becomes
//! a child execution, queued with the parent's priority and paid from the root's mandate, and
//! the caller waits for its end.
//!
//! A call is idempotent by the parent, the runner's call number and the request: the same call
//! of a retried attempt (a killed node, a hand-back) finds the child of the first attempt
//! instead of running and charging it again.

use chrono::{SubsecRound, Utc};
use frameos_core::{ChargeStatus, Error, ErrorCode, ExecutionStatus, PricingModel};
use frameos_proto::v1;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::intake::Queued;
use super::{Hub, system_log, tree};
use crate::agents::dependencies;
use crate::db;
use crate::entity::{agent, agent_version, charge, execution, execution_claim, outbox};

/// Creates the child execution of the call, or finds the one a former attempt created: its
/// id. A refusal carries the code the agent sees (`undeclared_dependency`, `budget_exceeded`,
/// `cycle`, `too_deep`, `invalid_inputs`, `invalid_dependency`, `payment_declined`); a failure
/// of the platform is `unavailable` or `internal`, and calling again is safe.
pub async fn start(
    db: &DatabaseConnection,
    billing: &crate::billing::Billing,
    request: &v1::CallAgentRequest,
) -> Result<String, Error> {
    let inputs: serde_json::Value = serde_json::from_str(&request.inputs_json).map_err(|e| {
        Error::new(
            ErrorCode::InvalidRequest,
            format!("the call's inputs are not valid JSON: {e}"),
        )
    })?;
    let parent = calling(db, request).await?;
    let slug = request.agent_slug.as_str();
    let key = call_key(&parent.id, request.call_id, slug, &inputs);
    if let Some(existing) = find(db, &parent.account_id, &key).await? {
        return Ok(existing.id);
    }

    if parent.depth >= tree::MAX_DEPTH {
        return Err(Error::new(
            ErrorCode::TooDeep,
            format!(
                "calling {slug:?} would nest executions deeper than {}",
                tree::MAX_DEPTH
            ),
        ));
    }
    let parent_version = agent_version::Entity::find_by_id(&parent.version_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the calling execution's version vanished"))?;
    let declared = tree::declared(&parent_version.manifest_json()?);
    let Some(range) = declared.get(slug) else {
        return Err(Error::new(
            ErrorCode::UndeclaredDependency,
            format!("{slug:?} is not among this agent's declared dependencies"),
        ));
    };
    let dependencies::Resolved {
        agent: callee,
        version,
    } = dependencies::resolve(db, slug, range).await?;
    if tree::ancestors_agents(db, &parent)
        .await
        .map_err(db::error)?
        .contains(&callee.id)
    {
        return Err(Error::new(
            ErrorCode::Cycle,
            format!("{slug:?} is already running further up this call tree"),
        ));
    }
    let manifest = version.manifest_json()?;
    frameos_package::manifest::validate_json(&manifest["inputs"], &inputs).map_err(|e| {
        Error::new(
            ErrorCode::InvalidInputs,
            format!("inputs do not match {slug:?}'s input schema: {e}"),
        )
    })?;
    let caller_agent = agent::Entity::find_by_id(&parent.agent_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the calling agent vanished"))?;

    let root_id = parent.root_id.clone().unwrap_or_else(|| parent.id.clone());
    let now = Utc::now().trunc_subsecs(6);
    let id = uuid::Uuid::now_v7().to_string();
    // PostgreSQL: the budget check, the hold and the rows in one transaction that locks the
    // root's charge. SQLite (`frameos dev`, one writer) takes the hold before its transaction:
    // the rail writes through another connection, which a writing transaction would block.
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let lock = if postgres {
        Some(db.begin().await.map_err(db::error)?)
    } else {
        None
    };
    let held = match paid(&callee) {
        Some((price, currency)) => {
            let hold = Hold {
                id: &id,
                parent: &parent,
                root_id: &root_id,
                orchestrator: &caller_agent.owner_id,
                payee: &callee.owner_id,
                price,
                currency,
                max_amount_minor: request.max_amount_minor,
            };
            Some(match &lock {
                Some(txn) => hold_budget(txn, billing, hold).await?,
                None => hold_budget(db, billing, hold).await?,
            })
        }
        None => None,
    };
    let txn = match lock {
        Some(txn) => txn,
        None => db.begin().await.map_err(db::error)?,
    };
    let (row, message) = Queued {
        id: &id,
        account_id: &parent.account_id,
        agent_id: &callee.id,
        version_id: &version.id,
        inputs: &inputs,
        priority: parent.priority,
        idempotency: Some((key.clone(), hex::encode(Sha256::digest(key.as_bytes())))),
        parent: Some((&parent.id, &root_id)),
        depth: parent.depth + 1,
        now,
    }
    .rows();
    let written = async {
        execution::Entity::insert(row)
            .exec_without_returning(&txn)
            .await?;
        if let Some(charge) = &held {
            charge::Entity::insert(charge.clone())
                .exec_without_returning(&txn)
                .await?;
        }
        outbox::Entity::insert(message)
            .exec_without_returning(&txn)
            .await?;
        let line = format!(
            "call {}: {slug} {} started as execution {id}",
            request.call_id, version.version
        );
        system_log::append(&txn, &parent.id, &line).await?;
        txn.commit().await
    }
    .await;
    if let Err(e) = written {
        super::create::release(billing, &id, held.as_ref()).await;
        // The same call raced in from a retried request: the winner's child is this call's.
        if matches!(
            e.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) && let Some(existing) = find(db, &parent.account_id, &key).await?
        {
            return Ok(existing.id);
        }
        return Err(db::error(e));
    }
    if held.is_some() {
        billing.metrics().charge(ChargeStatus::Authorized);
    }
    tracing::info!(
        execution_id = %id,
        parent_id = %parent.id,
        %root_id,
        agent = slug,
        version = %version.version,
        "child execution queued"
    );
    Ok(id)
}

/// Waits until the child ended: its output, or `child_failed` with its status and error. Its
/// charge is settled first (settling is idempotent), so the caller's next call sees a voided
/// child's budget free again.
pub async fn wait(
    db: &DatabaseConnection,
    hub: &Hub,
    billing: &crate::billing::Billing,
    child_id: &str,
) -> Result<v1::CallEnded, Error> {
    let mut subscription = hub.subscribe(child_id);
    let child = loop {
        let row = execution::Entity::find_by_id(child_id)
            .one(db)
            .await
            .map_err(db::error)?
            .ok_or_else(|| Error::internal("the child execution vanished"))?;
        if row.status.is_terminal() {
            break row;
        }
        // Woken by this replica or another's announcement; the poll covers a lost one.
        let _ = tokio::time::timeout(hub.poll(), subscription.changed()).await;
    };
    if let Err(e) = crate::billing::settle(db, billing, child_id).await {
        tracing::warn!(%child_id, error = %e, "settling the child failed; reconciliation will retry");
    }
    let result = if child.status == ExecutionStatus::Succeeded {
        v1::call_ended::Result::OutputJson(child.output.clone().unwrap_or_else(|| "null".into()))
    } else {
        use frameos_proto::ProtoEnum;
        v1::call_ended::Result::Error(v1::CallError {
            code: ErrorCode::ChildFailed.as_str().to_string(),
            message: format!(
                "the called execution {} ended {}{}",
                child.id,
                child.status,
                child
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            status: Some(child.status.to_proto()),
        })
    };
    if let Some(parent_id) = &child.parent_id {
        let line = format!("call ended: execution {} {}", child.id, child.status);
        match system_log::append(db, parent_id, &line).await {
            Ok(()) => hub.touch(parent_id),
            Err(e) => {
                tracing::warn!(%parent_id, error = %e, "the call's end was not written to the parent's log");
            }
        }
    }
    Ok(v1::CallEnded {
        child_id: Some(child.id),
        result: Some(result),
    })
}

/// The calling execution, if `request` comes from the attempt that runs it now.
async fn calling(
    db: &DatabaseConnection,
    request: &v1::CallAgentRequest,
) -> Result<execution::Model, Error> {
    let attempt = i32::try_from(request.attempt).unwrap_or(i32::MAX);
    let parent = execution::Entity::find_by_id(&request.execution_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::not_found(format!("execution {}", request.execution_id)))?;
    let claim = execution_claim::Entity::find_by_id(&parent.id)
        .one(db)
        .await
        .map_err(db::error)?;
    let current = parent.status == ExecutionStatus::Running
        && parent.attempts == attempt
        && claim.is_some_and(|c| c.node_id == request.node_id && c.attempt == attempt);
    if !current {
        return Err(Error::new(
            ErrorCode::StaleAttempt,
            format!(
                "attempt {attempt} of {} does not run it now; it cannot call",
                parent.id
            ),
        ));
    }
    Ok(parent)
}

/// The idempotency key of one call: the parent, the runner's call number, and a hash of what
/// is called with what.
fn call_key(parent_id: &str, call_id: u64, slug: &str, inputs: &serde_json::Value) -> String {
    let hash = hex::encode(Sha256::digest(format!("{slug}\0{inputs}").as_bytes()));
    format!("call:{parent_id}:{call_id}:{}", &hash[..32])
}

async fn find(
    db: &DatabaseConnection,
    account_id: &str,
    key: &str,
) -> Result<Option<execution::Model>, Error> {
    execution::Entity::find()
        .filter(execution::Column::AccountId.eq(account_id))
        .filter(execution::Column::IdempotencyKey.eq(key))
        .one(db)
        .await
        .map_err(db::error)
}

/// The price and currency of a paid agent.
fn paid(agent: &agent::Model) -> Option<(i64, &str)> {
    match (agent.price_minor, &agent.currency) {
        (Some(price), Some(currency)) if agent.pricing_model == PricingModel::PerExecution => {
            Some((price, currency.as_str()))
        }
        _ => None,
    }
}

struct Hold<'a> {
    id: &'a str,
    parent: &'a execution::Model,
    root_id: &'a str,
    /// The calling agent's developer.
    orchestrator: &'a str,
    payee: &'a str,
    price: i64,
    currency: &'a str,
    max_amount_minor: Option<i64>,
}

/// Checks the call against what is left of the root's budget and holds its price: the child's
/// own mandate, naming the parent's (or, under a free parent, the root's). The root's charge
/// row is locked (PostgreSQL) until the transaction ends, so two calls of one tree never
/// spend the same remainder.
async fn hold_budget<C: ConnectionTrait>(
    txn: &C,
    billing: &crate::billing::Billing,
    hold: Hold<'_>,
) -> Result<charge::ActiveModel, Error> {
    let over = |message: String| Err(Error::new(ErrorCode::BudgetExceeded, message));
    let mut root = charge::Entity::find_by_id(hold.root_id);
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        root = root.lock_exclusive();
    }
    let Some(root) = root.one(txn).await.map_err(db::error)? else {
        return over("the tree's first execution is free: it has no budget for paid calls".into());
    };
    if root.currency != hold.currency {
        return over(format!(
            "the called agent is priced in {}, the tree's budget is in {}",
            hold.currency, root.currency
        ));
    }
    let budget = root
        .mandated_minor()
        .ok_or_else(|| Error::internal("the root's mandate is unreadable"))?;
    let spent = tree::spent(txn, hold.root_id).await.map_err(db::error)?;
    let budget = tree::Budget {
        mandated: budget,
        own: root.amount_minor,
        spent,
    };
    if let Err(reason) = budget.admit(hold.price, hold.max_amount_minor) {
        return over(format!(
            "the call costs {} {}: {reason}",
            hold.price, hold.currency
        ));
    }
    let parent_mandate = charge::Entity::find_by_id(&hold.parent.id)
        .one(txn)
        .await
        .map_err(db::error)?
        .map_or(root.mandate_id.clone(), |c| c.mandate_id);
    let payer = crate::entity::account::Entity::find_by_id(&hold.parent.account_id)
        .one(txn)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the payer's account vanished"))?;
    billing
        .authorize(&crate::billing::Purchase {
            execution_id: hold.id,
            payer_account: &hold.parent.account_id,
            payer_reference: &payer.name,
            payee_account: hold.payee,
            amount_minor: hold.price,
            currency: hold.currency,
            mandate_amount_minor: hold.price,
            parent_mandate_id: Some(&parent_mandate),
            orchestrator_account: Some(hold.orchestrator),
            standing_mandate_id: None,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_key_names_the_parent_and_the_call_and_changes_with_the_request() {
        let inputs = serde_json::json!({"text": "a b"});
        let key = call_key("p1", 3, "word-count", &inputs);
        assert!(key.starts_with("call:p1:3:"), "{key}");
        assert!(key.len() <= 255);
        assert_eq!(key, call_key("p1", 3, "word-count", &inputs));
        assert_ne!(key, call_key("p1", 4, "word-count", &inputs));
        assert_ne!(key, call_key("p1", 3, "sentiment", &inputs));
        assert_ne!(
            key,
            call_key("p1", 3, "word-count", &serde_json::json!({"text": "a"}))
        );
    }
}
