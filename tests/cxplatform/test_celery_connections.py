"""Celery tasks keep their database connection between tasks (CELERY_DB_REUSE_MAX) and get
Django's request lifecycle around each one (cxplatform/celery.py).

Measured before the change: Celery's Django fixup closed the connection before and after
every task, so each task connected to PostgreSQL anew (923 new server sessions in one reply
benchmark run of ~300 replies; docs/performance.md, eighth session)."""
from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.conf import settings

from cxplatform import celery as celery_module
from cxplatform.celery import app


class _Task:
    """What the signals send as `sender`: a task whose request says whether it runs eagerly."""

    def __init__(self, *, eager: bool) -> None:
        self.request = SimpleNamespace(is_eager=eager)


def _task(*, eager: bool) -> _Task:
    return _Task(eager=eager)


def _run_tasks(fixup: DjangoWorkerFixup, count: int) -> None:
    for _ in range(count):
        fixup.on_task_prerun(sender=_task(eager=False))
        fixup.on_task_postrun(sender=_task(eager=False))


def _fixup_with_one_connection() -> tuple[DjangoWorkerFixup, mock.Mock]:
    fixup = DjangoWorkerFixup(app)
    conn = mock.Mock()
    fixup._db = SimpleNamespace(connections=SimpleNamespace(all=lambda **_kw: [conn]))
    return fixup, conn


def test_the_worker_fixup_reads_the_reuse_setting():
    assert settings.CELERY_DB_REUSE_MAX >= 100
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX


def test_the_worker_fixup_keeps_the_connection_across_tasks():
    fixup, conn = _fixup_with_one_connection()
    _run_tasks(fixup, 50)
    conn.close.assert_not_called()


def test_the_worker_fixup_recycles_the_connection_after_reuse_max_tasks():
    fixup, conn = _fixup_with_one_connection()
    fixup.db_reuse_max = 3  # the fixup counts prerun and postrun: closed as the 4th task starts
    _run_tasks(fixup, 3)
    conn.close.assert_not_called()
    _run_tasks(fixup, 1)
    assert conn.close.call_count == 1


def test_without_the_setting_the_fixup_would_connect_per_task():
    """What the setting prevents: Celery's default closes the connection around every task."""
    fixup, conn = _fixup_with_one_connection()
    fixup.db_reuse_max = None
    _run_tasks(fixup, 5)
    assert conn.close.call_count == 10


@pytest.mark.parametrize("signal_name", ["task_prerun", "task_postrun"])
def test_tasks_get_djangos_request_lifecycle(signal_name):
    """Broken or obsolete (CONN_MAX_AGE) connections are dropped around a worker's task."""
    signal = getattr(celery_module, signal_name)
    assert celery_module._close_old_connections in [ref() for _key, ref in signal.receivers]
    with mock.patch("django.db.close_old_connections") as close_old:
        signal.send(sender=_task(eager=False), task_id="t1", task=None, args=(), kwargs={})
    close_old.assert_called_once_with()


def test_an_eager_task_leaves_the_callers_connection_alone():
    """An eager task runs inside the caller's request or test: its connection is not ours."""
    with mock.patch("django.db.close_old_connections") as close_old:
        celery_module._close_old_connections(sender=_task(eager=True))
        celery_module._close_old_connections(sender=None)
    close_old.assert_not_called()
