"""Webhook secrets at rest: Fernet with a key derived (HKDF-SHA256) from SECRET_KEY."""
from __future__ import annotations

import base64

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _derive(material: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cxplatform.integrations", info=b"webhook-secrets")
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(material.encode("utf-8"))))


def _fernet() -> MultiFernet:
    keys = []
    explicit = getattr(settings, "FIELD_ENCRYPTION_KEY", "") or ""
    if explicit:
        keys.append(_derive(str(explicit)))
    keys.append(_derive(settings.SECRET_KEY))
    return MultiFernet(keys)


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def secret_decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
