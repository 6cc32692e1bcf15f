"""IMAP polling of email inboxes: one poll at a time per mailbox, nothing lost, nothing stored twice.

Celery beat runs `tasks.email_inboxes_poll_task` every minute; it queues one
`email_inbox_poll_task` per active email inbox that has an IMAP server configured.

- **One worker per mailbox.** A poll first takes a lease on the inbox row with one conditional
  UPDATE (`imap_poll_locked_until` empty or past), so two workers never poll the same mailbox at
  once, on SQLite and PostgreSQL alike and without holding a transaction open during network I/O.
  The lease is renewed before each message is stored; a worker that crashed leaves a lease that
  simply expires (`IMAP_POLL_LEASE_SECONDS`, default 300).
- **Lossless.** Each fetched message is committed as a raw `WebhookEvent` (its own durable
  transaction) before `imap_poll` flags it `\\Seen`; messages are read with `BODY.PEEK[]`, so a
  crash in between leaves the message unseen and it is fetched again on the next poll.
- **Idempotent.** A message fetched twice becomes two raw events but one `Message`: ingest's
  unique (inbox, provider message id) constraint, the id being the Message-ID (or a content hash
  when the message has none).
- **Visible.** The inbox records when it was last polled and the last error (empty on success),
  shown in the admin and in the inbox API.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels_app.adapters.base import AdapterError, ConfigError
from channels_app.adapters.email import RAW_MIME_CONTENT_TYPE, EmailConfig, imap_poll
from channels_app.models import Inbox, InboxKind
from channels_app.services.inboxes import inbox_adapter_config
from channels_app.services.ingest import webhook_event_store

logger = logging.getLogger(__name__)

# Stored with each polled message: the email adapter parses it as raw MIME whatever the inbox's
# HTTP inbound format is.
POLLED_HEADERS = {"Content-Type": RAW_MIME_CONTENT_TYPE, "User-Agent": "cxplatform-imap-poller"}


class LeaseLost(Exception):
    """Another worker took over this mailbox (our lease expired): stop before storing more."""


@dataclasses.dataclass(frozen=True)
class PollResult:
    status: str  # "polled" | "failed" | "busy" | "skipped"
    handled: int = 0
    error: str = ""


def poll_lease() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "IMAP_POLL_LEASE_SECONDS", 300)))


def poll_batch_size() -> int:
    return int(getattr(settings, "IMAP_POLL_BATCH_SIZE", 50))


def email_inboxes_to_poll() -> list[int]:
    """Ids of the active email inboxes with an IMAP server (the host is a non-secret setting)."""
    inboxes = Inbox.objects.filter(kind=InboxKind.EMAIL, is_active=True).only("pk", "config").order_by("pk")
    return [inbox.pk for inbox in inboxes if isinstance(inbox.config, dict) and inbox.config.get("imap_host")]


def _lease_acquire(inbox_id: int, now: dt.datetime) -> dt.datetime | None:
    until = now + poll_lease()
    taken = Inbox.objects.filter(pk=inbox_id).filter(
        Q(imap_poll_locked_until__isnull=True) | Q(imap_poll_locked_until__lte=now)
    ).update(imap_poll_locked_until=until)
    return until if taken else None


def _lease_renew(inbox_id: int, held: dt.datetime) -> dt.datetime:
    until = max(timezone.now() + poll_lease(), held + dt.timedelta(microseconds=1))
    if not Inbox.objects.filter(pk=inbox_id, imap_poll_locked_until=held).update(imap_poll_locked_until=until):
        raise LeaseLost(f"inbox {inbox_id}: another worker holds the IMAP poll lease")
    return until


def _finish(inbox_id: int, held: dt.datetime, error: str) -> None:
    now = timezone.now()
    released = Inbox.objects.filter(pk=inbox_id, imap_poll_locked_until=held).update(
        imap_polled_at=now, imap_poll_error=error, imap_poll_locked_until=None)
    if not released:  # the lease passed to another worker: record the outcome, leave its lease alone
        Inbox.objects.filter(pk=inbox_id).update(imap_polled_at=now, imap_poll_error=error)


def email_inbox_poll(*, inbox_id: int) -> PollResult:
    """Poll one inbox's mailbox once: store every unseen message as a raw event (processed in
    the background like a webhook delivery), then flag it seen. Records the outcome on the inbox.

    Must run outside any transaction (a Celery task): each message has to be committed before
    the IMAP server is told it was seen.
    """
    inbox = Inbox.objects.filter(pk=inbox_id, kind=InboxKind.EMAIL, is_active=True).first()
    if inbox is None:
        return PollResult("skipped")
    held = _lease_acquire(inbox.pk, timezone.now())
    if held is None:
        return PollResult("busy")
    handled = 0
    error = ""
    try:
        config = inbox_adapter_config(inbox=inbox)
        if not isinstance(config, EmailConfig) or not config.imap_host:
            error = "no IMAP server configured"
            return PollResult("skipped", error=error)

        def store(uid: str, raw: bytes) -> None:
            nonlocal held, handled
            held = _lease_renew(inbox.pk, held)
            # durable: refuses to run nested in an outer transaction, whose commit would come
            # only after the message was already flagged seen.
            with transaction.atomic(durable=True):
                webhook_event_store(inbox=inbox, body=raw, headers=POLLED_HEADERS)
            handled += 1

        imap_poll(config, store, limit=poll_batch_size())
    except (AdapterError, ConfigError, LeaseLost) as exc:
        error = str(exc)
        logger.warning("IMAP poll of inbox %s failed after %s message(s): %s", inbox.pk, handled, error)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.exception("IMAP poll of inbox %s failed after %s message(s)", inbox.pk, handled)
        raise
    finally:
        _finish(inbox.pk, held, error[:4000])
    return PollResult("failed" if error else "polled", handled=handled, error=error)
