//! Settling a paid execution once it ended: capture and post the split when it succeeded,
//! void otherwise. Idempotent end to end (rail calls carry keys derived from the execution,
//! the charge moves by a guarded update, the ledger holds one transaction per execution), so
//! running it again after a crash completes what was started and never charges twice.

use chrono::{Datelike, TimeZone, Utc};
use frameos_billing::{AuthState, Currency, RailError, SignedMandate};
use frameos_core::Error;
use frameos_core::{ChargeStatus, ExecutionStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use tracing::Instrument;

use super::Billing;
use super::ledger::{self, Parts};
use crate::db;
use crate::entity::{charge, execution};

/// Settles the execution's charge if it has one that is still open and the execution ended.
/// In a span `settle` whose `charge.outcome` says what it did: `captured`, `voided` or `none`.
pub async fn settle(
    db: &DatabaseConnection,
    billing: &Billing,
    execution_id: &str,
) -> Result<(), Error> {
    let span = tracing::info_span!(
        "settle",
        execution_id,
        charge.outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let result = settle_charge(db, billing, execution_id)
        .instrument(span.clone())
        .await;
    match result {
        Ok(settled) => {
            span.record("charge.outcome", settled.as_str());
            Ok(())
        }
        Err(e) => {
            span.record("otel.status_code", "error");
            Err(e)
        }
    }
}

/// What a settlement did to the charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settled {
    /// No open charge, or the execution has not ended.
    Nothing,
    Captured,
    Voided,
}

impl Settled {
    fn as_str(self) -> &'static str {
        match self {
            Settled::Nothing => "none",
            Settled::Captured => "captured",
            Settled::Voided => "voided",
        }
    }
}

async fn settle_charge(
    db: &DatabaseConnection,
    billing: &Billing,
    execution_id: &str,
) -> Result<Settled, Error> {
    let Some(open) = charge::Entity::find_by_id(execution_id)
        .one(db)
        .await
        .map_err(db::error)?
        .filter(|c| c.status == ChargeStatus::Authorized)
    else {
        return Ok(Settled::Nothing);
    };
    let Some(run) = execution::Entity::find_by_id(execution_id)
        .one(db)
        .await
        .map_err(db::error)?
    else {
        return Ok(Settled::Nothing);
    };
    if !run.status.is_terminal() {
        return Ok(Settled::Nothing);
    }
    if run.status == ExecutionStatus::Succeeded {
        match verify_mandate(db, billing, &open).await {
            Ok(()) => capture(db, billing, &open)
                .await
                .map(|()| Settled::Captured),
            Err(reason) => {
                tracing::warn!(execution_id, %reason, "mandate refused; voiding instead of capturing");
                void(db, billing, &open).await.map(|()| Settled::Voided)
            }
        }
    } else {
        void(db, billing, &open).await.map(|()| Settled::Voided)
    }
}

async fn verify_mandate(
    db: &DatabaseConnection,
    billing: &Billing,
    open: &charge::Model,
) -> Result<(), String> {
    // Signed by another replica, maybe with a key published after this one started.
    billing
        .learn_key(db, &open.kid)
        .await
        .map_err(|e| e.message)?;
    check_mandate(&billing.keyring(), open, Utc::now())
}

