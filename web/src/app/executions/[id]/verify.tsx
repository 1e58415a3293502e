"use client";

import { useState } from "react";

import { type Expected, type MandateKey, type SignedMandate, type Verdict, verifyMandate } from "@/lib/mandate";

/** "Verify mandate": checks the signature in this browser, trusting nothing but the keys. */
export function VerifyMandate(props: { mandate: SignedMandate; keys: MandateKey[]; expected: Expected }) {
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  return (
    <section aria-labelledby="mandate">
      <h2 id="mandate">Mandate</h2>
      <p className="muted">
        Signed by key {props.mandate.kid}. Checking it runs Ed25519 in your browser against the platform&apos;s
        published keys.
      </p>
      <button type="button" onClick={async () => setVerdict(await verifyMandate(props.mandate, props.keys, props.expected))}>
        Verify mandate
      </button>
      {verdict ? (
        <p role="status" data-testid="mandate-verdict" className={verdict.valid ? undefined : "error"}>
          {verdict.valid
            ? `Valid: signed for this execution, ${String(verdict.claims.amount_minor)} ${String(verdict.claims.currency)} minor units.`
            : `Not valid: ${verdict.reason}.`}
        </p>
      ) : null}
    </section>
  );
}
