//! The Stripe rail (ADR 0043): a hold is a PaymentIntent created and confirmed with
//! `capture_method=manual` (status `requires_capture`), a capture captures it, a void cancels
//! it. Every POST carries the caller's idempotency key, which is derived from the execution, so
//! a retry after a crash is the same request at Stripe. Reconciliation polls the list of
//! intents (no webhooks), keeping those whose metadata says this deployment created them.

mod client;
mod intent;

use std::time::Duration;

use chrono::Utc;
use frameos_billing::{AuthState, Authorization, FeeSchedule, RailError};

use client::{Call, Client, StripeError};
use intent::{
    ErrorCode, FeeSource, Intent, IntentList, IntentStatus, META_INSTANCE, META_KEY, META_PAYER,
};

use crate::billing::config::Secret;

/// Stripe cancels an uncaptured intent 7 days after its creation; a day of margin on top.
/// Older intents cannot be holds any more, so a listing need not page through them.
const HOLD_LIFETIME: Duration = Duration::from_secs(8 * 24 * 3600);
/// Stripe's largest page.
const PAGE_SIZE: usize = 100;
/// Pages a listing reads at most (50,000 intents in the hold lifetime): a bound, not a target.
const MAX_PAGES: usize = 500;
/// Expands the capture's charge and its balance transaction, which carries Stripe's fee.
const EXPAND_FEE: &str = "latest_charge.balance_transaction";

/// What the Stripe rail needs; see `BillingConfig::stripe`.
#[derive(Clone, Debug)]
pub struct StripeSettings {
    /// `https://api.stripe.com`, or a test double on a loopback address.
    pub api_base: String,
    pub secret_key: Secret,
    /// The PaymentMethod every payer is charged on.
    pub payment_method: String,
    /// This deployment's name in the intents' metadata.
    pub instance: String,
    /// Time limit of one request.
    pub timeout: Duration,
}

/// Settings the rail cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum StripeSettingsError {
    #[error("FRAMEOS_STRIPE_API_BASE {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error(
        "FRAMEOS_STRIPE_API_BASE {0:?} is plain http on a non-loopback host: the secret key would travel in clear"
    )]
    Cleartext(String),
    #[error("the HTTP client for Stripe could not be built: {0}")]
    Client(String),
}

#[derive(Clone)]
pub struct StripeRail {
    client: Client,
    payment_method: String,
    instance: String,
    /// The fee when Stripe reports none in the charge's currency.
    fee: FeeSchedule,
}