/// The stored mandate verifies (strictly) and is this charge's own: its execution, its
/// amount, its nonce. A nonce is used once: `charges.nonce` is unique and a charge leaves
/// `authorized` with its capture.
fn check_mandate(
    keyring: &frameos_billing::Keyring,
    open: &charge::Model,
    now: chrono::DateTime<Utc>,
) -> Result<(), String> {
    let signature: [u8; 64] = hex::decode(&open.mandate_signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the stored signature is malformed")?;
    let signed = SignedMandate {
        payload: open.mandate_payload.clone().into_bytes(),
        signature,
        kid: open.kid.clone(),
    };
    let payload = keyring
        .verify(&signed, now, i64::MAX)
        .map_err(|e| e.to_string())?;
    if open.amount_minor > payload.amount_minor {
        return Err(format!(
            "the charge of {} exceeds the mandated {}",
            open.amount_minor, payload.amount_minor
        ));
    }
    if payload.execution_id != open.execution_id || payload.nonce != open.nonce {
        return Err("the mandate belongs to another charge".to_string());
    }
    Ok(())
}

async fn capture(
    db: &DatabaseConnection,
    billing: &Billing,
    open: &charge::Model,
) -> Result<(), Error> {
    let key = format!("capture:{}", open.execution_id);
    let captured = match billing.rail.capture(&open.authorization_id, &key).await? {
        Ok(captured) => captured,
        Err(RailError::InvalidState { state }) if state == AuthState::Voided.as_str() => {
            // The hold was released (an orphan sweep took it for abandoned): nothing can be
            // collected any more, so the books say what the rail says.
            tracing::error!(execution_id = %open.execution_id, "the hold was voided before its capture; recording the charge as voided");
            return mark_voided(db, billing, &open.execution_id).await;
        }
        Err(e) => return Err(Error::unavailable(format!("capture failed: {e}"))),
    };
    let AuthState::Captured { fee_minor } = captured.state else {
        return Err(Error::internal("the rail did not capture"));
    };
    #[cfg(feature = "fault-injection")]
    if billing.faults.block_after_capture {
        crate::faults::block_after_capture(&open.execution_id).await;
    }
    let month_before =
        month_gross_before(db, &open.payee_account, &open.currency, &open.execution_id).await?;
    // The tier bounds are in the platform currency's minor units; a month in another currency
    // is compared at the same nominal amount (no exchange rate). A charge from before the
    // currency list (an unknown code) is compared as it is rather than left unsettled.
    let month_before = match Currency::parse(&open.currency) {
        Ok(currency) => billing
            .policy
            .fee
            .currency
            .rescale_from(month_before, currency),
        Err(_) => month_before,
    };
    let split = billing
        .policy
        .split(
            open.amount_minor,
            month_before,
            open.orchestrated,
            fee_minor,
        )
        .map_err(|e| Error::internal(format!("split: {e}")))?;
    let now = Utc::now();
    let txn = db.begin().await.map_err(db::error)?;
    let changed = charge::Entity::update_many()
        .col_expr(charge::Column::Status, Expr::value(ChargeStatus::Captured))
        .col_expr(charge::Column::DeveloperMinor, Expr::value(split.developer))
        .col_expr(
            charge::Column::OrchestratorMinor,
            Expr::value(split.orchestrator),
        )
        .col_expr(charge::Column::PlatformMinor, Expr::value(split.platform))
        .col_expr(charge::Column::RailFeeMinor, Expr::value(split.rail_fee))
        .col_expr(charge::Column::SettledAt, Expr::value(now))
        .filter(charge::Column::ExecutionId.eq(&open.execution_id))
        .filter(charge::Column::Status.eq(ChargeStatus::Authorized))
        .exec(&txn)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        // Someone else settled it in the meantime.
        return Ok(());
    }
    ledger::post_capture(
        &txn,
        &open.execution_id,
        &open.currency,
        &open.payer_account,
        &open.payee_account,
        open.orchestrator_account.as_deref(),
        Parts {
            gross: split.gross,
            developer: split.developer,
            orchestrator: split.orchestrator,
            platform: split.platform,
            rail_fee: split.rail_fee,
        },
    )
    .await?;
    txn.commit().await.map_err(db::error)?;
    billing.metrics.charge(ChargeStatus::Captured);
    tracing::info!(
        execution_id = %open.execution_id,
        gross = split.gross,
        developer = split.developer,
        platform = split.platform,
        orchestrator = split.orchestrator,
        rail_fee = split.rail_fee,
        developer_bp = split.developer_bp,
        "charge captured and posted"
    );
    Ok(())
}

async fn void(
    db: &DatabaseConnection,
    billing: &Billing,
    open: &charge::Model,
) -> Result<(), Error> {
    let key = format!("void:{}", open.execution_id);
    billing
        .rail
        .void(&open.authorization_id, &key)
        .await?
        .map_err(|e| Error::unavailable(format!("void failed: {e}")))?;
    mark_voided(db, billing, &open.execution_id).await
}

async fn mark_voided(
    db: &DatabaseConnection,
    billing: &Billing,
    execution_id: &str,
) -> Result<(), Error> {
    let changed = charge::Entity::update_many()
        .col_expr(charge::Column::Status, Expr::value(ChargeStatus::Voided))
        .col_expr(charge::Column::SettledAt, Expr::value(Utc::now()))
        .filter(charge::Column::ExecutionId.eq(execution_id))
        .filter(charge::Column::Status.eq(ChargeStatus::Authorized))
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed > 0 {
        billing.metrics.charge(ChargeStatus::Voided);
    }
    tracing::info!(execution_id, "charge voided");
    Ok(())
}

