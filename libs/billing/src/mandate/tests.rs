#![allow(clippy::unwrap_used)]

use chrono::TimeZone;

use super::*;

/// RFC 8032 §7.1 TEST 1, 2 and 3: secret key, public key, message, signature.
const RFC8032: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

/// The order of the Ed25519 group, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, h, m, s).unwrap()
}

fn payload() -> MandatePayload {
    MandatePayload {
        mandate_id: "mdt_1".into(),
        intent_id: "int_1".into(),
        execution_id: "0196a0b2-0000-7000-8000-000000000001".into(),
        payer_account: "acct_user".into(),
        payee_account: "acct_dev".into(),
        amount_minor: 5000,
        currency: "INR".into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        issued_at: timestamp(at(12, 0, 0)),
        expires_at: timestamp(at(12, 15, 0)),
        parent_mandate_id: None,
        standing_mandate_id: None,
    }
}

fn keyring() -> Keyring {
    Keyring::from_secret("k1", [7; 32])
}

#[test]
fn rfc8032_test_vectors() {
    for (secret, public, message, signature) in RFC8032 {
        let secret: [u8; 32] = hex::decode(secret).unwrap().try_into().unwrap();
        let ring = Keyring::from_secret("rfc", secret);
        let (kid, key) = &ring.public_keys()[0];
        assert_eq!(kid, "rfc");
        assert_eq!(hex::encode(key), public);
        let message = hex::decode(message).unwrap();
        let signed = ring.sign_bytes(&message);
        assert_eq!(hex::encode(signed), signature);
        let key = VerifyingKey::from_bytes(key).unwrap();
        key.verify_strict(&message, &Signature::from_bytes(&signed))
            .unwrap();
    }
}

#[test]
fn canonical_bytes_are_fixed_and_type_first() {
    let bytes = canonical_bytes(&payload());
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with(r#"{"type":"frameos.mandate.v1","#));
    assert_eq!(
        text,
        concat!(
            r#"{"type":"frameos.mandate.v1","mandate_id":"mdt_1","intent_id":"int_1","#,
            r#""execution_id":"0196a0b2-0000-7000-8000-000000000001","#,
            r#""payer_account":"acct_user","payee_account":"acct_dev","amount_minor":5000,"#,
            r#""currency":"INR","nonce":"00112233445566778899aabbccddeeff","#,
            r#""issued_at":"2026-05-01T12:00:00Z","expires_at":"2026-05-01T12:15:00Z"}"#
        )
    );
    // Strings are escaped, never able to break out of their member.
    let mut tricky = payload();
    tricky.payer_account = r#"a","amount_minor":1,"x":""#.into();
    let bytes = canonical_bytes(&tricky);
    let signed = keyring().sign(&tricky);
    assert_eq!(signed.payload, bytes);
    assert_eq!(
        keyring().verify(&signed, at(12, 1, 0), 5000).unwrap(),
        tricky
    );
}

#[test]
fn a_child_mandate_names_its_parent_last_and_a_null_is_refused() {
    let mut child = payload();
    child.parent_mandate_id = Some("mdt_root".into());
    let bytes = canonical_bytes(&child);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.ends_with(r#""expires_at":"2026-05-01T12:15:00Z","parent_mandate_id":"mdt_root"}"#),
        "{text}"
    );
    let ring = keyring();
    let signed = ring.sign(&child);
    assert_eq!(ring.verify(&signed, at(12, 1, 0), 5000).unwrap(), child);
    // The same payload with an explicit null is another spelling: not the canonical form.
    let root = String::from_utf8(canonical_bytes(&payload())).unwrap();
    let spelled = root.replace('}', r#","parent_mandate_id":null}"#);
    let forged = SignedMandate {
        signature: ring.sign_bytes(spelled.as_bytes()),
        payload: spelled.into_bytes(),
        kid: "k1".into(),
    };
    assert!(matches!(
        ring.verify(&forged, at(12, 1, 0), 5000),
        Err(MandateError::Malformed(_))
    ));
}

#[test]
fn a_mandate_as_a_compact_jws_verifies_over_its_signing_input() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let ring = keyring();
    let payload = canonical_bytes(&payload());
    let jws = ring.jws(&payload);
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3, "{jws}");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "EdDSA", "kid": "k1"}));
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap(), payload);
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap()
        .try_into()
        .unwrap();
    let (_, public) = &ring.public_keys()[0];
    let key = VerifyingKey::from_bytes(public).unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    key.verify_strict(input.as_bytes(), &Signature::from_bytes(&signature))
        .unwrap();
    assert!(
        key.verify_strict(&payload, &Signature::from_bytes(&signature))
            .is_err(),
        "the JWS signs its signing input, not the bare payload"
    );
}

#[test]
fn sign_then_verify_round_trips() {
    let ring = keyring();
    let signed = ring.sign(&payload());
    assert_eq!(signed.kid, "k1");
    assert_eq!(ring.sign(&payload()), signed, "deterministic");
    let verified = ring.verify(&signed, at(12, 1, 0), 5000).unwrap();
    assert_eq!(verified, payload());
    assert_eq!(verified.nonce, "00112233445566778899aabbccddeeff");
    // Anyone can verify offline with just the public key.
    let (_, public) = &ring.public_keys()[0];
    VerifyingKey::from_bytes(public)
        .unwrap()
        .verify_strict(&signed.payload, &Signature::from_bytes(&signed.signature))
        .unwrap();
}

