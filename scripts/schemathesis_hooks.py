"""Schemathesis hooks for r2d1 (loaded by scripts/schemathesis.sh through SCHEMATHESIS_HOOKS).

openapi.json describes the NDJSON body of POST /api/omi/import as the array of its lines'
values; this serializer writes such an array as NDJSON, one JSON value a line. Anything else
schemathesis generates for it (negative cases) is sent as one line of JSON, or as is when it is
already text or bytes.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return "".join(json.dumps(item) + "\n" for item in value).encode()
    return (json.dumps(value) + "\n").encode()
