//! Billing settings: the mandate signing key, the payment rail and the revenue split.

use std::fmt;
use std::time::Duration;

use frameos_billing::{Currency, FeeSchedule, SplitPolicy, Tier};

use super::rail::StripeSettings;

/// Which payment rail the control plane charges through (`FRAMEOS_RAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RailKind {
    /// The built-in test-mode processor, its records in the database.
    Sandbox,
    /// Stripe PaymentIntents with manual capture (ADR 0043).
    Stripe,
}

/// A credential from the configuration: it prints as `<redacted>`, so a `{:?}` of the
/// configuration cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct BillingConfig {
    /// Ed25519 secret key that signs mandates (64 hex digits). Absent → a fresh key per start
    /// (its public key is kept, so earlier mandates stay verifiable).
    #[arg(long, env = "FRAMEOS_MANDATE_SIGNING_KEY", hide_env_values = true)]
    pub mandate_signing_key: Option<String>,
    /// Key id of the signing key, published with its public key.
    #[arg(long, env = "FRAMEOS_MANDATE_KID")]
    pub mandate_kid: Option<String>,
    /// How long a mandate stays valid for its capture.
    #[arg(long, env = "FRAMEOS_MANDATE_TTL_SECS", default_value_t = 86_400)]
    pub mandate_ttl_secs: u64,
    /// The payment rail: `sandbox` (the built-in test-mode processor) or `stripe`.
    #[arg(long, env = "FRAMEOS_RAIL", value_enum, default_value_t = RailKind::Sandbox)]
    pub rail: RailKind,
    /// Stripe secret key (`sk_test_…`/`sk_live_…`, or a restricted `rk_…` key allowed to write
    /// PaymentIntents); required with `FRAMEOS_RAIL=stripe`.
    #[arg(long, env = "FRAMEOS_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<Secret>,
    /// Where the Stripe API is; plain `http://` only on a loopback address (a test double).
    #[arg(
        long,
        env = "FRAMEOS_STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,
    /// The PaymentMethod every payer is charged on (`pm_card_visa` in test mode); required with
    /// `FRAMEOS_RAIL=stripe`. One for all payers: see ADR 0043.
    #[arg(long, env = "FRAMEOS_STRIPE_PAYMENT_METHOD")]
    pub stripe_payment_method: Option<String>,
    /// This deployment's name in the metadata of its PaymentIntents; reconciliation touches only
    /// intents carrying it. Give each deployment that shares a Stripe account its own.
    #[arg(long, env = "FRAMEOS_STRIPE_INSTANCE", default_value = "frameos")]
    pub stripe_instance: String,
    /// Time limit of one request to Stripe, connection to last byte.
    #[arg(long, env = "FRAMEOS_STRIPE_TIMEOUT_SECS", default_value_t = 20)]
    pub stripe_timeout_secs: u64,
    /// The rail's fee: basis points of the gross...
    #[arg(long, env = "FRAMEOS_RAIL_FEE_BP", default_value_t = 290)]
    pub rail_fee_bp: u32,
    /// ...plus a fixed amount in minor units of the platform currency. A charge in another
    /// currency pays the same nominal amount in its own minor units (₹2 → $2, ¥2, 2.000 KWD).
    #[arg(long, env = "FRAMEOS_RAIL_FEE_FIXED_MINOR", default_value_t = 200)]
    pub rail_fee_fixed_minor: i64,
    /// The currency `FRAMEOS_RAIL_FEE_FIXED_MINOR` is expressed in (ISO 4217).
    #[arg(long, env = "FRAMEOS_PLATFORM_CURRENCY", default_value = "INR")]
    pub platform_currency: String,
    /// Developer share by the month's captured gross before a charge:
    /// `below_minor:basis_points,…,*:basis_points`.
    #[arg(
        long,
        env = "FRAMEOS_DEVELOPER_TIERS",
        default_value = "1000000:7000,10000000:7500,*:8000"
    )]
    pub developer_tiers: String,
    /// The orchestrator's share when another agent started the execution.
    #[arg(long, env = "FRAMEOS_ORCHESTRATOR_BP", default_value_t = 1000)]
    pub orchestrator_bp: u32,
    /// How often authorizations left open (e.g. by a crash) are settled.
    #[arg(long, env = "FRAMEOS_RECONCILE_INTERVAL_SECS", default_value_t = 30)]
    pub reconcile_interval_secs: u64,
}

