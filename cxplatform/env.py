"""Reading deploy-time settings from the environment.

Every value that changes between machines comes through here, so a wrong value fails at
start-up with an `ImproperlyConfigured` that names the variable, instead of as a confusing
error deep inside a request.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import zoneinfo
from pathlib import Path
from urllib.parse import urlparse

import phonenumbers
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: dict | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        file_path = env.get(f"{name}_FILE")
        if file_path:
            try:
                value = Path(file_path).read_text().strip()
            except OSError as exc:
                raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return value


def env_str(name: str, default: str | None = None, *, required: bool = False, environ=None) -> str | None:
    value = _raw(name, environ)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default
    return value


def env_bool(name: str, default: bool = False, *, environ=None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true/false, 1/0, yes/no.")


def env_int(name: str, default: int, *, minimum: int | None = None, environ=None) -> int:
    value = _raw(name, environ)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str] | None = None, *, environ=None) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_time_zone(name: str, default: str, *, environ=None) -> str:
    value = env_str(name, default, environ=environ)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an IANA time zone such as Asia/Jakarta.") from exc
    return value


def env_language(name: str, default: str, choices: list[str], *, environ=None) -> str:
    value = env_str(name, default, environ=environ)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of the supported languages: {', '.join(choices)}.")
    return value


def env_region(name: str, default: str, *, environ=None) -> str:
    value = (env_str(name, default, environ=environ) or "").upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(f"{name}={value!r} is not a phone region code such as ID or SG.")
    return value


def env_networks(name: str, *, environ=None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, environ=environ):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} contains {item!r}, which is not a CIDR network.") from exc
    return networks


def env_url(name: str, default: str | None = None, *, schemes: tuple[str, ...], environ=None) -> str | None:
    value = env_str(name, default, environ=environ)
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        raise ImproperlyConfigured(f"{name} must be a URL starting with one of {', '.join(s + '://' for s in schemes)}.")
    return value


def database_from_url(url: str | None, *, base_dir: Path, pool: bool) -> dict:
    """PostgreSQL from DATABASE_URL, or the embedded SQLite file when it is unset."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": base_dir / "var" / "cxplatform.sqlite3",
            # Several processes (web, worker, beat) share the file: WAL lets readers run
            # beside one writer and IMMEDIATE transactions make writers queue, not fail.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    import dj_database_url

    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "sqlite"}:
        raise ImproperlyConfigured("DATABASE_URL must be a postgres:// (or sqlite://) URL.")
    try:
        config = dj_database_url.parse(url)
    except Exception as exc:  # dj_database_url raises several types on garbage
        raise ImproperlyConfigured(f"DATABASE_URL cannot be parsed: {exc}") from exc
    if config["ENGINE"].endswith("postgresql"):
        config.setdefault("OPTIONS", {})
        config["CONN_HEALTH_CHECKS"] = True
        if not env_bool("DATABASE_JIT", False) and "jit=" not in config["OPTIONS"].get("options", ""):
            # PostgreSQL's JIT compiles any query whose cost estimate passes jit_above_cost; the
            # inbox's unread counters over 14k open conversations spent 11.8 of their 22 ms
            # compiling (EXPLAIN ANALYZE, docs/performance.md). Short OLTP queries never win it
            # back. DATABASE_JIT=true keeps the server's setting (e.g. behind a pgbouncer that
            # refuses the `options` startup parameter).
            config["OPTIONS"]["options"] = (config["OPTIONS"].get("options", "") + " -c jit=off").strip()
        if pool:
            # Under ASGI every sync view runs in a fresh thread, so persistent connections
            # are not reused: a pool is the only way not to connect per request.
            config["CONN_MAX_AGE"] = 0
            config["OPTIONS"]["pool"] = {"min_size": 2, "max_size": 20, "timeout": 10}
        else:
            config["CONN_MAX_AGE"] = 60
    return config


def secret_key_for_checkout(base_dir: Path) -> str:
    """A per-checkout secret for the embedded default, kept out of the repository."""
    path = base_dir / "var" / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key
