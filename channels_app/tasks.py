"""Celery tasks: load by id, call a service, retry with backoff. No business logic here."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from channels_app.models import WebhookEvent
from channels_app.services import ingest, messages


def _retry(task: Any, countdown: int, *args: Any) -> Any:
    if task.request.is_eager:
        # Eager mode (tests, the embedded default without a broker): Celery would re-raise the
        # Retry into the caller, so run the next attempt inline (no waiting).
        return task.apply(args=args, retries=task.request.retries + 1).result
    raise task.retry(countdown=countdown)


@shared_task(bind=True, acks_late=True, max_retries=None)
def webhook_event_process_task(self, event_id: int) -> str | None:
    """Process one stored webhook delivery; retried with backoff until processed or parked."""
    event = ingest.webhook_event_process(event_id=event_id)
    if event is not None and event.status == WebhookEvent.Status.FAILED:
        return _retry(self, ingest.process_backoff_seconds(event.attempts), event_id)
    return event.status if event is not None else None


@shared_task(bind=True, acks_late=True)
def webhook_events_drain_task(self) -> int:
    """Process every stored delivery waiting (queued once per burst by `ingest.drain_wake`)."""
    return ingest.webhook_events_drain(linger=ingest.WEBHOOK_DRAIN.linger_seconds(eager=self.request.is_eager))


@shared_task(bind=True, acks_late=True)
def messages_deliver_drain_task(self) -> int:
    """Send every new queued reply (queued once per burst by `messages.messages_deliver_wake`)."""
    return messages.messages_deliver_drain(linger=messages.DELIVER_DRAIN.linger_seconds(eager=self.request.is_eager))


@shared_task(bind=True, acks_late=True, max_retries=None)
def message_deliver_task(self, message_id: int) -> str | None:
    """Send one queued outbound message again (a retry, or one the sweeper found); retryable
    provider errors back off exponentially."""
    outcome = messages.message_deliver(message_id=message_id, attempt=self.request.retries + 1)
    if outcome.retry_in is not None:
        return _retry(self, outcome.retry_in, message_id)
    return outcome.message.status if outcome.message is not None else None


MEDIA_FETCH_MAX_ATTEMPTS = 5


@shared_task(bind=True, acks_late=True, max_retries=None)
def message_media_fetch_task(self, message_id: int) -> int:
    """Download an inbound message's attachments from the provider into storage."""
    from channels_app.services import media

    attempt = self.request.retries + 1
    outcome = media.message_media_fetch(message_id=message_id, final_attempt=attempt >= MEDIA_FETCH_MAX_ATTEMPTS)
    if outcome.retry:
        return _retry(self, messages.backoff_seconds(attempt), message_id)
    return outcome.stored


@shared_task
def conversations_wake_snoozed_task() -> int:
    """Periodic (every minute): reopen snoozed conversations whose time has come."""
    from channels_app.services import conversations

    return conversations.conversations_wake_snoozed()


@shared_task
def webhook_event_prune_task() -> int:
    """Periodic (daily): delete processed raw deliveries past WEBHOOK_EVENT_RETENTION_DAYS."""
    from channels_app.services import privacy

    return privacy.webhook_event_prune()


@shared_task
def conversations_assign_backlog_task() -> int:
    """Periodic (every minute): assign waiting conversations to agents who have room."""
    from channels_app.services import conversations

    return conversations.conversations_assign_backlog()


@shared_task
def webhook_events_requeue_task() -> int:
    """Periodic (every 5 minutes): queue stored deliveries whose processing task never ran."""
    return ingest.webhook_events_requeue()


@shared_task
def messages_requeue_stuck_task() -> int:
    """Periodic (every 5 minutes): queue replies whose delivery task never ran or was lost."""
    return messages.messages_requeue_stuck()


@shared_task
def email_inboxes_poll_task() -> int:
    """Periodic (every minute): queue one IMAP poll per active email inbox with an IMAP server."""
    from django.conf import settings

    from channels_app.services import email_poll

    inbox_ids = email_poll.email_inboxes_to_poll()
    # A poll still queued when the next round is due is dropped: the next one does its work.
    expires = int(getattr(settings, "IMAP_POLL_INTERVAL_SECONDS", 60))
    for inbox_id in inbox_ids:
        email_inbox_poll_task.apply_async((inbox_id,), expires=expires)
    return len(inbox_ids)


@shared_task
def email_inbox_poll_task(inbox_id: int) -> str:
    """Poll one email inbox's IMAP mailbox (skipped when another worker is polling it)."""
    from channels_app.services import email_poll

    return email_poll.email_inbox_poll(inbox_id=inbox_id).status


@shared_task
def live_events_prune_task() -> int:
    """Periodic (hourly): delete live events past LIVE_EVENT_RETENTION_HOURS (default 24)."""
    from channels_app import realtime

    return realtime.live_events_prune()
