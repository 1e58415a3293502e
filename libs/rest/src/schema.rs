//! JSON Schema of the values the views share with requests.

use std::sync::OnceLock;

use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// The currencies a price or a balance may be in: the circulating ISO 4217 currencies, exactly
/// those [`frameos_billing::Currency::parse`] accepts.
pub fn currency() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(currencies().iter().map(String::as_str)))
        .description(Some(
            "A circulating ISO 4217 currency, e.g. `INR` or `USD`.",
        ))
        .build()
}

/// [`currency`] as a query parameter, where an empty value is the default.
pub fn currency_or_default() -> Object {
    let codes = std::iter::once("").chain(currencies().iter().map(String::as_str));
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .description(Some(
            "A circulating ISO 4217 currency, e.g. `INR` or `USD`; empty or absent: `INR`.",
        ))
        .build()
}

fn currencies() -> &'static [String] {
    static CODES: OnceLock<Vec<String>> = OnceLock::new();
    CODES.get_or_init(|| {
        let letters = || ('A'..='Z').map(String::from);
        letters()
            .flat_map(|a| letters().map(move |b| a.clone() + &b))
            .flat_map(|ab| letters().map(move |c| ab.clone() + &c))
            .filter(|code| frameos_billing::Currency::parse(code).is_ok())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_those_the_billing_accepts() {
        let codes = currencies();
        for code in ["INR", "USD", "JPY", "KWD", "EUR"] {
            assert!(codes.iter().any(|c| c == code), "{code}");
        }
        for code in ["XAU", "XTS", "XXX", "AAA"] {
            assert!(!codes.iter().any(|c| c == code), "{code}");
        }
    }
}
