//! Money is an integer count of minor units (paise for INR) and an ISO 4217 code, everywhere.
//! No floats, no decimal strings: the REST boundary goes through [`parse_minor`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;
pub use crate::currency::Currency;

/// The largest amount accepted at a boundary: 10^12 minor units (₹10 billion). Far below
/// `i64::MAX`, so sums of many amounts stay exact and overflow checks are a backstop.
pub const MAX_MINOR: i64 = 1_000_000_000_000;

/// A non-negative amount in minor units of one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Money, Error> {
        if minor < 0 {
            return Err(Error::InvalidAmount(format!(
                "{minor} is negative; amounts are non-negative minor units"
            )));
        }
        Ok(Money { minor, currency })
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(Error::Overflow)?;
        Money::new(minor, self.currency)
    }

    /// Refuses a result below zero: money never goes negative, a balance that would is a bug.
    pub fn checked_sub(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(Error::Overflow)?;
        Money::new(minor, self.currency)
    }

    fn same_currency(self, other: Money) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

/// A price or amount from a JSON body: only an integer in `1..=MAX_MINOR`. `1.0` is refused too:
/// accepting it would invite `1.5` being rounded somewhere else.
pub fn parse_minor(value: &serde_json::Value) -> Result<i64, Error> {
    let serde_json::Value::Number(n) = value else {
        return Err(Error::InvalidAmount(format!(
            "expected an integer number of minor units, got {value}"
        )));
    };
    if n.is_f64() {
        return Err(Error::InvalidAmount(format!(
            "{n} is not an integer number of minor units"
        )));
    }
    // u64 beyond i64::MAX fails `as_i64`: too large either way.
    let minor = n.as_i64().ok_or_else(|| {
        Error::InvalidAmount(format!("{n} is larger than the maximum of {MAX_MINOR}"))
    })?;
    if minor < 1 {
        return Err(Error::InvalidAmount(format!(
            "{minor} is not positive; amounts are at least 1 minor unit"
        )));
    }
    if minor > MAX_MINOR {
        return Err(Error::InvalidAmount(format!(
            "{minor} is larger than the maximum of {MAX_MINOR}"
        )));
    }
    Ok(minor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn money_is_non_negative_and_checked() {
        assert!(Money::new(-1, Currency::INR).is_err());
        let a = Money::new(i64::MAX, Currency::INR).unwrap();
        let one = Money::new(1, Currency::INR).unwrap();
        assert_eq!(a.checked_add(one), Err(Error::Overflow));
        assert!(one.checked_sub(a).is_err());
        assert_eq!(
            a.checked_sub(one).unwrap().minor,
            i64::MAX - 1,
            "subtraction within range"
        );
        let usd = Money::new(1, Currency::parse("USD").unwrap()).unwrap();
        assert!(matches!(
            one.checked_add(usd),
            Err(Error::CurrencyMismatch { .. })
        ));
        assert_eq!(Money::zero(Currency::INR).to_string(), "0 INR");
    }

    #[test]
    fn parse_minor_accepts_only_positive_integers_in_range() {
        assert_eq!(parse_minor(&json!(1)).unwrap(), 1);
        assert_eq!(parse_minor(&json!(50)).unwrap(), 50);
        assert_eq!(parse_minor(&json!(MAX_MINOR)).unwrap(), MAX_MINOR);
        let refused = [
            json!(0),
            json!(-1),
            json!(MAX_MINOR + 1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.0),
            json!(1.5),
            json!(1e3),
            json!("100"),
            json!("1.00"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"minor": 1}),
        ];
        for value in refused {
            assert!(parse_minor(&value).is_err(), "{value}");
        }
        // A float literal in the request text stays a float after parsing.
        let v: serde_json::Value = serde_json::from_str("100.0").unwrap();
        assert!(parse_minor(&v).is_err());
        let v: serde_json::Value = serde_json::from_str("1e2").unwrap();
        assert!(parse_minor(&v).is_err());
    }
}
