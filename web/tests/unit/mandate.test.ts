// The in-browser mandate check, with keys and signatures made here by WebCrypto. (The journey
// in Chromium checks a mandate the platform signed.)
import assert from "node:assert/strict";
import { test } from "node:test";

import { type MandateKey, type SignedMandate, verifyMandate } from "../../src/lib/mandate";

const base64 = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes as ArrayBuffer).toString("base64");
const expected = { executionId: "exec-1", amountMinor: 5000, currency: "INR" };

async function signed(claims: unknown, raw?: string): Promise<{ mandate: SignedMandate; keys: MandateKey[] }> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const payload = new TextEncoder().encode(raw ?? JSON.stringify(claims));
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, payload);
  const publicKey = await crypto.subtle.exportKey("raw", pair.publicKey);
  return {
    mandate: { payload: base64(payload), signature: base64(signature), kid: "k1" },
    keys: [
      { kid: "k0", alg: "Ed25519", public_key: base64(new Uint8Array(32)) },
      { kid: "k1", alg: "Ed25519", public_key: base64(publicKey) },
    ],
  };
}

const claims = {
  type: "frameos.mandate.v1",
  execution_id: "exec-1",
  amount_minor: 5000,
  currency: "INR",
  expires_at: "2026-12-01T00:00:00Z",
  nonce: "n",
};

test("a mandate signed by a published key for this charge verifies", async () => {
  const { mandate, keys } = await signed(claims);
  const verdict = await verifyMandate(mandate, keys, expected);
  assert.deepEqual(verdict, { valid: true, claims });
});

test("a root's mandate covers its calls: a budget above the charge verifies", async () => {
  const tree = { ...claims, amount_minor: 9000 };
  const { mandate, keys } = await signed(tree);
  assert.deepEqual(await verifyMandate(mandate, keys, expected), { valid: true, claims: tree });
});

test("a changed byte, another key or an unknown kid does not", async () => {
  const { mandate, keys } = await signed(claims);
  const payload = Buffer.from(mandate.payload, "base64");
  payload.writeUInt8(payload.readUInt8(payload.length - 2) ^ 1, payload.length - 2);
  const tampered = { ...mandate, payload: payload.toString("base64") };
  assert.deepEqual(await verifyMandate(tampered, keys, expected), {
    valid: false,
    reason: "the signature does not match the payload",
  });
  assert.deepEqual(await verifyMandate({ ...mandate, kid: "k0" }, keys, expected), {
    valid: false,
    reason: "the signature does not match the payload",
  });
  assert.deepEqual(await verifyMandate({ ...mandate, kid: "k9" }, keys, expected), {
    valid: false,
    reason: "no published key has the id k9",
  });
  assert.deepEqual(await verifyMandate({ ...mandate, signature: "AAAA" }, keys, expected), {
    valid: false,
    reason: "the signature is not 64 bytes",
  });
});

test("a genuine signature over another charge is not this charge's mandate", async () => {
  const other = await signed({ ...claims, execution_id: "exec-2" });
  assert.deepEqual(await verifyMandate(other.mandate, other.keys, expected), {
    valid: false,
    reason: "it was signed for another execution",
  });
  const cheaper = await signed({ ...claims, amount_minor: 1 });
  assert.deepEqual(await verifyMandate(cheaper.mandate, cheaper.keys, expected), {
    valid: false,
    reason: "it was signed for another amount",
  });
  const otherCurrency = await signed({ ...claims, currency: "USD" });
  assert.deepEqual(await verifyMandate(otherCurrency.mandate, otherCurrency.keys, expected), {
    valid: false,
    reason: "it was signed for another amount",
  });
  const untyped = await signed({ ...claims, type: "something.else" });
  assert.deepEqual(await verifyMandate(untyped.mandate, untyped.keys, expected), {
    valid: false,
    reason: "the payload is not a frameos.mandate.v1",
  });
  const text = await signed(null, "not json");
  assert.deepEqual(await verifyMandate(text.mandate, text.keys, expected), {
    valid: false,
    reason: "the signed payload is not a JSON object",
  });
});
