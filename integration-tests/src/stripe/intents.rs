//! The fake's PaymentIntents: their state machine and the five endpoints, answering with the
//! documented objects and errors. No I/O here: [`super`] runs the HTTP side (authentication,
//! idempotency, faults, the request log).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::wire::{Outcome, Params, error, invalid_param};

/// Stripe's test payment methods the fake knows.
pub const PM_VISA: &str = "pm_card_visa";
pub const PM_MASTERCARD: &str = "pm_card_mastercard";
/// Declined by the issuer: `card_declined` / `generic_decline`.
pub const PM_DECLINED: &str = "pm_card_chargeDeclined";
/// Declined by the issuer: `card_declined` / `insufficient_funds`.
pub const PM_INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresCapture,
    Canceled,
    Succeeded,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::RequiresPaymentMethod => "requires_payment_method",
            Status::RequiresConfirmation => "requires_confirmation",
            Status::RequiresCapture => "requires_capture",
            Status::Canceled => "canceled",
            Status::Succeeded => "succeeded",
        }
    }
}

#[derive(Clone, Debug)]
struct Txn {
    id: String,
    amount: i64,
    fee: i64,
    currency: String,
}

#[derive(Clone, Debug)]
struct Charge {
    id: String,
    paid: bool,
    captured: bool,
    txn: Option<Txn>,
}

#[derive(Clone, Debug)]
pub(super) struct Intent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: Status,
    capture_method: String,
    pub created: i64,
    pub metadata: BTreeMap<String, String>,
    payment_method: Option<String>,
    cancellation_reason: Option<String>,
    canceled_at: Option<i64>,
    charge: Option<Charge>,
    last_payment_error: Option<Value>,
}

/// What the fake charges for a capture, and in which currency its balance settles.
#[derive(Clone, Debug)]
pub struct Pricing {
    pub fee_bp: i64,
    pub fee_fixed_minor: i64,
    /// The account's settlement currency (lower case); `None`: the charge's own.
    pub settlement_currency: Option<String>,
}

impl Default for Pricing {
    /// Not the platform's default schedule (2.9% + 200), so a test sees whose fee was used.
    fn default() -> Self {
        Pricing {
            fee_bp: 200,
            fee_fixed_minor: 300,
            settlement_currency: None,
        }
    }
}

fn no_such_intent(id: &str) -> Outcome {
    let mut outcome = error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such payment_intent: '{id}'"),
    );
    outcome.body["error"]["param"] = json!("intent");
    outcome
}

fn unexpected_state(intent: &Intent, message: String) -> Outcome {
    let mut outcome = error(
        400,
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        &message,
    );
    outcome.body["error"]["payment_intent"] = intent.render(&[]);
    outcome
}

impl Intent {
    pub fn render(&self, expand: &[&str]) -> Value {
        let expanded = |path: &str| expand.iter().any(|e| e.trim_start_matches("data.") == path);
        let txn_of = |txn: &Txn| {
            if expanded("latest_charge.balance_transaction") {
                json!({"id": txn.id, "object": "balance_transaction", "amount": txn.amount,
                       "currency": txn.currency, "fee": txn.fee, "net": txn.amount - txn.fee,
                       "status": "pending", "type": "charge"})
            } else {
                json!(txn.id)
            }
        };
        let charge = self.charge.as_ref().map(|c| {
            if expanded("latest_charge") || expanded("latest_charge.balance_transaction") {
                json!({"id": c.id, "object": "charge", "amount": self.amount,
                       "amount_captured": if c.captured { self.amount } else { 0 },
                       "captured": c.captured, "paid": c.paid,
                       "status": if c.paid { "succeeded" } else { "failed" },
                       "currency": self.currency, "payment_intent": self.id,
                       "balance_transaction": c.txn.as_ref().map(txn_of)})
            } else {
                json!(c.id)
            }
        });
        let held = self.status == Status::RequiresCapture;
        json!({
            "id": self.id, "object": "payment_intent", "amount": self.amount,
            "amount_capturable": if held { self.amount } else { 0 },
            "amount_received": if self.status == Status::Succeeded { self.amount } else { 0 },
            "currency": self.currency, "status": self.status.as_str(),
            "capture_method": self.capture_method, "confirmation_method": "automatic",
            "created": self.created, "metadata": self.metadata,
            "payment_method": self.payment_method, "payment_method_types": ["card"],
            "cancellation_reason": self.cancellation_reason, "canceled_at": self.canceled_at,
            "latest_charge": charge, "last_payment_error": self.last_payment_error,
            "livemode": false,
        })
    }

    /// An intent holding `amount` since `created` (a test's planted hold).
    pub fn held(id: String, amount: i64, currency: &str, created: i64) -> Intent {
        Intent {
            charge: Some(Charge {
                id: id.replacen("pi_", "ch_", 1),
                paid: true,
                captured: false,
                txn: None,
            }),
            id,
            amount,
            currency: currency.to_string(),
            status: Status::RequiresCapture,
            capture_method: "manual".into(),
            created,
            metadata: BTreeMap::new(),
            payment_method: Some(PM_VISA.into()),
            cancellation_reason: None,
            canceled_at: None,
            last_payment_error: None,
        }
    }

