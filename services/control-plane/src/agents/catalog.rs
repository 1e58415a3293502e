//! Agents: creation, the marketplace listing and lookups with their visibility rules.

use frameos_core::{PricingModel, Runtime, VersionStatus};
use std::collections::HashMap;

use chrono::Utc;
use frameos_core::{Error, ErrorCode};
use frameos_proto::v1;
use regex::Regex;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::accounts::auth::Principal;
use crate::entity::{account, agent, agent_version};
use crate::{db, view};

const MAX_PAGE_SIZE: u64 = 100;
const DEFAULT_PAGE_SIZE: u64 = 20;

pub async fn create(
    db: &DatabaseConnection,
    billing: &crate::billing::Billing,
    owner: &Principal,
    request: &v1::CreateAgentRequest,
) -> Result<v1::Agent, Error> {
    let slug = request.slug.trim();
    if !slug_regex().is_match(slug) {
        return Err(invalid("slug must match [a-z0-9-]{2,64}"));
    }
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(invalid("name must be 1 to 128 characters"));
    }
    if request.description.chars().count() > 2000 {
        return Err(invalid("description must be at most 2000 characters"));
    }
    let (model, price_minor, currency) = pricing_columns(billing, request.pricing.as_ref())?;
    let now = Utc::now();
    let row = agent::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        slug: Set(slug.to_string()),
        name: Set(name.to_string()),
        description: Set(request.description.clone()),
        owner_id: Set(owner.account_id.clone()),
        pricing_model: Set(model),
        price_minor: Set(price_minor),
        currency: Set(currency),
        created_at: Set(now),
        updated_at: Set(now),
        banned_at: Set(None),
        ban_reason: Set(None),
        banned_by: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| {
        db::unique_or(
            e,
            ErrorCode::SlugTaken,
            format!("an agent with slug {slug:?} exists already"),
        )
    })?;
    tracing::info!(agent_id = %row.id, slug = %row.slug, "agent created");
    Ok(present(db, vec![row]).await?.remove(0))
}

/// The agent columns (`pricing_model`, `price_minor`, `currency`) of `pricing`, checked: a
/// positive price the rail can carry, in a known currency. No pricing is free.
fn pricing_columns(
    billing: &crate::billing::Billing,
    pricing: Option<&v1::Pricing>,
) -> Result<(PricingModel, Option<i64>, Option<String>), Error> {
    match pricing.and_then(|p| p.model.as_ref()) {
        None | Some(v1::pricing::Model::Free(_)) => Ok((PricingModel::Free, None, None)),
        Some(v1::pricing::Model::PerExecution(p)) => {
            if p.price_minor <= 0 {
                return Err(invalid(
                    "pricing.price_minor must be a positive integer number of minor units",
                ));
            }
            let currency = frameos_billing::Currency::parse(&p.currency).map_err(|e| {
                Error::new(
                    ErrorCode::ValidationFailed,
                    format!("pricing.currency: {e}"),
                )
            })?;
            if p.price_minor > frameos_billing::MAX_MINOR {
                return Err(invalid("pricing.price_minor is too large"));
            }
            billing.check_price(p.price_minor, currency)?;
            Ok((
                PricingModel::PerExecution,
                Some(p.price_minor),
                Some(p.currency.clone()),
            ))
        }
    }
}

/// Sets the pricing of `owner`'s agent `slug` (owner only: not even an admin prices another's
/// agent). Executions created from now on pay the new price; running ones keep their charge.
pub async fn update_pricing(
    db: &DatabaseConnection,
    billing: &crate::billing::Billing,
    owner: &Principal,
    request: &v1::UpdateAgentRequest,
) -> Result<v1::Agent, Error> {
    let row = owned(db, &request.slug, owner, false).await?;
    // Unlike on creation, no pricing is not "free": a change must say what it changes to.
    if request
        .pricing
        .as_ref()
        .and_then(|p| p.model.as_ref())
        .is_none()
    {
        return Err(invalid(
            "pricing is required: {\"model\": \"free\"} or per_execution",
        ));
    }
    let (model, price_minor, currency) = pricing_columns(billing, request.pricing.as_ref())?;
    let mut active: agent::ActiveModel = row.into();
    active.pricing_model = Set(model);
    active.price_minor = Set(price_minor);
    active.currency = Set(currency);
    active.updated_at = Set(Utc::now());
    let row = active.update(db).await.map_err(db::error)?;
    tracing::info!(agent_id = %row.id, slug = %row.slug, pricing = %model, "agent pricing changed");
    Ok(present(db, vec![row]).await?.remove(0))
}

