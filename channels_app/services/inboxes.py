"""Inboxes: typed, validated provider config with secrets encrypted at rest.

The adapter's config dataclass (``adapters.<kind>.<Kind>Config``) is the single definition of
what an inbox of that kind needs; ``config_class.secrets`` names the fields stored encrypted.
Secrets are Fernet-encrypted with a key derived (HKDF-SHA256) from ``FIELD_ENCRYPTION_KEY``
when set, else from ``SECRET_KEY``; both keys are tried on decryption so adding
``FIELD_ENCRYPTION_KEY`` later does not strand existing inboxes.
"""
from __future__ import annotations

import base64
import dataclasses
import functools
import json
import logging
import threading
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Team
from channels_app.adapters import registry
from channels_app.adapters.base import AdapterConfig, ConfigError
from channels_app.models import Inbox, InboxKind

logger = logging.getLogger(__name__)

# For kinds without a config dataclass (yet): field names that are treated as secrets.
_SECRET_WORDS = ("secret", "token", "password", "api_key")

REDACTED_PREFIX = "…"


class InboxConfigError(ValidationError):
    pass


# --- adapters -----------------------------------------------------------------------------


def adapter_class_for(kind: str) -> type | None:
    """The adapter class for a kind, or None for kinds without a provider (voice, in person)."""
    try:
        return registry.adapter_class(kind)
    except KeyError:
        return None


def config_class_for(kind: str) -> type[AdapterConfig] | None:
    adapter = adapter_class_for(kind)
    return getattr(adapter, "config_class", None) if adapter is not None else None


def _secret_names(kind: str, data: dict[str, Any]) -> set[str]:
    config_class = config_class_for(kind)
    if config_class is not None:
        return set(config_class.secrets)
    return {name for name in data if any(word in name.lower() for word in _SECRET_WORDS)}


# --- secrets at rest ----------------------------------------------------------------------


def _derive(material: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cxplatform.channels_app", info=b"inbox-secrets")
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(material.encode("utf-8"))))


def _fernet() -> MultiFernet:
    return _fernet_for(str(getattr(settings, "FIELD_ENCRYPTION_KEY", "") or ""), settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _fernet_for(explicit: str, secret_key: str) -> MultiFernet:
    """Key derivation is deliberate CPU work: done once per key pair, not per webhook."""
    keys = [_derive(explicit)] if explicit else []
    keys.append(_derive(secret_key))
    return MultiFernet(keys)


def secrets_encrypt(values: dict[str, Any]) -> str:
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode("utf-8")).decode("ascii")


def secrets_decrypt(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode("ascii")))
    except InvalidToken:
        logger.error("Inbox secrets cannot be decrypted: SECRET_KEY/FIELD_ENCRYPTION_KEY changed?")
        raise


def inbox_settings(*, inbox: Inbox) -> dict[str, Any]:
    """The inbox's full provider settings (config + decrypted secrets)."""
    return {**inbox.config, **secrets_decrypt(inbox.secrets_encrypted)}


def inbox_adapter_config(*, inbox: Inbox) -> AdapterConfig | None:
    config_class = config_class_for(inbox.kind)
    if config_class is None:
        return None
    return config_class.from_dict(inbox_settings(inbox=inbox))


def inbox_adapter(*, inbox: Inbox) -> Any | None:
    """A ready adapter for this inbox, or None for kinds without a provider (voice, in person)."""
    adapter_class = adapter_class_for(inbox.kind)
    if adapter_class is None:
        return None
    return adapter_class(inbox_adapter_config(inbox=inbox))


# --- the webhook endpoint's inbox cache ------------------------------------------------------

WEBHOOK_INBOX_CACHE_SECONDS = 5.0
_receivers: dict[tuple[str, str], tuple[float, Inbox, Any]] = {}
_receivers_lock = threading.Lock()


def webhook_receiver(*, kind: str, inbox_uuid: str) -> tuple[Inbox | None, Any | None]:
    """(inbox, adapter) for a provider delivery; (None, None) for an unknown or switched-off
    inbox. Kept per process for WEBHOOK_INBOX_CACHE_SECONDS: the lookup and the decryption of
    the inbox's secrets were a third of an acknowledgement's cost. Saving or deleting an inbox
    clears this process's cache at once (`inbox_receivers_forget`); other processes see the
    change within the TTL — a rotated app secret may be refused (403, the provider retries)
    for those seconds. Adapter errors (broken settings) are raised, never cached."""
    from channels_app import selectors

    key = (kind, str(inbox_uuid))
    now = time.monotonic()
    cached = _receivers.get(key)
    if cached is not None and cached[0] > now:
        return cached[1], cached[2]
    inbox = selectors.inbox_for_webhook(kind=kind, inbox_uuid=inbox_uuid)
    if inbox is None:
        return None, None
    adapter = inbox_adapter(inbox=inbox)
    ttl = float(getattr(settings, "WEBHOOK_INBOX_CACHE_SECONDS", WEBHOOK_INBOX_CACHE_SECONDS))
    if ttl > 0:
        with _receivers_lock:
            if len(_receivers) > 1000:
                _receivers.clear()
            _receivers[key] = (now + ttl, inbox, adapter)
    return inbox, adapter


