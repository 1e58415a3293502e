//! Stripe's objects as the rail reads them: a PaymentIntent, its latest charge and that
//! charge's balance transaction (the fee), a list page and an error. Only the fields the rail
//! uses; Stripe adds fields without a new API version, so unknown ones are ignored.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use frameos_billing::{AuthState, Authorization, Currency, FeeSchedule};
use serde::Deserialize;

/// Metadata keys the rail writes on every intent it creates.
pub(super) const META_PAYER: &str = "payer";
pub(super) const META_KEY: &str = "frameos_key";
pub(super) const META_INSTANCE: &str = "frameos_instance";

/// `PaymentIntent.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    /// A status newer than this adapter.
    #[serde(other)]
    Unknown,
}

impl IntentStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            IntentStatus::RequiresPaymentMethod => "requires_payment_method",
            IntentStatus::RequiresConfirmation => "requires_confirmation",
            IntentStatus::RequiresAction => "requires_action",
            IntentStatus::Processing => "processing",
            IntentStatus::RequiresCapture => "requires_capture",
            IntentStatus::Canceled => "canceled",
            IntentStatus::Succeeded => "succeeded",
            IntentStatus::Unknown => "unknown",
        }
    }
}

/// A field Stripe returns as an id unless it was expanded.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Expandable<T> {
    Object(T),
    /// Not expanded: the id alone, which the rail never needs (typed, so anything else fails).
    #[allow(dead_code)]
    Id(String),
}

#[derive(Clone, Debug, Deserialize)]
pub(super) struct BalanceTransaction {
    pub fee: i64,
    pub currency: String,
}

#[derive(Clone, Debug, Deserialize)]
pub(super) struct Charge {
    #[serde(default)]
    pub balance_transaction: Option<Expandable<BalanceTransaction>>,
}

#[derive(Clone, Debug, Deserialize)]
pub(super) struct Intent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: IntentStatus,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub latest_charge: Option<Expandable<Charge>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct IntentList {
    pub data: Vec<Intent>,
    pub has_more: bool,
}

/// Where a captured charge's fee came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FeeSource {
    /// The balance transaction of the charge, in the charge's currency.
    Stripe,
    /// The configured schedule: Stripe reported none, or in another currency.
    Schedule,
}

impl Intent {
    /// Whether this deployment created it: reconciliation must never touch another's.
    pub(super) fn is_ours(&self, instance: &str) -> bool {
        self.metadata.get(META_INSTANCE).map(String::as_str) == Some(instance)
            && self.metadata.contains_key(META_KEY)
    }

    /// Our currency code (upper case), from Stripe's lower-case one.
    pub(super) fn currency_code(&self) -> String {
        self.currency.to_ascii_uppercase()
    }

    /// What Stripe kept of the capture, when the balance transaction was expanded and is in the
    /// charge's own currency; otherwise the schedule's fee for the amount. A balance transaction
    /// in the account's settlement currency is not converted: no exchange rate is applied.
    pub(super) fn fee(&self, schedule: &FeeSchedule) -> (i64, FeeSource) {
        let reported = match &self.latest_charge {
            Some(Expandable::Object(Charge {
                balance_transaction: Some(Expandable::Object(txn)),
            })) if txn.currency.eq_ignore_ascii_case(&self.currency) && txn.fee >= 0 => {
                Some(txn.fee)
            }
            _ => None,
        };
        match reported {
            Some(fee) => (fee, FeeSource::Stripe),
            None => {
                let fee = match Currency::parse(&self.currency_code()) {
                    Ok(currency) => schedule.in_currency(currency).fee(self.amount),
                    Err(_) => schedule.fee(self.amount),
                };
                (fee, FeeSource::Schedule)
            }
        }
    }

    /// The hold as the rail's callers know one, in `state`.
    pub(super) fn authorization(&self, state: AuthState) -> Authorization {
        Authorization {
            id: self.id.clone(),
            idempotency_key: self.metadata.get(META_KEY).cloned().unwrap_or_default(),
            payer: self.metadata.get(META_PAYER).cloned().unwrap_or_default(),
            amount_minor: self.amount,
            currency: self.currency_code(),
            state,
            created_at: DateTime::<Utc>::from_timestamp(self.created, 0).unwrap_or_default(),
        }
    }

