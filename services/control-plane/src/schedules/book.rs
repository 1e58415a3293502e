//! Making, reading and deleting schedules. Everything a run will need is checked when the
//! schedule is made (the agent, the inputs, the webhook URL, the mandate), so a mistake is the
//! creator's 422 now rather than an error recorded at every tick.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use frameos_billing::{SignedMandate, StandingMandate};
use frameos_core::{Error, ErrorCode, PricingModel, ScheduleStatus};
use frameos_proto::v1;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};

use super::Timetable;
use crate::accounts::auth::Principal;
use crate::billing::Billing;
use crate::db;
use crate::entity::{agent, schedule};
use crate::execution;
use crate::webhooks::Guard;

/// A standing mandate lasts this long unless the payer says otherwise.
const DEFAULT_MANDATE_DAYS: i64 = 90;
/// And at most this long.
const MAX_MANDATE_DAYS: i64 = 366;

pub async fn create(
    db: &DatabaseConnection,
    billing: &Billing,
    guard: &Guard,
    limit: u32,
    caller: &Principal,
    request: &v1::CreateScheduleRequest,
) -> Result<v1::Schedule, Error> {
    let timetable = Timetable::parse(&request.cron, &request.timezone)?;
    let inputs: serde_json::Value = serde_json::from_str(&request.inputs_json).map_err(|e| {
        Error::new(
            ErrorCode::InvalidRequest,
            format!("inputs are not valid JSON: {e}"),
        )
    })?;
    let (agent, version) = execution::runnable(db, &request.agent_slug, &request.version).await?;
    let manifest = version.manifest_json()?;
    execution::check_inputs(&manifest, &inputs)?;
    let webhook_url = request.webhook_url.trim();
    if !webhook_url.is_empty() {
        guard.parse(webhook_url)?;
    }
    let held = schedule::Entity::find()
        .filter(schedule::Column::AccountId.eq(&caller.account_id))
        .count(db)
        .await
        .map_err(db::error)?;
    if held >= u64::from(limit) {
        return Err(Error::new(
            ErrorCode::RateLimited,
            format!("an account may hold at most {limit} schedules: delete one first"),
        ));
    }

    let now = Utc::now().trunc_subsecs(6);
    let id = uuid::Uuid::now_v7().to_string();
    let mandate = match standing_terms(&agent) {
        Some((price, currency)) => {
            let budget = price
                .saturating_add(execution::descendants_budget(db, &manifest, currency, 1).await?);
            let terms = request.mandate.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorCode::ValidationFailed,
                    format!(
                        "mandate: {} is paid ({budget} {currency} minor units a run with the \
                         agents it calls): a schedule needs \"mandate\": {{\"max_amount_minor\"}}",
                        agent.slug
                    ),
                )
            })?;
            let mandate = terms_to_mandate(terms, &id, caller, &agent, currency, now)?;
            mandate
                .allows(now, budget, currency)
                .map_err(|refusal| Error::new(ErrorCode::BudgetExceeded, refusal.to_string()))?;
            Some((billing.sign_standing(&mandate), mandate))
        }
        None => None,
    };

    let next_run_at = timetable
        .next_after(now)
        .ok_or_else(|| Error::new(ErrorCode::ValidationFailed, "cron: never matches"))?;
    let row = schedule::ActiveModel {
        id: Set(id.clone()),
        account_id: Set(caller.account_id.clone()),
        agent_id: Set(agent.id.clone()),
        version: Set(request.version.trim().to_string()),
        cron: Set(request.cron.trim().to_string()),
        timezone: Set(timetable.zone().to_string()),
        inputs: Set(inputs.to_string()),
        webhook_url: Set((!webhook_url.is_empty()).then(|| webhook_url.to_string())),
        status: Set(ScheduleStatus::Active),
        next_run_at: Set(next_run_at),
        last_run_at: Set(None),
        last_execution_id: Set(None),
        last_error: Set(None),
        runs: Set(0),
        created_at: Set(now),
        mandate_id: Set(mandate.as_ref().map(|(_, m)| m.mandate_id.clone())),
        mandate_max_amount_minor: Set(mandate.as_ref().map(|(_, m)| m.max_amount_minor)),
        mandate_currency: Set(mandate.as_ref().map(|(_, m)| m.currency.clone())),
        mandate_expires_at: Set(mandate
            .as_ref()
            .and_then(|(_, m)| DateTime::parse_from_rfc3339(&m.expires_at).ok())
            .map(|t| t.with_timezone(&Utc))),
        mandate_kid: Set(mandate.as_ref().map(|(s, _)| s.kid.clone())),
        mandate_payload: Set(mandate
            .as_ref()
            .map(|(s, _)| String::from_utf8_lossy(&s.payload).into_owned())),
        mandate_signature: Set(mandate.as_ref().map(|(s, _)| hex::encode(s.signature))),
    }
    .insert(db)
    .await
    .map_err(db::error)?;
    tracing::info!(
        schedule_id = %row.id,
        agent = %agent.slug,
        cron = %row.cron,
        timezone = %row.timezone,
        next_run_at = %row.next_run_at,
        paid = mandate.is_some(),
        "schedule created"
    );
    Ok(view(&row, &agent.slug))
}