    /// Captures `amount` of the hold: the charge gets its balance transaction and Stripe's fee,
    /// ceil(amount × bp / 10000) + fixed, as percentage-plus-fixed pricing is.
    fn take_payment(&mut self, amount: i64, pricing: &Pricing) {
        let fee =
            ((amount * pricing.fee_bp + 9_999) / 10_000 + pricing.fee_fixed_minor).min(amount);
        let currency = pricing
            .settlement_currency
            .clone()
            .unwrap_or_else(|| self.currency.clone());
        if let Some(charge) = &mut self.charge {
            charge.captured = true;
            charge.txn = Some(Txn {
                id: charge.id.replacen("ch_", "txn_", 1),
                amount,
                fee,
                currency,
            });
        }
        self.status = Status::Succeeded;
    }

    /// Stripe's expiry of an uncaptured intent (7 days after its creation).
    pub fn expire(&mut self, now: i64) -> bool {
        if self.status != Status::RequiresCapture {
            return false;
        }
        self.status = Status::Canceled;
        self.cancellation_reason = Some("automatic".into());
        self.canceled_at = Some(now);
        true
    }
}

/// `POST /v1/payment_intents`: the new intent (if any) and the answer.
pub(super) fn create(
    p: &Params,
    id: String,
    now: i64,
    pricing: &Pricing,
) -> (Option<Intent>, Outcome) {
    if let Err(refused) = p.only(&[
        "amount",
        "currency",
        "capture_method",
        "confirm",
        "payment_method",
        "payment_method_types[]",
        "off_session",
        "description",
        "metadata",
        "expand[]",
    ]) {
        return (None, refused);
    }
    let Some(amount) = p.one("amount").and_then(|a| a.parse::<i64>().ok()) else {
        return (
            None,
            invalid_param(
                "amount",
                "parameter_missing",
                "Missing required param: amount.",
            ),
        );
    };
    if amount < 1 {
        return (
            None,
            invalid_param("amount", "amount_too_small", "Amount must be at least 1."),
        );
    }
    let currency = p.one("currency").unwrap_or_default();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return (
            None,
            invalid_param(
                "currency",
                "parameter_invalid_string",
                "Invalid currency: expected a three-letter lowercase ISO code.",
            ),
        );
    }
    let capture_method = p.one("capture_method").unwrap_or("automatic_async");
    if !["automatic", "automatic_async", "manual"].contains(&capture_method) {
        return (
            None,
            invalid_param(
                "capture_method",
                "parameter_invalid_string",
                "Invalid capture_method.",
            ),
        );
    }
    let confirm = p.one("confirm") == Some("true");
    if p.one("off_session").is_some_and(|o| o != "false") && !confirm {
        return (
            None,
            invalid_param(
                "off_session",
                "parameter_invalid_string",
                "off_session can only be used with confirm=true.",
            ),
        );
    }
    let payment_method = p.one("payment_method").map(str::to_string);
    if let Some(pm) = &payment_method
        && ![PM_VISA, PM_MASTERCARD, PM_DECLINED, PM_INSUFFICIENT_FUNDS].contains(&pm.as_str())
    {
        let mut refused = invalid_param(
            "payment_method",
            "resource_missing",
            &format!("No such PaymentMethod: '{pm}'"),
        );
        refused.remember = true;
        return (None, refused);
    }
    let metadata =
        p.0.iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((name.to_string(), v.clone()))
            })
            .collect();
    let mut intent = Intent {
        id,
        amount,
        currency: currency.to_string(),
        status: Status::RequiresPaymentMethod,
        capture_method: capture_method.to_string(),
        created: now,
        metadata,
        payment_method: payment_method.clone(),
        cancellation_reason: None,
        canceled_at: None,
        charge: None,
        last_payment_error: None,
    };
    let expand = p.expand();
    match (confirm, payment_method.as_deref()) {
        (false, Some(_)) => intent.status = Status::RequiresConfirmation,
        (false, None) => {}
        (true, None) => {
            return (
                None,
                invalid_param(
                    "payment_method",
                    "payment_intent_unexpected_state",
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                ),
            );
        }
        (true, Some(pm)) if pm == PM_DECLINED || pm == PM_INSUFFICIENT_FUNDS => {
            let decline_code = if pm == PM_DECLINED {
                "generic_decline"
            } else {
                "insufficient_funds"
            };
            let charge = intent.id.replacen("pi_", "ch_", 1);
            let error = json!({"type": "card_error", "code": "card_declined",
                "decline_code": decline_code, "message": "Your card was declined.", "charge": charge});
            intent.charge = Some(Charge {
                id: charge,
                paid: false,
                captured: false,
                txn: None,
            });
            intent.last_payment_error = Some(error.clone());
            let mut body = json!({ "error": error });
            body["error"]["payment_intent"] = intent.render(&expand);
            return (
                Some(intent),
                Outcome {
                    status: 402,
                    body,
                    remember: true,
                },
            );
        }
        (true, Some(_)) => {
            intent.charge = Some(Charge {
                id: intent.id.replacen("pi_", "ch_", 1),
                paid: true,
                captured: false,
                txn: None,
            });
            intent.status = Status::RequiresCapture;
            if capture_method != "manual" {
                intent.take_payment(intent.amount, pricing);
            }
        }
    }
    let body = intent.render(&expand);
    (Some(intent), Outcome::ok(body))
}