    /// The hold this intent is, for a listing: `None` for an intent of someone else's or one
    /// that never held money (declined, waiting for an action). A captured intent's fee is the
    /// schedule's unless the charge was expanded; nobody settles from a listing.
    pub(super) fn listed(&self, instance: &str, schedule: &FeeSchedule) -> Option<Authorization> {
        if !self.is_ours(instance) {
            return None;
        }
        let state = match self.status {
            IntentStatus::RequiresCapture => AuthState::Authorized,
            IntentStatus::Succeeded => AuthState::Captured {
                fee_minor: self.fee(schedule).0,
            },
            IntentStatus::Canceled => AuthState::Voided,
            _ => return None,
        };
        Some(self.authorization(state))
    }
}

/// `error.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ErrorType {
    ApiError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    #[serde(other)]
    Other,
}

/// The `error.code`s the rail acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ErrorCode {
    /// The intent is not in a state that allows the call (captured, canceled, …).
    PaymentIntentUnexpectedState,
    /// No such object.
    ResourceMissing,
}

/// Stripe's `error` object.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct ApiError {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ApiError {
    pub(super) fn code(&self) -> Option<ErrorCode> {
        match self.code.as_deref()? {
            "payment_intent_unexpected_state" => Some(ErrorCode::PaymentIntentUnexpectedState),
            "resource_missing" => Some(ErrorCode::ResourceMissing),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn intent(status: &str, metadata: serde_json::Value, charge: serde_json::Value) -> Intent {
        serde_json::from_value(serde_json::json!({
            "id": "pi_1", "object": "payment_intent", "amount": 10_000, "currency": "inr",
            "status": status, "created": 1_700_000_000, "metadata": metadata,
            "latest_charge": charge, "livemode": false,
        }))
        .unwrap()
    }

    fn ours() -> serde_json::Value {
        serde_json::json!({"frameos_instance": "prod", "frameos_key": "authorize:e1", "payer": "acct"})
    }

    #[test]
    fn stripe_intents_list_as_holds_only_when_ours_and_once_authorized() {
        let schedule = FeeSchedule::default();
        let held = intent("requires_capture", ours(), serde_json::Value::Null);
        let listed = held.listed("prod", &schedule).unwrap();
        assert_eq!(listed.state, AuthState::Authorized);
        assert_eq!(listed.idempotency_key, "authorize:e1");
        assert_eq!(listed.payer, "acct");
        assert_eq!(listed.currency, "INR");
        assert_eq!(listed.created_at.timestamp(), 1_700_000_000);
        assert!(
            held.listed("staging", &schedule).is_none(),
            "another deployment's"
        );
        let foreign = intent(
            "requires_capture",
            serde_json::json!({}),
            serde_json::Value::Null,
        );
        assert!(
            foreign.listed("prod", &schedule).is_none(),
            "not created by us"
        );
        for never_held in [
            "requires_payment_method",
            "requires_action",
            "processing",
            "new",
        ] {
            let i = intent(never_held, ours(), serde_json::Value::Null);
            assert!(i.listed("prod", &schedule).is_none(), "{never_held}");
        }
        let voided = intent("canceled", ours(), serde_json::Value::Null);
        assert_eq!(
            voided.listed("prod", &schedule).unwrap().state,
            AuthState::Voided
        );
    }

    #[test]
    fn stripe_fee_comes_from_the_balance_transaction_in_the_charge_currency_only() {
        let schedule = FeeSchedule::default(); // 2.9% + ₹2: 490 on ₹100
        let expanded = |currency: &str| {
            serde_json::json!({"id": "ch_1", "balance_transaction":
                {"id": "txn_1", "fee": 530, "currency": currency}})
        };
        let reported = intent("succeeded", ours(), expanded("inr"));
        assert_eq!(reported.fee(&schedule), (530, FeeSource::Stripe));
        let settled_elsewhere = intent("succeeded", ours(), expanded("usd"));
        assert_eq!(settled_elsewhere.fee(&schedule), (490, FeeSource::Schedule));
        let not_expanded = intent("succeeded", ours(), serde_json::json!("ch_1"));
        assert_eq!(not_expanded.fee(&schedule), (490, FeeSource::Schedule));
        let pending = intent(
            "succeeded",
            ours(),
            serde_json::json!({"id": "ch_1", "balance_transaction": null}),
        );
        assert_eq!(pending.fee(&schedule), (490, FeeSource::Schedule));
    }
}