impl StripeRail {
    pub fn new(
        settings: StripeSettings,
        fee: FeeSchedule,
    ) -> Result<StripeRail, StripeSettingsError> {
        let url = reqwest::Url::parse(&settings.api_base)
            .map_err(|_| StripeSettingsError::BadUrl(settings.api_base.clone()))?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(StripeSettingsError::Cleartext(settings.api_base)),
            _ => return Err(StripeSettingsError::BadUrl(settings.api_base)),
        }
        let client = Client::new(&settings.api_base, settings.secret_key, settings.timeout)
            .map_err(|e| StripeSettingsError::Client(e.to_string()))?;
        Ok(StripeRail {
            client,
            payment_method: settings.payment_method,
            instance: settings.instance,
            fee,
        })
    }

    /// Holds `amount_minor` on the configured payment method: a PaymentIntent confirmed at once
    /// with manual capture. `payer` is the paying account's id, kept in the metadata.
    pub async fn authorize(
        &self,
        key: &str,
        payer: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Authorization, RailError> {
        if key.is_empty() || amount_minor < 1 {
            return Err(RailError::Invalid {
                reason: format!("key {key:?}, amount {amount_minor}"),
            });
        }
        let meta_keys = [meta(META_PAYER), meta(META_KEY), meta(META_INSTANCE)];
        let form = vec![
            ("amount", amount_minor.to_string()),
            ("currency", currency.to_ascii_lowercase()),
            ("capture_method", "manual".to_string()),
            ("confirm", "true".to_string()),
            ("payment_method", self.payment_method.clone()),
            ("payment_method_types[]", "card".to_string()),
            // Nobody is there to complete a 3-D Secure challenge: decline instead of waiting.
            ("off_session", "true".to_string()),
            (meta_keys[0].as_str(), payer.to_string()),
            (meta_keys[1].as_str(), key.to_string()),
            (meta_keys[2].as_str(), self.instance.clone()),
        ];
        let intent: Intent = self
            .client
            .post(Call::Authorize, "/v1/payment_intents", key, &form)
            .await
            .map_err(StripeError::into_rail_error)?;
        if intent.amount != amount_minor || !intent.currency.eq_ignore_ascii_case(currency) {
            return Err(RailError::Invalid {
                reason: format!(
                    "stripe holds {} {} where {amount_minor} {currency} was asked",
                    intent.amount, intent.currency
                ),
            });
        }
        match intent.status {
            IntentStatus::RequiresCapture => {
                tracing::debug!(authorization_id = %intent.id, "stripe intent authorized");
                Ok(intent.authorization(AuthState::Authorized))
            }
            IntentStatus::RequiresAction | IntentStatus::RequiresPaymentMethod => {
                Err(RailError::Declined {
                    reason: format!(
                        "the payment needs the payer's action (stripe status {})",
                        intent.status.as_str()
                    ),
                })
            }
            // A card still processing may become a hold later; reconciliation releases it then.
            IntentStatus::Processing => Err(RailError::Failed {
                reason: "the payment is still processing at stripe".into(),
            }),
            other => Err(RailError::Invalid {
                reason: format!("a new intent is {}", other.as_str()),
            }),
        }
    }

    /// Captures the whole hold. Stripe's fee comes with the capture (the balance transaction of
    /// its charge); an intent Stripe canceled after 7 days is `InvalidState { voided }`.
    pub async fn capture(&self, id: &str, key: &str) -> Result<Authorization, RailError> {
        let path = format!("/v1/payment_intents/{}/capture", intent_id(id)?);
        let expand = [("expand[]", EXPAND_FEE.to_string())];
        match self.client.post(Call::Capture, &path, key, &expand).await {
            Ok(intent) => self.captured(&intent),
            Err(e) if e.code() == Some(ErrorCode::PaymentIntentUnexpectedState) => {
                // Moved on without this call: expired, or captured by an earlier call whose
                // key Stripe no longer remembers (keys last 24 hours). Stripe says which.
                let intent = self.fetch(id).await?.ok_or(RailError::NotFound)?;
                match intent.status {
                    IntentStatus::Succeeded => self.captured(&intent),
                    status => Err(invalid_state(status)),
                }
            }
            Err(e) => Err(e.into_rail_error()),
        }
    }

    /// Releases the hold. An intent already canceled (Stripe's expiry, an earlier void) is
    /// released: that is what was asked.
    pub async fn void(&self, id: &str, key: &str) -> Result<Authorization, RailError> {
        let path = format!("/v1/payment_intents/{}/cancel", intent_id(id)?);
        let intent: Intent = match self.client.post(Call::Void, &path, key, &[]).await {
            Ok(intent) => intent,
            Err(e) if e.code() == Some(ErrorCode::PaymentIntentUnexpectedState) => {
                self.fetch(id).await?.ok_or(RailError::NotFound)?
            }
            Err(e) => return Err(e.into_rail_error()),
        };
        match intent.status {
            IntentStatus::Canceled => Ok(intent.authorization(AuthState::Voided)),
            status => Err(invalid_state(status)),
        }
    }

    /// The hold as Stripe knows it now; `None` when Stripe has no such intent or another
    /// deployment created it.
    pub async fn get(&self, id: &str) -> Result<Option<Authorization>, RailError> {
        Ok(self
            .fetch(id)
            .await?
            .and_then(|intent| intent.listed(&self.instance, &self.fee)))
    }

    /// The holds of this deployment created in the last [`HOLD_LIFETIME`], newest first: every
    /// one that can still be authorized, which is what reconciliation looks for.
    pub async fn list(&self) -> Result<Vec<Authorization>, RailError> {
        let since = Utc::now().timestamp() - HOLD_LIFETIME.as_secs() as i64;
        let mut holds = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("limit", PAGE_SIZE.to_string()),
                ("created[gte]", since.to_string()),
            ];
            if let Some(last) = &after {
                query.push(("starting_after", last.clone()));
            }
            let page: IntentList = self
                .client
                .get(Call::List, "/v1/payment_intents", &query)
                .await
                .map_err(StripeError::into_rail_error)?;
            holds.extend(
                page.data
                    .iter()
                    .filter_map(|intent| intent.listed(&self.instance, &self.fee)),
            );
            match page.data.last() {
                Some(last) if page.has_more => after = Some(last.id.clone()),
                _ => return Ok(holds),
            }
        }
        Err(RailError::Failed {
            reason: format!(
                "more than {} intents in {} days; reconcile by webhooks instead",
                MAX_PAGES * PAGE_SIZE,
                HOLD_LIFETIME.as_secs() / 86_400
            ),
        })
    }

    async fn fetch(&self, id: &str) -> Result<Option<Intent>, RailError> {
        let path = format!("/v1/payment_intents/{}", intent_id(id)?);
        let expand = [("expand[]", EXPAND_FEE.to_string())];
        match self.client.get(Call::Get, &path, &expand).await {
            Ok(intent) => Ok(Some(intent)),
            Err(e) if e.code() == Some(ErrorCode::ResourceMissing) => Ok(None),
            Err(e) => Err(e.into_rail_error()),
        }
    }

    fn captured(&self, intent: &Intent) -> Result<Authorization, RailError> {
        if intent.status != IntentStatus::Succeeded {
            return Err(invalid_state(intent.status));
        }
        let (fee_minor, source) = intent.fee(&self.fee);
        if source == FeeSource::Schedule {
            tracing::info!(authorization_id = %intent.id, fee_minor, "stripe reported no fee in the charge's currency; the configured schedule's applies");
        }
        Ok(intent.authorization(AuthState::Captured { fee_minor }))
    }
}

