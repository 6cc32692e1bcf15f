"""First attempts at sending replies go out in batches: one drain task per burst of replies
(services/drains.py), claiming with SKIP LOCKED, recording the sent ones together. Retries stay
one task per message, with backoff."""
from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.adapters.base import DeliveryResult
from channels_app.models import Conversation, LiveEvent, Message
from channels_app.services import message_create_outbound
from channels_app.services.drains import Drain
from channels_app.services.messages import (
    DELIVER_DRAIN,
    messages_deliver_batch,
    messages_deliver_drain,
    messages_sent,
)
from tests.channels_app.adapters.test_email import smtp_server  # noqa: F401  (fixture)
from tests.channels_app.test_services_conversations import WA_ID, now_ts
from tests.channels_app.test_webhooks import post_whatsapp, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db


def _conversation(client, provider_server, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    return wa, Conversation.objects.select_related("customer").get()


def _queued(conversation, inbox, content="Pesanan sudah dikirim", **data):
    return Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                                  content=content, status="queued", data={"to": WA_ID, **data})


def test_a_burst_of_replies_queues_one_drain_and_the_drain_sends_them_all(
    client, agent, provider_server, django_capture_on_commit_callbacks, monkeypatch
):
    from channels_app import tasks

    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    published: list[int] = []
    monkeypatch.setattr(tasks.messages_deliver_drain_task, "delay", lambda: published.append(1))
    replies = []
    for text in ("Halo", "Pesanan diproses", "Terima kasih"):
        with django_capture_on_commit_callbacks(execute=True):
            replies.append(message_create_outbound(conversation=conversation, author=agent, content=text))
    assert published == [1]  # one publish for the burst, not one per reply
    for n in range(3):
        provider_server.respond(200, json_body={"messages": [{"id": f"wamid.B{n}"}]})

    assert messages_deliver_drain() == 3

    assert [(m.status, m.provider_message_id) for m in Message.objects.filter(pk__in=[r.pk for r in replies])
            .order_by("pk")] == [("sent", "wamid.B0"), ("sent", "wamid.B1"), ("sent", "wamid.B2")]
    assert [r.json()["text"]["body"] for r in provider_server.requests] == ["Halo", "Pesanan diproses", "Terima kasih"]
    assert cache.get(DELIVER_DRAIN.wake_key) is None  # drained: the next reply queues a new drain
    with django_capture_on_commit_callbacks(execute=True):
        message_create_outbound(conversation=conversation, author=agent, content="Ada lagi?")
    assert published == [1, 1]


def test_a_batch_costs_the_same_statements_for_one_reply_or_four(client, provider_server,
                                                                  django_capture_on_commit_callbacks):
    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    counts = []
    for size in (1, 4):
        for n in range(size):
            _queued(conversation, wa, content=f"reply {n}")
            provider_server.respond(200, json_body={"messages": [{"id": f"wamid.S{size}-{n}"}]})
        with CaptureQueriesContext(connection) as queries:
            assert messages_deliver_batch(10) == size
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
    assert Message.objects.filter(status="sent", direction="outbound").count() == 5
    customer = conversation.customer
    customer.refresh_from_db()
    assert customer.last_contacted_at is not None
    assert LiveEvent.objects.filter(event="channels.message.updated").count() == 5


def test_the_batch_leaves_alone_what_is_claimed_retrying_or_not_queued(client, provider_server,
                                                                       django_capture_on_commit_callbacks):
    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    in_flight = _queued(conversation, wa, sending_since=timezone.now().isoformat())
    retrying = _queued(conversation, wa, attempts=1, last_attempt_at=timezone.now().isoformat())
    failed = Message.objects.create(conversation=conversation, inbox=wa, direction="outbound", sender="agent",
                                    content="x", status="failed", data={"to": WA_ID})
    fresh = _queued(conversation, wa)
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.FRESH"}]})

    assert messages_deliver_batch(10) == 1

    assert len(provider_server.requests) == 1
    statuses = dict(Message.objects.filter(pk__in=[in_flight.pk, retrying.pk, failed.pk, fresh.pk])
                    .values_list("pk", "status"))
    assert statuses == {in_flight.pk: "queued", retrying.pk: "queued", failed.pk: "failed", fresh.pk: "sent"}


