from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from cxplatform import env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: env.env_bool("DEBUG", environ=e), "DEBUG='maybe' is not a boolean"),
        (lambda e: env.env_time_zone("TIME_ZONE", "Asia/Jakarta", environ=e), "TIME_ZONE='Mars/Base'"),
        (lambda e: env.env_region("PHONE_DEFAULT_REGION", "ID", environ=e), "PHONE_DEFAULT_REGION='XX'"),
        (lambda e: env.env_language("LANGUAGE_CODE", "en", ["en", "id"], environ=e), "LANGUAGE_CODE='fr'"),
        (lambda e: env.env_int("EMAIL_PORT", 25, minimum=1, environ=e), "EMAIL_PORT='twenty'"),
        (lambda e: env.env_networks("OUTBOUND_ALLOWED_NETWORKS", environ=e), "not a CIDR network"),
        (lambda e: env.env_url("REDIS_URL", schemes=("redis",), environ=e), "REDIS_URL must be a URL"),
    ],
)
def test_bad_values_raise_a_clear_error_naming_the_variable(call, message):
    bad = {
        "DEBUG": "maybe", "TIME_ZONE": "Mars/Base", "PHONE_DEFAULT_REGION": "XX", "LANGUAGE_CODE": "fr",
        "EMAIL_PORT": "twenty", "OUTBOUND_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-net", "REDIS_URL": "http://x",
    }
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(").replace("'", "'")):
        call(bad)


def test_good_values_are_parsed():
    e = {"DEBUG": "yes", "PHONE_DEFAULT_REGION": "sg", "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8, ::1/128", "ALLOWED_HOSTS": "a.example, b.example"}

    assert env.env_bool("DEBUG", environ=e) is True
    assert env.env_region("PHONE_DEFAULT_REGION", "ID", environ=e) == "SG"
    assert [str(n) for n in env.env_networks("OUTBOUND_ALLOWED_NETWORKS", environ=e)] == ["127.0.0.0/8", "::1/128"]
    assert env.env_list("ALLOWED_HOSTS", environ=e) == ["a.example", "b.example"]
    assert env.env_time_zone("TIME_ZONE", "Asia/Jakarta", environ={}) == "Asia/Jakarta"


def test_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")

    assert env.env_str("SECRET_KEY", environ={"SECRET_KEY_FILE": str(secret_file)}) == "from-a-file"


def test_database_url_selects_postgresql_with_a_pool_under_asgi():
    config = env.database_from_url("postgres://cx:pw@db.internal:5432/cx", base_dir=ROOT, pool=True)

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "cx"
    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"]["pool"]["max_size"] == 20


def test_postgresql_connections_turn_jit_off_unless_asked(monkeypatch):
    monkeypatch.delenv("DATABASE_JIT", raising=False)
    config = env.database_from_url("postgres://cx:pw@db.internal:5432/cx", base_dir=ROOT, pool=True)
    assert config["OPTIONS"]["options"] == "-c jit=off"

    kept = env.database_from_url("postgres://cx:pw@db/cx?options=-c%20statement_timeout%3D5000", base_dir=ROOT,
                                 pool=False)
    assert kept["OPTIONS"]["options"] == "-c statement_timeout=5000 -c jit=off"

    monkeypatch.setenv("DATABASE_JIT", "true")
    assert "options" not in env.database_from_url("postgres://cx:pw@db/cx", base_dir=ROOT, pool=True)["OPTIONS"]


def test_database_url_rejects_other_engines():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must be a postgres"):
        env.database_from_url("mysql://x@y/z", base_dir=ROOT, pool=False)


def _production_env(**overrides) -> dict:
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "cxplatform.settings.production",
        "SECRET_KEY": "k3y-" + "x7Qz9" * 12,
        "ALLOWED_HOSTS": "cx.example.com",
        "DATABASE_URL": "postgres://cx:pw@127.0.0.1:5432/cx",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    base.update(overrides)
    return base


def test_production_settings_pass_check_deploy_with_zero_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=_production_env(SECRET_KEY=""), capture_output=True, text=True, timeout=120,
    )

    assert result.returncode != 0
    assert "Set the environment variable SECRET_KEY." in result.stderr
