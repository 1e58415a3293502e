//! Stream tokens (API.md §4.3, ADR 0023): a short-lived bearer secret that opens the event
//! stream of one execution and nothing else, for clients that cannot send an `Authorization`
//! header (a browser's `EventSource` puts it in the URL as `?access_token=`).
//!
//! A token is stateless: `fst1.<payload>.<mac>`, where the payload (base64url) is
//! `execution_id \n account_id \n expires_at (Unix seconds)` and the MAC is HMAC-SHA256 over
//! the domain `frameos.stream_token.v1`, a zero byte and the payload. Any control plane replica
//! holding the same key verifies any replica's tokens without a database row or a call: the key
//! is `FRAMEOS_STREAM_TOKEN_KEY`, or else derived from `FRAMEOS_MANDATE_SIGNING_KEY` (already a
//! secret every replica shares), or else random per start (one replica only, e.g. `frameos dev`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use frameos_core::{Error, ErrorCode};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// What the MAC covers first: a token can never pass for anything else this key signs.
pub const DOMAIN: &[u8] = b"frameos.stream_token.v1";
/// The label the key is derived under from the mandate signing key.
const DERIVATION: &[u8] = b"frameos.stream_token.v1/key";
/// How long a token opens streams (API.md: at most 5 minutes).
pub const TTL_SECS: i64 = 300;
/// Names the format, so a later one can live beside it.
const PREFIX: &str = "fst1";
/// The gRPC metadata that carries a token on `WatchExecution`, instead of `authorization`.
pub const METADATA: &str = "frameos-stream-token";
/// Longer than any token this code issues; anything longer is refused unread.
const MAX_TOKEN_LEN: usize = 512;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks stream tokens with one key.
#[derive(Clone)]
pub struct StreamTokens {
    key: [u8; 32],
}

// The key is a secret: nothing that prints a `StreamTokens` prints it.
impl fmt::Debug for StreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamTokens(..)")
    }
}

/// Where the key came from, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    DerivedFromMandateKey,
    Random,
}

/// A token that passed: whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub execution_id: String,
    /// The account that asked for it (its user, or an admin).
    pub account_id: String,
}

impl StreamTokens {
    pub fn new(key: [u8; 32]) -> Self {
        StreamTokens { key }
    }

    /// From `FRAMEOS_STREAM_TOKEN_KEY` (64 hex digits), else derived from the mandate signing
    /// key (64 hex digits, checked by billing), else random.
    pub fn from_config(
        configured: Option<&str>,
        mandate_signing_key: Option<&str>,
    ) -> Result<(Self, KeySource), Error> {
        if let Some(hex_key) = configured.map(str::trim).filter(|k| !k.is_empty()) {
            let key = decode_key(hex_key).ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidRequest,
                    "FRAMEOS_STREAM_TOKEN_KEY must be 64 hex digits",
                )
            })?;
            return Ok((StreamTokens::new(key), KeySource::Configured));
        }
        if let Some(secret) = mandate_signing_key.and_then(|k| decode_key(k.trim())) {
            let mut mac = keyed(&secret);
            mac.update(DERIVATION);
            let key = mac.finalize().into_bytes().into();
            return Ok((StreamTokens::new(key), KeySource::DerivedFromMandateKey));
        }
        Ok((StreamTokens::random(), KeySource::Random))
    }

    /// A key of its own: its tokens open streams on this process only.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        StreamTokens::new(key)
    }

    /// A token for `execution_id`, asked for by `account_id`, valid until the time returned.
    pub fn issue(
        &self,
        execution_id: &str,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires = now.timestamp() + TTL_SECS;
        let payload = format!("{execution_id}\n{account_id}\n{expires}");
        let token = format!(
            "{PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes())
        );
        let expires_at = Utc.timestamp_opt(expires, 0).single().unwrap_or(now);
        (token, expires_at)
    }

    /// The grant of `token` if it is genuine, unexpired at `now` and for `execution_id`.
    pub fn verify(
        &self,
        token: &str,
        execution_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant, Error> {
        let malformed = || {
            refused(format!(
                "invalid stream token: it is not one this platform issued; ask for one with POST /v1/executions/{execution_id}/stream-token"
            ))
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed());
        }
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(payload), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| malformed())?;
        // The MAC first (in constant time): nothing of a forged payload is believed.
        self.mac(&payload).verify_slice(&mac).map_err(|_| {
            refused(
                "invalid stream token: its signature does not match (altered, or issued with another key)",
            )
        })?;
        let payload = String::from_utf8(payload).map_err(|_| malformed())?;
        let mut fields = payload.split('\n');
        let (Some(token_execution), Some(account_id), Some(expires), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed());
        };
        let expires: i64 = expires.parse().map_err(|_| malformed())?;
        if now.timestamp() >= expires {
            let at = Utc
                .timestamp_opt(expires, 0)
                .single()
                .map_or_else(|| expires.to_string(), |t| t.to_rfc3339());
            return Err(refused(format!(
                "stream token expired at {at}; ask for a new one with POST /v1/executions/{execution_id}/stream-token"
            )));
        }
        if token_execution != execution_id {
            return Err(refused(
                "this stream token is for another execution: it opens only the events of the execution it was issued for",
            ));
        }
        Ok(Grant {
            execution_id: token_execution.to_string(),
            account_id: account_id.to_string(),
        })
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = keyed(&self.key);
        mac.update(DOMAIN);
        mac.update(&[0]);
        mac.update(payload);
        mac
    }
}