def test_a_failed_send_in_a_batch_is_recorded_and_retried_by_its_own_task(
    client, provider_server, django_capture_on_commit_callbacks, monkeypatch
):
    from channels_app import tasks

    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    first, second, third = _queued(conversation, wa), _queued(conversation, wa), _queued(conversation, wa)
    provider_server.respond(503, json_body={"error": {"message": "Service unavailable", "code": 131016}})
    provider_server.respond(400, json_body={"error": {"message": "Invalid parameter", "code": 100}})
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.OK"}]})
    retries: list[tuple[tuple, int]] = []
    monkeypatch.setattr(tasks.message_deliver_task, "apply_async",
                        lambda args, countdown: retries.append((args, countdown)))

    assert messages_deliver_batch(10) == 3

    assert retries == [((first.pk,), 10)]  # the first backoff step
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, first.data["attempts"], "sending_since" in first.data) == ("queued", 1, False)
    assert first.error_title.startswith("Service unavailable")
    assert (second.status, second.error_code) == ("failed", "100")
    assert (third.status, third.provider_message_id, "sending_since" in third.data) == ("sent", "wamid.OK", False)


def test_recording_sends_never_moves_a_status_back(client, provider_server, django_capture_on_commit_callbacks):
    """A status callback may land between the send and its record: "delivered" stays."""
    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    early = _queued(conversation, wa)
    Message.objects.filter(pk=early.pk).update(status="delivered")
    plain = _queued(conversation, wa)

    rows = messages_sent([(early, DeliveryResult("wamid.E")), (plain, DeliveryResult("wamid.P"))])

    assert [(m.pk, m.status, m.provider_message_id) for m in rows] == [
        (early.pk, "delivered", "wamid.E"), (plain.pk, "sent", "wamid.P")]
    early.refresh_from_db()
    assert early.status == "delivered" and early.sent_at is not None


def test_recording_a_send_keeps_when_a_status_callback_moved_it(client, provider_server,
                                                                 django_capture_on_commit_callbacks):
    """The claimed instance is older than the callback's write: its status time must not win."""
    import datetime as dt

    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    message = _queued(conversation, wa)
    delivered_at = timezone.now() - dt.timedelta(seconds=5)
    Message.objects.filter(pk=message.pk).update(status="delivered", status_changed_at=delivered_at)

    messages_sent([(message, DeliveryResult("wamid.T"))])

    message.refresh_from_db()
    assert (message.status, message.status_changed_at) == ("delivered", delivered_at)


@pytest.mark.skipif(not connection.features.has_select_for_update_skip_locked, reason="SQLite has no row locks")
def test_concurrent_drains_skip_each_others_rows_and_lock_only_messages(client, provider_server,
                                                                         django_capture_on_commit_callbacks):
    wa, conversation = _conversation(client, provider_server, django_capture_on_commit_callbacks)
    _queued(conversation, wa)
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.L"}]})
    with CaptureQueriesContext(connection) as queries:
        messages_deliver_batch(10)
    [claim] = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"] and "SKIP LOCKED" in q["sql"]]
    assert re.search(r'FOR UPDATE OF "channels_app_message" SKIP LOCKED', claim), claim


