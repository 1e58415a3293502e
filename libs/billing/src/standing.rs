//! Standing mandates (API.md §5.3, ADR 0047): a payer's consent, signed by the platform when the
//! payer creates a schedule, that each run of that schedule may cost up to an amount in one
//! currency until a date. Each run still gets its own mandate ([`crate::MandatePayload`]), which
//! names the standing one, so a run's charge can be traced to the consent it spends under.
//!
//! The signed bytes follow the same rules as a run's mandate: compact JSON, the type tag first,
//! then the fields in declaration order; a different tag keeps one kind of signature from being
//! passed off as the other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::mandate::{Keyring, MandateError, SignedMandate};

/// The domain-separation tag, inside the signed bytes.
pub const STANDING_MANDATE_TYPE: &str = "frameos.standing_mandate.v1";

/// What a standing mandate says. Timestamps are RFC 3339 UTC ([`crate::mandate::timestamp`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingMandate {
    pub mandate_id: String,
    pub schedule_id: String,
    pub payer_account: String,
    pub payee_account: String,
    pub agent_id: String,
    /// The most one run (with the agents it calls) may cost.
    pub max_amount_minor: i64,
    pub currency: String,
    pub nonce: String,
    pub issued_at: String,
    pub expires_at: String,
}

/// The signed form, field for field.
#[derive(Serialize)]
struct Canonical<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    mandate: &'a StandingMandate,
}

/// Why a run may not spend under a standing mandate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the standing mandate expired at {expires_at}")]
    Expired { expires_at: String },
    #[error("a run costs {amount} {currency}, above the {max} the standing mandate allows")]
    AmountExceeded {
        amount: i64,
        max: i64,
        currency: String,
    },
    #[error("a run costs {run}, the standing mandate is in {mandate}")]
    CurrencyMismatch { run: String, mandate: String },
}

impl StandingMandate {
    /// The exact bytes that are signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let canonical = Canonical {
            kind: STANDING_MANDATE_TYPE,
            mandate: self,
        };
        // Strings and an integer always serialize.
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    /// Whether a run costing `amount_minor` of `currency` at `now` is within this mandate.
    pub fn allows(
        &self,
        now: DateTime<Utc>,
        amount_minor: i64,
        currency: &str,
    ) -> Result<(), Refusal> {
        let expired = DateTime::parse_from_rfc3339(&self.expires_at).map_or(true, |t| now >= t);
        if expired {
            return Err(Refusal::Expired {
                expires_at: self.expires_at.clone(),
            });
        }
        if currency != self.currency {
            return Err(Refusal::CurrencyMismatch {
                run: currency.to_string(),
                mandate: self.currency.clone(),
            });
        }
        if amount_minor > self.max_amount_minor {
            return Err(Refusal::AmountExceeded {
                amount: amount_minor,
                max: self.max_amount_minor,
                currency: self.currency.clone(),
            });
        }
        Ok(())
    }

    /// Reads signed bytes back: the type, the fields, and that the bytes are exactly their
    /// canonical form.
    fn parse(bytes: &[u8]) -> Result<StandingMandate, MandateError> {
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| MandateError::Malformed(e.to_string()))?;
        let kind = value.as_object_mut().and_then(|o| o.remove("type"));
        if kind.as_ref().and_then(|t| t.as_str()) != Some(STANDING_MANDATE_TYPE) {
            return Err(MandateError::WrongType);
        }
        let mandate: StandingMandate =
            serde_json::from_value(value).map_err(|e| MandateError::Malformed(e.to_string()))?;
        if mandate.canonical_bytes() != bytes {
            return Err(MandateError::Malformed("not in canonical form".into()));
        }
        if mandate.max_amount_minor < 1 {
            return Err(MandateError::Malformed(format!(
                "amount {} is not positive",
                mandate.max_amount_minor
            )));
        }
        Ok(mandate)
    }
}

impl Keyring {
    /// Signs a standing mandate with the active key.
    pub fn sign_standing(&self, mandate: &StandingMandate) -> SignedMandate {
        let bytes = mandate.canonical_bytes();
        SignedMandate {
            signature: self.sign_bytes(&bytes),
            payload: bytes,
            kid: self.active_kid().to_string(),
        }
    }

    /// The standing mandate `signed` holds, if a key of this ring signed it; whether it still
    /// allows a run is [`StandingMandate::allows`].
    pub fn verify_standing(&self, signed: &SignedMandate) -> Result<StandingMandate, MandateError> {
        self.verify_signature(signed)?;
        StandingMandate::parse(&signed.payload)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::MandatePayload;
    use crate::mandate::timestamp;

    fn mandate() -> StandingMandate {
        let at = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        StandingMandate {
            mandate_id: "sm_1".into(),
            schedule_id: "sch_1".into(),
            payer_account: "acct_user".into(),
            payee_account: "acct_dev".into(),
            agent_id: "agt_1".into(),
            max_amount_minor: 500,
            currency: "INR".into(),
            nonce: "00112233445566778899aabbccddeeff".into(),
            issued_at: timestamp(at),
            expires_at: timestamp(at + Duration::days(30)),
        }
    }

    #[test]
    fn signed_bytes_start_with_their_type_and_verify() {
        let keyring = Keyring::from_secret("k1", [7; 32]);
        let signed = keyring.sign_standing(&mandate());
        let text = String::from_utf8(signed.payload.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"type":"frameos.standing_mandate.v1","mandate_id":"sm_1","#),
            "{text}"
        );
        assert_eq!(keyring.verify_standing(&signed).unwrap(), mandate());
    }

    #[test]
    fn a_tampered_payload_or_another_key_is_refused() {
        let keyring = Keyring::from_secret("k1", [7; 32]);
        let mut signed = keyring.sign_standing(&mandate());
        let other = Keyring::from_secret("k1", [8; 32]);
        assert_eq!(
            other.verify_standing(&signed),
            Err(MandateError::BadSignature)
        );
        signed.payload = String::from_utf8(signed.payload)
            .unwrap()
            .replace("500", "50000")
            .into_bytes();
        assert_eq!(
            keyring.verify_standing(&signed),
            Err(MandateError::BadSignature)
        );
    }

    #[test]
    fn a_run_mandate_signature_is_not_a_standing_one() {
        let keyring = Keyring::from_secret("k1", [7; 32]);
        let run = keyring.sign(&MandatePayload {
            mandate_id: "m1".into(),
            intent_id: "i1".into(),
            execution_id: "e1".into(),
            payer_account: "acct_user".into(),
            payee_account: "acct_dev".into(),
            amount_minor: 100,
            currency: "INR".into(),
            nonce: "00".into(),
            issued_at: mandate().issued_at,
            expires_at: mandate().expires_at,
            parent_mandate_id: None,
            standing_mandate_id: Some("sm_1".into()),
        });
        assert_eq!(keyring.verify_standing(&run), Err(MandateError::WrongType));
    }

    #[test]
    fn allows_within_amount_currency_and_time_only() {
        let m = mandate();
        let issued = DateTime::parse_from_rfc3339(&m.issued_at)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(m.allows(issued, 500, "INR"), Ok(()));
        assert!(matches!(
            m.allows(issued, 501, "INR"),
            Err(Refusal::AmountExceeded { max: 500, .. })
        ));
        assert!(matches!(
            m.allows(issued, 100, "USD"),
            Err(Refusal::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            m.allows(issued + Duration::days(30), 100, "INR"),
            Err(Refusal::Expired { .. })
        ));
    }
}