/// The price and currency a paid agent's runs are held for; `None` for a free agent.
fn standing_terms(agent: &agent::Model) -> Option<(i64, &str)> {
    match (
        agent.pricing_model,
        agent.price_minor,
        agent.currency.as_deref(),
    ) {
        (PricingModel::PerExecution, Some(price), Some(currency)) => Some((price, currency)),
        _ => None,
    }
}

/// The payer's terms as the mandate the platform signs.
fn terms_to_mandate(
    terms: &v1::StandingMandateTerms,
    schedule_id: &str,
    caller: &Principal,
    agent: &agent::Model,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<StandingMandate, Error> {
    let invalid = |message: String| Error::new(ErrorCode::ValidationFailed, message);
    if terms.max_amount_minor < 1 {
        return Err(invalid(format!(
            "mandate.max_amount_minor: {} is not a positive amount",
            terms.max_amount_minor
        )));
    }
    let expires_at = match &terms.expires_at {
        None => now + Duration::days(DEFAULT_MANDATE_DAYS),
        Some(t) => DateTime::from_timestamp(t.seconds, 0)
            .ok_or_else(|| invalid("mandate.expires_at: out of range".into()))?,
    };
    if expires_at <= now || expires_at > now + Duration::days(MAX_MANDATE_DAYS) {
        return Err(invalid(format!(
            "mandate.expires_at: must be in the future and at most {MAX_MANDATE_DAYS} days ahead"
        )));
    }
    Ok(StandingMandate {
        mandate_id: uuid::Uuid::now_v7().to_string(),
        schedule_id: schedule_id.to_string(),
        payer_account: caller.account_id.clone(),
        payee_account: agent.owner_id.clone(),
        agent_id: agent.id.clone(),
        max_amount_minor: terms.max_amount_minor,
        currency: currency.to_string(),
        nonce: frameos_billing::mandate::new_nonce(),
        issued_at: frameos_billing::mandate::timestamp(now),
        expires_at: frameos_billing::mandate::timestamp(expires_at),
    })
}

/// The standing mandate a schedule keeps, verified; `None` for a free agent's schedule.
pub fn standing(
    billing: &Billing,
    row: &schedule::Model,
) -> Result<Option<StandingMandate>, Error> {
    let (Some(kid), Some(payload), Some(signature)) = (
        &row.mandate_kid,
        &row.mandate_payload,
        &row.mandate_signature,
    ) else {
        return Ok(None);
    };
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| Error::internal("a stored standing mandate's signature is not 64 bytes"))?;
    billing
        .verify_standing(&SignedMandate {
            payload: payload.clone().into_bytes(),
            signature,
            kid: kid.clone(),
        })
        .map(Some)
}

