"""Office hours per inbox: open or closed at a moment, the greeting on first contact and the
automatic reply outside hours (once per closed period, never to an automatic message)."""
from __future__ import annotations

import datetime as dt
import functools
import logging
import zoneinfo

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_app.models import (
    AutomaticMessageKind,
    AutomaticReplySent,
    Conversation,
    Inbox,
    InboxAutomaticMessage,
    Message,
    MessageDirection,
    MessageSender,
    OfficeHours,
)
from channels_app.services.messages import LOG_ONLY_KINDS, message_create_outbound

logger = logging.getLogger(__name__)

# How far back "when did we close" looks (a long holiday run still ends within this).
LOOKBACK_DAYS = 400
# A message older than this when processed (a replayed, parked delivery) gets no automatic reply.
AUTOMATIC_REPLY_MAX_AGE = dt.timedelta(hours=1)


@functools.lru_cache(maxsize=64)
def _country_holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def office_hours_zone(*, office_hours: OfficeHours) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(office_hours.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def office_hours_holiday(*, office_hours: OfficeHours, day: dt.date) -> str:
    """The public holiday's name on this local date, or ""."""
    if not office_hours.holiday_country:
        return ""
    try:
        calendar = _country_holidays(office_hours.holiday_country.upper(), day.year)
    except NotImplementedError:
        return ""
    return calendar.get(day) or ""


def _openings(office_hours: OfficeHours, day: dt.date, zone: zoneinfo.ZoneInfo, intervals) -> list[tuple[dt.datetime, dt.datetime]]:
    if office_hours_holiday(office_hours=office_hours, day=day):
        return []
    return [(dt.datetime.combine(day, i.opens_at, tzinfo=zone), dt.datetime.combine(day, i.closes_at, tzinfo=zone))
            for i in intervals if i.weekday == day.weekday()]


def office_hours_state(*, office_hours: OfficeHours | None, now: dt.datetime | None = None) -> tuple[bool, dt.datetime | None]:
    """(open, closed_since): open now? If closed, when the current closed period began (the end
    of the last opening before `now`; None when there was none in LOOKBACK_DAYS)."""
    if office_hours is None or not office_hours.is_enabled:
        return True, None
    now = now or timezone.now()
    zone = office_hours_zone(office_hours=office_hours)
    local = now.astimezone(zone)
    intervals = list(office_hours.intervals.all())
    for opens, closes in _openings(office_hours, local.date(), zone, intervals):
        if opens <= local < closes:
            return True, None
    for back in range(LOOKBACK_DAYS):
        day = local.date() - dt.timedelta(days=back)
        ends = [closes for _opens, closes in _openings(office_hours, day, zone, intervals) if closes <= local]
        if ends:
            return False, max(ends)
    return False, None


def inbox_is_open(*, inbox: Inbox, now: dt.datetime | None = None) -> bool:
    """Whether the inbox is staffed at `now` (always, when it has no enabled office hours)."""
    return office_hours_state(office_hours=_office_hours(inbox), now=now)[0]


def _office_hours(inbox: Inbox) -> OfficeHours | None:
    return OfficeHours.objects.filter(inbox=inbox).prefetch_related("intervals").first()


def automatic_message_text(*, office_hours: OfficeHours, kind: str, language: str) -> str:
    """The text in the customer's language: exact code, then its primary subtag ("id-ID" → "id"),
    then the fallback row (empty language), then the site language; "" when none is written."""
    rows = {m.language: m.body for m in InboxAutomaticMessage.objects.filter(office_hours=office_hours, kind=kind)
            if m.body.strip()}
    language = (language or "").lower()
    for candidate in (language, language.split("-")[0], "", settings.LANGUAGE_CODE):
        if candidate in rows:
            return rows[candidate]
    return ""


@transaction.atomic
def office_hours_set(
    *, inbox: Inbox, schedule: dict[int, list[tuple[dt.time, dt.time]]], time_zone: str = "Asia/Jakarta",
    holiday_country: str = "ID", out_of_hours: dict[str, str] | None = None, greeting: dict[str, str] | None = None,
    is_enabled: bool = True, auto_reply_enabled: bool = True, greeting_enabled: bool = False,
) -> OfficeHours:
    """Replace the inbox's office hours: `schedule` maps weekday (0 = Monday) to openings;
    `out_of_hours` / `greeting` map language ("" = any other) to text."""
    candidate = OfficeHours(inbox=inbox, time_zone=time_zone, holiday_country=holiday_country)
    candidate.clean()
    office_hours, _created = OfficeHours.objects.update_or_create(inbox=inbox, defaults={
        "time_zone": time_zone, "holiday_country": holiday_country.upper(), "is_enabled": is_enabled,
        "auto_reply_enabled": auto_reply_enabled, "greeting_enabled": greeting_enabled})
    office_hours.intervals.all().delete()
    for weekday, openings in schedule.items():
        for opens_at, closes_at in openings:
            interval = office_hours.intervals.model(office_hours=office_hours, weekday=weekday, opens_at=opens_at,
                                                    closes_at=closes_at)
            if closes_at <= opens_at:
                raise ValidationError({"schedule": [f"Day {weekday}: closing {closes_at} is not after {opens_at}."]})
            interval.full_clean()
            interval.save()
    office_hours.messages.all().delete()
    for kind, texts in ((AutomaticMessageKind.OUT_OF_HOURS, out_of_hours), (AutomaticMessageKind.GREETING, greeting)):
        for language, body in (texts or {}).items():
            InboxAutomaticMessage.objects.create(office_hours=office_hours, kind=kind, language=language.lower(),
                                                 body=body)
    return office_hours


def _is_automatic(message: Message) -> bool:
    extra = message.data.get("extra", {}) if isinstance(message.data, dict) else {}
    return bool(isinstance(extra, dict) and extra.get("auto_reply"))


def _send(conversation: Conversation, inbox: Inbox, kind: str, period: str, text: str) -> Message | None:
    """Claim (conversation, kind, period) and send; the claim and the message commit together,
    so a rolled-back send can be retried and a race sends once."""
    try:
        with transaction.atomic():
            sent = AutomaticReplySent.objects.create(conversation=conversation, kind=kind, period=period)
            message = message_create_outbound(conversation=conversation, author=None, content=text, inbox=inbox)
            sent.message = message
            sent.save(update_fields=["message"])
    except IntegrityError:
        return None  # already sent for this period
    except ValidationError as exc:
        # The customer cannot be reached on this inbox (or the channel is off): nothing to send.
        logger.info("automatic %s for conversation %s not sent: %s", kind, conversation.pk, exc.messages)
        return None
    return message


def inbound_automatic_replies(
    *, message: Message, conversation_created: bool, now: dt.datetime | None = None
) -> list[Message]:
    """After a customer's message was recorded: the greeting if it opened a new conversation,
    the automatic reply if the inbox is closed (once per closed period). Nothing for automatic
    inbound mail (out-of-office, bounces) or anything not from the customer, so two robots can
    never answer each other in a loop. Sent messages are `system` messages (KPIs skip them)."""
    now = now or timezone.now()
    inbox = message.inbox
    if (message.direction != MessageDirection.INBOUND or message.sender != MessageSender.CUSTOMER
            or _is_automatic(message) or inbox.kind in LOG_ONLY_KINDS or not inbox.is_active
            or now - message.created_at > AUTOMATIC_REPLY_MAX_AGE):
        return []
    office_hours = _office_hours(inbox)
    if office_hours is None:
        return []
    conversation = Conversation.objects.select_related("customer").get(pk=message.conversation_id)
    language = conversation.customer.language or ""
    sent: list[Message] = []
    if conversation_created and office_hours.greeting_enabled:
        first_inbound = not Message.objects.filter(conversation=conversation, direction=MessageDirection.INBOUND,
                                                   pk__lt=message.pk).exists()
        text = automatic_message_text(office_hours=office_hours, kind=AutomaticMessageKind.GREETING, language=language)
        if first_inbound and text:
            reply = _send(conversation, inbox, AutomaticMessageKind.GREETING, "conversation", text)
            sent += [reply] if reply else []
    if office_hours.auto_reply_enabled:
        is_open, closed_since = office_hours_state(office_hours=office_hours, now=now)
        text = automatic_message_text(office_hours=office_hours, kind=AutomaticMessageKind.OUT_OF_HOURS,
                                      language=language)
        if not is_open and text:
            period = closed_since.astimezone(dt.UTC).isoformat() if closed_since else "always"
            reply = _send(conversation, inbox, AutomaticMessageKind.OUT_OF_HOURS, period, text)
            sent += [reply] if reply else []
    return sent


# --- reads for the API: next opening / closing, upcoming holidays ----------------------------

LOOKAHEAD_DAYS = 400


def _merged_openings(office_hours: OfficeHours, start: dt.date, zone: zoneinfo.ZoneInfo, intervals):
    """Openings from `start` on, in order, with touching or overlapping ones merged (a 08–12 and
    12–17 pair is one opening until 17:00)."""
    current: list[dt.datetime] | None = None
    for offset in range(LOOKAHEAD_DAYS):
        for opens, closes in sorted(_openings(office_hours, start + dt.timedelta(days=offset), zone, intervals)):
            if current is not None and opens <= current[1]:
                current[1] = max(current[1], closes)
                continue
            if current is not None:
                yield current[0], current[1]
            current = [opens, closes]
    if current is not None:
        yield current[0], current[1]


def office_hours_next_change(
    *, office_hours: OfficeHours, now: dt.datetime | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(next_opening, next_closing) after `now` (aware, in the office hours' zone). Open now:
    next_closing ends the current opening and next_opening starts the one after it. Both are
    None when office hours are off (always open) or nothing opens within LOOKAHEAD_DAYS."""
    if not office_hours.is_enabled:
        return None, None
    now = now or timezone.now()
    zone = office_hours_zone(office_hours=office_hours)
    local = now.astimezone(zone)
    intervals = list(office_hours.intervals.all())
    next_opening = next_closing = None
    for opens, closes in _merged_openings(office_hours, local.date() - dt.timedelta(days=1), zone, intervals):
        if closes <= local:
            continue
        if opens <= local:
            next_closing = closes
            continue
        next_opening = opens
        next_closing = next_closing or closes
        break
    return next_opening, next_closing


def office_hours_holidays_upcoming(*, office_hours: OfficeHours, today: dt.date, count: int = 5) -> list[tuple[dt.date, str]]:
    """The next public holidays (closed days) from `today` on, within a year."""
    if not office_hours.holiday_country:
        return []
    found: list[tuple[dt.date, str]] = []
    for year in (today.year, today.year + 1):
        try:
            calendar = _country_holidays(office_hours.holiday_country.upper(), year)
        except NotImplementedError:
            return []
        found += [(day, name) for day, name in sorted(calendar.items())
                  if today <= day < today + dt.timedelta(days=366)]
    return found[:count]


def office_hours_update(
    *, office_hours: OfficeHours, schedule: dict[int, list[tuple[dt.time, dt.time]]] | None = None,
    out_of_hours: dict[str, str] | None = None, greeting: dict[str, str] | None = None, **fields,
) -> OfficeHours:
    """Change some of the office hours' settings (what is not given stays as it is)."""
    current_schedule: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for interval in office_hours.intervals.all():
        current_schedule.setdefault(interval.weekday, []).append((interval.opens_at, interval.closes_at))
    texts: dict[str, dict[str, str]] = {AutomaticMessageKind.OUT_OF_HOURS: {}, AutomaticMessageKind.GREETING: {}}
    for message in office_hours.messages.all():
        texts[message.kind][message.language] = message.body
    values = {name: getattr(office_hours, name) for name in (
        "time_zone", "holiday_country", "is_enabled", "auto_reply_enabled", "greeting_enabled")}
    values.update(fields)
    return office_hours_set(
        inbox=office_hours.inbox, schedule=current_schedule if schedule is None else schedule,
        out_of_hours=texts[AutomaticMessageKind.OUT_OF_HOURS] if out_of_hours is None else out_of_hours,
        greeting=texts[AutomaticMessageKind.GREETING] if greeting is None else greeting, **values,
    )