/// `metadata[name]`, the form key of one metadata entry.
fn meta(name: &str) -> String {
    format!("metadata[{name}]")
}

/// An intent id safe to put in a path (they come from our database, but a path is a path).
fn intent_id(id: &str) -> Result<&str, RailError> {
    let safe = !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if safe {
        Ok(id)
    } else {
        Err(RailError::NotFound)
    }
}

/// An intent that cannot take the call, in the rail's terms where there are some.
fn invalid_state(status: IntentStatus) -> RailError {
    let state = match status {
        IntentStatus::Canceled => AuthState::Voided.as_str(),
        IntentStatus::Succeeded => AuthState::Captured { fee_minor: 0 }.as_str(),
        other => other.as_str(),
    };
    RailError::InvalidState {
        state: state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(api_base: &str) -> StripeSettings {
        StripeSettings {
            api_base: api_base.to_string(),
            secret_key: Secret::from("sk_test_x".to_string()),
            payment_method: "pm_card_visa".into(),
            instance: "frameos".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn stripe_key_travels_over_tls_except_to_a_loopback_test_double() {
        let fee = FeeSchedule::default();
        for ok in [
            "https://api.stripe.com",
            "http://127.0.0.1:4242",
            "http://[::1]:1",
            "http://localhost:9",
        ] {
            assert!(StripeRail::new(settings(ok), fee).is_ok(), "{ok}");
        }
        assert!(matches!(
            StripeRail::new(settings("http://api.stripe.com"), fee),
            Err(StripeSettingsError::Cleartext(_))
        ));
        for bad in ["ftp://api.stripe.com", "api.stripe.com", ""] {
            assert!(
                matches!(
                    StripeRail::new(settings(bad), fee),
                    Err(StripeSettingsError::BadUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn stripe_intent_ids_are_checked_before_they_enter_a_path() {
        assert_eq!(
            intent_id("pi_3MtwBwLkdIwHu7ix28a3tqPa"),
            Ok("pi_3MtwBwLkdIwHu7ix28a3tqPa")
        );
        for bad in ["", "pi_1/../../v1/charges", "pi_1?expand[]=x", "pi 1"] {
            assert_eq!(intent_id(bad), Err(RailError::NotFound), "{bad}");
        }
    }
}
