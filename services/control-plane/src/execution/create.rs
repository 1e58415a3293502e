//! Accepting an execution: published version, inputs valid against its schema, idempotency,
//! and the execution row committed together with its outbox message.

use chrono::{SubsecRound, Utc};
use frameos_core::{ChargeStatus, PricingModel, VersionStatus};
use frameos_core::{Error, ErrorCode};
use frameos_proto::v1;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TryIntoModel};
use sha2::{Digest, Sha256};

use super::intake::{Intake, Queued, Record};
use super::{PRIORITY_FREE, PRIORITY_PAID, view};
use crate::accounts::auth::Principal;
use crate::agents::catalog;
use crate::db;
use crate::entity::{account, agent, agent_version, charge, execution};

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Who asks for an execution.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// A caller's own request: a paid agent is held and mandated for this execution alone.
    Request,
    /// A schedule's tick on its owner's behalf: a paid run spends under the payer's standing
    /// mandate, and is refused when that mandate no longer covers its price.
    Schedule {
        standing: Option<&'a frameos_billing::StandingMandate>,
    },
}

pub async fn create(
    db: &DatabaseConnection,
    intake: &Intake,
    billing: &crate::billing::Billing,
    webhooks: &crate::webhooks::Guard,
    caller: &Principal,
    request: &v1::CreateExecutionRequest,
    origin: Origin<'_>,
) -> Result<(v1::Execution, bool), Error> {
    let inputs: serde_json::Value = serde_json::from_str(&request.inputs_json).map_err(|e| {
        Error::new(
            ErrorCode::InvalidRequest,
            format!("inputs are not valid JSON: {e}"),
        )
    })?;
    let key = request.idempotency_key.trim();
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            "Idempotency-Key must be at most 255 characters",
        ));
    }
    // serde_json keeps object keys sorted, so this is a canonical form of the request (the
    // webhook only when there is one, so keys recorded before webhooks still match).
    let mut canonical = format!("{}\0{}\0{}", request.agent_slug, request.version, inputs);
    let webhook_url = request.webhook_url.trim();
    if !webhook_url.is_empty() {
        canonical = format!("{canonical}\0{webhook_url}");
    }
    let request_hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    if !key.is_empty()
        && let Some(existing) = find_by_key(db, caller, key).await?
    {
        return replay(db, existing, &request_hash).await;
    }

    let (agent, version) = runnable(db, &request.agent_slug, &request.version).await?;
    let manifest = version.manifest_json()?;
    check_inputs(&manifest, &inputs)?;

    let priority = if agent.pricing_model == PricingModel::PerExecution {
        PRIORITY_PAID
    } else {
        PRIORITY_FREE
    };
    // What PostgreSQL keeps (microseconds): the reply is built from this value, not read back,
    // and must show what a later GET shows.
    let now = Utc::now().trunc_subsecs(6);
    let id = uuid::Uuid::now_v7().to_string();
    // Checked before the rail holds anything: a refused URL writes nothing.
    let webhook = crate::webhooks::waiting(webhooks, webhook_url, &id, &caller.account_id, now)?;
    // A paid execution is queued only once the rail holds the amount: a decline writes nothing.
    let charge = match (agent.price_minor, &agent.currency) {
        (Some(price_minor), Some(currency))
            if agent.pricing_model == PricingModel::PerExecution =>
        {
            // Prices set before currencies were checked may name no ISO 4217 currency: that is
            // the agent's state, not a platform fault, and nothing is held for it.
            if let Err(e) = frameos_billing::Currency::parse(currency) {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "this agent cannot be bought until its developer sets a valid price: {e}"
                    ),
                ));
            }
            // The root's mandate covers the whole call tree (API.md §5.1): its own price and
            // what its declared dependencies cost, resolved now.
            let descendants = super::tree::descendants_budget(db, &manifest, currency, 1).await?;
            let budget = price_minor.saturating_add(descendants);
            let standing = standing_for(origin, budget, currency)?;
            let payer = account::Entity::find_by_id(&caller.account_id)
                .one(db)
                .await
                .map_err(db::error)?
                .ok_or_else(|| Error::internal("the caller's account vanished"))?;
            Some(
                billing
                    .authorize(&crate::billing::Purchase {
                        execution_id: &id,
                        payer_account: &caller.account_id,
                        payer_reference: &payer.name,
                        payee_account: &agent.owner_id,
                        amount_minor: price_minor,
                        currency,
                        mandate_amount_minor: budget,
                        parent_mandate_id: None,
                        orchestrator_account: None,
                        standing_mandate_id: standing,
                    })
                    .await?,
            )
        }
        _ => None,
    };
    let (execution, message) = Queued {
        id: &id,
        account_id: &caller.account_id,
        agent_id: &agent.id,
        version_id: &version.id,
        inputs: &inputs,
        priority,
        idempotency: (!key.is_empty()).then(|| (key.to_string(), request_hash.clone())),
        parent: None,
        depth: 1,
        now,
    }
    .rows();
    let record = Record {
        execution: execution.clone(),
        charge: charge.clone(),
        webhook,
        message,
    };
    match intake.record(record).await {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) && !key.is_empty() =>
        {
            // A concurrent request with the same key won the race: release this request's own
            // hold before answering as the winner did, or the payer keeps a second hold.
            release(billing, &id, charge.as_ref()).await;
            let existing = find_by_key(db, caller, key)
                .await?
                .ok_or_else(|| Error::internal("idempotent execution vanished"))?;
            return replay(db, existing, &request_hash).await;
        }
        Err(e) => {
            release(billing, &id, charge.as_ref()).await;
            return Err(db::error(e));
        }
    }
    let row = execution.try_into_model().map_err(db::error)?;
    if charge.is_some() {
        billing.metrics().charge(ChargeStatus::Authorized);
    }
    tracing::info!(
        execution_id = %row.id,
        agent = %agent.slug,
        version = %version.version,
        priority,
        "execution queued"
    );
    let mut created = view::execution(&row, &agent.slug, &version.version);
    created.charge = charge
        .map(|c| c.try_into_model())
        .transpose()
        .map_err(db::error)?
        .as_ref()
        .map(view::charge);
    Ok((created, true))
}