/// The caller's schedule `id`; another account's is `not_found`, as if it did not exist.
pub async fn owned(
    db: &DatabaseConnection,
    caller: &Principal,
    id: &str,
) -> Result<schedule::Model, Error> {
    schedule::Entity::find_by_id(id)
        .filter(schedule::Column::AccountId.eq(&caller.account_id))
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("no schedule {id}")))
}

pub async fn get(
    db: &DatabaseConnection,
    caller: &Principal,
    id: &str,
) -> Result<v1::Schedule, Error> {
    let row = owned(db, caller, id).await?;
    let slug = slug_of(db, &row.agent_id).await?;
    Ok(view(&row, &slug))
}

pub async fn list(db: &DatabaseConnection, caller: &Principal) -> Result<Vec<v1::Schedule>, Error> {
    let rows = schedule::Entity::find()
        .filter(schedule::Column::AccountId.eq(&caller.account_id))
        .order_by_desc(schedule::Column::CreatedAt)
        .all(db)
        .await
        .map_err(db::error)?;
    let agent_ids: Vec<&str> = rows.iter().map(|r| r.agent_id.as_str()).collect();
    let slugs: std::collections::HashMap<String, String> = agent::Entity::find()
        .filter(agent::Column::Id.is_in(agent_ids))
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .map(|a| (a.id, a.slug))
        .collect();
    Ok(rows
        .iter()
        .map(|row| view(row, slugs.get(&row.agent_id).map_or("", String::as_str)))
        .collect())
}

/// Deletes the caller's schedule: no tick runs after this returns (a tick in progress holds
/// the row's lock, so the delete waits for it).
pub async fn delete(db: &DatabaseConnection, caller: &Principal, id: &str) -> Result<(), Error> {
    let deleted = schedule::Entity::delete_many()
        .filter(schedule::Column::Id.eq(id))
        .filter(schedule::Column::AccountId.eq(&caller.account_id))
        .exec(db)
        .await
        .map_err(db::error)?;
    if deleted.rows_affected == 0 {
        return Err(Error::new(ErrorCode::NotFound, format!("no schedule {id}")));
    }
    tracing::info!(schedule_id = id, "schedule deleted");
    Ok(())
}

pub async fn slug_of(db: &DatabaseConnection, agent_id: &str) -> Result<String, Error> {
    Ok(agent::Entity::find_by_id(agent_id)
        .one(db)
        .await
        .map_err(db::error)?
        .map(|a| a.slug)
        .unwrap_or_default())
}

pub fn view(row: &schedule::Model, slug: &str) -> v1::Schedule {
    let timestamp = |t: &DateTime<Utc>| crate::view::timestamp(*t);
    let mandate = match (
        &row.mandate_id,
        row.mandate_max_amount_minor,
        &row.mandate_currency,
        &row.mandate_expires_at,
    ) {
        (Some(id), Some(max), Some(currency), Some(expires_at)) => Some(v1::StandingMandate {
            mandate_id: id.clone(),
            max_amount_minor: max,
            currency: currency.clone(),
            expires_at: Some(timestamp(expires_at)),
            kid: row.mandate_kid.clone().unwrap_or_default(),
            payload: row.mandate_payload.clone().unwrap_or_default().into_bytes(),
            signature: row
                .mandate_signature
                .as_deref()
                .and_then(|hex| hex::decode(hex).ok())
                .unwrap_or_default(),
        }),
        _ => None,
    };
    v1::Schedule {
        id: row.id.clone(),
        agent_slug: slug.to_string(),
        version: row.version.clone(),
        cron: row.cron.clone(),
        timezone: row.timezone.clone(),
        inputs_json: row.inputs.clone(),
        webhook_url: row.webhook_url.clone().unwrap_or_default(),
        status: row.status.to_string(),
        next_run_at: (row.status == ScheduleStatus::Active).then(|| timestamp(&row.next_run_at)),
        last_run_at: row.last_run_at.as_ref().map(timestamp),
        last_execution_id: row.last_execution_id.clone().unwrap_or_default(),
        last_error: row.last_error.clone().unwrap_or_default(),
        runs: row.runs,
        created_at: Some(timestamp(&row.created_at)),
        mandate,
    }
}
