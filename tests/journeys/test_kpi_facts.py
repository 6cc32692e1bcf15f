"""The KPI facts (journeys.facts) stay exact as conversations change, and refreshing them
costs a fixed number of queries (docs/metrics.md → Performance)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app.models import Message
from journeys import kpis, services
from journeys.facts import kpi_facts_refresh, kpi_facts_stale
from journeys.models import (
    ChannelSwitch,
    ConversationChannelFact,
    ConversationFact,
    ConversationResolution,
    KpiFactsPending,
)
from tests.journeys import factories as f
from tests.journeys.factories import at
from tests.journeys.test_kpis import MARCH, service_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

LATER = at(0, days=30)


def _summary():
    return kpis.service_report(window=MARCH, now=LATER)["summary"]


def _queries(callable_) -> int:
    with CaptureQueriesContext(connection) as captured:
        callable_()
    return len(captured)


def _snapshot() -> dict[str, list]:
    return {
        "conversations": sorted(ConversationFact.objects.values_list(
            "conversation_id", "first_in", "first_in_inbox_id", "first_in_channel", "first_reply", "first_reply_agent_id",
            "reply_wait_from", "last_in", "wrote_after_reply")),
        "channels": sorted(ConversationChannelFact.objects.values_list(
            "conversation_id", "channel", "first_at", "last_at", "inbound", "outbound")),
        "switches": sorted(ChannelSwitch.objects.values_list("message_id", "conversation_id", "at", "previous_at")),
        "cycles": sorted(ConversationResolution.objects.values_list(
            "id", "agent_replies", "reply_author_id", "next_cycle_start", "next_customer_message")),
    }


def _assert_same_as_a_full_build() -> None:
    kpi_facts_refresh()
    incremental = _snapshot()
    kpi_facts_refresh(full=True)
    assert incremental == _snapshot()


def test_a_refresh_with_nothing_new_is_one_query(service_fixture):  # noqa: F811
    kpi_facts_refresh()
    assert not kpi_facts_stale()
    assert _queries(kpi_facts_refresh) == 1


def test_an_incremental_refresh_costs_the_same_whatever_the_volume(service_fixture):  # noqa: F811
    kpi_facts_refresh()

    def add(n: int) -> int:
        for i in range(n):
            conv = f.conversation(inbox_=service_fixture["wa"], created_at=at(i, days=3))
            f.message(conv, when=at(i, days=3))
            f.message(conv, when=at(i + 5, days=3), inbound=False, author=service_fixture["alice"])
            f.resolve(conv, at(i + 30, days=3))
        services.resolutions_sync()
        return _queries(kpi_facts_refresh)

    assert add(1) == add(20)
    _assert_same_as_a_full_build()


def test_a_late_message_with_an_older_timestamp_moves_the_first_response(service_fixture):  # noqa: F811
    assert _summary()["first_response"]["median_seconds"] == 1200.0
    c4 = ConversationFact.objects.get(first_in=at(0, days=1)).conversation
    # A customer message delivered late: it was written 60 min before the one we knew.
    f.message(c4, when=at(-60, days=1))
    summary = _summary()
    # conv 4's first response is now 100 min (6000 s): values 600, 1200, 6000.
    assert summary["first_response"] == {"count": 3, "median_seconds": 1200.0, "p90_seconds": 6000.0}
    assert ConversationFact.objects.get(conversation=c4).first_in == at(-60, days=1)
    _assert_same_as_a_full_build()


def test_a_new_reply_answers_a_conversation_at_the_next_report(service_fixture):  # noqa: F811
    assert _summary()["unanswered"] == 1
    c3 = ConversationFact.objects.get(first_reply__isnull=True).conversation
    f.message(c3, when=at(45), inbound=False, author=service_fixture["alice"])
    summary = _summary()
    assert summary["unanswered"] == 0
    assert summary["first_response"]["count"] == 4
    _assert_same_as_a_full_build()


def test_a_reopen_and_a_second_resolution_update_the_first_cycle(service_fixture):  # noqa: F811
    before = _summary()
    assert (before["resolutions"], before["reopened"], before["fcr"]["resolved_first_contact"]) == (4, 1, 2)
    c2 = ConversationFact.objects.get(first_in=at(5)).conversation
    f.reopen(c2)
    # Reopened by hand: no message, no resolution; the report still sees it (the reopen trigger).
    assert _summary()["reopened"] == 2
    f.message(c2, when=at(300))
    f.message(c2, when=at(310), inbound=False, author=service_fixture["bob"])
    f.resolve(c2, at(330))
    services.resolutions_sync()
    after = _summary()
    assert (after["resolutions"], after["reopened"]) == (5, 2)
    # conv 2 was reopened 55 min after its first resolution: no longer a first contact resolution.
    assert after["fcr"]["resolved_first_contact"] == 1
    first = ConversationResolution.objects.get(conversation=c2, resolved_at=at(245))
    assert (first.next_cycle_start, first.next_customer_message) == (at(300), at(300))
    _assert_same_as_a_full_build()


def test_a_deleted_reply_is_noticed(service_fixture):  # noqa: F811
    assert _summary()["unanswered"] == 1
    Message.objects.get(created_at=at(25)).delete()  # Bob's reply in conv 2
    assert KpiFactsPending.objects.filter(kind="conversation").count() == 1
    assert _summary()["unanswered"] == 2
    assert not KpiFactsPending.objects.filter(kind="conversation").exists()
    _assert_same_as_a_full_build()


def test_an_id_that_commits_after_the_watermark_passed_it_is_still_seen(service_fixture):  # noqa: F811
    kpi_facts_refresh()
    newest = Message.objects.order_by("-id").values_list("id", flat=True).first()
    conv = f.conversation(inbox_=service_fixture["wa"], created_at=at(0, days=4))
    # Message newest+3 commits first; newest+1 was handed out earlier but commits later.
    Message.objects.create(id=newest + 3, conversation=conv, inbox=service_fixture["wa"], direction="inbound",
                           sender="customer", created_at=at(0, days=4))
    assert _summary()["conversations"] == 5
    assert set(KpiFactsPending.objects.filter(kind=KpiFactsPending.Kind.MESSAGE_GAP, ref_id__gt=newest).values_list("ref_id", flat=True)) == {newest + 1, newest + 2}
    other = f.conversation(inbox_=service_fixture["email"], created_at=at(0, days=5))
    Message.objects.create(id=newest + 1, conversation=other, inbox=service_fixture["email"], direction="inbound",
                           sender="customer", created_at=at(0, days=5))
    assert _summary()["conversations"] == 6
    assert set(KpiFactsPending.objects.filter(kind=KpiFactsPending.Kind.MESSAGE_GAP, ref_id__gt=newest).values_list("ref_id", flat=True)) == {newest + 2}
    _assert_same_as_a_full_build()


def test_the_periodic_sync_refreshes_the_facts(service_fixture):  # noqa: F811
    result = services.journeys_sync()
    assert result["kpi_facts"] != 0
    assert not kpi_facts_stale()


def test_the_command_builds_the_facts_of_an_existing_database(service_fixture):  # noqa: F811
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("journeys_facts_refresh", "--full", stdout=out)
    assert "all conversations" in out.getvalue()
    assert ConversationFact.objects.count() == 4
    assert not kpi_facts_stale()


def test_a_hole_that_never_fills_is_forgotten_after_a_while(service_fixture):  # noqa: F811
    kpi_facts_refresh()
    newest = Message.objects.order_by("-id").values_list("id", flat=True).first()
    conv = f.conversation(inbox_=service_fixture["wa"], created_at=at(0, days=4))
    Message.objects.create(id=newest + 2, conversation=conv, inbox=service_fixture["wa"], direction="inbound",
                           sender="customer", created_at=at(0, days=4))
    kpi_facts_refresh()
    assert KpiFactsPending.objects.filter(ref_id=newest + 1).exists()  # rolled back, say
    KpiFactsPending.objects.update(noted_at=at(0))
    f.message(conv, when=at(5, days=4))
    kpi_facts_refresh()
    assert not KpiFactsPending.objects.filter(ref_id__lte=newest + 1).exists()
