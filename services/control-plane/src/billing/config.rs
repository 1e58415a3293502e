//! Billing settings: the mandate signing key, the payment rail and the revenue split.

use frameos_billing::{Currency, FeeSchedule, SplitPolicy, Tier};

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
    /// The payment rail; `sandbox` is the built-in test-mode processor.
    #[arg(long, env = "FRAMEOS_RAIL", default_value = "sandbox")]
    pub rail: String,
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
