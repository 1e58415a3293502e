//! Paying for executions: a purchase intent and an Ed25519-signed mandate when a paid
//! execution is accepted, an authorization (hold) on the payment rail before it is queued,
//! and exactly one settlement when it ends: capture and a balanced ledger posting on success,
//! a void otherwise. Reconciliation finishes settlements a crash interrupted.

pub mod config;
pub mod earnings;
pub mod ledger;
mod rail;
mod reconcile;
pub mod service;
mod settle;

use frameos_core::ChargeStatus;
use std::sync::Arc;

use chrono::Utc;
use frameos_billing::{Currency, Keyring, MandatePayload, SplitPolicy};
use frameos_core::{Error, ErrorCode};
use rand::RngCore;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};

pub use config::{BillingConfig, RailKind, Secret};
pub use rail::{StripeRail, StripeSettings};
pub use reconcile::{Reconciled, reconcile, run_reconciler};
pub use settle::settle;

use crate::db;
use crate::entity::{charge, mandate_key};

#[derive(Clone)]
pub struct Billing {
    /// Signs with this replica's key; verifies with every published one, learning keys that
    /// replicas started later publish ([`Billing::learn_key`]).
    keyring: Arc<std::sync::RwLock<Keyring>>,
    rail: rail::Rail,
    policy: SplitPolicy,
    mandate_ttl: chrono::Duration,
    metrics: crate::metrics::Metrics,
    /// Test-only faults; the feature is enabled by the integration tests alone.
    #[cfg(feature = "fault-injection")]
    faults: crate::faults::Faults,
}

/// What an accepted paid execution is charged, and who is paid.
pub struct Purchase<'a> {
    pub execution_id: &'a str,
    pub payer_account: &'a str,
    /// The payer's instrument at the rail (the sandbox reads test payer ids from it).
    pub payer_reference: &'a str,
    pub payee_account: &'a str,
    /// What is held now and captured on success: the agent's own price.
    pub amount_minor: i64,
    pub currency: &'a str,
    /// What the mandate allows (at least `amount_minor`): a root's is the budget of its whole
    /// call tree (API.md §5.1), a child's its own price.
    pub mandate_amount_minor: i64,
    /// A child's: the mandate of the execution that called it.
    pub parent_mandate_id: Option<&'a str>,
    /// A child's: the developer of the calling agent, paid the orchestrator share.
    pub orchestrator_account: Option<&'a str>,
    /// A scheduled run's: the payer's standing mandate it spends under.
    pub standing_mandate_id: Option<&'a str>,
}