def test_a_batch_of_email_replies_shares_one_smtp_connection_and_threads_each_reply(smtp_server):  # noqa: F811
    from email import message_from_bytes, policy

    from channels_app.services import inbox_create, message_record
    from tests.channels_app.test_api import _conversation

    inbox = inbox_create(name="Mail", kind="email", config={
        "address": "support@cx.example.com", "inbound_secret": "x" * 24, "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port, "smtp_security": "none"})
    replies = {}
    for n in range(3):
        conversation = _conversation(inbox=inbox)
        for older in ("first", "last"):
            message_record(conversation=conversation, inbox=inbox, direction="inbound", sender="customer",
                           content="halo", provider_message_id=f"{older}-{n}@mail.test",
                           data={"extra": {"subject": f"Pesanan #{n}", "references": [f"root-{n}@mail.test"]}})
        replies[n] = Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound",
                                            sender="agent", content=f"Balasan {n}", status="queued",
                                            data={"to": f"budi{n}@example.co.id"})

    assert messages_deliver_batch(10) == 3

    assert smtp_server.connections == 1
    sent = [message_from_bytes(m["data"], policy=policy.default) for m in smtp_server.messages]
    assert [(mail["To"], mail["Subject"], mail["In-Reply-To"], mail["References"]) for mail in sent] == [
        (f"budi{n}@example.co.id", f"Re: Pesanan #{n}", f"<last-{n}@mail.test>",
         f"<root-{n}@mail.test> <last-{n}@mail.test>") for n in range(3)]
    assert set(Message.objects.filter(pk__in=[r.pk for r in replies.values()]).values_list("status", flat=True)) == {
        "sent"}


# --- the drain protocol itself ----------------------------------------------------------------


class RecordingTask:
    """Stands in for a Celery task's `.delay` in the protocol tests below."""

    calls = 0

    @classmethod
    def delay(cls) -> None:
        cls.calls += 1


PROTOCOL = Drain(wake_key="tests:drain:wake", task="tests.channels_app.test_delivery_drain.RecordingTask")


@pytest.fixture
def recording_task():
    RecordingTask.calls = 0
    cache.delete(PROTOCOL.wake_key)
    return RecordingTask


def test_a_drain_keeps_its_flag_while_it_finds_work_and_clears_it_for_its_last_look(recording_task):
    PROTOCOL.wake()
    PROTOCOL.wake()
    assert recording_task.calls == 1
    seen_flags = []

    def step(size):
        seen_flags.append(cache.get(PROTOCOL.wake_key) is not None)
        return [2, 1, 0, 0][len(seen_flags) - 1]

    assert PROTOCOL.run(step, batch_size=5, limit=100) == 3
    # Partial batches: work kept coming, the flag held. The first empty look cleared it, and one
    # last look (a row committed before the flag went) found nothing either.
    assert seen_flags == [True, True, True, False]
    assert cache.get(PROTOCOL.wake_key) is None and recording_task.calls == 1


def test_a_full_batch_lets_a_second_drain_share_the_backlog_and_the_limit_queues_a_successor(recording_task):
    cache.add(PROTOCOL.wake_key, 1)
    assert PROTOCOL.run(lambda size: size, batch_size=5, limit=20) == 20
    assert recording_task.calls == 1  # the successor


def test_a_drain_that_fails_clears_its_flag_so_the_next_wake_queues_another(recording_task):
    cache.add(PROTOCOL.wake_key, 1)

    def step(size):
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        PROTOCOL.run(step, batch_size=5, limit=20)
    PROTOCOL.wake()
    assert recording_task.calls == 1


def test_a_wake_whose_publish_fails_leaves_no_flag(recording_task, monkeypatch):
    def broker_down():
        raise ConnectionError("broker down")

    monkeypatch.setattr(RecordingTask, "delay", broker_down)
    with pytest.raises(ConnectionError):
        PROTOCOL.wake()
    assert cache.get(PROTOCOL.wake_key) is None


def test_a_lingering_drain_waits_only_after_a_partial_batch(recording_task, monkeypatch):
    from channels_app.services import drains

    waits: list[float] = []
    monkeypatch.setattr(drains.time, "sleep", waits.append)
    cache.add(PROTOCOL.wake_key, 1)
    claims = iter([5, 2, 1, 0, 0])

    assert PROTOCOL.run(lambda size: next(claims), batch_size=5, limit=100, linger=0.05) == 8
    assert waits == [0.05, 0.05]  # after the 2 and the 1; not after the full batch, nor the empty looks


def test_a_lingering_drain_stays_idle_a_while_then_ends(recording_task, monkeypatch):
    """In a trickle the running task takes each row as it comes: after its last work it goes on
    looking every linger, the flag held (an acknowledgement queues no task meanwhile), for
    `idle` seconds; then it ends as before (the flag cleared, one last look)."""
    from channels_app.services import drains

    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)
        assert cache.get(PROTOCOL.wake_key) == 1  # held while idle: no task is queued meanwhile
        clock[0] += seconds

    monkeypatch.setattr(drains.time, "sleep", sleep)
    monkeypatch.setattr(drains.time, "monotonic", lambda: clock[0])
    cache.add(PROTOCOL.wake_key, 1)
    # one row; three empty looks; a row arrives and is taken; then nothing for good
    claims = iter([1, 0, 0, 0, 1] + [0] * 100)

    assert PROTOCOL.run(lambda size: next(claims), batch_size=5, limit=100, linger=0.01, idle=0.035) == 2
    # after each row: the linger, then three idle looks (0.01, 0.02, 0.03 < 0.035); the fourth
    # empty look is past the idle time, clears the flag, and the last look ends the drain
    assert waits == [0.01] * 8
    assert cache.get(PROTOCOL.wake_key) is None
    assert recording_task.calls == 0  # it ended on an empty look: no successor


