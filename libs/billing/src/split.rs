//! The split of one captured charge (seed §10, issue 4): developer by tier, orchestrator 10% when
//! another agent started the execution, the rail's fee, and the platform keeps the rest.

use serde::{Deserialize, Serialize};

use crate::{Currency, Error};

#[cfg(test)]
mod tests;

/// Basis points in a whole.
const WHOLE_BP: u32 = 10_000;

/// How many prices below the sure bound [`SplitPolicy::minimum_price`] examines. The ragged
/// region is about 3 × 10^4 / (platform bp − fee bp) prices wide, so this is a backstop against a
/// pathological policy; when it is hit, the sure bound is returned (sufficient, maybe not least).
const MAX_PRICE_SCAN: i64 = 200_000;

/// What the payment rail keeps of a charge: `ceil(G × bp / 10000) + fixed`, never more than G.
/// `fixed_minor` is in minor units of `currency` (the platform's); for a charge in another
/// currency [`FeeSchedule::in_currency`] rescales it by the minor-unit exponents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    pub basis_points: u32,
    pub fixed_minor: i64,
    pub currency: Currency,
}

impl Default for FeeSchedule {
    /// 2.9% + ₹2 (seed §10).
    fn default() -> Self {
        FeeSchedule {
            basis_points: 290,
            fixed_minor: 200,
            currency: Currency::INR,
        }
    }
}

impl FeeSchedule {
    pub fn fee(&self, gross: i64) -> i64 {
        if gross <= 0 {
            return 0;
        }
        let g = i128::from(gross);
        let percent = ceil_div(g * i128::from(self.basis_points), i128::from(WHOLE_BP));
        let fee = (percent + i128::from(self.fixed_minor.max(0))).min(g);
        // `fee <= g`, which came from an i64.
        i64::try_from(fee).unwrap_or(gross)
    }

    /// The schedule for charges in `currency`: the same percentage, and the fixed part as the
    /// same nominal amount in that currency's minor units (₹2 = 200 paise → $2 = 200 cents,
    /// ¥2, 2.000 KWD = 2000 fils), rounded up. No exchange rate is applied.
    pub fn in_currency(&self, currency: Currency) -> FeeSchedule {
        FeeSchedule {
            basis_points: self.basis_points,
            fixed_minor: currency.rescale_from(self.fixed_minor.max(0), self.currency),
            currency,
        }
    }
}

/// One step of the developer's share, by captured gross in the current UTC month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// Applies while the month's gross before this charge is below this; `None` = no bound.
    pub below_minor: Option<i64>,
    pub developer_bp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPolicy {
    /// Ordered by `below_minor`; the last one is unbounded.
    pub tiers: Vec<Tier>,
    pub orchestrator_bp: u32,
    pub fee: FeeSchedule,
}

impl Default for SplitPolicy {
    /// Seed §10: 70% below ₹10,000 a month, 75% below ₹100,000, 80% above; orchestrator 10%.
    fn default() -> Self {
        SplitPolicy {
            tiers: vec![
                Tier {
                    below_minor: Some(1_000_000),
                    developer_bp: 7000,
                },
                Tier {
                    below_minor: Some(10_000_000),
                    developer_bp: 7500,
                },
                Tier {
                    below_minor: None,
                    developer_bp: 8000,
                },
            ],
            orchestrator_bp: 1000,
            fee: FeeSchedule::default(),
        }
    }
}

/// The parts of one captured gross. `developer + orchestrator + platform + rail_fee == gross`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub gross: i64,
    pub developer: i64,
    pub orchestrator: i64,
    /// Net of the rail fee.
    pub platform: i64,
    pub rail_fee: i64,
    /// The tier's share that was applied, for the audit trail.
    pub developer_bp: u32,
}

impl SplitPolicy {
    /// Checks a configured policy once at start: well-formed tiers, shares within a whole, and a
    /// fee schedule that leaves some price at which a charge can be split.
    pub fn validate(&self) -> Result<(), Error> {
        self.check_shares()?;
        if self.fee.basis_points > WHOLE_BP {
            return Err(Error::InvalidPolicy(format!(
                "a fee of {} bp is more than the whole",
                self.fee.basis_points
            )));
        }
        if !(0..=crate::MAX_MINOR).contains(&self.fee.fixed_minor) {
            return Err(Error::InvalidPolicy(format!(
                "the fixed fee {} is outside 0..={}",
                self.fee.fixed_minor,
                crate::MAX_MINOR
            )));
        }
        let minimum = self.minimum_price(self.fee.currency);
        if minimum > crate::MAX_MINOR {
            return Err(Error::InvalidPolicy(format!(
                "the fee of {} bp + {} leaves no price up to {} at which the platform's share \
                 covers it at the top tier",
                self.fee.basis_points,
                self.fee.fixed_minor,
                crate::MAX_MINOR
            )));
        }
        Ok(())
    }

    /// The rail fee of a charge of `gross` minor units of `currency` under this policy's
    /// schedule.
    pub fn fee(&self, gross: i64, currency: Currency) -> i64 {
        self.fee.in_currency(currency).fee(gross)
    }

    /// The developer's share for a month whose captured gross so far is `month_gross_before`.
    pub fn developer_bp(&self, month_gross_before: i64) -> u32 {
        self.tiers
            .iter()
            .find(|t| t.below_minor.is_none_or(|below| month_gross_before < below))
            .or(self.tiers.last())
            .map_or(0, |t| t.developer_bp)
    }