impl Billing {
    pub async fn start(db: &DatabaseConnection, config: &BillingConfig) -> Result<Billing, Error> {
        let policy = config
            .policy()
            .map_err(|e| Error::new(ErrorCode::InvalidRequest, format!("billing policy: {e}")))?;
        let mut keyring = match &config.mandate_signing_key {
            Some(hex_key) => {
                let secret: [u8; 32] = hex::decode(hex_key.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::InvalidRequest,
                            "FRAMEOS_MANDATE_SIGNING_KEY must be 64 hex digits",
                        )
                    })?;
                let kid = config
                    .mandate_kid
                    .clone()
                    .unwrap_or_else(|| "k1".to_string());
                Keyring::from_secret(kid, secret)
            }
            None => {
                let mut suffix = [0u8; 4];
                rand::rng().fill_bytes(&mut suffix);
                Keyring::generate(format!("k-{}", hex::encode(suffix)))
            }
        };
        // Publish the active public key, and trust every key published before (rotation).
        for (kid, public) in keyring.public_keys() {
            mandate_key::Entity::insert(mandate_key::ActiveModel {
                kid: Set(kid),
                public_key: Set(hex::encode(public)),
                created_at: Set(Utc::now()),
            })
            .on_conflict(
                OnConflict::column(mandate_key::Column::Kid)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await
            .map_err(db::error)?;
        }
        for row in mandate_key::Entity::find()
            .all(db)
            .await
            .map_err(db::error)?
        {
            if row.kid == keyring.active_kid() {
                continue;
            }
            let key = published_key(&row)?;
            keyring
                .add_verification_key(row.kid.clone(), key)
                .map_err(|e| Error::internal(format!("mandate key {}: {e}", row.kid)))?;
        }
        Ok(Billing {
            keyring: Arc::new(std::sync::RwLock::new(keyring)),
            rail: rail::Rail::start(db, config, policy.fee).await?,
            policy,
            mandate_ttl: chrono::Duration::seconds(
                i64::try_from(config.mandate_ttl_secs).unwrap_or(86_400),
            ),
            metrics: crate::metrics::Metrics::default(),
            #[cfg(feature = "fault-injection")]
            faults: crate::faults::Faults::default(),
        })
    }

    /// Records charges (and the reconciler's passes) in `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    pub fn policy(&self) -> &SplitPolicy {
        &self.policy
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn set_faults(&mut self, faults: crate::faults::Faults) {
        self.faults = faults;
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn faults(&self) -> crate::faults::Faults {
        self.faults
    }

    /// Refuses a price the rail's fee would eat the platform's share of. The minimum depends
    /// on the currency's minor-unit exponent, since the fixed part of the fee does.
    pub fn check_price(&self, price_minor: i64, currency: Currency) -> Result<(), Error> {
        let minimum = self.policy.minimum_price(currency);
        if price_minor < minimum {
            return Err(Error::new(
                ErrorCode::ValidationFailed,
                format!(
                    "pricing.price_minor {price_minor} is below the minimum of {minimum} {currency} minor units: the payment rail's fee would exceed the platform's share"
                ),
            ));
        }
        Ok(())
    }

    /// The intent, the signed mandate and the hold on the rail. Nothing is written here: the
    /// returned row is inserted with the execution. A decline is `payment_declined`.
    pub async fn authorize(&self, purchase: &Purchase<'_>) -> Result<charge::ActiveModel, Error> {
        let now = Utc::now();
        let intent_id = uuid::Uuid::now_v7().to_string();
        let mandate_id = uuid::Uuid::now_v7().to_string();
        let payload = MandatePayload {
            mandate_id: mandate_id.clone(),
            intent_id: intent_id.clone(),
            execution_id: purchase.execution_id.to_string(),
            payer_account: purchase.payer_account.to_string(),
            payee_account: purchase.payee_account.to_string(),
            amount_minor: purchase.mandate_amount_minor.max(purchase.amount_minor),
            currency: purchase.currency.to_string(),
            parent_mandate_id: purchase.parent_mandate_id.map(str::to_string),
            standing_mandate_id: purchase.standing_mandate_id.map(str::to_string),
            nonce: frameos_billing::mandate::new_nonce(),
            issued_at: frameos_billing::mandate::timestamp(now),
            expires_at: frameos_billing::mandate::timestamp(now + self.mandate_ttl),
        };
        let signed = self.keyring().sign(&payload);
        let key = format!("authorize:{}", purchase.execution_id);
        let authorization = self
            .rail
            .authorize(
                &key,
                rail::Payer {
                    account: purchase.payer_account,
                    reference: purchase.payer_reference,
                },
                purchase.amount_minor,
                purchase.currency,
            )
            .await?
            .map_err(|e| match e {
                frameos_billing::RailError::Declined { reason } => Error::new(
                    ErrorCode::PaymentDeclined,
                    format!("the payment was declined: {reason}"),
                ),
                frameos_billing::RailError::Failed { reason } => {
                    Error::unavailable(format!("the payment rail is unavailable: {reason}"))
                }
                other => Error::internal(format!("authorization failed: {other}")),
            })?;
        tracing::info!(
            execution_id = purchase.execution_id,
            authorization_id = %authorization.id,
            amount_minor = purchase.amount_minor,
            currency = purchase.currency,
            "payment authorized"
        );
        let payload_text = String::from_utf8(signed.payload)
            .map_err(|_| Error::internal("mandate payload is not UTF-8"))?;
        Ok(charge::ActiveModel {
            execution_id: Set(purchase.execution_id.to_string()),
            intent_id: Set(intent_id),
            mandate_id: Set(mandate_id),
            payer_account: Set(purchase.payer_account.to_string()),
            payee_account: Set(purchase.payee_account.to_string()),
            amount_minor: Set(purchase.amount_minor),
            currency: Set(purchase.currency.to_string()),
            kid: Set(signed.kid),
            mandate_payload: Set(payload_text),
            mandate_signature: Set(hex::encode(signed.signature)),
            nonce: Set(payload.nonce),
            expires_at: Set(now + self.mandate_ttl),
            authorization_id: Set(authorization.id),
            status: Set(ChargeStatus::Authorized),
            orchestrated: Set(purchase.orchestrator_account.is_some()),
            orchestrator_account: Set(purchase.orchestrator_account.map(str::to_string)),
            developer_minor: Set(None),
            orchestrator_minor: Set(None),
            platform_minor: Set(None),
            rail_fee_minor: Set(None),
            created_at: Set(now),
            settled_at: Set(None),
        })
    }

    /// Releases a hold no execution was recorded for: its insert failed, it lost an
    /// idempotency race, or the process died before the commit. Whether it is released now.
    pub async fn release(&self, execution_id: &str, authorization_id: &str) -> bool {
        let key = format!("void:{execution_id}");
        let error = match self.rail.void(authorization_id, &key).await {
            Ok(Ok(_)) => {
                tracing::info!(
                    execution_id,
                    authorization_id,
                    "orphan authorization voided"
                );
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(execution_id, authorization_id, %error, "orphan authorization not voided; reconciliation will retry");
        false
    }

    fn keyring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        // A panic while holding the lock cannot leave a keyring half-changed: keys are only
        // ever added whole.
        self.keyring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure `kid` verifies here: a key this replica does not know yet (another replica,
    /// started after this one with a key of its own, published it) is read from the published
    /// keys. An unknown `kid` stays unknown, and verifying with it fails.
    pub async fn learn_key(&self, db: &DatabaseConnection, kid: &str) -> Result<(), Error> {
        if self.keyring().knows(kid) {
            return Ok(());
        }
        let Some(row) = mandate_key::Entity::find_by_id(kid)
            .one(db)
            .await
            .map_err(db::error)?
        else {
            return Ok(());
        };
        let key = published_key(&row)?;
        self.keyring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add_verification_key(row.kid.clone(), key)
            .map_err(|e| Error::internal(format!("mandate key {}: {e}", row.kid)))?;
        tracing::info!(kid, "learned a mandate key another replica published");
        Ok(())
    }

    /// A mandate's signed bytes as a compact JWS, signed now with the active key.
    pub fn jws(&self, payload: &[u8]) -> String {
        self.keyring().jws(payload)
    }

    pub fn public_keys(&self) -> Vec<(String, [u8; 32])> {
        self.keyring().public_keys()
    }

    /// A payer's standing mandate for a schedule, signed with the active key.
    pub fn sign_standing(
        &self,
        mandate: &frameos_billing::StandingMandate,
    ) -> frameos_billing::SignedMandate {
        self.keyring().sign_standing(mandate)
    }

    /// The standing mandate a schedule keeps, checked against the keys that verify; a stored
    /// mandate that does not verify is the platform's fault, not the payer's.
    pub fn verify_standing(
        &self,
        signed: &frameos_billing::SignedMandate,
    ) -> Result<frameos_billing::StandingMandate, Error> {
        self.keyring()
            .verify_standing(signed)
            .map_err(|e| Error::internal(format!("a stored standing mandate: {e}")))
    }
}

/// The verifying key of a published row.
fn published_key(
    row: &mandate_key::Model,
) -> Result<frameos_billing::mandate::VerifyingKey, Error> {
    let public: [u8; 32] = hex::decode(&row.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::internal(format!("mandate key {} is unreadable", row.kid)))?;
    frameos_billing::mandate::VerifyingKey::from_bytes(&public)
        .map_err(|e| Error::internal(format!("mandate key {}: {e}", row.kid)))
}
