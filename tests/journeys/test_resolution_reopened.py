"""ConversationResolution.reopened, kept by database triggers (journeys/migrations/0010): it
always equals "the conversation's current resolution is not this one", whoever writes the
conversation or the resolution, and the KPI report reads it instead of joining conversations."""
from __future__ import annotations

import pytest
from django.db import connection

from channels_app.models import Conversation, ConversationStatus
from channels_app.services.conversations import conversation_status_set
from journeys import kpis, services
from journeys.models import ConversationResolution
from tests.journeys import factories as f
from tests.journeys.factories import at

pytestmark = pytest.mark.django_db

TRIGGERS = {
    "postgresql": {"journeys_resolution_reopened", "journeys_conversation_reopened"},
    "sqlite": {"journeys_resolution_reopened_insert", "journeys_resolution_reopened_update",
               "journeys_conversation_reopened"},
}


def _installed_triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {name for (name,) in cursor.fetchall()}


def _flags() -> dict[tuple[int, object], bool]:
    return dict(((pk, when), flag) for pk, when, flag in
                ConversationResolution.objects.values_list("conversation_id", "resolved_at", "reopened"))


def _live() -> dict[tuple[int, object], bool]:
    """The definition, computed the slow way (what the report used to join)."""
    current = dict(Conversation.objects.values_list("pk", "resolved_at"))
    return {(pk, when): current.get(pk) != when for pk, when in _flags()}


def _log(conv: Conversation, when) -> ConversationResolution:
    return ConversationResolution.objects.create(conversation=conv, resolved_at=when, cycle_started_at=conv.created_at)


def test_the_triggers_are_installed():
    """A later migration that rebuilds either table on SQLite drops its triggers: this fails then."""
    assert TRIGGERS[connection.vendor] <= _installed_triggers()


def test_a_resolution_is_not_reopened_until_its_conversation_is():
    conv = f.conversation(inbox_=f.inbox())
    f.resolve(conv, at(60))
    cycle = _log(conv, at(60))
    cycle.refresh_from_db()
    assert cycle.reopened is False
    f.reopen(conv)  # queryset update(), no signals
    assert _flags() == {(conv.pk, at(60)): True}
    f.resolve(conv, at(120))
    _log(conv, at(120))
    assert _flags() == {(conv.pk, at(60)): True, (conv.pk, at(120)): False}
    assert _flags() == _live()


def test_a_resolution_logged_after_its_conversation_was_reopened_is_reopened():
    conv = f.conversation(inbox_=f.inbox())
    _log(conv, at(60))  # the conversation is open: the sync ran late
    assert _flags() == {(conv.pk, at(60)): True}


def test_the_agent_resolving_and_reopening_through_the_service(make_user):
    agent = make_user()
    conv = f.conversation(inbox_=f.inbox(), assignee=agent)
    conversation_status_set(conversation=conv, status=ConversationStatus.RESOLVED, actor=agent)
    services.resolutions_sync()
    assert list(_flags().values()) == [False]
    conversation_status_set(conversation=Conversation.objects.get(pk=conv.pk), status=ConversationStatus.OPEN, actor=agent)
    assert list(_flags().values()) == [True]
    assert _flags() == _live()


def test_moving_a_resolution_or_changing_its_time_rereads_the_conversation():
    inbox = f.inbox()
    first, second = f.conversation(inbox_=inbox), f.conversation(inbox_=inbox)
    f.resolve(first, at(60))
    f.resolve(second, at(90))
    cycle = _log(first, at(60))
    ConversationResolution.objects.filter(pk=cycle.pk).update(conversation=second)
    assert _flags() == {(second.pk, at(60)): True}
    ConversationResolution.objects.filter(pk=cycle.pk).update(resolved_at=at(90))
    assert _flags() == {(second.pk, at(90)): False}


def test_raw_sql_and_other_conversations_leave_unrelated_flags_alone():
    inbox = f.inbox()
    kept, other = f.conversation(inbox_=inbox), f.conversation(inbox_=inbox)
    for conv in (kept, other):
        f.resolve(conv, at(60))
        _log(conv, at(60))
    table = connection.ops.quote_name(Conversation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET resolved_at = NULL, status = 'open' WHERE id = %s", [other.pk])
    assert _flags() == {(kept.pk, at(60)): False, (other.pk, at(60)): True}
    Conversation.objects.filter(pk=other.pk).update(status="resolved", resolved_at=at(60))  # restored
    assert set(_flags().values()) == {False}


def test_the_report_counts_the_flag():
    conv = f.conversation(inbox_=f.inbox())
    f.message(conv, when=at(1))
    f.resolve(conv, at(60))
    _log(conv, at(60))
    window = kpis.period_from_query({"from": "2026-03-01", "to": "2026-03-31"})
    assert kpis.service_report(window=window, now=at(0, days=30))["summary"]["reopened"] == 0
    f.reopen(conv)
    summary = kpis.service_report(window=window, now=at(0, days=30))["summary"]
    assert (summary["resolutions"], summary["reopened"]) == (1, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locking to race")
def test_a_resolution_logged_while_its_conversation_is_being_reopened():
    """The reopen's trigger cannot see the uncommitted resolution; the resolution's trigger
    must therefore wait for the reopen and read the conversation after it."""
    import threading

    from django.db import connections, transaction

    conv = f.conversation(inbox_=f.inbox())
    f.resolve(conv, at(60))
    reopened, logged = threading.Event(), threading.Event()
    errors = []

    def reopen():
        try:
            with transaction.atomic():
                f.reopen(conv)
                reopened.set()
                logged.wait(timeout=1)  # the log's INSERT waits for this commit
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def log():
        try:
            reopened.wait(timeout=10)
            _log(conv, at(60))
            logged.set()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reopen), threading.Thread(target=log)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert _flags() == {(conv.pk, at(60)): True} == _live()