/// `inputs` against the version's `inputs` JSON Schema: a mismatch is the caller's
/// `invalid_inputs`.
pub(crate) fn check_inputs(
    manifest: &serde_json::Value,
    inputs: &serde_json::Value,
) -> Result<(), Error> {
    frameos_package::manifest::validate_json(&manifest["inputs"], inputs).map_err(|e| {
        Error::new(
            ErrorCode::InvalidInputs,
            format!("inputs do not match the agent's input schema: {e}"),
        )
    })
}

/// The standing mandate a scheduled paid run spends under, once it is checked to cover the
/// run's `budget` now; none for a caller's own request.
fn standing_for<'a>(
    origin: Origin<'a>,
    budget: i64,
    currency: &str,
) -> Result<Option<&'a str>, Error> {
    let Origin::Schedule { standing } = origin else {
        return Ok(None);
    };
    let mandate = standing.ok_or_else(|| {
        Error::new(
            ErrorCode::BudgetExceeded,
            "the agent is paid now and this schedule has no standing mandate: \
             create a schedule with a \"mandate\"",
        )
    })?;
    mandate
        .allows(Utc::now(), budget, currency)
        .map_err(|refusal| Error::new(ErrorCode::BudgetExceeded, refusal.to_string()))?;
    Ok(Some(&mandate.mandate_id))
}

/// Releases the rail hold of an execution that was not recorded (an insert failed or lost the
/// idempotency race); reconciliation retries what fails here.
pub(super) async fn release(
    billing: &crate::billing::Billing,
    id: &str,
    charge: Option<&charge::ActiveModel>,
) {
    if let Some(authorization) = charge.and_then(|c| c.authorization_id.try_as_ref()) {
        billing.release(id, authorization).await;
    }
}

async fn find_by_key(
    db: &DatabaseConnection,
    caller: &Principal,
    key: &str,
) -> Result<Option<execution::Model>, Error> {
    execution::Entity::find()
        .filter(execution::Column::AccountId.eq(&caller.account_id))
        .filter(execution::Column::IdempotencyKey.eq(key))
        .one(db)
        .await
        .map_err(db::error)
}

async fn replay(
    db: &DatabaseConnection,
    existing: execution::Model,
    request_hash: &str,
) -> Result<(v1::Execution, bool), Error> {
    if existing.request_hash.as_deref() != Some(request_hash) {
        return Err(Error::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request",
        ));
    }
    Ok((view::one(db, &existing).await?, false))
}

/// The agent and the published version to run: `version` or, when empty, the latest. One query
/// on the way to a queued execution (the agent with its published versions); the precise
/// not-found message costs a second one only when there is nothing to run.
pub(crate) async fn runnable(
    db: &DatabaseConnection,
    slug: &str,
    version: &str,
) -> Result<(agent::Model, agent_version::Model), Error> {
    let mut published = agent_version::Entity::find()
        .find_also_related(agent::Entity)
        .filter(agent::Column::Slug.eq(slug))
        .filter(agent_version::Column::Status.eq(VersionStatus::Published));
    if !version.is_empty() {
        published = published.filter(agent_version::Column::Version.eq(version));
    }
    let rows = published.all(db).await.map_err(db::error)?;
    let latest = rows
        .into_iter()
        .filter_map(|(version, agent)| {
            let precedence = semver::Version::parse(&version.version).ok()?;
            Some((precedence, version, agent?))
        })
        .max_by(|a, b| a.0.cmp_precedence(&b.0));
    if let Some((_, version, agent)) = latest {
        return Ok((agent, version));
    }
    // Nothing to run: say whether the agent is banned, or it or only this version is missing.
    if let Some(agent) = agent::Entity::find()
        .filter(agent::Column::Slug.eq(slug))
        .one(db)
        .await
        .map_err(db::error)?
    {
        crate::agents::bans::refuse_banned(&agent)?;
    }
    catalog::visible(db, slug, None).await?;
    Err(Error::not_found(if version.is_empty() {
        format!("a published version of {slug:?}")
    } else {
        format!("published version {version} of {slug:?}")
    }))
}
