#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

const INR: Currency = Currency::INR;

/// Month totals that land in each default tier.
const TIER_MONTHS: [i64; 3] = [0, 1_000_000, 10_000_000];

fn policy_with_fee(basis_points: u32, fixed_minor: i64) -> SplitPolicy {
    SplitPolicy {
        fee: FeeSchedule {
            basis_points,
            fixed_minor,
            currency: INR,
        },
        ..SplitPolicy::default()
    }
}

/// Whether a charge of `gross`, with the schedule's fee, splits at every tier and either way.
fn splits_everywhere(policy: &SplitPolicy, gross: i64) -> bool {
    splits_everywhere_in(policy, gross, INR)
}

fn splits_everywhere_in(policy: &SplitPolicy, gross: i64, currency: Currency) -> bool {
    TIER_MONTHS.iter().all(|&month| {
        [true, false].into_iter().all(|orchestrated| {
            policy
                .split(gross, month, orchestrated, policy.fee(gross, currency))
                .is_ok()
        })
    })
}

#[test]
fn seed_example_one_rupee() {
    let policy = SplitPolicy::default();
    let s = policy.split(100, 0, true, 5).unwrap();
    assert_eq!(
        s,
        Split {
            gross: 100,
            developer: 70,
            orchestrator: 10,
            platform: 15,
            rail_fee: 5,
            developer_bp: 7000,
        }
    );
    // Not started by an agent: the orchestrator's 10% goes to the platform.
    let s = policy.split(100, 0, false, 5).unwrap();
    assert_eq!(
        (s.developer, s.orchestrator, s.platform, s.rail_fee),
        (70, 0, 25, 5)
    );
}

#[test]
fn tier_is_decided_by_the_month_total_before_the_charge() {
    let policy = SplitPolicy::default();
    for (month, bp) in [
        (0, 7000),
        (999_999, 7000),
        (1_000_000, 7500),
        (9_999_999, 7500),
        (10_000_000, 8000),
        (i64::MAX, 8000),
    ] {
        assert_eq!(policy.developer_bp(month), bp, "month {month}");
        let s = policy.split(10_000, month, true, 0).unwrap();
        assert_eq!(s.developer_bp, bp);
        assert_eq!(s.developer, 10_000 * i64::from(bp) / 10_000);
    }
    // This charge takes the month over ₹10,000, but the total before it was below.
    let s = policy.split(500_000, 999_999, false, 0).unwrap();
    assert_eq!((s.developer_bp, s.developer), (7000, 350_000));
    let s = policy.split(500_000, 1_000_000, false, 0).unwrap();
    assert_eq!((s.developer_bp, s.developer), (7500, 375_000));
}

#[test]
fn largest_remainder_rounding_and_tie_order() {
    let policy = SplitPolicy::default();
    let parts = |s: Split| (s.developer, s.orchestrator, s.platform);
    // 0.7 / 0.1 / 0.2: the one unit goes to the largest remainder.
    assert_eq!(parts(policy.split(1, 0, true, 0).unwrap()), (1, 0, 0));
    // 2.1 / 0.3 / 0.6
    assert_eq!(parts(policy.split(3, 0, true, 0).unwrap()), (2, 0, 1));
    // 3.75 / 0.5 / 0.75 at 75%: two units, developer and platform tie and both get one.
    assert_eq!(
        parts(policy.split(5, 1_000_000, true, 0).unwrap()),
        (4, 0, 1)
    );
    // 0.5 / 0 / 0.5: one unit, a tie, developer first in the fixed order.
    let even = SplitPolicy {
        tiers: vec![Tier {
            below_minor: None,
            developer_bp: 5000,
        }],
        ..SplitPolicy::default()
    };
    assert_eq!(parts(even.split(1, 0, false, 0).unwrap()), (1, 0, 0));
    assert_eq!(parts(even.split(3, 0, false, 0).unwrap()), (2, 0, 1));
    // A zero share never receives a rounding unit.
    for gross in 1..200 {
        assert_eq!(policy.split(gross, 0, false, 0).unwrap().orchestrator, 0);
    }
}

