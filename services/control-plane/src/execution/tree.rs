//! Call trees (API.md §5.1, ADR 0040): how deep a call may nest, what a root's mandate budgets
//! for its descendants, what a tree has spent, and ending the children of an ended execution.

use std::collections::BTreeMap;

use chrono::Utc;
use frameos_core::{ChargeStatus, Error, ExecutionStatus, PricingModel};
use frameos_package::manifest::Range;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::Hub;
use crate::agents::dependencies;
use crate::db;
use crate::entity::{charge, execution};

/// Executions from the root down to the deepest child, both included.
pub const MAX_DEPTH: i16 = 5;

/// The dependencies a stored manifest declares. Ranges were validated at upload; one that no
/// longer parses (a stricter parser) is left out rather than failing every run.
pub fn declared(manifest: &serde_json::Value) -> BTreeMap<String, Range> {
    manifest["dependencies"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(slug, range)| Some((slug.clone(), Range::parse(range.as_str()?).ok()?)))
        .collect()
}

/// What the descendants of a version at `depth` cost in `currency` when each declared
/// dependency is called once: each resolves to its highest published version now and adds its
/// price and its own descendants'. A dependency that resolves to nothing, is free or is priced
/// in another currency adds nothing; nothing below [`MAX_DEPTH`] is counted.
pub fn descendants_budget<'a>(
    db: &'a DatabaseConnection,
    manifest: &'a serde_json::Value,
    currency: &'a str,
    depth: i16,
) -> BoxFuture<'a, Result<i64, Error>> {
    Box::pin(async move {
        if depth >= MAX_DEPTH {
            return Ok(0);
        }
        let mut total: i64 = 0;
        for (slug, range) in declared(manifest) {
            let Ok(resolved) = dependencies::resolve(db, &slug, &range).await else {
                continue;
            };
            let price = match (&resolved.agent.price_minor, &resolved.agent.currency) {
                (Some(price), Some(priced_in))
                    if resolved.agent.pricing_model == PricingModel::PerExecution
                        && priced_in == currency =>
                {
                    *price
                }
                _ => 0,
            };
            let below =
                descendants_budget(db, &resolved.version.manifest_json()?, currency, depth + 1)
                    .await?;
            total = total.saturating_add(price).saturating_add(below);
        }
        Ok(total)
    })
}

/// Where a tree's budget stands when a paid call asks for part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The root mandate's amount.
    pub mandated: i64,
    /// The root's own price.
    pub own: i64,
    /// What its descendants hold or were charged ([`spent`]).
    pub spent: i64,
}

impl Budget {
    /// Whether a call costing `price` fits: within the call's own cap and within what is left.
    /// Why not, in words, otherwise.
    pub fn admit(self, price: i64, max_amount_minor: Option<i64>) -> Result<(), String> {
        if let Some(max) = max_amount_minor
            && price > max
        {
            return Err(format!("above the call's max_amount_minor of {max}"));
        }
        let left = self
            .mandated
            .saturating_sub(self.own)
            .saturating_sub(self.spent);
        if price > left {
            return Err(format!(
                "{} of the tree's budget of {} is left",
                left.max(0),
                self.mandated
            ));
        }
        Ok(())
    }
}

/// What the descendants of `root_id` hold or were charged: their authorized and captured
/// charges. Voided ones are free again.
pub async fn spent<C: ConnectionTrait>(conn: &C, root_id: &str) -> Result<i64, DbErr> {
    let in_tree = Query::select()
        .column(execution::Column::Id)
        .from(execution::Entity)
        .and_where(execution::Column::RootId.eq(root_id))
        .to_owned();
    let amounts: Vec<i64> = charge::Entity::find()
        .select_only()
        .column(charge::Column::AmountMinor)
        .filter(charge::Column::ExecutionId.in_subquery(in_tree))
        .filter(charge::Column::Status.is_in([ChargeStatus::Authorized, ChargeStatus::Captured]))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(amounts.into_iter().fold(0i64, i64::saturating_add))
}

/// The agents of `execution` and of every execution above it, nearest first.
pub async fn ancestors_agents<C: ConnectionTrait>(
    conn: &C,
    execution: &execution::Model,
) -> Result<Vec<String>, DbErr> {
    let mut agents = vec![execution.agent_id.clone()];
    let mut next = execution.parent_id.clone();
    // The depth bound keeps a corrupted chain from looping.
    while let Some(id) = next.take() {
        if agents.len() > usize::try_from(MAX_DEPTH).unwrap_or(5) {
            break;
        }
        let Some(row) = execution::Entity::find_by_id(&id).one(conn).await? else {
            break;
        };
        agents.push(row.agent_id);
        next = row.parent_id;
    }
    Ok(agents)
}

/// The children of `parent_id`, oldest first.
pub async fn children<C: ConnectionTrait>(
    conn: &C,
    parent_id: &str,
) -> Result<Vec<execution::Model>, DbErr> {
    execution::Entity::find()
        .filter(execution::Column::ParentId.eq(parent_id))
        .order_by_asc(execution::Column::CreatedAt)
        .order_by_asc(execution::Column::Id)
        .all(conn)
        .await
}

