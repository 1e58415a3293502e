//! Payment mandates (seed §5, API.md §2): the platform's Ed25519-signed promise that a user pays
//! at most a given amount for one execution, captured only if it succeeds. The signed bytes are a
//! canonical JSON object whose first member is the type tag, so a signature over a mandate can
//! never be passed off as a signature over anything else, and anyone with the public key of the
//! `kid` can verify it offline.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub use ed25519_dalek::VerifyingKey;

#[cfg(test)]
mod tests;

/// The domain-separation tag, inside the signed bytes.
pub const MANDATE_TYPE: &str = "frameos.mandate.v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MandateError {
    #[error("no mandate key with id {kid:?}")]
    UnknownKey { kid: String },
    #[error("the mandate's signature does not verify")]
    BadSignature,
    #[error("the signed payload is not a {MANDATE_TYPE} mandate")]
    WrongType,
    #[error("the mandate expired at {expires_at}")]
    Expired { expires_at: String },
    #[error("the amount {amount} exceeds the {max} allowed")]
    AmountExceeded { amount: i64, max: i64 },
    #[error("malformed mandate: {0}")]
    Malformed(String),
    #[error("mandate key {kid:?} refused: {reason}")]
    InvalidKey { kid: String, reason: String },
}

/// What a mandate says. Timestamps are RFC 3339 UTC (see [`timestamp`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MandatePayload {
    pub mandate_id: String,
    pub intent_id: String,
    pub execution_id: String,
    pub payer_account: String,
    pub payee_account: String,
    pub amount_minor: i64,
    pub currency: String,
    /// 128 random bits in hex ([`new_nonce`]); the caller refuses one it has seen before.
    pub nonce: String,
    pub issued_at: String,
    pub expires_at: String,
    /// A child execution's mandate (API.md §5.1): the mandate of the execution that called it.
    /// Absent (not even `null`) in a root's, so mandates signed before call trees still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_mandate_id: Option<String>,
    /// A scheduled run's mandate: the payer's standing mandate it spends under
    /// ([`crate::standing`]). Absent otherwise, so earlier mandates still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing_mandate_id: Option<String>,
}

/// The signed form, field for field; serde writes members in declaration order, without spaces.
#[derive(Serialize)]
struct Canonical<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    mandate_id: &'a str,
    intent_id: &'a str,
    execution_id: &'a str,
    payer_account: &'a str,
    payee_account: &'a str,
    amount_minor: i64,
    currency: &'a str,
    nonce: &'a str,
    issued_at: &'a str,
    expires_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_mandate_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    standing_mandate_id: Option<&'a str>,
}

/// The exact bytes that are signed: `{"type":"frameos.mandate.v1",` then the payload's fields in
/// declaration order, compact JSON, UTF-8.
pub fn canonical_bytes(p: &MandatePayload) -> Vec<u8> {
    let canonical = Canonical {
        kind: MANDATE_TYPE,
        mandate_id: &p.mandate_id,
        intent_id: &p.intent_id,
        execution_id: &p.execution_id,
        payer_account: &p.payer_account,
        payee_account: &p.payee_account,
        amount_minor: p.amount_minor,
        currency: &p.currency,
        nonce: &p.nonce,
        issued_at: &p.issued_at,
        expires_at: &p.expires_at,
        parent_mandate_id: p.parent_mandate_id.as_deref(),
        standing_mandate_id: p.standing_mandate_id.as_deref(),
    };
    // Strings and an integer always serialize; an empty payload would only fail verification.
    serde_json::to_vec(&canonical).unwrap_or_default()
}

/// A fresh mandate nonce: 128 bits from the thread's CSPRNG, lowercase hex.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The mandate's timestamp format: RFC 3339, UTC, whole seconds (`2026-05-01T12:00:00Z`).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMandate {
    /// The exact signed bytes.
    pub payload: Vec<u8>,
    pub signature: [u8; 64],
    pub kid: String,
}