def inbox_receivers_forget(**_kwargs: Any) -> None:
    """Signal receiver: an inbox was saved or deleted."""
    with _receivers_lock:
        _receivers.clear()


def inbox_config_redacted(*, inbox: Inbox) -> dict[str, Any]:
    """What may be shown back: non-secret settings in full, secrets as their last 4 characters."""
    values = inbox_settings(inbox=inbox)
    secret_names = _secret_names(inbox.kind, values)
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in secret_names and value:
            text = str(value)
            out[name] = REDACTED_PREFIX + text[-4:] if len(text) > 8 else REDACTED_PREFIX
        else:
            out[name] = value
    return out


def _validated_split(kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate through the adapter's config dataclass; return (config, secrets)."""
    if not isinstance(values, dict):
        raise InboxConfigError({"config": ["Settings must be a JSON object."]})
    config_class = config_class_for(kind)
    if config_class is not None:
        try:
            parsed = config_class.from_dict(values)
        except ConfigError as exc:
            raise InboxConfigError({"config": [str(exc)]}) from None
        except TypeError as exc:  # a required dataclass field is missing
            missing = str(exc).split("argument", 1)[-1].strip(": ")
            raise InboxConfigError({"config": [f"missing required setting(s): {missing}"]}) from None
        values = {f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)}
        secret_names = set(config_class.secrets)
    else:
        secret_names = _secret_names(kind, values)
        for name, value in values.items():
            if not isinstance(value, (str, int, float, bool, list, type(None))):
                raise InboxConfigError({"config": [f"{name} must be a string, number, boolean or list"]})
    config = {k: v for k, v in values.items() if k not in secret_names}
    secrets = {k: v for k, v in values.items() if k in secret_names and v not in ("", None)}
    return config, secrets


@transaction.atomic
def inbox_create(
    *,
    name: str,
    kind: str,
    config: dict[str, Any] | None = None,
    default_team: Team | None = None,
    is_active: bool = True,
) -> Inbox:
    """Create an inbox; its settings are validated by the adapter config and secrets encrypted."""
    if kind not in InboxKind.values:
        raise InboxConfigError({"kind": [f"“{kind}” is not a channel kind."]})
    plain, secrets = _validated_split(kind, dict(config or {}))
    inbox = Inbox(name=name, kind=kind, config=plain, default_team=default_team, is_active=is_active)
    inbox.secrets_encrypted = secrets_encrypt(secrets)
    inbox.full_clean()
    inbox.save()
    return inbox


_UNSET: Any = object()


def _merged_settings(inbox: Inbox, config: dict[str, Any]) -> dict[str, Any]:
    current = inbox_settings(inbox=inbox)
    secret_names = _secret_names(inbox.kind, {**current, **config})
    merged = dict(current)
    for key, value in config.items():
        if key in secret_names and (value in ("", None) or str(value).startswith(REDACTED_PREFIX)):
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def inbox_config_check(*, kind: str, config: dict[str, Any], inbox: Inbox | None = None) -> None:
    """Validate settings without saving (forms call it); raises InboxConfigError."""
    _validated_split(kind, _merged_settings(inbox, config) if inbox is not None else dict(config))


@transaction.atomic
def inbox_update(
    *,
    inbox: Inbox,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    default_team: Team | None = _UNSET,
    is_active: bool | None = None,
) -> Inbox:
    """Change an inbox. `config` is merged into the current settings: a secret omitted, empty
    or sent back in its redacted form ("…abcd") keeps its stored value; null removes a field."""
    inbox = Inbox.objects.select_for_update().get(pk=inbox.pk)
    if config is not None:
        plain, secrets = _validated_split(inbox.kind, _merged_settings(inbox, config))
        inbox.config = plain
        inbox.secrets_encrypted = secrets_encrypt(secrets)
    if name is not None:
        inbox.name = name
    if default_team is not _UNSET:
        inbox.default_team = default_team
    if is_active is not None:
        inbox.is_active = is_active
    inbox.full_clean()
    inbox.save()
    return inbox
