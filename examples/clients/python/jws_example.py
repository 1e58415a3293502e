"""A paid execution's mandate as a compact JWS, verified by an independent JOSE library
(`joserfc`) against the platform's JWKS (`/.well-known/jwks.json`), as a buyer or an auditor
would: the signature, `alg` EdDSA, the `kid`, and the claims naming this execution and its
amount. A changed byte is refused. Exits non-zero on the first thing that is not as it should be.

    python jws_example.py --url http://127.0.0.1:8080 --key fos_... --agent word-count
"""

import argparse
import json
import sys
import urllib.request

from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet


def check(condition, what):
    if not condition:
        sys.exit(f"jws: {what}")
    print(f"ok: {what}")


def call(url, path, key=None, body=None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers=headers)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def main(url, key, agent):
    execution = call(url, f"/v1/agents/{agent}/executions", key, {"inputs": {"text": "signed and sealed"}})
    amount = execution["charge"]["amount_minor"]
    token = call(url, f"/v1/executions/{execution['id']}/mandate?format=jws", key)["jws"]
    check(token.count(".") == 2, "the mandate comes as a compact JWS")
    keys = call(url, "/.well-known/jwks.json")
    check(all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys["keys"]), f"the JWKS holds OKP/Ed25519 keys ({len(keys['keys'])})")

    verified = jws.deserialize_compact(token, KeySet.import_key_set(keys), algorithms=["EdDSA"])
    check(verified.protected["alg"] == "EdDSA", f"joserfc verifies it ({verified.protected})")
    claims = json.loads(verified.payload)
    check(claims["type"] == "frameos.mandate.v1", "the payload is a FrameOS mandate")
    check(claims["execution_id"] == execution["id"], "for this execution")
    check(claims["amount_minor"] >= amount, f"covering its charge of {amount} ({claims['amount_minor']})")

    envelope = call(url, f"/v1/executions/{execution['id']}/mandate", key)
    check(set(envelope) == {"payload", "signature", "kid"}, "without ?format the envelope is unchanged")

    header, payload, signature = token.split(".")
    forged = header + "." + payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    try:
        jws.deserialize_compact(forged, KeySet.import_key_set(keys), algorithms=["EdDSA"])
        refused = False
    except (BadSignatureError, ValueError):
        refused = True
    check(refused, "a changed payload does not verify")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--agent", required=True)
    args = parser.parse_args()
    main(args.url, args.key, args.agent)
