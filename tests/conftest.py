from __future__ import annotations

from pathlib import Path

import pytest

from accounts.models import Role
from accounts.services import roles_sync

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "channels"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and lockouts live in the cache (Redis when REDIS_URL is set): start clean."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def shared_fixture():
    """Read a third-party payload from ../shared/fixtures/channels (never copied into the repo)."""

    def read(name: str) -> bytes:
        path = SHARED_FIXTURES / name
        if not path.exists():
            pytest.skip(f"{path} is not available: ../shared/fixtures/channels is outside this checkout")
        return path.read_bytes()

    return read


@pytest.fixture
def roles(db):
    return roles_sync()


@pytest.fixture
def make_user(db, roles):
    from tests.accounts.factories import UserFactory

    def make(role: str = Role.AGENT, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def agent(make_user):
    return make_user(Role.AGENT, email="agent@example.com")


@pytest.fixture
def supervisor(make_user):
    return make_user(Role.SUPERVISOR, email="supervisor@example.com")


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.ADMIN, email="admin@example.com")
