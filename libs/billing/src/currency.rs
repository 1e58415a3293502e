//! Currencies a charge can be made in: the ISO 4217 list (from the `iso_currency` crate, whose
//! table follows the ISO 4217 amendments), each with its minor-unit exponent (JPY 0, INR 2,
//! KWD 3). Funds, precious metals, SDRs, the testing and "no currency" codes, and superseded codes
//! are refused: nobody settles a card payment in them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// An ISO 4217 alphabetic code of a currency in circulation. Only [`Currency::parse`] and the
/// constants build one, so every value has a known exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const INR: Currency = Currency(*b"INR");

    /// Accepts exactly three uppercase ASCII letters naming a circulating ISO 4217 currency;
    /// "inr" is refused rather than normalised so that one currency has one spelling in signed
    /// payloads and in the ledger.
    pub fn parse(code: &str) -> Result<Currency, Error> {
        let refuse = |reason: String| Error::InvalidCurrency {
            code: code.to_string(),
            reason,
        };
        let bytes = <[u8; 3]>::try_from(code.as_bytes())
            .ok()
            .filter(|b| b.iter().all(u8::is_ascii_uppercase))
            .ok_or_else(|| refuse("expected three uppercase letters, such as INR or USD".into()))?;
        let known = iso_currency::Currency::from_code(code)
            .ok_or_else(|| refuse("not a currency in ISO 4217".into()))?;
        if let Some(successor) = known.is_superseded() {
            return Err(refuse(format!(
                "superseded in ISO 4217 by {}",
                successor.code()
            )));
        }
        if known.is_fund() || known.is_special() || known.exponent().is_none() {
            return Err(refuse(
                "an ISO 4217 fund or special code (metal, SDR, testing), not a payment currency"
                    .into(),
            ));
        }
        Ok(Currency(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only `parse` and the constants build a Currency, so the bytes are ASCII.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Decimal places of the minor unit: 0 for JPY, 2 for INR and USD, 3 for KWD and BHD.
    pub fn exponent(&self) -> u32 {
        iso_currency::Currency::from_code(self.as_str())
            .and_then(iso_currency::Currency::exponent)
            .map_or(2, u32::from)
    }

    /// `minor` units as a decimal amount with this currency's places: 7000 INR → `70.00`,
    /// 700 JPY → `700`, 1234 KWD → `1.234`.
    pub fn format_minor(&self, minor: i64) -> String {
        let places = self.exponent();
        let sign = if minor < 0 { "-" } else { "" };
        let amount = minor.unsigned_abs();
        if places == 0 {
            return format!("{sign}{amount}");
        }
        let unit = 10u64.pow(places);
        let width = places as usize;
        format!("{sign}{}.{:0width$}", amount / unit, amount % unit)
    }

    /// `minor` units of `from` as units of `self` of the same nominal value (no exchange rate:
    /// 200 paise, ₹2.00, become $2.00 = 200 cents, ¥2, or 2.000 KWD = 2000 fils). Rounded up
    /// when `self` has fewer decimals (250 paise → ¥3), so a fee never shrinks by rounding.
    /// Saturates at `i64::MAX`.
    pub fn rescale_from(&self, minor: i64, from: Currency) -> i64 {
        let (to_exp, from_exp) = (self.exponent(), from.exponent());
        let amount = i128::from(minor);
        let scaled = if to_exp >= from_exp {
            amount.saturating_mul(10i128.pow(to_exp - from_exp))
        } else {
            let divisor = 10i128.pow(from_exp - to_exp);
            // Ceiling division for non-negative amounts; negative ones do not occur (fees).
            (amount + divisor - 1).div_euclid(divisor)
        };
        i64::try_from(scaled).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn only_circulating_iso_4217_codes_are_currencies() {
        assert_eq!(c("INR"), Currency::INR);
        for code in [
            "USD", "EUR", "JPY", "KWD", "BHD", "GBP", "CHF", "VED", "ZWG",
        ] {
            assert_eq!(c(code).as_str(), code);
        }
        let refused = [
            ("", "three uppercase"),
            ("inr", "three uppercase"),
            ("IN", "three uppercase"),
            ("INRR", "three uppercase"),
            ("I1R", "three uppercase"),
            ("ÄBC", "three uppercase"),
            ("BTC", "not a currency in ISO 4217"),
            ("ZZZ", "not a currency in ISO 4217"),
            ("XAU", "fund or special"),
            ("XDR", "fund or special"),
            ("XTS", "fund or special"),
            ("XXX", "fund or special"),
            ("CLF", "fund or special"),
            ("HRK", "superseded in ISO 4217 by EUR"),
            ("SLL", "superseded in ISO 4217 by SLE"),
        ];
        for (code, why) in refused {
            let err = Currency::parse(code).unwrap_err().to_string();
            assert!(err.contains(why), "{code}: {err}");
            assert!(err.contains(&format!("{code:?}")), "{code}: {err}");
        }
        assert_eq!(serde_json::to_string(&Currency::INR).unwrap(), "\"INR\"");
        assert!(serde_json::from_str::<Currency>("\"inr\"").is_err());
        assert!(serde_json::from_str::<Currency>("\"BTC\"").is_err());
    }

    #[test]
    fn exponents_follow_iso_4217() {
        for (code, exponent) in [
            ("JPY", 0),
            ("KRW", 0),
            ("INR", 2),
            ("USD", 2),
            ("EUR", 2),
            ("KWD", 3),
            ("BHD", 3),
            ("OMR", 3),
        ] {
            assert_eq!(c(code).exponent(), exponent, "{code}");
        }
    }

    #[test]
    fn amounts_print_with_the_currencys_places() {
        assert_eq!(Currency::INR.format_minor(7000), "70.00");
        assert_eq!(Currency::INR.format_minor(-10_005), "-100.05");
        assert_eq!(Currency::INR.format_minor(7), "0.07");
        assert_eq!(
            Currency::INR.format_minor(i64::MIN),
            "-92233720368547758.08"
        );
        assert_eq!(c("JPY").format_minor(700), "700");
        assert_eq!(c("JPY").format_minor(-3), "-3");
        assert_eq!(c("KWD").format_minor(1234), "1.234");
        assert_eq!(c("BHD").format_minor(5), "0.005");
    }

    #[test]
    fn rescaling_keeps_the_nominal_amount_and_rounds_up() {
        let inr = Currency::INR;
        assert_eq!(c("USD").rescale_from(200, inr), 200);
        assert_eq!(c("JPY").rescale_from(200, inr), 2);
        assert_eq!(c("JPY").rescale_from(250, inr), 3, "¥2.5 rounds up");
        assert_eq!(c("JPY").rescale_from(1, inr), 1);
        assert_eq!(c("JPY").rescale_from(0, inr), 0);
        assert_eq!(c("KWD").rescale_from(200, inr), 2000);
        assert_eq!(inr.rescale_from(3, c("JPY")), 300);
        assert_eq!(inr.rescale_from(2001, c("BHD")), 201);
        assert_eq!(c("KWD").rescale_from(i64::MAX, inr), i64::MAX);
    }
}
