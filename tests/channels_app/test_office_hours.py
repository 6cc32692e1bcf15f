"""Office hours: open or closed at fixed moments (weekly schedule, time zone, Indonesian public
holidays), the out-of-hours reply once per closed period, the greeting on first contact only."""
from __future__ import annotations

import datetime as dt
import json
import time
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_app.models import AutomaticReplySent, Conversation, Message, OfficeHours
from channels_app.services import (
    conversation_continue,
    conversation_status_set,
    inbound_automatic_replies,
    inbox_is_open,
    message_record,
    office_hours_set,
)
from channels_app.services.office_hours import office_hours_state
from customers.services import IdentityInput, customer_resolve
from tests.channels_app.test_webhooks import post_whatsapp, telegram_inbox, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db

WIB = zoneinfo.ZoneInfo("Asia/Jakarta")
WORKDAYS = {day: [(dt.time(9), dt.time(12)), (dt.time(13), dt.time(17))] for day in range(5)}  # Mon-Fri, lunch 12-13
CLOSED_EN = "We are closed now; we reply from 09:00 WIB."
CLOSED_ID = "Kami sedang tutup; kami balas mulai pukul 09.00 WIB."
HELLO_EN = "Hello! An agent will be with you shortly."
HELLO_ID = "Halo! Agen kami segera membantu."


def wib(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=WIB)


def _office_hours(inbox, **kwargs) -> OfficeHours:
    options = {"schedule": WORKDAYS, "time_zone": "Asia/Jakarta", "holiday_country": "ID",
               "out_of_hours": {"": CLOSED_EN, "id": CLOSED_ID}, "greeting": {"": HELLO_EN, "id": HELLO_ID},
               "greeting_enabled": True, **kwargs}
    return office_hours_set(inbox=inbox, **options)


def _inbound(inbox, *, telegram_id: str = "5550001", language: str = "", text: str = "Halo",
             data: dict | None = None) -> tuple[Message, bool]:
    """A customer message recorded the way ingest does, without ingest's hook (the tests call
    the hook themselves with a fixed `now`). Returns (message, conversation_created)."""
    resolved = customer_resolve(identities=[IdentityInput("telegram", telegram_id, verified=True,
                                                          scope=str(inbox.uuid))], source="test",
                                display_name="Budi Santoso")
    customer = resolved.customer
    if language and customer.language != language:
        customer.language = language
        customer.save(update_fields=["language"])
    continued = conversation_continue(customer=customer, inbox=inbox)
    message, _created = message_record(conversation=continued.conversation, inbox=inbox, direction="inbound",
                                       sender="customer", content=text, data=data or {})
    return message, continued.created


def _system_messages(conversation_id: int) -> list[str]:
    return list(Message.objects.filter(conversation_id=conversation_id, sender="system").order_by("id")
                .values_list("content", flat=True))


# --- open or closed -----------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "is_open"), [
    (wib(2026, 8, 18, 10, 0), True),     # Tuesday morning
    (wib(2026, 8, 18, 9, 0), True),      # opening minute counts as open
    (wib(2026, 8, 18, 8, 59), False),
    (wib(2026, 8, 18, 12, 30), False),   # lunch break
    (wib(2026, 8, 18, 16, 59), True),
    (wib(2026, 8, 18, 17, 0), False),    # closing minute is closed
    (wib(2026, 8, 22, 10, 0), False),    # Saturday
    (wib(2026, 8, 17, 10, 0), False),    # Monday, Hari Kemerdekaan (Independence Day)
    (wib(2026, 12, 25, 10, 0), False),   # Friday, Christmas
    (dt.datetime(2026, 8, 18, 3, 0, tzinfo=dt.UTC), True),    # 10:00 WIB given in UTC
    (dt.datetime(2026, 8, 18, 10, 30, tzinfo=dt.UTC), False),  # 17:30 WIB given in UTC
])
def test_open_or_closed_at_fixed_moments(moment, is_open):
    inbox = telegram_inbox()
    _office_hours(inbox)

    assert inbox_is_open(inbox=inbox, now=moment) is is_open


def test_a_holiday_is_open_when_no_holiday_calendar_is_chosen():
    inbox = telegram_inbox()
    _office_hours(inbox, holiday_country="")

    assert inbox_is_open(inbox=inbox, now=wib(2026, 8, 17, 10, 0)) is True


