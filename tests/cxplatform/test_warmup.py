"""cxplatform/warmup.py: a process does its first request's one-off work before taking
traffic, and a server that is down at start-up does not stop it from starting."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from django.urls import get_resolver

from cxplatform import warmup
from cxplatform.celery import app


def test_warm_imports_loads_the_urlconf_and_the_task_registry():
    resolver = get_resolver()
    resolver.__dict__.pop("url_patterns", None)  # as in a fresh process
    assert "url_patterns" not in resolver.__dict__

    seconds = warmup.warm_imports()

    assert seconds >= 0
    assert "url_patterns" in resolver.__dict__  # cached: the first request will not import them
    assert app.finalized
    assert "channels_app.tasks.webhook_events_drain_task" in app.tasks


@pytest.mark.django_db
def test_warm_connections_opens_the_database_connection():
    from django.db import connection

    connection.close()
    warmup.warm_connections()
    assert connection.connection is not None


@pytest.mark.django_db
def test_a_server_down_at_start_up_is_logged_not_raised(caplog):
    with mock.patch("django.core.cache.cache.get", side_effect=ConnectionError("refused")), \
            mock.patch.object(warmup, "_broker_connect", side_effect=OSError("refused")), \
            caplog.at_level(logging.WARNING, logger="cxplatform.warmup"):
        warmup.warm_connections()
    messages = [record.getMessage() for record in caplog.records]
    assert any("could not reach the cache (ConnectionError)" in m for m in messages)
    assert any("could not reach the broker (OSError)" in m for m in messages)


def test_gunicorn_warms_each_worker_after_loading_the_app():
    path = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    worker = SimpleNamespace(pid=4242, log=mock.Mock())
    with mock.patch("cxplatform.warmup.warm_connections", return_value=0.067) as warm:
        conf.post_worker_init(worker)
    warm.assert_called_once_with()
    worker.log.info.assert_called_once()
    assert "4242" in worker.log.info.call_args.args[0] % worker.log.info.call_args.args[1:]