impl BillingConfig {
    /// The Stripe rail's settings, checked: what `FRAMEOS_RAIL=stripe` needs.
    pub fn stripe(&self) -> Result<StripeSettings, String> {
        let secret_key = self
            .stripe_secret_key
            .clone()
            .filter(|key| !key.expose().trim().is_empty())
            .ok_or("FRAMEOS_STRIPE_SECRET_KEY is required with FRAMEOS_RAIL=stripe")?;
        let payment_method = self
            .stripe_payment_method
            .as_deref()
            .map(str::trim)
            .filter(|pm| !pm.is_empty())
            .ok_or("FRAMEOS_STRIPE_PAYMENT_METHOD is required with FRAMEOS_RAIL=stripe")?;
        let instance = self.stripe_instance.trim();
        if instance.is_empty() {
            return Err("FRAMEOS_STRIPE_INSTANCE must not be empty".into());
        }
        if self.stripe_timeout_secs == 0 {
            return Err("FRAMEOS_STRIPE_TIMEOUT_SECS must be at least 1".into());
        }
        Ok(StripeSettings {
            api_base: self.stripe_api_base.trim().to_string(),
            secret_key,
            payment_method: payment_method.to_string(),
            instance: instance.to_string(),
            timeout: Duration::from_secs(self.stripe_timeout_secs),
        })
    }

    pub fn policy(&self) -> Result<SplitPolicy, String> {
        let mut tiers = Vec::new();
        for part in self.developer_tiers.split(',') {
            let (below, bp) = part
                .split_once(':')
                .ok_or_else(|| format!("tier {part:?} is not below:basis_points"))?;
            let below_minor = match below.trim() {
                "*" => None,
                n => Some(
                    n.parse::<i64>()
                        .map_err(|e| format!("tier {part:?}: {e}"))?,
                ),
            };
            let developer_bp = bp
                .trim()
                .parse::<u32>()
                .map_err(|e| format!("tier {part:?}: {e}"))?;
            tiers.push(Tier {
                below_minor,
                developer_bp,
            });
        }
        let policy = SplitPolicy {
            tiers,
            orchestrator_bp: self.orchestrator_bp,
            fee: FeeSchedule {
                basis_points: self.rail_fee_bp,
                fixed_minor: self.rail_fee_fixed_minor,
                currency: Currency::parse(self.platform_currency.trim())
                    .map_err(|e| format!("FRAMEOS_PLATFORM_CURRENCY: {e}"))?,
            },
        };
        policy.validate().map_err(|e| e.to_string())?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        billing: BillingConfig,
    }

    fn parse(args: &[&str]) -> Result<BillingConfig, clap::Error> {
        Args::try_parse_from(std::iter::once("control-plane").chain(args.iter().copied()))
            .map(|a| a.billing)
    }

    #[test]
    fn stripe_or_sandbox_is_the_rail_and_anything_else_fails_at_start() {
        assert_eq!(parse(&[]).map(|c| c.rail).ok(), Some(RailKind::Sandbox));
        let stripe = parse(&["--rail", "stripe"]).map(|c| c.rail).ok();
        assert_eq!(stripe, Some(RailKind::Stripe));
        let unknown = parse(&["--rail", "paypal"]).err().map(|e| e.to_string());
        let unknown = unknown.unwrap_or_default();
        assert!(unknown.contains("paypal"), "{unknown}");
        assert!(unknown.contains("sandbox, stripe"), "{unknown}");
    }

    #[test]
    fn stripe_settings_need_the_key_and_the_payment_method_and_never_print_the_key() {
        let secret = "sk_test_51SecretValueNobodyMaySee";
        let missing = parse(&["--rail", "stripe"]).map(|c| c.stripe());
        assert!(
            matches!(&missing, Ok(Err(e)) if e.contains("FRAMEOS_STRIPE_SECRET_KEY")),
            "{missing:?}"
        );
        let no_pm = parse(&["--rail", "stripe", "--stripe-secret-key", secret]).map(|c| c.stripe());
        assert!(
            matches!(&no_pm, Ok(Err(e)) if e.contains("FRAMEOS_STRIPE_PAYMENT_METHOD")),
            "{no_pm:?}"
        );
        let config = parse(&[
            "--rail",
            "stripe",
            "--stripe-secret-key",
            secret,
            "--stripe-payment-method",
            "pm_card_visa",
        ])
        .ok();
        let settings = config.as_ref().map(|c| c.stripe());
        let Some(Ok(settings)) = settings else {
            panic!("{settings:?}");
        };
        assert_eq!(settings.secret_key.expose(), secret);
        assert_eq!(settings.api_base, "https://api.stripe.com");
        assert_eq!(settings.instance, "frameos");
        assert!(!format!("{config:?}").contains(secret));
        assert!(!format!("{settings:?}").contains(secret));
    }
}
