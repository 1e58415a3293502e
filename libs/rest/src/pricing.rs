//! An agent's price, the same JSON shape in requests and replies:
//! `{"model": "free"}` or `{"model": "per_execution", "price_minor": 500, "currency": "INR"}`.

use frameos_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How an agent is paid for. Money is integer minor units (paise, cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Pricing {
    Free,
    PerExecution {
        /// Price in minor units; must be a JSON integer. Each currency has a minimum (the payment
        /// rail's fee must fit in the platform's share): a lower price is refused (422).
        #[schema(minimum = 1, maximum = 1000000000000_i64)]
        price_minor: i64,
        #[schema(schema_with = crate::schema::currency)]
        currency: String,
    },
}

impl From<Option<v1::Pricing>> for Pricing {
    fn from(p: Option<v1::Pricing>) -> Self {
        match p.and_then(|p| p.model) {
            Some(v1::pricing::Model::PerExecution(p)) => Pricing::PerExecution {
                price_minor: p.price_minor,
                currency: p.currency,
            },
            Some(v1::pricing::Model::Free(_)) | None => Pricing::Free,
        }
    }
}

impl From<Pricing> for v1::Pricing {
    fn from(p: Pricing) -> Self {
        let model = match p {
            Pricing::Free => v1::pricing::Model::Free(v1::Free {}),
            Pricing::PerExecution {
                price_minor,
                currency,
            } => v1::pricing::Model::PerExecution(v1::PerExecution {
                price_minor,
                currency,
            }),
        };
        v1::Pricing { model: Some(model) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pricing_requests_need_integer_prices() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Pricing>(v);
        assert_eq!(parse(json!({"model": "free"})).unwrap(), Pricing::Free);
        assert_eq!(
            parse(json!({"model": "per_execution", "price_minor": 500, "currency": "INR"}))
                .unwrap(),
            Pricing::PerExecution {
                price_minor: 500,
                currency: "INR".into()
            }
        );
        for bad in [
            json!({"model": "per_execution", "price_minor": 1.5, "currency": "INR"}),
            json!({"model": "per_execution", "price_minor": "500", "currency": "INR"}),
            json!({"model": "per_execution", "currency": "INR"}),
            json!({"model": "subscription"}),
            json!({"price_minor": 5}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn proto_round_trip() {
        for pricing in [
            Pricing::Free,
            Pricing::PerExecution {
                price_minor: 1,
                currency: "USD".into(),
            },
        ] {
            assert_eq!(
                Pricing::from(Some(v1::Pricing::from(pricing.clone()))),
                pricing
            );
        }
        // A reply without a model (never sent by the control plane) reads as free.
        assert_eq!(Pricing::from(None), Pricing::Free);
    }
}