#[test]
fn flipped_bits_are_refused() {
    let ring = keyring();
    let signed = ring.sign(&payload());
    // Every 5th byte and the last: full coverage is slow in debug builds and adds nothing.
    let last = signed.payload.len() - 1;
    for i in (0..last).step_by(5).chain([last]) {
        let mut bad = signed.clone();
        bad.payload[i] ^= 0x01;
        assert_eq!(
            ring.verify(&bad, at(12, 1, 0), 5000),
            Err(MandateError::BadSignature),
            "payload byte {i}"
        );
    }
    for i in 0..64 {
        for bit in [0x01, 0x80] {
            let mut bad = signed.clone();
            bad.signature[i] ^= bit;
            assert_eq!(
                ring.verify(&bad, at(12, 1, 0), 5000),
                Err(MandateError::BadSignature),
                "signature byte {i} bit {bit:#x}"
            );
        }
    }
}

#[test]
fn malleated_signature_is_refused() {
    let ring = keyring();
    let signed = ring.sign(&payload());
    // S + L is the same scalar mod L: a lax verifier accepts it as a second valid signature.
    let mut bad = signed.clone();
    let mut carry = 0u16;
    for (s, l) in bad.signature[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert_ne!(bad.signature, signed.signature);
    assert_eq!(
        ring.verify(&bad, at(12, 1, 0), 5000),
        Err(MandateError::BadSignature)
    );
}

#[test]
fn unknown_key_expired_and_excess_amount_are_refused() {
    let ring = keyring();
    let signed = ring.sign(&payload());
    let mut unknown = signed.clone();
    unknown.kid = "k0".into();
    assert_eq!(
        ring.verify(&unknown, at(12, 1, 0), 5000),
        Err(MandateError::UnknownKey { kid: "k0".into() })
    );
    // Another keyring's key under the same kid does not verify it.
    let other = Keyring::from_secret("k1", [8; 32]);
    assert_eq!(
        other.verify(&signed, at(12, 1, 0), 5000),
        Err(MandateError::BadSignature)
    );
    assert!(ring.verify(&signed, at(12, 14, 59), 5000).is_ok());
    for now in [at(12, 15, 0), at(13, 0, 0)] {
        assert!(matches!(
            ring.verify(&signed, now, 5000),
            Err(MandateError::Expired { .. })
        ));
    }
    assert_eq!(
        ring.verify(&signed, at(12, 1, 0), 4999),
        Err(MandateError::AmountExceeded {
            amount: 5000,
            max: 4999
        })
    );
}

#[test]
fn wrong_type_and_malformed_payloads_are_refused() {
    let ring = keyring();
    let sign_raw = |bytes: &[u8]| SignedMandate {
        payload: bytes.to_vec(),
        signature: ring.sign_bytes(bytes),
        kid: "k1".into(),
    };
    let canonical = String::from_utf8(canonical_bytes(&payload())).unwrap();
    let other_type = canonical.replace("frameos.mandate.v1", "frameos.receipt.v1");
    assert_eq!(
        ring.verify(&sign_raw(other_type.as_bytes()), at(12, 1, 0), 5000),
        Err(MandateError::WrongType)
    );
    let untyped = canonical.replace(r#""type":"frameos.mandate.v1","#, "");
    assert_eq!(
        ring.verify(&sign_raw(untyped.as_bytes()), at(12, 1, 0), 5000),
        Err(MandateError::WrongType)
    );
    let malformed = [
        "not json".to_string(),
        canonical.replace(',', ", "),
        canonical.replace(
            r#""amount_minor":5000"#,
            r#""amount_minor":5000,"amount_minor":1"#,
        ),
        canonical.replace('}', r#","extra":1}"#),
        canonical.replace("5000", "-5"),
        canonical.replace("2026-05-01T12:15:00Z", "tomorrow"),
    ];
    for bytes in malformed {
        assert!(
            matches!(
                ring.verify(&sign_raw(bytes.as_bytes()), at(12, 1, 0), 5000),
                Err(MandateError::Malformed(_))
            ),
            "{bytes}"
        );
    }
}

#[test]
fn rotation_keeps_old_mandates_verifiable() {
    let old = Keyring::from_secret("k1", [1; 32]);
    let signed = old.sign(&payload());
    let mut new = Keyring::from_secret("k2", [2; 32]);
    assert_eq!(new.active_kid(), "k2");
    let old_key = VerifyingKey::from_bytes(&old.public_keys()[0].1).unwrap();
    new.add_verification_key("k1", old_key).unwrap();
    new.add_verification_key("k1", old_key).unwrap();
    assert_eq!(
        new.public_keys()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(new.verify(&signed, at(12, 1, 0), 5000).unwrap(), payload());
    assert_eq!(new.sign(&payload()).kid, "k2");
    // The active kid cannot be pointed at another key; a small-order key is never accepted.
    assert!(matches!(
        new.add_verification_key("k2", old_key),
        Err(MandateError::InvalidKey { .. })
    ));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(matches!(
        new.add_verification_key("k3", weak),
        Err(MandateError::InvalidKey { .. })
    ));
    // The secret round-trips, so a generated key can be persisted.
    let generated = Keyring::generate("g");
    let restored = Keyring::from_secret("g", generated.active_secret());
    assert_eq!(generated.public_keys(), restored.public_keys());
    assert_ne!(
        Keyring::generate("g").public_keys(),
        generated.public_keys()
    );
    assert!(!format!("{generated:?}").contains(&hex::encode(generated.active_secret())));
}

#[test]
fn nonces_are_128_random_bits_in_hex() {
    let a = new_nonce();
    assert_eq!(a.len(), 32);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(a, new_nonce());
}
