//! How a version that passed the scanner gets published (API.md §5.2, ADR 0044): by an admin
//! (`manual`), or at once with a random sample sent to the spot-check queue (`auto`).

use sha2::{Digest, Sha256};

/// `FRAMEOS_REVIEW_MODE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReviewMode {
    /// Every version that passes the scanner waits for an admin.
    #[default]
    Manual,
    /// A version that passes the scanner is published at once; a sample is spot-checked.
    Auto,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ReviewConfig {
    /// `manual`: versions that pass the scanner wait for an admin; `auto`: they are published
    /// at once and a random sample enters the spot-check queue.
    #[arg(long, env = "FRAMEOS_REVIEW_MODE", value_enum, default_value_t = ReviewMode::Manual)]
    pub review_mode: ReviewMode,

    /// The share (0 to 100) of auto-published versions that an admin spot-checks.
    #[arg(long, env = "FRAMEOS_SPOT_CHECK_PERCENT", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub spot_check_percent: u8,

    /// Makes the sample a function of this seed and the version (for tests: the same seed
    /// picks the same versions). Absent: every draw is independent and uniformly random.
    #[arg(long, env = "FRAMEOS_SPOT_CHECK_SEED", hide_env_values = true)]
    pub spot_check_seed: Option<u64>,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            review_mode: ReviewMode::Manual,
            spot_check_percent: 10,
            spot_check_seed: None,
        }
    }
}

/// What happens to a version that passed the scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It waits for an admin (`pending_review`).
    Review,
    /// Published now; `spot_check` when it was also sampled for the spot-check queue.
    Publish { spot_check: bool },
}

/// The review mode with its sampler.
#[derive(Clone, Debug, Default)]
pub struct ReviewPolicy {
    config: ReviewConfig,
}

impl ReviewPolicy {
    pub fn new(config: ReviewConfig) -> Self {
        ReviewPolicy { config }
    }

    /// The fate of `version` of `slug`, which passed the scanner.
    pub fn admit(&self, slug: &str, version: &str) -> Admission {
        match self.config.review_mode {
            ReviewMode::Manual => Admission::Review,
            ReviewMode::Auto => Admission::Publish {
                spot_check: self.sampled(slug, version),
            },
        }
    }

    fn sampled(&self, slug: &str, version: &str) -> bool {
        let percent = u64::from(self.config.spot_check_percent);
        let draw = match self.config.spot_check_seed {
            Some(seed) => seeded_draw(seed, slug, version),
            None => rand::random_range(0..100),
        };
        draw < percent
    }
}

/// A number in 0..100 that only the seed and the version decide: uniform, since SHA-256's
/// output is, with a modulo bias below 1e-17.
fn seeded_draw(seed: u64, slug: &str, version: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(slug.as_bytes())
        .chain_update([0])
        .chain_update(version.as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(head) % 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(percent: u8, seed: Option<u64>) -> ReviewPolicy {
        ReviewPolicy::new(ReviewConfig {
            review_mode: ReviewMode::Auto,
            spot_check_percent: percent,
            spot_check_seed: seed,
        })
    }

    fn share(policy: &ReviewPolicy, draws: u32) -> f64 {
        let hits = (0..draws)
            .filter(|i| {
                policy.admit("agent", &format!("1.0.{i}"))
                    == Admission::Publish { spot_check: true }
            })
            .count();
        hits as f64 / f64::from(draws)
    }

    #[test]
    fn manual_mode_publishes_nothing_by_itself() {
        let policy = ReviewPolicy::new(ReviewConfig::default());
        assert_eq!(policy.admit("a", "1.0.0"), Admission::Review);
    }

    #[test]
    fn the_sample_has_the_configured_share_seeded_or_not() {
        // 20,000 draws: the standard deviation of the share is under 0.35 points.
        for seed in [Some(7), Some(8), None] {
            for (percent, low, high) in [(10, 0.085, 0.115), (50, 0.48, 0.52)] {
                let got = share(&auto(percent, seed), 20_000);
                assert!(
                    (low..=high).contains(&got),
                    "{percent}% with {seed:?}: {got}"
                );
            }
            assert_eq!(share(&auto(0, seed), 2_000), 0.0);
            assert_eq!(share(&auto(100, seed), 2_000), 1.0);
        }
    }

    #[test]
    fn a_seed_decides_the_same_versions_every_time_and_another_seed_others() {
        let picks = |seed| {
            (0..200)
                .map(|i| auto(30, Some(seed)).admit("agent", &format!("2.{i}.0")))
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(42), picks(42));
        assert_ne!(picks(42), picks(43));
    }
}
