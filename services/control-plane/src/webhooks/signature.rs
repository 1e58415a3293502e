//! `FrameOS-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 of `"<t>.<body>"` under the account's
//! webhook secret, the scheme Stripe signs its webhooks with, so receivers can reuse theirs.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "FrameOS-Signature";

/// A fresh webhook secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// The header value for `body` sent at `unix_seconds`.
pub fn sign(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() {
        // (The integration test checks the value itself with another HMAC implementation.)
        let header = sign("Jefe", 0, b"what do ya want for nothing?");
        assert_eq!(header.split_once(",v1=").unwrap().0, "t=0");
        let other = sign("Jefe", 1, b"what do ya want for nothing?");
        assert_ne!(header, other, "the timestamp is signed");
        assert_ne!(
            sign("Jefe", 0, b"what do ya want for nothing!"),
            header,
            "the body is signed"
        );
    }

    #[test]
    fn secrets_are_fresh_and_long() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), "whsec_".len() + 64);
    }
}
