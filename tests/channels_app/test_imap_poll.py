"""IMAP polling per inbox, against a real IMAP server (pymap's in-memory backend, a subprocess).

Messages are put into the mailbox with IMAP APPEND and read back by the real poller: lease,
durable store, \\Seen only after commit, Message-ID de-duplication, status on the inbox.
"""
from __future__ import annotations

import datetime as dt
import imaplib
import socket
import subprocess
import sys
import time
import uuid
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from channels_app import tasks
from channels_app.models import Inbox, Message, WebhookEvent
from channels_app.services import email_poll, inbox_create

pytestmark = pytest.mark.django_db

IMAP_USER, IMAP_PASSWORD = "support", "imap-test-pw"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def imap_server():
    """A real IMAP4rev1 server (pymap, in-memory mailboxes) on a loopback port."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pymap.main import main; sys.exit(main())",
         "--host", "127.0.0.1", "--port", str(port), "--no-service", "admin",
         "dict", "--demo-user", IMAP_USER, "--demo-password", IMAP_PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"pymap did not start: {process.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


class Mailbox:
    """A fresh mailbox on the server, driven as a mail client would (APPEND, flags)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.name = "t" + uuid.uuid4().hex[:12]
        with self._client() as client:
            assert client.create(self.name)[0] == "OK"

    def _client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(IMAP_USER, IMAP_PASSWORD)
        return client

    def append(self, raw: bytes) -> None:
        with self._client() as client:
            assert client.append(self.name, None, None, raw)[0] == "OK"

    def unseen(self) -> list[bytes]:
        with self._client() as client:
            client.select(self.name)
            _, data = client.uid("SEARCH", None, "UNSEEN")
            return (data[0] or b"").split()

    def mark_all_unseen(self) -> None:
        with self._client() as client:
            client.select(self.name)
            client.store("1:*", "-FLAGS", "(\\Seen)")


