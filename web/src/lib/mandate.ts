// Checks a paid execution's mandate where the buyer is: the Ed25519 signature over the exact
// payload bytes, with the platform's published key of its `kid`, and that the signed payload
// is this execution's charge. Uses WebCrypto only, so it runs in the browser (and in Node).

export interface SignedMandate {
  payload: string;
  signature: string;
  kid: string;
}

export interface MandateKey {
  kid: string;
  alg: string;
  public_key: string;
}

/** What the mandate must say: the execution it is for and the amount on its charge. */
export interface Expected {
  executionId: string;
  amountMinor: number;
  currency: string;
}

export type Verdict = { valid: true; claims: Record<string, unknown> } | { valid: false; reason: string };

export const MANDATE_TYPE = "frameos.mandate.v1";

function bytes(base64: string): Uint8Array<ArrayBuffer> | null {
  try {
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export async function verifyMandate(mandate: SignedMandate, keys: MandateKey[], expected: Expected): Promise<Verdict> {
  const key = keys.find((k) => k.kid === mandate.kid);
  if (!key) return { valid: false, reason: `no published key has the id ${mandate.kid}` };
  if (key.alg !== "Ed25519") return { valid: false, reason: `key ${key.kid} is not an Ed25519 key` };
  const publicKey = bytes(key.public_key);
  const signature = bytes(mandate.signature);
  const payload = bytes(mandate.payload);
  if (!publicKey || publicKey.length !== 32) return { valid: false, reason: "the published key is not 32 bytes" };
  if (!signature || signature.length !== 64) return { valid: false, reason: "the signature is not 64 bytes" };
  if (!payload) return { valid: false, reason: "the payload is not base64" };
  let signed: boolean;
  try {
    const imported = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    signed = await crypto.subtle.verify({ name: "Ed25519" }, imported, signature, payload);
  } catch {
    return { valid: false, reason: "this browser cannot check Ed25519 signatures" };
  }
  if (!signed) return { valid: false, reason: "the signature does not match the payload" };
  let claims: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    claims = parsed as Record<string, unknown>;
  } catch {
    return { valid: false, reason: "the signed payload is not a JSON object" };
  }
  if (claims.type !== MANDATE_TYPE) return { valid: false, reason: `the payload is not a ${MANDATE_TYPE}` };
  if (claims.execution_id !== expected.executionId) return { valid: false, reason: "it was signed for another execution" };
  // A root's mandate covers its calls to other agents too (API.md §5.1): at least the charge.
  if (typeof claims.amount_minor !== "number" || claims.amount_minor < expected.amountMinor || claims.currency !== expected.currency) {
    return { valid: false, reason: "it was signed for another amount" };
  }
  return { valid: true, claims };
}