fn keyed(key: &[u8; 32]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn decode_key(hex_key: &str) -> Option<[u8; 32]> {
    hex::decode(hex_key).ok()?.try_into().ok()
}

fn refused(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::Unauthenticated, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).single().unwrap()
    }

    fn message_of(result: Result<Grant, Error>) -> String {
        let error = result.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unauthenticated, "{error:?}");
        error.message
    }

    #[test]
    fn a_token_opens_its_execution_until_it_expires() {
        let tokens = StreamTokens::new([7; 32]);
        let (token, expires_at) = tokens.issue("ex-1", "acc-1", at(1_000));
        assert_eq!(expires_at, at(1_300));
        assert!(token.starts_with("fst1."), "{token}");
        // URL-safe as it is: no escaping needed in `?access_token=`.
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{token}"
        );
        let grant = tokens.verify(&token, "ex-1", at(1_299)).unwrap();
        assert_eq!(grant.account_id, "acc-1");
        assert_eq!(grant.execution_id, "ex-1");

        let expired = message_of(tokens.verify(&token, "ex-1", at(1_300)));
        assert!(
            expired.contains("expired at 1970-01-01T00:21:40"),
            "{expired}"
        );
        let other = message_of(tokens.verify(&token, "ex-2", at(1_001)));
        assert!(other.contains("another execution"), "{other}");
    }

    #[test]
    fn altered_forged_and_foreign_tokens_are_refused() {
        let tokens = StreamTokens::new([7; 32]);
        let (token, _) = tokens.issue("ex-1", "acc-1", at(1_000));
        let parts: Vec<&str> = token.split('.').collect();

        // Another execution's payload under this token's MAC.
        let payload = URL_SAFE_NO_PAD.encode("ex-2\nacc-1\n1300");
        let altered = format!("fst1.{payload}.{}", parts[2]);
        let message = message_of(tokens.verify(&altered, "ex-2", at(1_001)));
        assert!(message.contains("signature does not match"), "{message}");
        // A later expiry, the same way.
        let payload = URL_SAFE_NO_PAD.encode("ex-1\nacc-1\n99999");
        let altered = format!("fst1.{payload}.{}", parts[2]);
        assert!(message_of(tokens.verify(&altered, "ex-1", at(1_001))).contains("signature"));

        // Another key (another platform, or a replica configured apart) signed it.
        let (foreign, _) = StreamTokens::new([8; 32]).issue("ex-1", "acc-1", at(1_000));
        assert!(message_of(tokens.verify(&foreign, "ex-1", at(1_001))).contains("signature"));

        for junk in [
            "",
            "fst1",
            "fst1.a.b.c",
            "fst2.x.y",
            "fos_abc",
            &"a".repeat(600),
        ] {
            let message = message_of(tokens.verify(junk, "ex-1", at(1_001)));
            assert!(
                message.contains("not one this platform issued"),
                "{junk}: {message}"
            );
        }
    }

    #[test]
    fn replicas_with_the_same_secret_accept_each_others_tokens() {
        let mandate = "11".repeat(32);
        let (first, source) = StreamTokens::from_config(None, Some(&mandate)).unwrap();
        assert_eq!(source, KeySource::DerivedFromMandateKey);
        let (second, _) = StreamTokens::from_config(None, Some(&mandate)).unwrap();
        let (token, _) = first.issue("ex-1", "acc-1", at(1_000));
        second.verify(&token, "ex-1", at(1_001)).unwrap();
        // The derived key is not the mandate key itself.
        assert_ne!(first.key, [0x11; 32]);

        let configured = "ab".repeat(32);
        let (first, source) = StreamTokens::from_config(Some(&configured), Some(&mandate)).unwrap();
        assert_eq!(source, KeySource::Configured);
        let (second, _) = StreamTokens::from_config(Some(&configured), None).unwrap();
        let (token, _) = first.issue("ex-1", "acc-1", at(1_000));
        second.verify(&token, "ex-1", at(1_001)).unwrap();

        // Without either, each start has a key of its own.
        let (alone, source) = StreamTokens::from_config(None, None).unwrap();
        assert_eq!(source, KeySource::Random);
        assert!(alone.verify(&token, "ex-1", at(1_001)).is_err());

        let bad = StreamTokens::from_config(Some("not hex"), None).unwrap_err();
        assert!(bad.message.contains("FRAMEOS_STREAM_TOKEN_KEY"), "{bad:?}");
        assert!(!format!("{first:?}").contains("ab"));
    }
}
