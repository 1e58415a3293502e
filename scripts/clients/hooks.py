"""Schemathesis hooks (SCHEMATHESIS_HOOKS=hooks, loaded by run.sh).

The package upload's body is raw bytes sent as `application/gzip` (or `application/x-gzip`):
schemathesis sends those exactly like `application/octet-stream`, which it knows.
"""

import schemathesis

schemathesis.serializer.alias(["application/gzip", "application/x-gzip"], "application/octet-stream")