def test_schedule_is_read_in_the_inbox_time_zone():
    inbox = telegram_inbox()
    _office_hours(inbox, time_zone="Asia/Jayapura")  # WIT, UTC+9

    # 08:30 WIB is 10:30 WIT: open in Papua, although Jakarta is not open yet.
    assert inbox_is_open(inbox=inbox, now=wib(2026, 8, 18, 8, 30)) is True
    assert inbox_is_open(inbox=inbox, now=wib(2026, 8, 18, 15, 30)) is False  # 17:30 WIT


def test_closed_period_starts_at_the_last_closing_skipping_the_holiday_and_weekend():
    inbox = telegram_inbox()
    office_hours = _office_hours(inbox)

    # Tuesday 08:00, after the Monday holiday: closed since Friday 17:00.
    assert office_hours_state(office_hours=office_hours, now=wib(2026, 8, 18, 8, 0)) == (
        False, wib(2026, 8, 14, 17, 0))
    assert office_hours_state(office_hours=office_hours, now=wib(2026, 8, 18, 12, 15)) == (
        False, wib(2026, 8, 18, 12, 0))


def test_inbox_without_office_hours_or_with_them_switched_off_is_always_open():
    inbox = telegram_inbox()
    assert inbox_is_open(inbox=inbox, now=wib(2026, 8, 22, 3, 0)) is True
    _office_hours(inbox, is_enabled=False)
    assert inbox_is_open(inbox=inbox, now=wib(2026, 8, 22, 3, 0)) is True


@pytest.mark.parametrize(("field", "options"), [
    ("time_zone", {"time_zone": "Mars/Olympus"}),
    ("holiday_country", {"holiday_country": "XX"}),
])
def test_office_hours_refuse_an_unknown_time_zone_or_holiday_country(field, options):
    inbox = telegram_inbox()

    with pytest.raises(ValidationError) as error:
        _office_hours(inbox, **options)

    assert list(error.value.message_dict) == [field]
    assert OfficeHours.objects.count() == 0


def test_closing_before_opening_is_refused():
    inbox = telegram_inbox()

    with pytest.raises(ValidationError):
        _office_hours(inbox, schedule={0: [(dt.time(17), dt.time(9))]})


# --- automatic reply outside hours --------------------------------------------------------


def test_out_of_hours_reply_is_sent_once_per_closed_period():
    inbox = telegram_inbox()
    _office_hours(inbox, greeting_enabled=False)
    first, created = _inbound(inbox)
    conversation_id = first.conversation_id

    # Tuesday evening: closed → one reply, a system message on the same inbox.
    replies = inbound_automatic_replies(message=first, conversation_created=created, now=wib(2026, 8, 18, 18, 0))
    assert [(m.content, m.sender, m.direction, m.author_id, m.inbox_id, m.status) for m in replies] == [
        (CLOSED_EN, "system", "outbound", None, inbox.pk, "queued")]
    # Later the same night and early next morning: same closed period, no second reply.
    for moment in (wib(2026, 8, 18, 22, 0), wib(2026, 8, 19, 8, 30)):
        again, created = _inbound(inbox, text="Halo?")
        assert inbound_automatic_replies(message=again, conversation_created=created, now=moment) == []
    # Open: nothing.
    during, created = _inbound(inbox)
    assert inbound_automatic_replies(message=during, conversation_created=created, now=wib(2026, 8, 19, 10, 0)) == []
    # Lunch break is a new closed period: one more reply.
    lunch, created = _inbound(inbox)
    assert len(inbound_automatic_replies(message=lunch, conversation_created=created,
                                         now=wib(2026, 8, 19, 12, 5))) == 1

    assert _system_messages(conversation_id) == [CLOSED_EN, CLOSED_EN]
    assert sorted(AutomaticReplySent.objects.values_list("period", flat=True)) == [
        "2026-08-18T10:00:00+00:00", "2026-08-19T05:00:00+00:00"]