fn slug_regex() -> &'static Regex {
    static SLUG: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    SLUG.get_or_init(|| Regex::new("^[a-z0-9-]{2,64}$").expect("static regex"))
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorCode::ValidationFailed, message)
}

/// The agent `slug` as `caller` may see it: a published agent is visible to anyone, an
/// unpublished one only to its owner and admins (others get `not_found`).
pub async fn visible(
    db: &DatabaseConnection,
    slug: &str,
    caller: Option<&Principal>,
) -> Result<(agent::Model, Option<v1::Version>), Error> {
    let row = agent::Entity::find()
        .filter(agent::Column::Slug.eq(slug))
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::not_found(format!("agent {slug:?}")))?;
    let latest = latest_published(db, std::slice::from_ref(&row))
        .await?
        .remove(&row.id);
    let privileged = caller.is_some_and(|c| c.is_admin() || c.account_id == row.owner_id);
    if latest.is_none() && !privileged {
        return Err(Error::not_found(format!("agent {slug:?}")));
    }
    Ok((row, latest))
}

/// The agent `slug` for an owner-only operation: `not_found` when the caller cannot see it,
/// `permission_denied` when they can see it (it is public) but do not own it.
pub async fn owned(
    db: &DatabaseConnection,
    slug: &str,
    caller: &Principal,
    allow_admin: bool,
) -> Result<agent::Model, Error> {
    let (row, _) = visible(db, slug, Some(caller)).await?;
    if row.owner_id == caller.account_id || (allow_admin && caller.is_admin()) {
        Ok(row)
    } else {
        Err(Error::new(
            ErrorCode::PermissionDenied,
            format!("agent {slug:?} belongs to another developer"),
        ))
    }
}

/// Highest published version of each agent, by SemVer precedence.
pub async fn latest_published(
    db: &DatabaseConnection,
    agents: &[agent::Model],
) -> Result<HashMap<String, v1::Version>, Error> {
    let slugs: HashMap<&str, &str> = agents
        .iter()
        .map(|a| (a.id.as_str(), a.slug.as_str()))
        .collect();
    let rows = agent_version::Entity::find()
        .filter(agent_version::Column::AgentId.is_in(slugs.keys().copied()))
        .filter(agent_version::Column::Status.eq(VersionStatus::Published))
        .all(db)
        .await
        .map_err(db::error)?;
    let mut best: HashMap<String, (semver::Version, agent_version::Model)> = HashMap::new();
    for row in rows {
        let Ok(parsed) = semver::Version::parse(&row.version) else {
            continue;
        };
        let better = best
            .get(&row.agent_id)
            .is_none_or(|(current, _)| parsed.cmp_precedence(current).is_gt());
        if better {
            best.insert(row.agent_id.clone(), (parsed, row));
        }
    }
    Ok(best
        .into_iter()
        .map(|(agent_id, (_, row))| {
            let slug = slugs.get(agent_id.as_str()).copied().unwrap_or_default();
            let version = view::version(&row, slug, None);
            (agent_id, version)
        })
        .collect())
}