/// The platform's mandate keys: one active key that signs, and the public keys of every key that
/// may still have live mandates (rotation: a new key signs, old ones keep verifying).
pub struct Keyring {
    active_kid: String,
    signing: SigningKey,
    verifying: BTreeMap<String, VerifyingKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active_kid", &self.active_kid)
            .field("kids", &self.verifying.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A new random active key. Persist [`Keyring::active_secret`], or mandates signed before a
    /// restart stop verifying.
    pub fn generate(kid: impl Into<String>) -> Keyring {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Keyring::from_secret(kid, secret)
    }

    /// The active key from its 32-byte RFC 8032 secret.
    pub fn from_secret(kid: impl Into<String>, secret: [u8; 32]) -> Keyring {
        let kid = kid.into();
        let signing = SigningKey::from_bytes(&secret);
        let verifying = BTreeMap::from([(kid.clone(), signing.verifying_key())]);
        Keyring {
            active_kid: kid,
            signing,
            verifying,
        }
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The active key's secret, to store it; handle like a password.
    pub fn active_secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Adds a key that only verifies (a retired one). Re-adding the same key is a no-op; another
    /// key under a known kid, or a weak (small-order) key, is refused.
    pub fn add_verification_key(
        &mut self,
        kid: impl Into<String>,
        key: VerifyingKey,
    ) -> Result<(), MandateError> {
        let kid = kid.into();
        let refuse = |reason: &str| {
            Err(MandateError::InvalidKey {
                kid: kid.clone(),
                reason: reason.to_string(),
            })
        };
        if key.is_weak() {
            return refuse("the key has small order");
        }
        match self.verifying.get(&kid) {
            Some(known) if *known == key => Ok(()),
            Some(_) => refuse("another key has this kid"),
            None => {
                self.verifying.insert(kid, key);
                Ok(())
            }
        }
    }

    /// Whether a key with this id verifies here.
    pub fn knows(&self, kid: &str) -> bool {
        self.verifying.contains_key(kid)
    }

    /// `(kid, raw public key)` of every key that verifies, sorted by kid.
    pub fn public_keys(&self) -> Vec<(String, [u8; 32])> {
        self.verifying
            .iter()
            .map(|(kid, key)| (kid.clone(), key.to_bytes()))
            .collect()
    }

    /// Signs with the active key. Ed25519 signatures are deterministic: same payload, same bytes.
    pub fn sign(&self, payload: &MandatePayload) -> SignedMandate {
        let bytes = canonical_bytes(payload);
        SignedMandate {
            signature: self.sign_bytes(&bytes),
            payload: bytes,
            kid: self.active_kid.clone(),
        }
    }

    /// Checks everything but the nonce, which the caller checks against what it has seen: the
    /// key, the signature (strictly: no malleable signatures, no small-order keys), the type tag,
    /// the canonical form, expiry at `now` and `amount_minor <= max_amount`.
    pub fn verify(
        &self,
        mandate: &SignedMandate,
        now: DateTime<Utc>,
        max_amount: i64,
    ) -> Result<MandatePayload, MandateError> {
        self.verify_signature(mandate)?;
        let payload = parse(&mandate.payload)?;
        let expires_at = DateTime::parse_from_rfc3339(&payload.expires_at)
            .map_err(|e| MandateError::Malformed(format!("expires_at: {e}")))?;
        DateTime::parse_from_rfc3339(&payload.issued_at)
            .map_err(|e| MandateError::Malformed(format!("issued_at: {e}")))?;
        if now >= expires_at {
            return Err(MandateError::Expired {
                expires_at: payload.expires_at,
            });
        }
        if payload.amount_minor > max_amount {
            return Err(MandateError::AmountExceeded {
                amount: payload.amount_minor,
                max: max_amount,
            });
        }
        Ok(payload)
    }

    /// That `mandate.signature` is the `kid`'s over `mandate.payload` (strictly: no malleable
    /// signatures, no small-order keys); nothing about what the payload says.
    pub(crate) fn verify_signature(&self, mandate: &SignedMandate) -> Result<(), MandateError> {
        let key = self
            .verifying
            .get(&mandate.kid)
            .ok_or_else(|| MandateError::UnknownKey {
                kid: mandate.kid.clone(),
            })?;
        let signature = Signature::from_bytes(&mandate.signature);
        key.verify_strict(&mandate.payload, &signature)
            .map_err(|_| MandateError::BadSignature)
    }

    /// `payload` (a mandate's signed bytes) as a compact JWS (RFC 7515) signed now with the active
    /// key: header `{"alg":"EdDSA","kid":…}`, base64url without padding, so any JOSE library
    /// verifies it with the key of that `kid` from the JWKS (RFC 8037).
    pub fn jws(&self, payload: &[u8]) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({"alg": "EdDSA", "kid": self.active_kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self.sign_bytes(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// Reads signed bytes back: the type first (a different type is a different error from garbage),
/// then the fields, then that the bytes are exactly the canonical form of what was read.
fn parse(bytes: &[u8]) -> Result<MandatePayload, MandateError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| MandateError::Malformed(e.to_string()))?;
    let kind = value.as_object_mut().and_then(|o| o.remove("type"));
    if kind.as_ref().and_then(|t| t.as_str()) != Some(MANDATE_TYPE) {
        return Err(MandateError::WrongType);
    }
    let payload: MandatePayload =
        serde_json::from_value(value).map_err(|e| MandateError::Malformed(e.to_string()))?;
    // Catches extra, repeated or reordered members and any other spelling of the same values.
    if canonical_bytes(&payload) != bytes {
        return Err(MandateError::Malformed("not in canonical form".into()));
    }
    if payload.amount_minor < 1 {
        return Err(MandateError::Malformed(format!(
            "amount {} is not positive",
            payload.amount_minor
        )));
    }
    Ok(payload)
}