#[test]
fn fee_above_the_platform_share_is_refused() {
    let policy = SplitPolicy::default();
    assert_eq!(
        policy.split(100, 0, true, 21),
        Err(Error::FeeExceedsShare {
            gross: 100,
            fee: 21,
            available: 20
        })
    );
    assert_eq!(policy.split(100, 0, true, 20).unwrap().platform, 0);
    assert!(matches!(
        policy.split(0, 0, true, 0),
        Err(Error::InvalidAmount(_))
    ));
    assert!(matches!(
        policy.split(100, 0, true, -1),
        Err(Error::InvalidAmount(_))
    ));
    assert!(matches!(
        policy.split(100, -1, true, 0),
        Err(Error::InvalidAmount(_))
    ));
}

#[test]
fn fee_schedule_rounds_up_and_never_exceeds_gross() {
    let fee = FeeSchedule::default();
    assert_eq!(fee.fee(10_000), 290 + 200);
    assert_eq!(
        fee.fee(10_001),
        291 + 200,
        "2.9% of 10001 = 290.029, rounded up"
    );
    assert_eq!(fee.fee(100), 100, "capped at the gross");
    assert_eq!(fee.fee(0), 0);
    assert_eq!(fee.fee(-5), 0);
    let no_fixed = FeeSchedule {
        basis_points: 290,
        fixed_minor: 0,
        currency: INR,
    };
    assert_eq!(no_fixed.fee(1), 1);
    assert_eq!(no_fixed.fee(i64::MAX), 267_477_789_068_788_499);
}

#[test]
fn default_minimum_price_is_tight_at_the_top_tier() {
    let policy = SplitPolicy::default();
    let minimum = policy.minimum_price(INR);
    // 2.9% + ₹2 against the 10% the platform keeps at the 80% tier, orchestrated: ≈ 200 / 0.071.
    assert_eq!(minimum, 2817);
    assert!(!splits_everywhere(&policy, minimum - 1));
    assert!((minimum..minimum + 20_000).all(|g| splits_everywhere(&policy, g)));
    // At the lowest tier alone a smaller price would do, but a developer can climb tiers after
    // pricing an agent, and a capture that cannot be split is not an option.
    assert!(policy.split(1200, 0, true, policy.fee(1200, INR)).is_ok());
    assert!(
        policy
            .split(1200, 10_000_000, true, policy.fee(1200, INR))
            .is_err()
    );
    policy.validate().unwrap();
}

#[test]
fn minimum_price_follows_the_currency_exponent() {
    // The fixed ₹2 (200 paise) is ¥2, $2.00 and 2.000 KWD/BHD. The minima were computed apart
    // from this code: exact fractions, every price up to 200 000 tried at every tier.
    let policy = SplitPolicy::default();
    for (code, fixed, minimum) in [
        ("JPY", 2, 37),
        ("INR", 200, 2817),
        ("USD", 200, 2817),
        ("KWD", 2000, 28_177),
        ("BHD", 2000, 28_177),
    ] {
        let currency = Currency::parse(code).unwrap();
        assert_eq!(
            policy.fee.in_currency(currency).fixed_minor,
            fixed,
            "{code}"
        );
        assert_eq!(policy.minimum_price(currency), minimum, "{code}");
        assert!(
            !splits_everywhere_in(&policy, minimum - 1, currency),
            "{code}"
        );
        assert!(
            (minimum..minimum + 5_000).all(|g| splits_everywhere_in(&policy, g, currency)),
            "{code}"
        );
    }
    // A fixed fee configured in yen is worth 100 paise per yen.
    let in_yen = SplitPolicy {
        fee: FeeSchedule {
            currency: Currency::parse("JPY").unwrap(),
            fixed_minor: 2,
            ..FeeSchedule::default()
        },
        ..SplitPolicy::default()
    };
    assert_eq!(in_yen.minimum_price(INR), 2817);
    in_yen.validate().unwrap();
}