/// Cancels every child of `parent_id` that has not ended, and theirs in turn: a parent that
/// ended no longer waits for them (API.md §5.1). Each is settled (voided) as a user's cancel
/// would; a running one is stopped by its node, which hears of it on its report stream.
/// Returns how many were canceled.
pub fn cancel_children<'a>(
    db: &'a DatabaseConnection,
    hub: &'a Hub,
    billing: &'a crate::billing::Billing,
    parent_id: &'a str,
) -> BoxFuture<'a, Result<usize, Error>> {
    Box::pin(async move {
        let mut canceled = 0;
        for child in children(db, parent_id).await.map_err(db::error)? {
            if !child.status.is_terminal()
                && end_canceled(db, hub, billing, &child.id, None).await?
            {
                tracing::info!(execution_id = %child.id, %parent_id, "child canceled with its parent");
                canceled += 1;
            }
            canceled += cancel_children(db, hub, billing, &child.id).await?;
        }
        Ok(canceled)
    })
}

/// Moves a queued or running execution to `canceled`, settles its charge (a void) and wakes its
/// watchers; `why`, when the platform canceled it, becomes its `error`. False: it had ended
/// already.
pub async fn end_canceled(
    db: &DatabaseConnection,
    hub: &Hub,
    billing: &crate::billing::Billing,
    id: &str,
    why: Option<&str>,
) -> Result<bool, Error> {
    let mut update = execution::Entity::update_many()
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Canceled),
        )
        .col_expr(execution::Column::FinishedAt, Expr::value(Utc::now()));
    if let Some(why) = why {
        update = update.col_expr(execution::Column::Error, Expr::value(why));
    }
    let changed = update
        .filter(execution::Column::Id.eq(id))
        .filter(
            execution::Column::Status.is_in([ExecutionStatus::Queued, ExecutionStatus::Running]),
        )
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        return Ok(false);
    }
    hub.metrics().ended(ExecutionStatus::Canceled);
    // Nobody pays for a canceled run; a failure here is left to reconciliation.
    if let Err(e) = crate::billing::settle(db, billing, id).await {
        tracing::warn!(execution_id = id, error = %e, "settlement after cancel failed");
    }
    super::timings::observe_ended(db, hub.metrics(), id).await;
    hub.ended(id);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use frameos_billing::SplitPolicy;
    use proptest::prelude::*;

    use super::Budget;

    /// One paid call of a random tree: its price, whether the child succeeds, the caller's
    /// cap, and when it ends (how many later calls start before it does).
    fn call() -> impl Strategy<Value = (i64, bool, Option<i64>, usize)> {
        // Prices at or above the platform's minimum (the rail's fee fits in its share).
        (
            2_000i64..50_000,
            any::<bool>(),
            proptest::option::of(0i64..60_000),
            0usize..4,
        )
    }

    proptest! {
        /// Random trees settled in random order, through the real admission and the real split:
        /// what a tree captures never exceeds its root's mandate, every share is ≥ 0 and the
        /// parts of each capture add up to it.
        #[test]
        fn a_tree_never_captures_more_than_its_budget(
            own in 1_000i64..50_000,
            declared in proptest::collection::vec(1_000i64..50_000, 0..6),
            calls in proptest::collection::vec(call(), 0..24),
        ) {
            let policy = SplitPolicy::default();
            let mandated = own + declared.iter().sum::<i64>();
            // Held and not yet ended: (price, succeeds, ends after this many more calls).
            let mut held: Vec<(i64, bool, usize)> = Vec::new();
            let mut captured = 0i64;
            let settle = |(price, succeeds, _): (i64, bool, usize), captured: &mut i64| {
                if succeeds {
                    let split = policy.split(price, 0, true, policy.fee.fee(price)).unwrap();
                    for part in [split.developer, split.orchestrator, split.platform, split.rail_fee] {
                        prop_assert!(part >= 0);
                    }
                    prop_assert_eq!(
                        split.developer + split.orchestrator + split.platform + split.rail_fee,
                        price
                    );
                    *captured += price;
                }
                Ok(())
            };
            for (price, succeeds, cap, ends_after) in calls {
                let spent = captured + held.iter().map(|h| h.0).sum::<i64>();
                let budget = Budget { mandated, own, spent };
                if budget.admit(price, cap).is_ok() {
                    prop_assert!(cap.is_none_or(|cap| price <= cap));
                    held.push((price, succeeds, ends_after));
                }
                // Calls whose time has come end, in the order they were made.
                let (ending, waiting): (Vec<_>, Vec<_>) =
                    held.into_iter().partition(|h| h.2 == 0);
                held = waiting.into_iter().map(|(p, s, n)| (p, s, n - 1)).collect();
                for h in ending {
                    settle(h, &mut captured)?;
                }
                prop_assert!(own + captured <= mandated);
            }
            for h in std::mem::take(&mut held) {
                settle(h, &mut captured)?;
            }
            prop_assert!(own + captured <= mandated, "{} + {} > {}", own, captured, mandated);
        }
    }

    #[test]
    fn a_call_is_refused_above_its_cap_or_what_is_left() {
        let budget = Budget {
            mandated: 300,
            own: 100,
            spent: 150,
        };
        assert_eq!(budget.admit(50, None), Ok(()));
        assert_eq!(budget.admit(50, Some(50)), Ok(()));
        assert!(
            budget
                .admit(50, Some(49))
                .unwrap_err()
                .contains("max_amount_minor of 49")
        );
        assert!(
            budget
                .admit(51, None)
                .unwrap_err()
                .contains("50 of the tree's budget of 300")
        );
        let spent = Budget {
            mandated: 100,
            own: 100,
            spent: 0,
        };
        assert!(
            spent.admit(1, None).is_err(),
            "a root without dependencies has nothing to give"
        );
    }
}