def test_a_public_holiday_gets_the_out_of_hours_reply():
    inbox = telegram_inbox()
    _office_hours(inbox, greeting_enabled=False)
    message, created = _inbound(inbox)

    replies = inbound_automatic_replies(message=message, conversation_created=created, now=wib(2026, 8, 17, 10, 0))

    assert [m.content for m in replies] == [CLOSED_EN]
    assert AutomaticReplySent.objects.get().period == "2026-08-14T10:00:00+00:00"  # Friday 17:00 WIB


def test_no_reply_to_an_automatic_inbound_message_so_robots_never_loop():
    inbox = telegram_inbox()
    _office_hours(inbox)
    message, created = _inbound(inbox, text="I am out of the office", data={"extra": {"auto_reply": True}})

    assert inbound_automatic_replies(message=message, conversation_created=created, now=wib(2026, 8, 22, 10)) == []
    assert _system_messages(message.conversation_id) == []


def test_no_reply_to_anything_but_a_customer_message():
    inbox = telegram_inbox()
    _office_hours(inbox)
    message, _created = _inbound(inbox)
    system_message, _ = message_record(conversation=message.conversation, inbox=inbox, direction="outbound",
                                       sender="system", content="x", status="sent")

    assert inbound_automatic_replies(message=system_message, conversation_created=True,
                                     now=wib(2026, 8, 22, 10)) == []
    assert _system_messages(message.conversation_id) == ["x"]  # only the one made above


def test_no_reply_to_a_message_replayed_long_after_it_arrived():
    inbox = telegram_inbox()
    _office_hours(inbox, schedule={})  # always closed
    message, created = _inbound(inbox)

    late = message.created_at + dt.timedelta(hours=3)
    assert inbound_automatic_replies(message=message, conversation_created=created, now=late) == []
    assert AutomaticReplySent.objects.count() == 0
    assert len(inbound_automatic_replies(message=message, conversation_created=created,
                                         now=message.created_at + dt.timedelta(minutes=5))) == 2


def test_reply_uses_the_customer_language_with_a_fallback():
    inbox = telegram_inbox()
    _office_hours(inbox, greeting_enabled=False)
    indonesian, created_id = _inbound(inbox, telegram_id="5550001", language="id-ID")
    french, created_fr = _inbound(inbox, telegram_id="5550002", language="fr")

    assert [m.content for m in inbound_automatic_replies(message=indonesian, conversation_created=created_id,
                                                         now=wib(2026, 8, 22, 10))] == [CLOSED_ID]
    assert [m.content for m in inbound_automatic_replies(message=french, conversation_created=created_fr,
                                                         now=wib(2026, 8, 22, 10))] == [CLOSED_EN]


def test_auto_reply_switched_off_sends_nothing():
    inbox = telegram_inbox()
    _office_hours(inbox, auto_reply_enabled=False, greeting_enabled=False)
    message, created = _inbound(inbox)

    assert inbound_automatic_replies(message=message, conversation_created=created, now=wib(2026, 8, 22, 10)) == []


# --- greeting -------------------------------------------------------------------------------


def test_greeting_on_the_first_message_of_a_new_conversation_only():
    inbox = telegram_inbox()
    _office_hours(inbox)
    first, created = _inbound(inbox, language="id")
    assert created is True

    replies = inbound_automatic_replies(message=first, conversation_created=created, now=wib(2026, 8, 18, 10))
    second, created_again = _inbound(inbox, language="id", text="Ada yang bisa bantu?")
    later = inbound_automatic_replies(message=second, conversation_created=created_again, now=wib(2026, 8, 18, 10, 5))

    assert [m.content for m in replies] == [HELLO_ID]  # open: greeting only
    assert created_again is False
    assert later == []
    assert _system_messages(first.conversation_id) == [HELLO_ID]


def test_greeting_and_out_of_hours_reply_together_on_first_contact_outside_hours():
    inbox = telegram_inbox()
    _office_hours(inbox)
    first, created = _inbound(inbox)

    replies = inbound_automatic_replies(message=first, conversation_created=created, now=wib(2026, 8, 22, 10))

    assert [m.content for m in replies] == [HELLO_EN, CLOSED_EN]