/// The developer's gross captured in `currency` in the current UTC month, before this charge
/// (the tier). Charges in other currencies are not added in: there is no exchange rate.
async fn month_gross_before(
    db: &DatabaseConnection,
    payee: &str,
    currency: &str,
    execution_id: &str,
) -> Result<i64, Error> {
    let now = Utc::now();
    let month_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let amounts: Vec<i64> = charge::Entity::find()
        .select_only()
        .column(charge::Column::AmountMinor)
        .filter(charge::Column::PayeeAccount.eq(payee))
        .filter(charge::Column::Currency.eq(currency))
        .filter(charge::Column::Status.eq(ChargeStatus::Captured))
        .filter(charge::Column::SettledAt.gte(month_start))
        .filter(charge::Column::ExecutionId.ne(execution_id))
        .into_tuple()
        .all(db)
        .await
        .map_err(db::error)?;
    amounts
        .into_iter()
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| Error::internal("monthly gross overflow"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use frameos_billing::{Keyring, MandatePayload};

    fn charge_for(
        keyring: &Keyring,
        execution_id: &str,
        nonce: &str,
        amount: i64,
    ) -> charge::Model {
        let now = Utc::now();
        let signed = keyring.sign(&MandatePayload {
            mandate_id: "m1".into(),
            intent_id: "i1".into(),
            execution_id: execution_id.into(),
            payer_account: "payer".into(),
            payee_account: "payee".into(),
            amount_minor: amount,
            currency: "INR".into(),
            nonce: nonce.into(),
            issued_at: frameos_billing::mandate::timestamp(now),
            expires_at: frameos_billing::mandate::timestamp(now + chrono::Duration::hours(1)),
            parent_mandate_id: None,
            standing_mandate_id: None,
        });
        charge::Model {
            execution_id: execution_id.into(),
            intent_id: "i1".into(),
            mandate_id: "m1".into(),
            payer_account: "payer".into(),
            payee_account: "payee".into(),
            amount_minor: amount,
            currency: "INR".into(),
            kid: signed.kid,
            mandate_payload: String::from_utf8(signed.payload).unwrap(),
            mandate_signature: hex::encode(signed.signature),
            nonce: nonce.into(),
            expires_at: now + chrono::Duration::hours(1),
            authorization_id: "auth_1".into(),
            status: ChargeStatus::Authorized,
            orchestrated: false,
            orchestrator_account: None,
            developer_minor: None,
            orchestrator_minor: None,
            platform_minor: None,
            rail_fee_minor: None,
            created_at: now,
            settled_at: None,
        }
    }

    #[test]
    fn only_the_charges_own_valid_mandate_is_accepted() {
        let keyring = Keyring::generate("k-test");
        let now = Utc::now();
        let good = charge_for(&keyring, "e1", "n1", 5000);
        assert_eq!(check_mandate(&keyring, &good, now), Ok(()));

        // A mandate replayed onto another charge: wrong execution, or another nonce.
        let mut replayed = charge_for(&keyring, "e2", "n2", 5000);
        replayed.mandate_payload = good.mandate_payload.clone();
        replayed.mandate_signature = good.mandate_signature.clone();
        assert!(check_mandate(&keyring, &replayed, now).is_err());
        let mut other_nonce = good.clone();
        other_nonce.nonce = "n9".into();
        assert!(check_mandate(&keyring, &other_nonce, now).is_err());

        // A charge above the mandated amount is refused; at or below it is fine.
        let mut larger = good.clone();
        larger.amount_minor = 5001;
        assert!(
            check_mandate(&keyring, &larger, now).is_err(),
            "amount above the mandate"
        );
        let mut smaller = good.clone();
        smaller.amount_minor = 4000;
        assert_eq!(check_mandate(&keyring, &smaller, now), Ok(()));

        // A tampered payload, an unknown key, an expired mandate.
        let mut tampered = good.clone();
        tampered.mandate_payload = tampered.mandate_payload.replace("5000", "5001");
        assert!(check_mandate(&keyring, &tampered, now).is_err());
        let stranger = Keyring::generate("k-test");
        assert!(check_mandate(&stranger, &good, now).is_err());
        assert!(check_mandate(&keyring, &good, now + chrono::Duration::hours(2)).is_err());
    }
}
