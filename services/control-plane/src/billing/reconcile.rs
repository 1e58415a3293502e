//! Reconciliation: settles what a crash or an outage left open, and releases holds at the
//! rail that no execution was ever recorded for. Runs at start and every
//! `FRAMEOS_RECONCILE_INTERVAL_SECS`.

use frameos_core::{ChargeStatus, ExecutionStatus};
use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use frameos_billing::AuthState;
use frameos_core::Error;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use tokio_util::sync::CancellationToken;

use super::{Billing, settle};
use crate::db;
use crate::entity::{charge, execution};
use crate::metrics::{Fix, Reconciler};

/// What one reconciliation pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Open charges of ended executions settled.
    pub settled: usize,
    /// Holds at the rail that no execution was recorded for, released.
    pub released: usize,
}

/// One pass: every open charge of an ended execution is settled, and every hold at the rail
/// that is older than `orphan_age` and has no charge and no execution (a request that lost an
/// idempotency race and could not void, a crash between authorize and commit) is released.
/// The age keeps a hold whose request is still between its authorization and its commit.
pub async fn reconcile(
    db: &DatabaseConnection,
    billing: &Billing,
    orphan_age: chrono::Duration,
) -> Result<Reconciled, Error> {
    let open = charge::Entity::find()
        .filter(charge::Column::Status.eq(ChargeStatus::Authorized))
        .all(db)
        .await
        .map_err(db::error)?;
    let ended: HashSet<String> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::Id.is_in(open.iter().map(|c| c.execution_id.as_str())))
        .filter(execution::Column::Status.is_in(ExecutionStatus::TERMINAL))
        .into_tuple::<String>()
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .collect();
    let mut done = Reconciled::default();
    for c in open.iter().filter(|c| ended.contains(&c.execution_id)) {
        match settle(db, billing, &c.execution_id).await {
            Ok(()) => done.settled += 1,
            Err(e) => {
                tracing::warn!(execution_id = %c.execution_id, error = %e, "settlement failed; will retry")
            }
        }
    }
    done.released = release_orphans(db, billing, Utc::now() - orphan_age).await?;
    Ok(done)
}

/// Voids the rail's open holds placed before `placed_before` that no charge refers to and
/// whose execution does not exist.
async fn release_orphans(
    db: &DatabaseConnection,
    billing: &Billing,
    placed_before: chrono::DateTime<Utc>,
) -> Result<usize, Error> {
    let candidates: Vec<_> = billing
        .rail
        .list()
        .await?
        .into_iter()
        .filter(|hold| hold.state == AuthState::Authorized && hold.created_at < placed_before)
        .filter_map(|hold| {
            let execution_id = hold.idempotency_key.strip_prefix("authorize:")?.to_string();
            Some((execution_id, hold.id))
        })
        .collect();
    if candidates.is_empty() {
        return Ok(0);
    }
    let holds = candidates.iter().map(|(_, id)| id.as_str());
    let charged: HashSet<String> = charge::Entity::find()
        .select_only()
        .column(charge::Column::AuthorizationId)
        .filter(charge::Column::AuthorizationId.is_in(holds))
        .into_tuple::<String>()
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .collect();
    let executions = candidates.iter().map(|(e, _)| e.as_str());
    let recorded: HashSet<String> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .filter(execution::Column::Id.is_in(executions))
        .into_tuple::<String>()
        .all(db)
        .await
        .map_err(db::error)?
        .into_iter()
        .collect();
    let mut released = 0;
    for (execution_id, hold) in candidates {
        if charged.contains(&hold) || recorded.contains(&execution_id) {
            continue;
        }
        if billing.release(&execution_id, &hold).await {
            released += 1;
        }
    }
    Ok(released)
}