def test_no_greeting_when_a_resolved_conversation_is_reopened():
    inbox = telegram_inbox()
    _office_hours(inbox)
    first, created = _inbound(inbox)
    inbound_automatic_replies(message=first, conversation_created=created, now=wib(2026, 8, 18, 10))
    conversation_status_set(conversation=Conversation.objects.get(pk=first.conversation_id), status="resolved",
                            actor=None)

    again, created_again = _inbound(inbox, text="Saya lagi")

    assert Conversation.objects.get(pk=again.conversation_id).status == "open"
    assert created_again is False
    assert inbound_automatic_replies(message=again, conversation_created=created_again,
                                     now=wib(2026, 8, 18, 11)) == []
    assert _system_messages(first.conversation_id) == [HELLO_EN]


def test_greeting_switched_off_sends_nothing_while_open():
    inbox = telegram_inbox()
    _office_hours(inbox, greeting_enabled=False)
    first, created = _inbound(inbox)

    assert inbound_automatic_replies(message=first, conversation_created=created, now=wib(2026, 8, 18, 10)) == []


# --- through the real webhook ---------------------------------------------------------------


def test_webhook_ingest_greets_and_replies_out_of_hours_once_and_delivers_them(
    client, provider_server, django_capture_on_commit_callbacks
):
    inbox = whatsapp_inbox(api_base_url=provider_server.url)
    # No opening at all: closed whatever the real clock says, so ingest's own `now` is fine here.
    _office_hours(inbox, schedule={})
    for n in range(2):
        provider_server.respond(json_body={"messages": [{"id": f"wamid.OUT{n}"}]})

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(msg_id="wamid.IN1", timestamp=int(time.time())))
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(msg_id="wamid.IN2", text="Halo?", timestamp=int(time.time())))

    conversation = Conversation.objects.get()
    assert list(conversation.messages.order_by("id").values_list("sender", "content")) == [
        ("customer", "Halo"), ("system", HELLO_EN), ("system", CLOSED_EN), ("customer", "Halo?")]
    assert list(conversation.messages.filter(sender="system").values_list("status", flat=True)) == ["sent", "sent"]
    assert [json.loads(r.body)["text"]["body"] for r in provider_server.requests] == [HELLO_EN, CLOSED_EN]
    assert timezone.now() - conversation.last_message_at < dt.timedelta(minutes=1)


def test_admin_lists_office_hours_and_shows_the_schedule_and_messages(client, admin_user):
    inbox = telegram_inbox()
    office_hours = _office_hours(inbox)
    client.force_login(admin_user)

    listing = client.get("/admin/channels_app/officehours/")
    page = client.get(f"/admin/channels_app/officehours/{office_hours.pk}/change/")

    assert listing.status_code == 200
    assert b"Asia/Jakarta" in listing.content
    assert page.status_code == 200
    assert CLOSED_ID.encode() in page.content
    assert client.get("/admin/channels_app/automaticreplysent/").status_code == 200


def test_admin_refuses_an_unknown_time_zone(client, admin_user):
    inbox = telegram_inbox()
    client.force_login(admin_user)
    form = {"inbox": inbox.pk, "time_zone": "Asia/Nowhere", "holiday_country": "ID", "is_enabled": "on",
            "auto_reply_enabled": "on"}
    for prefix in ("intervals", "messages"):
        form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = client.post("/admin/channels_app/officehours/add/", form)

    assert response.status_code == 200
    assert b"Unknown time zone" in response.content
    assert OfficeHours.objects.count() == 0


def test_ingest_sends_nothing_for_an_inbound_event_flagged_as_automatic():
    from channels_app.adapters.base import EventKind, Identity, InboundEvent
    from channels_app.services import inbound_event_apply

    inbox = telegram_inbox()
    _office_hours(inbox, schedule={})  # always closed
    sender = [Identity("telegram", "5550009")]

    bounce = inbound_event_apply(inbox=inbox, item=InboundEvent(
        kind=EventKind.MESSAGE, provider_message_id="t1", identities=sender, text="Auto: I am away",
        timestamp=timezone.now(), extra={"auto_reply": True}))
    assert bounce is not None
    assert _system_messages(bounce.conversation_id) == []

    human = inbound_event_apply(inbox=inbox, item=InboundEvent(
        kind=EventKind.MESSAGE, provider_message_id="t2", identities=sender, text="Halo", timestamp=timezone.now()))
    assert human.conversation_id == bounce.conversation_id
    assert _system_messages(human.conversation_id) == [CLOSED_EN]  # not a new conversation: no greeting
