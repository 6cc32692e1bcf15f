"""The webhook signature: ``v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``."""
from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Cx-Signature"
TIMESTAMP_HEADER = "X-Cx-Timestamp"


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"