def mail(message_id: str, text: str, sender: str = "budi@example.co.id") -> bytes:
    return (
        f"From: Budi <{sender}>\r\nTo: support@toko.example\r\nSubject: Pesanan\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Sun, 22 Nov 2026 09:00:00 +0700\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


def email_inbox(port: int, mailbox: str, *, name: str = "Support mail", password: str = IMAP_PASSWORD,
                inbound_format: str = "raw", imap: bool = True, is_active: bool = True) -> Inbox:
    config = {"address": "support@toko.example", "inbound_secret": "inbound-secret-0001",
              "inbound_format": inbound_format}
    if inbound_format == "mailgun":
        config["mailgun_signing_key"] = "mailgun-key-0001"
    if imap:
        config.update({"imap_host": "127.0.0.1", "imap_port": port, "imap_security": "none",
                       "imap_username": IMAP_USER, "imap_password": password, "imap_mailbox": mailbox})
    return inbox_create(name=name, kind="email", config=config, is_active=is_active)


@pytest.mark.parametrize("inbound_format", ["raw", "postmark", "mailgun"])
def test_poll_stores_each_message_then_marks_it_seen(imap_server, inbound_format,
                                                     django_capture_on_commit_callbacks):
    box = Mailbox(imap_server)
    box.append(mail("a1@example.co.id", "Paket saya belum sampai"))
    box.append(mail("a2@example.co.id", "Nomor resi 12345"))
    inbox = email_inbox(imap_server, box.name, inbound_format=inbound_format)

    with django_capture_on_commit_callbacks(execute=True):
        result = email_poll.email_inbox_poll(inbox_id=inbox.pk)

    assert (result.status, result.handled, result.error) == ("polled", 2, "")
    assert box.unseen() == []
    events = WebhookEvent.objects.filter(inbox=inbox).order_by("pk")
    assert [event.status for event in events] == ["processed", "processed"]
    assert events[0].headers == {"content-type": "message/rfc822", "user-agent": "cxplatform-imap-poller"}
    messages = Message.objects.filter(inbox=inbox).order_by("pk")
    assert [(m.provider_message_id, m.content) for m in messages] == [
        ("a1@example.co.id", "Paket saya belum sampai"), ("a2@example.co.id", "Nomor resi 12345")]
    assert messages[0].conversation_id == messages[1].conversation_id
    inbox.refresh_from_db()
    assert inbox.imap_poll_error == ""
    assert inbox.imap_polled_at is not None and timezone.now() - inbox.imap_polled_at < dt.timedelta(minutes=1)
    assert inbox.imap_poll_locked_until is None

    again = email_poll.email_inbox_poll(inbox_id=inbox.pk)
    assert (again.status, again.handled) == ("polled", 0)


def test_a_message_fetched_twice_is_stored_once(imap_server, django_capture_on_commit_callbacks):
    # given a message that was stored but whose \Seen flag never reached the server (a crash
    # between the commit and the STORE, or someone marking it unread again)
    box = Mailbox(imap_server)
    box.append(mail("twice@example.co.id", "Halo"))
    inbox = email_inbox(imap_server, box.name)
    with django_capture_on_commit_callbacks(execute=True):
        email_poll.email_inbox_poll(inbox_id=inbox.pk)
    box.mark_all_unseen()

    # when it is polled again
    with django_capture_on_commit_callbacks(execute=True):
        result = email_poll.email_inbox_poll(inbox_id=inbox.pk)

    # then it is fetched again, its raw copy kept, and still one message
    assert result.handled == 1
    assert WebhookEvent.objects.filter(inbox=inbox, status="processed").count() == 2
    assert Message.objects.filter(inbox=inbox).count() == 1
    assert box.unseen() == []


def test_message_stays_unseen_when_storing_fails_and_arrives_on_the_next_poll(imap_server,
                                                                              django_capture_on_commit_callbacks):
    box = Mailbox(imap_server)
    box.append(mail("later@example.co.id", "Tolong dibantu"))
    inbox = email_inbox(imap_server, box.name)

    with mock.patch.object(email_poll, "webhook_event_store", side_effect=OperationalError("database is down")):
        with pytest.raises(OperationalError):
            email_poll.email_inbox_poll(inbox_id=inbox.pk)

    assert len(box.unseen()) == 1
    assert WebhookEvent.objects.filter(inbox=inbox).count() == 0
    inbox.refresh_from_db()
    assert inbox.imap_poll_error == "OperationalError: database is down"
    assert inbox.imap_poll_locked_until is None

    with django_capture_on_commit_callbacks(execute=True):
        result = email_poll.email_inbox_poll(inbox_id=inbox.pk)
    assert (result.status, result.handled) == ("polled", 1)
    assert list(Message.objects.filter(inbox=inbox).values_list("content", flat=True)) == ["Tolong dibantu"]
    inbox.refresh_from_db()
    assert inbox.imap_poll_error == ""


def test_a_mailbox_held_by_another_worker_is_not_polled(imap_server):
    box = Mailbox(imap_server)
    box.append(mail("busy@example.co.id", "Halo"))
    inbox = email_inbox(imap_server, box.name)
    held = timezone.now() + dt.timedelta(minutes=3)
    Inbox.objects.filter(pk=inbox.pk).update(imap_poll_locked_until=held)

    result = email_poll.email_inbox_poll(inbox_id=inbox.pk)

    assert result.status == "busy"
    assert len(box.unseen()) == 1
    inbox.refresh_from_db()
    assert (inbox.imap_poll_locked_until, inbox.imap_polled_at) == (held, None)


def test_an_expired_lease_of_a_crashed_worker_does_not_block_polling(imap_server):
    box = Mailbox(imap_server)
    box.append(mail("expired@example.co.id", "Halo"))
    inbox = email_inbox(imap_server, box.name)
    Inbox.objects.filter(pk=inbox.pk).update(imap_poll_locked_until=timezone.now() - dt.timedelta(seconds=1))

    result = email_poll.email_inbox_poll(inbox_id=inbox.pk)

    assert (result.status, result.handled) == ("polled", 1)
    inbox.refresh_from_db()
    assert inbox.imap_poll_locked_until is None


def test_only_one_of_two_workers_gets_the_lease():
    inbox = inbox_create(name="Mail", kind="email", config={"address": "a@toko.example", "inbound_secret": "s" * 12})
    now = timezone.now()

    first = email_poll._lease_acquire(inbox.pk, now)
    second = email_poll._lease_acquire(inbox.pk, now)

    assert first == now + email_poll.poll_lease()
    assert second is None


def test_a_worker_whose_lease_was_taken_over_stops_before_storing(imap_server, settings):
    box = Mailbox(imap_server)
    box.append(mail("stolen@example.co.id", "Halo"))
    inbox = email_inbox(imap_server, box.name)
    real_renew = email_poll._lease_renew

    def taken_over_then_renew(inbox_id, held):
        Inbox.objects.filter(pk=inbox_id).update(imap_poll_locked_until=held + dt.timedelta(minutes=9))
        return real_renew(inbox_id, held)

    with mock.patch.object(email_poll, "_lease_renew", side_effect=taken_over_then_renew):
        result = email_poll.email_inbox_poll(inbox_id=inbox.pk)

    assert result.status == "failed"
    assert "another worker holds the IMAP poll lease" in result.error
    assert WebhookEvent.objects.filter(inbox=inbox).count() == 0
    assert len(box.unseen()) == 1
    inbox.refresh_from_db()
    assert inbox.imap_poll_locked_until is not None  # the other worker's lease is left alone


def test_wrong_password_is_recorded_on_the_inbox(imap_server):
    box = Mailbox(imap_server)
    inbox = email_inbox(imap_server, box.name, password="wrong-password")

    result = email_poll.email_inbox_poll(inbox_id=inbox.pk)

    assert result.status == "failed"
    inbox.refresh_from_db()
    assert inbox.imap_poll_error.startswith("IMAP: ")
    assert inbox.imap_polled_at is not None
    assert inbox.imap_poll_locked_until is None


def test_beat_task_polls_each_active_email_inbox_with_imap(imap_server, django_capture_on_commit_callbacks):
    box = Mailbox(imap_server)
    box.append(mail("fan@example.co.id", "Halo dari email"))
    polled = email_inbox(imap_server, box.name, name="Polled")
    no_imap = email_inbox(imap_server, box.name, name="HTTP only", imap=False)
    inactive = email_inbox(imap_server, box.name, name="Inactive", is_active=False)
    other = inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://toko.example"]})

    with django_capture_on_commit_callbacks(execute=True):
        queued = tasks.email_inboxes_poll_task.delay().get()

    assert queued == 1
    assert list(Message.objects.values_list("inbox__name", "content")) == [("Polled", "Halo dari email")]
    for inbox, was_polled in ((polled, True), (no_imap, False), (inactive, False), (other, False)):
        inbox.refresh_from_db()
        assert (inbox.imap_polled_at is not None) is was_polled, inbox.name


def test_poll_task_skips_an_inbox_that_is_no_longer_an_active_email_inbox():
    inbox = inbox_create(name="Mail", kind="email", is_active=False,
                         config={"address": "a@toko.example", "inbound_secret": "s" * 12})
    assert tasks.email_inbox_poll_task.delay(inbox.pk).get() == "skipped"
    assert tasks.email_inbox_poll_task.delay(999_999).get() == "skipped"


def test_beat_schedule_polls_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["channels.poll_email_inboxes"]
    assert entry["task"] == "channels_app.tasks.email_inboxes_poll_task"
    assert entry["schedule"].minute == set(range(60))


def test_inbox_api_shows_the_last_poll(client, supervisor, imap_server):
    box = Mailbox(imap_server)
    inbox = email_inbox(imap_server, box.name, password="wrong-password")
    email_poll.email_inbox_poll(inbox_id=inbox.pk)
    client.force_login(supervisor)

    body = client.get(f"/api/v1/inboxes/{inbox.pk}/").json()

    inbox.refresh_from_db()
    assert dt.datetime.fromisoformat(body["imap_polled_at"]) == inbox.imap_polled_at
    assert body["imap_poll_error"] == inbox.imap_poll_error != ""
