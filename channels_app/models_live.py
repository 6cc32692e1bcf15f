"""The stored live-event log behind the agents' websockets (imported by `channels_app.models`).

Kept in its own module so the log's schema stays separate from the conversation models.
"""
from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LiveEvent(models.Model):
    """One event pushed to agents' sockets by `channels_app.realtime.publish`, stored in the
    publisher's transaction so its primary key is the event id the browser tracks.

    A reconnecting browser asks for the events after the last id it saw (`realtime.
    live_events_since`); who may read a row is decided by `conversation_id` (re-checked through
    the selectors), by `team_id` (the viewer's current teams) and by its `LiveEventRecipient`
    rows (`agent.<id>` groups), never by a JSON lookup. Rows older than LIVE_EVENT_RETENTION_HOURS are pruned by a periodic task."""

    id = models.BigAutoField(primary_key=True)
    event = models.CharField(_("event"), max_length=80)
    payload = models.JSONField(_("payload"), default=dict, encoder=DjangoJSONEncoder)
    groups = models.JSONField(
        _("groups"), default=list, blank=True,
        help_text=_("Groups it was pushed to, for operators (web chat visitor groups are not stored)."),
    )
    conversation_id = models.BigIntegerField(_("conversation"), null=True, blank=True)
    team_id = models.BigIntegerField(_("team"), null=True, blank=True,
                                     help_text=_("Sent to every member of this team (its `team.<id>` group)."))
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("live event")
        verbose_name_plural = _("live events")
        indexes = [models.Index(fields=["conversation_id", "id"], name="live_event_conversation_idx"),
                   models.Index(fields=["team_id", "id"], name="live_event_team_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event}"


class LiveEventRecipient(models.Model):
    """An agent a live event was addressed to personally (their `agent.<id>` group).

    `on_delete=DO_NOTHING` keeps pruning a plain bulk DELETE: the prune removes recipients
    first, then their events, in one transaction."""

    live_event = models.ForeignKey(LiveEvent, on_delete=models.DO_NOTHING, related_name="recipients")
    # No database constraint: the row is written inside the publisher's transaction, and a
    # deferred foreign-key check failing at commit (an agent deleted meanwhile) must never undo
    # the business change that published the event.
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                              db_constraint=False)

    class Meta:
        verbose_name = _("live event recipient")
        verbose_name_plural = _("live event recipients")
        indexes = [models.Index(fields=["agent", "live_event"], name="live_event_agent_idx")]
        constraints = [models.UniqueConstraint(fields=["live_event", "agent"], name="live_event_agent_unique")]

    def __str__(self) -> str:
        return f"#{self.live_event_id} → {self.agent_id}"