/// `POST /v1/payment_intents/{id}/capture`.
pub(super) fn capture(
    intent: Option<&mut Intent>,
    id: &str,
    p: &Params,
    pricing: &Pricing,
) -> Outcome {
    if let Err(refused) = p.only(&["amount_to_capture", "expand[]", "metadata"]) {
        return refused;
    }
    let Some(intent) = intent else {
        return no_such_intent(id);
    };
    if intent.status != Status::RequiresCapture {
        let message = format!(
            "This PaymentIntent could not be captured because it has a status of {}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
            intent.status.as_str()
        );
        return unexpected_state(intent, message);
    }
    let amount = match p.one("amount_to_capture").map(str::parse::<i64>) {
        None => intent.amount,
        Some(Ok(n)) if (1..=intent.amount).contains(&n) => n,
        Some(_) => {
            return invalid_param(
                "amount_to_capture",
                "amount_too_large",
                "amount_to_capture must be at most the amount capturable.",
            );
        }
    };
    intent.take_payment(amount, pricing);
    Outcome::ok(intent.render(&p.expand()))
}

/// `POST /v1/payment_intents/{id}/cancel`.
pub(super) fn cancel(intent: Option<&mut Intent>, id: &str, p: &Params, now: i64) -> Outcome {
    if let Err(refused) = p.only(&["cancellation_reason", "expand[]"]) {
        return refused;
    }
    let Some(intent) = intent else {
        return no_such_intent(id);
    };
    if matches!(intent.status, Status::Canceled | Status::Succeeded) {
        let message = format!(
            "You cannot cancel this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
            intent.status.as_str()
        );
        return unexpected_state(intent, message);
    }
    intent.status = Status::Canceled;
    intent.cancellation_reason = p.one("cancellation_reason").map(str::to_string);
    intent.canceled_at = Some(now);
    Outcome::ok(intent.render(&p.expand()))
}

/// `GET /v1/payment_intents/{id}`.
pub(super) fn retrieve(intent: Option<&Intent>, id: &str, p: &Params) -> Outcome {
    if let Err(refused) = p.only(&["expand[]", "client_secret"]) {
        return refused;
    }
    match intent {
        Some(intent) => Outcome::ok(intent.render(&p.expand())),
        None => no_such_intent(id),
    }
}

/// `GET /v1/payment_intents`: newest first, `limit` (1–100, default 10), `starting_after`,
/// `created[gt|gte|lt|lte]` (and `created` exact).
pub(super) fn list(intents: &[Intent], p: &Params) -> Outcome {
    if let Err(refused) = p.only(&[
        "limit",
        "starting_after",
        "created",
        "created[gt]",
        "created[gte]",
        "created[lt]",
        "created[lte]",
        "expand[]",
    ]) {
        return refused;
    }
    let limit = match p.one("limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return invalid_param(
                "limit",
                "parameter_invalid_integer",
                "limit must be an integer between 1 and 100.",
            );
        }
    };
    let bound = |name: &str| p.one(name).and_then(|v| v.parse::<i64>().ok());
    let (exact, gt, gte, lt, lte) = (
        bound("created"),
        bound("created[gt]"),
        bound("created[gte]"),
        bound("created[lt]"),
        bound("created[lte]"),
    );
    // Insertion order is creation order; newest first, as Stripe lists.
    let mut matching: Vec<&Intent> = intents
        .iter()
        .rev()
        .filter(|i| exact.is_none_or(|t| i.created == t))
        .filter(|i| gt.is_none_or(|t| i.created > t))
        .filter(|i| gte.is_none_or(|t| i.created >= t))
        .filter(|i| lt.is_none_or(|t| i.created < t))
        .filter(|i| lte.is_none_or(|t| i.created <= t))
        .collect();
    matching.sort_by_key(|i| std::cmp::Reverse(i.created));
    if let Some(after) = p.one("starting_after") {
        let Some(position) = matching.iter().position(|i| i.id == after) else {
            return invalid_param(
                "starting_after",
                "resource_missing",
                &format!("No such payment_intent: '{after}'"),
            );
        };
        matching.drain(..=position);
    }
    let has_more = matching.len() > limit;
    let expand = p.expand();
    let data: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|i| i.render(&expand))
        .collect();
    Outcome::ok(
        json!({"object": "list", "url": "/v1/payment_intents", "has_more": has_more, "data": data}),
    )
}