/// Reconciles at start and then every `interval` until shutdown; a hold is an orphan once it
/// is older than one interval.
pub async fn run_reconciler(
    db: DatabaseConnection,
    billing: Billing,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let orphan_age = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    loop {
        let pass = reconcile(&db, &billing, orphan_age).await;
        if let Ok(done) = &pass {
            billing.metrics().reconciled(
                Reconciler::Billing,
                &[(Fix::Settled, done.settled), (Fix::Released, done.released)],
            );
        }
        match pass {
            Ok(Reconciled {
                settled: 0,
                released: 0,
            }) => {}
            Ok(done) => tracing::info!(
                settled = done.settled,
                released = done.released,
                "reconciliation settled open charges and released orphan holds"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciliation failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Duration;
    use sea_orm::{ActiveModelTrait, Set};

    use super::*;

    const PAYER: crate::billing::rail::Payer<'static> = crate::billing::rail::Payer {
        account: "payer",
        reference: "payer",
    };

    async fn state_of(billing: &Billing, hold: &str) -> AuthState {
        let holds = billing.rail.list().await.unwrap();
        holds.into_iter().find(|h| h.id == hold).unwrap().state
    }

    /// On SQLite, the `frameos dev` database.
    #[tokio::test]
    async fn holds_nobody_recorded_are_released_once_older_than_the_orphan_age() {
        let dir = std::env::temp_dir().join(format!("frameos-reconcile-{}", uuid::Uuid::new_v4()));
        let db = crate::db::connect(&format!("sqlite://{}/frameos.db", dir.display()))
            .await
            .unwrap();
        crate::db::migrate(&db).await.unwrap();
        let billing = Billing::start(&db, &crate::Config::embedded().billing)
            .await
            .unwrap();
        // A crash between authorize and commit: a hold, and no execution or charge for it.
        let orphan = billing
            .rail
            .authorize("authorize:never-recorded", PAYER, 5000, "INR")
            .await
            .unwrap()
            .unwrap();
        // A hold whose charge was recorded is not an orphan, however old.
        let charged = billing
            .rail
            .authorize("authorize:recorded", PAYER, 5000, "INR")
            .await
            .unwrap()
            .unwrap();
        let now = Utc::now();
        charge::ActiveModel {
            execution_id: Set("recorded".into()),
            intent_id: Set("i".into()),
            mandate_id: Set("m".into()),
            payer_account: Set("payer".into()),
            payee_account: Set("payee".into()),
            amount_minor: Set(5000),
            currency: Set("INR".into()),
            kid: Set("k".into()),
            mandate_payload: Set("{}".into()),
            mandate_signature: Set(String::new()),
            nonce: Set("n".into()),
            expires_at: Set(now),
            authorization_id: Set(charged.id.clone()),
            status: Set(ChargeStatus::Authorized),
            orchestrated: Set(false),
            orchestrator_account: Set(None),
            developer_minor: Set(None),
            orchestrator_minor: Set(None),
            platform_minor: Set(None),
            rail_fee_minor: Set(None),
            created_at: Set(now),
            settled_at: Set(None),
        }
        .insert(&db)
        .await
        .unwrap();

        // Younger than the age: its request may still be on its way to the commit.
        let young = reconcile(&db, &billing, Duration::hours(1)).await.unwrap();
        assert_eq!(young.released, 0);
        assert_eq!(state_of(&billing, &orphan.id).await, AuthState::Authorized);

        let old = reconcile(&db, &billing, Duration::zero()).await.unwrap();
        assert_eq!(old.released, 1);
        assert_eq!(state_of(&billing, &orphan.id).await, AuthState::Voided);
        assert_eq!(state_of(&billing, &charged.id).await, AuthState::Authorized);
        let again = reconcile(&db, &billing, Duration::zero()).await.unwrap();
        assert_eq!(again.released, 0);

        // The void is in the rail's request log, under the execution's void key.
        let voids: Vec<(String, String)> = crate::entity::sandbox_rail_call::Entity::find()
            .filter(crate::entity::sandbox_rail_call::Column::Operation.eq("void"))
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.idempotency_key, c.outcome))
            .collect();
        assert_eq!(voids, vec![("void:never-recorded".into(), "voided".into())]);
        db.close().await.unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