    /// Splits a captured `gross`. `month_gross_before`: the developer's captured gross in the
    /// current UTC month before this charge (decides the tier); `orchestrated`: started by another
    /// agent (else the orchestrator's share goes to the platform); `rail_fee`: as the rail reports
    /// it. Fails when the fee exceeds what is left for the platform, which
    /// [`SplitPolicy::minimum_price`] prevents for fees computed by this schedule.
    pub fn split(
        &self,
        gross: i64,
        month_gross_before: i64,
        orchestrated: bool,
        rail_fee: i64,
    ) -> Result<Split, Error> {
        self.check_shares()?;
        if gross < 1 {
            return Err(Error::InvalidAmount(format!(
                "a gross of {gross} cannot be split"
            )));
        }
        if month_gross_before < 0 || rail_fee < 0 {
            return Err(Error::InvalidAmount(format!(
                "negative month gross {month_gross_before} or rail fee {rail_fee}"
            )));
        }
        let developer_bp = self.developer_bp(month_gross_before);
        let [developer, orchestrator, available] = self.shares(gross, developer_bp, orchestrated);
        if rail_fee > available {
            return Err(Error::FeeExceedsShare {
                gross,
                fee: rail_fee,
                available,
            });
        }
        Ok(Split {
            gross,
            developer,
            orchestrator,
            platform: available - rail_fee,
            rail_fee,
            developer_bp,
        })
    }

    /// The smallest price in `currency` from which on every charge can be split: the fee of
    /// this schedule (in that currency, see [`FeeSchedule::in_currency`]) never exceeds the
    /// platform's share at any tier, orchestrated or not. The worst case is the top tier
    /// orchestrated (the platform keeps least there), since a developer can reach it after the
    /// agent was priced. `i64::MAX` when no price is enough.
    pub fn minimum_price(&self, currency: Currency) -> i64 {
        let fee = self.fee.in_currency(currency);
        let Some(top_bp) = self.tiers.iter().map(|t| t.developer_bp).max() else {
            return i64::MAX;
        };
        let platform_bp = i64::from(WHOLE_BP) - i64::from(top_bp) - i64::from(self.orchestrator_bp);
        let slack_bp = platform_bp - i64::from(fee.basis_points);
        if slack_bp <= 0 {
            return i64::MAX;
        }
        // From here on the share (> G·p − 1) beats the fee (< G·f + 1 + fixed) whatever the
        // rounding: G·(p − f) ≥ fixed + 2.
        let fixed = i128::from(fee.fixed_minor.max(0));
        let sure = ceil_div((fixed + 2) * i128::from(WHOLE_BP), i128::from(slack_bp));
        let Ok(sure) = i64::try_from(sure) else {
            return i64::MAX;
        };
        // Below it rounding makes the failing prices ragged: the answer is one above the largest
        // failing price, not the first price that works.
        let mut price = sure - 1;
        while price >= 1 {
            if !self.affordable(price, &fee) {
                return price + 1;
            }
            if sure - price > MAX_PRICE_SCAN {
                return sure;
            }
            price -= 1;
        }
        1
    }

    /// Whether a charge of `gross` with `fee`'s fee splits at every tier and either way.
    fn affordable(&self, gross: i64, fee: &FeeSchedule) -> bool {
        let fee = fee.fee(gross);
        self.tiers.iter().all(|tier| {
            [true, false].into_iter().all(|orchestrated| {
                let [_, _, available] = self.shares(gross, tier.developer_bp, orchestrated);
                fee <= available
            })
        })
    }

    /// Developer, orchestrator and platform (before the fee) shares of `gross`.
    fn shares(&self, gross: i64, developer_bp: u32, orchestrated: bool) -> [i64; 3] {
        let orchestrator_bp = if orchestrated {
            self.orchestrator_bp
        } else {
            0
        };
        let platform_bp = WHOLE_BP.saturating_sub(developer_bp.saturating_add(orchestrator_bp));
        largest_remainder(gross, [developer_bp, orchestrator_bp, platform_bp])
    }

    fn check_shares(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::InvalidPolicy(why));
        let Some((last, bounded)) = self.tiers.split_last() else {
            return invalid("no tiers".into());
        };
        if last.below_minor.is_some() {
            return invalid("the last tier must have no upper bound".into());
        }
        let mut floor = 0;
        for tier in bounded {
            match tier.below_minor {
                Some(below) if below > floor => floor = below,
                _ => return invalid("tier bounds must be positive and increasing".into()),
            }
        }
        if self
            .tiers
            .windows(2)
            .any(|w| w[0].developer_bp > w[1].developer_bp)
        {
            return invalid("a higher tier must not pay the developer less".into());
        }
        if last.developer_bp.saturating_add(self.orchestrator_bp) > WHOLE_BP {
            return invalid(format!(
                "developer {} bp and orchestrator {} bp exceed the whole",
                last.developer_bp, self.orchestrator_bp
            ));
        }
        Ok(())
    }
}

/// Hamilton's method: each part gets the floor of its quota, then the units left over go to the
/// largest remainders, ties in the parts' order (developer, orchestrator, platform). The parts
/// sum to `gross` exactly, and no part with a zero share gets a unit. `bps` sums to a whole.
fn largest_remainder(gross: i64, bps: [u32; 3]) -> [i64; 3] {
    let g = i128::from(gross);
    let whole = i128::from(WHOLE_BP);
    let quotas = bps.map(|bp| g * i128::from(bp));
    let mut parts = quotas.map(|q| q / whole);
    let left = g - parts.iter().sum::<i128>();
    let mut order = [0, 1, 2];
    // A stable sort keeps the fixed tie order.
    order.sort_by_key(|&i| std::cmp::Reverse(quotas[i] % whole));
    for &i in order.iter().take(usize::try_from(left).unwrap_or(0)) {
        parts[i] += 1;
    }
    // Every part is at most `gross`.
    parts.map(|p| i64::try_from(p).unwrap_or(gross))
}

/// `ceil(a / b)` for `a >= 0`, `b > 0` (`i128::div_ceil` is not stable).
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}
