"""cxplatform/gc_tuning.py: the server processes move their start-up objects out of the
collector's way (the live-push p99 spikes were full collections walking them)."""
from __future__ import annotations

import gc

import pytest
from celery.signals import worker_process_init

from cxplatform.gc_tuning import freeze_startup_objects


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_start_up_objects_are_frozen(unfrozen):
    assert gc.get_freeze_count() == 0
    assert freeze_startup_objects() is True
    assert gc.get_freeze_count() > 10_000  # Django, the URL configuration and every view module


def test_it_can_be_switched_off(unfrozen, monkeypatch):
    monkeypatch.setenv("CX_GC_FREEZE", "false")
    assert freeze_startup_objects() is False
    assert gc.get_freeze_count() == 0


def test_every_server_process_freezes():
    import cxplatform.asgi  # noqa: F401  (daphne)
    import cxplatform.celery
    import cxplatform.wsgi  # noqa: F401  (gunicorn)

    receivers = [ref() if callable(ref) else ref for _key, ref in worker_process_init.receivers]
    assert cxplatform.celery._freeze_startup_objects in receivers
    for module in ("cxplatform/wsgi.py", "cxplatform/asgi.py"):
        with open(module) as source:
            assert "freeze_startup_objects()" in source.read()