def test_the_webhook_drain_stays_idle_only_when_it_lingers(monkeypatch, settings):
    from channels_app.services import ingest

    settings.WEBHOOK_DRAIN_IDLE_MS = 150
    seen: list[tuple[float, float]] = []
    monkeypatch.setattr(ingest.WEBHOOK_DRAIN.__class__, "run",
                        lambda self, step, *, batch_size, limit, linger, idle: seen.append((linger, idle)) or 0)
    ingest.webhook_events_drain(linger=0.01)
    ingest.webhook_events_drain()  # eager: no linger, so no idle looks either
    assert seen == [(0.01, 0.15), (0.0, 0.0)]


DRAIN_TASKS = [  # (task, the service it calls, that service's module, the setting of its linger)
    ("messages_deliver_drain_task", "messages_deliver_drain", "messages", "MESSAGE_DELIVER_LINGER_MS"),
    ("webhook_events_drain_task", "webhook_events_drain", "ingest", "WEBHOOK_DRAIN_LINGER_MS"),
]


@pytest.mark.parametrize(("task", "service", "module", "setting"), DRAIN_TASKS)
def test_an_eager_drain_never_lingers(monkeypatch, settings, task, service, module, setting):
    """Without a broker the drain runs inside the agent's request (or the webhook's): no waiting there."""
    from channels_app import services, tasks

    setattr(settings, setting, 100)
    lingers: list[float] = []
    monkeypatch.setattr(getattr(services, module), service, lambda *, linger: lingers.append(linger) or 0)
    getattr(tasks, task).apply(throw=True)  # as CELERY_TASK_ALWAYS_EAGER runs it
    assert lingers == [0.0]


@pytest.mark.parametrize(("task", "service", "module", "setting"), DRAIN_TASKS)
def test_a_worker_drain_lingers_as_set(monkeypatch, settings, task, service, module, setting):
    from channels_app import services, tasks

    setattr(settings, setting, 25)
    lingers: list[float] = []
    monkeypatch.setattr(getattr(services, module), service, lambda *, linger: lingers.append(linger) or 0)
    getattr(tasks, task)()  # as a worker runs it: not eager
    assert lingers == [0.025]


def test_the_linger_is_a_setting(settings):
    from channels_app.services.messages import DELIVER_DRAIN

    settings.MESSAGE_DELIVER_LINGER_MS = 200
    assert DELIVER_DRAIN.linger_seconds(eager=False) == 0.2