#[test]
fn invalid_policies_are_refused() {
    let base = SplitPolicy::default();
    let with_tiers = |tiers: Vec<Tier>| SplitPolicy {
        tiers,
        ..base.clone()
    };
    let tier = |below_minor, developer_bp| Tier {
        below_minor,
        developer_bp,
    };
    let bad = [
        with_tiers(vec![]),
        with_tiers(vec![tier(Some(100), 7000)]),
        with_tiers(vec![
            tier(Some(100), 7000),
            tier(Some(50), 7500),
            tier(None, 8000),
        ]),
        with_tiers(vec![tier(Some(0), 7000), tier(None, 8000)]),
        with_tiers(vec![tier(Some(100), 8000), tier(None, 7000)]),
        with_tiers(vec![tier(None, 9500)]),
        policy_with_fee(1000, 0),
        policy_with_fee(10_001, 0),
        policy_with_fee(100, -1),
        SplitPolicy {
            orchestrator_bp: u32::MAX,
            ..base.clone()
        },
    ];
    for policy in bad {
        assert!(
            matches!(policy.validate(), Err(Error::InvalidPolicy(_))),
            "{policy:?}"
        );
    }
    assert!(matches!(
        with_tiers(vec![]).split(100, 0, true, 0),
        Err(Error::InvalidPolicy(_))
    ));
    assert_eq!(policy_with_fee(1000, 1).minimum_price(INR), i64::MAX);
}

proptest! {
    #[test]
    fn parts_sum_to_gross_and_none_is_negative(
        gross in 1..=1_000_000_000i64,
        bp in 0..=1000u32,
        fixed in 0..=1000i64,
        month in 0..=1_000_000_000i64,
        orchestrated: bool,
        fee_fraction in 0.0..=1.0f64,
    ) {
        let policy = policy_with_fee(bp, fixed);
        for rail_fee in [policy.fee(gross, INR), (gross as f64 * fee_fraction) as i64] {
            match policy.split(gross, month, orchestrated, rail_fee) {
                Ok(s) => {
                    prop_assert_eq!(s.developer + s.orchestrator + s.platform + s.rail_fee, gross);
                    prop_assert!(s.developer >= 0 && s.orchestrator >= 0 && s.platform >= 0);
                    prop_assert_eq!(s.rail_fee, rail_fee);
                    prop_assert_eq!(s.developer_bp, policy.developer_bp(month));
                    // Each share is its exact quota rounded down or up.
                    let exact = i128::from(gross) * i128::from(s.developer_bp);
                    prop_assert!((i128::from(s.developer) * 10_000 - exact).abs() < 10_000);
                    if !orchestrated {
                        prop_assert_eq!(s.orchestrator, 0);
                    }
                    prop_assert_eq!(policy.split(gross, month, orchestrated, rail_fee), Ok(s));
                }
                Err(Error::FeeExceedsShare { fee, available, .. }) => {
                    prop_assert!(fee > available);
                    let (developer, orchestrator, _) = {
                        let s = policy.split(gross, month, orchestrated, 0).unwrap();
                        (s.developer, s.orchestrator, s.platform)
                    };
                    prop_assert_eq!(available, gross - developer - orchestrator);
                    // The schedule's own fee never fails from the minimum price on.
                    if rail_fee == policy.fee(gross, INR) {
                        prop_assert!(gross < policy.minimum_price(INR));
                    }
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    #[test]
    fn developer_share_is_monotone_in_tier(
        gross in 1..=1_000_000_000i64,
        a in 0..=1_000_000_000i64,
        b in 0..=1_000_000_000i64,
        orchestrated: bool,
    ) {
        let policy = SplitPolicy::default();
        let (low, high) = (a.min(b), a.max(b));
        let low = policy.split(gross, low, orchestrated, 0).unwrap();
        let high = policy.split(gross, high, orchestrated, 0).unwrap();
        prop_assert!(low.developer_bp <= high.developer_bp);
        prop_assert!(low.developer <= high.developer);
    }

    #[test]
    fn minimum_price_is_sufficient_and_tight(
        bp in 0..=999u32,
        fixed in 0..=1000i64,
        above in 0..=1_000_000i64,
    ) {
        let policy = policy_with_fee(bp, fixed);
        let minimum = policy.minimum_price(INR);
        prop_assert!((1..=crate::MAX_MINOR).contains(&minimum));
        prop_assert!(splits_everywhere(&policy, minimum));
        prop_assert!(splits_everywhere(&policy, minimum + above));
        if minimum > 1 {
            prop_assert!(!splits_everywhere(&policy, minimum - 1));
        }
    }
}