/// The marketplace: agents with a published version, by slug, keyset-paged; or with `mine`,
/// the caller's own agents, published or not.
pub async fn list(
    db: &DatabaseConnection,
    caller: Option<&Principal>,
    request: &v1::ListAgentsRequest,
) -> Result<v1::ListAgentsResponse, Error> {
    let page_size = match u64::from(request.page_size) {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            return Err(invalid("page_size must be at most 100"));
        }
        n => n,
    };
    let mut published = Query::select()
        .column(agent_version::Column::AgentId)
        .from(agent_version::Entity)
        .and_where(agent_version::Column::Status.eq(VersionStatus::Published))
        .to_owned();
    if !request.runtime.is_empty() {
        let runtime: Runtime = request.runtime.parse().map_err(|e: Error| {
            Error::new(
                ErrorCode::ValidationFailed,
                format!("runtime: {}", e.message),
            )
        })?;
        published.and_where(agent_version::Column::Runtime.eq(runtime));
    }
    let mut condition = Condition::all();
    if request.mine {
        let Some(caller) = caller else {
            return Err(Error::new(
                ErrorCode::Unauthenticated,
                "mine=true lists the caller's agents: send an API key",
            ));
        };
        condition = condition.add(agent::Column::OwnerId.eq(caller.account_id.as_str()));
        // An unpublished agent has no version to filter by runtime on: only filter when asked.
        if !request.runtime.is_empty() {
            condition = condition.add(agent::Column::Id.in_subquery(published));
        }
    } else {
        condition = condition.add(agent::Column::Id.in_subquery(published));
    }
    condition = pricing_filter(condition, request)?;
    if !request.page_token.is_empty() {
        condition = condition.add(agent::Column::Slug.gt(request.page_token.as_str()));
    }
    let q = request.query.trim();
    if q.chars().count() > 200 {
        return Err(invalid("q must be at most 200 characters"));
    }
    if !q.is_empty() {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        let mut any = Condition::any();
        for column in [
            agent::Column::Slug,
            agent::Column::Name,
            agent::Column::Description,
        ] {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\')),
            );
        }
        condition = condition.add(any);
    }
    let mut rows = agent::Entity::find()
        .filter(condition)
        .order_by_asc(agent::Column::Slug)
        .limit(page_size + 1)
        .all(db)
        .await
        .map_err(db::error)?;
    let next_page_token = crate::paging::next_page(&mut rows, page_size, |r| r.slug.clone());
    Ok(v1::ListAgentsResponse {
        items: present(db, rows).await?,
        next_page_token,
    })
}

/// `pricing_model` and `max_price_minor` of a listing as conditions on the agent row.
fn pricing_filter(
    mut condition: Condition,
    request: &v1::ListAgentsRequest,
) -> Result<Condition, Error> {
    if !request.pricing_model.is_empty() {
        let model: PricingModel = request.pricing_model.parse().map_err(|e: Error| {
            Error::new(
                ErrorCode::ValidationFailed,
                format!("pricing_model: {}", e.message),
            )
        })?;
        condition = condition.add(agent::Column::PricingModel.eq(model));
    }
    match request.max_price_minor {
        None => {}
        Some(n) if n < 1 => return Err(invalid("max_price_minor must be at least 1")),
        Some(n) => {
            condition = condition.add(
                Condition::any()
                    .add(agent::Column::PricingModel.eq(PricingModel::Free))
                    .add(agent::Column::PriceMinor.lte(n)),
            );
        }
    }
    Ok(condition)
}

/// The API view of `rows`: each with its latest published version and its owner's name, in
/// two statements whatever the number of rows.
pub async fn present(
    db: &DatabaseConnection,
    rows: Vec<agent::Model>,
) -> Result<Vec<v1::Agent>, Error> {
    let latest = latest_published(db, &rows).await?;
    with_owners(db, rows, latest).await
}

/// As [`present`], with the latest published versions already at hand.
pub async fn with_owners(
    db: &DatabaseConnection,
    rows: Vec<agent::Model>,
    mut latest: HashMap<String, v1::Version>,
) -> Result<Vec<v1::Agent>, Error> {
    let owners: HashMap<String, String> = account::Entity::find()
        .filter(account::Column::Id.is_in(rows.iter().map(|r| r.owner_id.as_str())))
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    Ok(rows
        .iter()
        .map(|row| {
            let owner = owners.get(&row.owner_id).cloned().unwrap_or_default();
            view::agent(row, latest.remove(&row.id), owner)
        })
        .collect())
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn slugs_follow_the_package_contract() {
        assert!(slug_regex().is_match("word-count"));
        assert!(!slug_regex().is_match("a"));
        assert!(!slug_regex().is_match("Word"));
        assert!(!slug_regex().is_match(&"a".repeat(65)));
    }
}
