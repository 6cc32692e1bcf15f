"""The set-based drain path (services/ingest_batch.py) stores exactly what the one-by-one path
stores: the same deliveries go through each, in two copies of one small world, and everything
they wrote is compared (messages, conversations, last seen, timeline, live events, domain
events, the deliveries' status)."""
from __future__ import annotations

import datetime as dt
import json
import re
from email.message import EmailMessage
from email.utils import format_datetime
from unittest import mock

import pytest
from django.db.models import Q
from django.test import override_settings
from django.utils import timezone

from accounts.models import Availability, User
from channels_app import events
from channels_app.models import Conversation, ConversationStatus, Inbox, LiveEvent, Message, WebhookEvent
from channels_app.services import inbox_create, ingest_batch
from channels_app.services.ingest import webhook_events_drain
from channels_app.services.office_hours import office_hours_set
from customers import events as customer_events
from customers.models import Customer, Identity, TimelineEntry
from tests.accounts.factories import TeamFactory, UserFactory, add_to_team
from tests.channels_app.test_webhooks import messaging, messenger_inbox, wa_status, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db

BASE = int((timezone.now() - dt.timedelta(hours=2)).timestamp())
WHO = "ABCDEFGHIJKLMNOPQ"  # the world's customers; all but D, H, K, O and P are known before the batch


def email(world: int, who: str, name: str, at: int, *, auto: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {who} <{who.lower()}{world}@mail.example>"
    msg["To"] = f"support{world}@toko.example"
    msg["Subject"] = f"Order {name}"
    msg["Message-ID"] = f"<{name}.{world}@mail.example>"
    msg["Date"] = format_datetime(dt.datetime.fromtimestamp(at, dt.UTC))
    if auto:
        msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(f"{name} body")
    return bytes(msg)


def identity_value(world: int, who: str) -> str:
    return f"{who.lower()}{world}@mail.example" if who in "JK" else "+" + wa(world, who)


def wa(world: int, who: str) -> str:
    return f"628131{world}00{WHO.index(who):03d}"


def mid(world: int, name: str) -> str:
    return f"wamid.{world}.{name}"


def two_messages(world: int, first: tuple[str, str], second: tuple[str, str], at: int) -> bytes:
    """One delivery carrying two customers' messages (WhatsApp batches them)."""
    data = json.loads(wa_text(wa_id=wa(world, first[0]), msg_id=mid(world, first[1]), text=first[1], timestamp=at))
    value = data["entry"][0]["changes"][0]["value"]
    value["contacts"].append({"profile": {"name": "Second"}, "wa_id": wa(world, second[0])})
    value["messages"].append({"from": wa(world, second[0]), "id": mid(world, second[1]), "timestamp": str(at),
                              "type": "text", "text": {"body": second[1]}})
    return json.dumps(data).encode()


def with_statuses(body: bytes, *statuses: tuple[str, str, int]) -> bytes:
    """A WhatsApp delivery that also carries receipts ((message name, status, time) each)."""
    data = json.loads(body)
    value = data["entry"][0]["changes"][0]["value"]
    value.setdefault("statuses", []).extend(json.loads(wa_status(msg_id=mid(world_of(body), name), status=status,
                                                                 timestamp=at))["entry"][0]["changes"][0]["value"]
                                            ["statuses"][0] for name, status, at in statuses)
    return json.dumps(data).encode()


def world_of(body: bytes) -> int:
    return int(re.search(rb"wamid\.(\d+)\.", body).group(1))


def reply(world: int, who: str, name: str, status: str, inbox: Inbox) -> Message:
    """Our reply to `who`, with the id the provider answered with."""
    conversation = Conversation.objects.filter(customer__identities__value="+" + wa(world, who)).order_by("-pk").first()
    return Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                                  content=name, provider_message_id=mid(world, name), status=status,
                                  created_at=dt.datetime.fromtimestamp(BASE + 500, dt.UTC))


def build_world(world: int) -> dict:
    """Customers with history, processed the one-by-one way, then the deliveries under test."""
    wa_inbox = whatsapp_inbox(name=f"WhatsApp {world}")
    fb_inbox = messenger_inbox()
    mail_inbox = inbox_create(name=f"Mail {world}", kind="email",
                              config={"address": f"support{world}@toko.example", "inbound_secret": "s" * 12})
    raw = {"content-type": "message/rfc822"}
    with override_settings(WEBHOOK_BATCH_PROCESSING=False):
        for n, who in enumerate("ABCEFGILMNQ"):
            name = "" if who == "F" else f"Customer {who}"
            WebhookEvent.objects.create(inbox=wa_inbox, body=wa_text(
                wa_id=wa(world, who), msg_id=mid(world, f"{who}0"), text="hello", name=name, timestamp=BASE + n),
                headers={})
        WebhookEvent.objects.create(inbox=fb_inbox, body=messaging(
            obj="page", sender=f"{world}9001", mid=f"m.{world}.E-fb", text="on messenger",
            ts=(BASE + 100) * 1000), headers={})
        for who in "JK":
            WebhookEvent.objects.create(inbox=mail_inbox, body=email(world, who, f"{who}0", BASE + 200), headers=raw)
        webhook_events_drain()
    # E's conversation moves to Messenger: the same customer, known there too.
    e = Identity.objects.get(value="+" + wa(world, "E")).customer
    fb_customer = Identity.objects.get(value=f"{world}9001").customer
    Identity.objects.filter(customer=fb_customer).update(customer=e)
    Conversation.objects.filter(customer=fb_customer).delete()
    Conversation.objects.filter(customer=e).update(last_inbox=fb_inbox)
    Customer.objects.filter(pk=fb_customer.pk).delete()
    # Our replies the receipts are about (the provider answered each send with its id).
    for who, name, status in (("A", "R1", "sent"), ("A", "R2", "sent"), ("B", "R3", "sent"), ("B", "R4", "delivered"),
                              ("G", "R5", "sent"), ("C", "R6", "sent")):
        reply(world, who, name, status, wa_inbox)
    Conversation.objects.filter(customer__identities__value="+" + wa(world, "C")).update(
        status=ConversationStatus.SNOOZED, snoozed_until=timezone.now() + dt.timedelta(hours=5))
    Conversation.objects.filter(customer__identities__value="+" + wa(world, "G")).update(
        status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(hours=1))
    # L, M and N were last served three days ago: each message of theirs starts a new conversation.
    Conversation.objects.filter(customer__identities__value__in=["+" + wa(world, who) for who in "LMN"]).update(
        status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=3))
    # From now on the WhatsApp inbox routes to a team: two agents online with room for three new
    # conversations (one offline), so the batch's openings fill them and one waits.
    team = TeamFactory(name=f"Team {world}")
    for name, availability, capacity in (("Ayu", Availability.ONLINE, 1), ("Budi", Availability.ONLINE, 2),
                                         ("Citra", Availability.OFFLINE, 5)):
        add_to_team(UserFactory(full_name=f"{name} {world}", availability=availability,
                                max_concurrent_conversations=capacity), team)
    Inbox.objects.filter(pk=wa_inbox.pk).update(default_team=team)
    # Q's conversation, Budi's, was resolved an hour ago: Q's message reopens it (G's, unassigned,
    # is reopened and auto-assigned one by one).
    Conversation.objects.filter(customer__identities__value="+" + wa(world, "Q")).update(
        status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(hours=1),
        assignee=User.objects.get(full_name=f"Budi {world}"))
    # The mail inbox answers out of hours and is open around the clock: its mail stays in the batch.
    always = [(dt.time(0), dt.time(23, 59, 59, 999999))]
    office_hours_set(inbox=mail_inbox, schedule=dict.fromkeys(range(7), always), holiday_country="",
                     out_of_hours={"": "We are closed."}, auto_reply_enabled=True)

    t = BASE + 600
    bodies = [
        # Q's first message comes first: its reopen counts in Budi's load for the openings after it.
        wa_text(wa_id=wa(world, "Q"), msg_id=mid(world, "Q1"), text="Q1", name="Customer Q", timestamp=t + 92),
        wa_text(wa_id=wa(world, "L"), msg_id=mid(world, "L1"), text="L1", name="Customer L", timestamp=t - 5),
        wa_text(wa_id=wa(world, "M"), msg_id=mid(world, "M1"), text="M1", name="Customer M", timestamp=t - 4),
        wa_text(wa_id=wa(world, "N"), msg_id=mid(world, "N1"), text="N1", name="Customer N", timestamp=t - 3),
        wa_text(wa_id=wa(world, "M"), msg_id=mid(world, "M2"), text="M2", name="Customer M", timestamp=t - 2),
        wa_text(wa_id=wa(world, "A"), msg_id=mid(world, "A1"), text="A1", name="Customer A", timestamp=t),
        wa_text(wa_id=wa(world, "A"), msg_id=mid(world, "A2"), text="A2", name="Customer A", timestamp=t + 30),
        wa_text(wa_id=wa(world, "B"), msg_id=mid(world, "B1"), text="B1", name="Customer B", timestamp=t + 40),
        wa_text(wa_id=wa(world, "A"), msg_id=mid(world, "A3"), text="A3", name="Customer A", timestamp=t + 100),
        wa_text(wa_id=wa(world, "B"), msg_id=mid(world, "B1"), text="B1", name="Customer B", timestamp=t + 40),
        wa_text(wa_id=wa(world, "B"), msg_id=mid(world, "B0"), text="hello", name="Customer B", timestamp=BASE + 1),
        wa_text(wa_id=wa(world, "C"), msg_id=mid(world, "C1"), text="C1", name="Customer C", timestamp=t + 50),
        wa_text(wa_id=wa(world, "D"), msg_id=mid(world, "D1"), text="D1", name="Customer D", timestamp=t + 60),
        wa_text(wa_id=wa(world, "E"), msg_id=mid(world, "E1"), text="E1", name="Customer E", timestamp=t + 70),
        wa_text(wa_id=wa(world, "F"), msg_id=mid(world, "F1"), text="F1", name="Now named", timestamp=t + 80),
        wa_text(wa_id=wa(world, "G"), msg_id=mid(world, "G1"), text="G1", name="Customer G", timestamp=t + 90),
        wa_text(wa_id=wa(world, "Q"), msg_id=mid(world, "Q2"), text="Q2", name="Customer Q", timestamp=t + 93),
        two_messages(world, ("I", "I1"), ("H", "H1"), t + 95),
        wa_text(wa_id=wa(world, "I"), msg_id=mid(world, "I2"), text="I2", name="Customer I", timestamp=t + 96),
        # O is new and nameless, then named: the name is customer_resolve's work, so O goes one by one.
        wa_text(wa_id=wa(world, "O"), msg_id=mid(world, "O1"), text="O1", name="", timestamp=t + 97),
        wa_text(wa_id=wa(world, "O"), msg_id=mid(world, "O2"), text="O2", name="Customer O", timestamp=t + 98),
        # P is new and writes twice: one customer, one conversation.
        wa_text(wa_id=wa(world, "P"), msg_id=mid(world, "P1"), text="P1", name="Customer P", timestamp=t + 99),
        wa_text(wa_id=wa(world, "P"), msg_id=mid(world, "P2"), text="P2", name="Customer P", timestamp=t + 99),
        wa_status(msg_id=mid(world, "A0"), status="read", wa_id=wa(world, "A"), timestamp=t + 110),
        # Receipts: forward only (a late "delivered" after "read" and a repeated "sent" change
        # nothing), a failure with the provider's reason and a read after it, two in one delivery,
        # one about a message we do not know, one about an inbound message (stored by this batch).
        wa_status(msg_id=mid(world, "R1"), status="delivered", timestamp=t + 111),
        wa_status(msg_id=mid(world, "R1"), status="read", timestamp=t + 112),
        wa_status(msg_id=mid(world, "R1"), status="delivered", timestamp=t + 113),
        wa_status(msg_id=mid(world, "R2"), status="failed", timestamp=t + 114,
                  errors=[{"code": 131026, "title": "Message undeliverable"}]),
        wa_status(msg_id=mid(world, "R2"), status="read", timestamp=t + 115),
        with_statuses(wa_status(msg_id=mid(world, "R3"), status="sent", timestamp=t + 116),
                      ("R4", "read", t + 116), ("R3", "delivered", t + 117)),
        wa_status(msg_id=mid(world, "nobody"), status="delivered", timestamp=t + 118),
        wa_status(msg_id=mid(world, "B1"), status="read", timestamp=t + 119),
        # G's message reopens a conversation (one by one) and its delivery carries a failure of R5:
        # the read of R5 after it must wait for it, or the failure would come after the read.
        with_statuses(wa_text(wa_id=wa(world, "G"), msg_id=mid(world, "G2"), text="G2", name="Customer G",
                              timestamp=t + 120), ("R5", "failed", t + 120)),
        wa_status(msg_id=mid(world, "R5"), status="read", timestamp=t + 121),
        wa_status(msg_id=mid(world, "R6"), status="delivered", timestamp=t + 122),
        b"{not json",
        wa_text(wa_id=wa(world, "B"), msg_id=mid(world, "B2"), text="B2", name="Customer B", timestamp=t + 200),
    ]
    for body in bodies:
        WebhookEvent.objects.create(inbox=wa_inbox, body=body, headers={})
    # J's out-of-office answer goes one by one (automatic mail), and J's mail after it with it, in order.
    WebhookEvent.objects.create(inbox=mail_inbox, body=email(world, "J", "Jauto", t + 290, auto=True), headers=raw)
    WebhookEvent.objects.create(inbox=mail_inbox, body=email(world, "J", "J1", t + 300), headers=raw)
    WebhookEvent.objects.create(inbox=mail_inbox, body=email(world, "K", "K1", t + 310, auto=True), headers=raw)
    WebhookEvent.objects.create(inbox=mail_inbox, body=email(world, "J", "J2", t + 320), headers=raw)
    return {"wa": wa_inbox, "fb": fb_inbox, "mail": mail_inbox}


def process(world: int, *, batch: bool, capture) -> tuple[list[tuple], list[str]]:
    created: list[tuple] = []
    applied: list[str] = []
    real_apply, real_statuses = ingest_batch._apply, ingest_batch.message_statuses_apply

    def spy(candidates):
        applied.extend(_strip(c.provider_id, world) for c in candidates)
        return real_apply(candidates)

    def spy_statuses(steps):
        applied.extend(f"{_strip(message.provider_message_id, world)} {status}" for message, status, *_ in steps)
        return real_statuses(steps)

    def on_created(sender, message, conversation, direction, kind, **kwargs):
        created.append((_strip(message.provider_message_id, world), direction, kind))

    def on_opened(sender, conversation, inbox, **kwargs):
        created.append(("opened", _who(conversation, world), inbox.kind, _name(conversation.assignee_id, world)))

    def on_assigned(sender, conversation, assignee_id, previous_assignee_id, team_id, actor_id, **kwargs):
        created.append(("assigned", _who(conversation, world), _name(assignee_id, world),
                        _name(previous_assignee_id, world), team_id == conversation.team_id, actor_id))

    def on_status(sender, message, conversation, status, previous_status, error_code, error_title, **kwargs):
        # message.status: what the listener reads after commit (the step's, not the batch's last)
        created.append(("status", _strip(message.provider_message_id, world), status, previous_status, error_code,
                        error_title, message.status, message.status_changed_at))

    def on_conversation_status(sender, conversation, status, previous_status, change, **kwargs):
        created.append(("conversation status", _who(conversation, world), status, previous_status, change))

    def on_customer(sender, customer, **kwargs):
        identity = Identity.objects.filter(customer=customer).order_by("pk").first()
        created.append(("customer", customer.display_name, _strip(identity.value, world) if identity else None))

    signals = ((events.message_created, on_created), (events.conversation_created, on_opened),
               (events.conversation_assigned, on_assigned), (customer_events.customer_created, on_customer),
               (events.message_status_changed, on_status),
               (events.conversation_status_changed, on_conversation_status))
    for signal, receiver in signals:
        signal.connect(receiver, dispatch_uid="test-batch")
    try:
        with override_settings(WEBHOOK_BATCH_PROCESSING=batch), capture(execute=True), \
                mock.patch.object(ingest_batch, "_apply", spy), \
                mock.patch.object(ingest_batch, "message_statuses_apply", spy_statuses):
            webhook_events_drain()
    finally:
        for signal, _receiver in signals:
            signal.disconnect(dispatch_uid="test-batch")
    return created, applied


def _who(conversation: Conversation, world: int) -> str:
    identity = Identity.objects.filter(customer_id=conversation.customer_id).order_by("pk").first()
    return _strip(identity.value, world) if identity else "?"


def _name(user_id: int | None, world: int) -> str | None:
    return User.objects.get(pk=user_id).full_name.removesuffix(f" {world}") if user_id else None


def _strip(value: str, world: int) -> str:
    for before, after in ((f".{world}.", "."), (f"628131{world}00", "wa"), (f"{world}9001", "psid"),
                          (f".{world}@mail.example", "@mail"), (f"{world}@mail.example", "@mail"),
                          (f"support{world}@", "support@"), (f"Mail {world}", "Mail")):
        value = value.replace(before, after)
    return value


def snapshot(world: int, inboxes: dict, since_event: int, since_live: int) -> dict:
    out: dict = {"customers": {}, "deliveries": []}
    refs = {f"inbox:{inbox.pk}": name for name, inbox in inboxes.items()}  # an identity's source_ref
    for who in WHO:
        identity = Identity.objects.filter(value=identity_value(world, who)).select_related("customer").first()
        if identity is None:
            out["customers"][who] = None
            continue
        customer = identity.customer
        conversations = []
        for conversation in Conversation.objects.filter(customer=customer).order_by("pk"):
            conversations.append({
                "status": conversation.status,
                "assignee": _name(conversation.assignee_id, world),
                "team": conversation.team.name.removesuffix(f" {world}") if conversation.team_id else None,
                "last_inbox": conversation.last_inbox.kind if conversation.last_inbox else None,
                "last_message_at": conversation.last_message_at,
                "last_inbound_at": conversation.last_inbound_at,
                "inboxes": sorted(i.kind for i in conversation.inboxes.all()),
                "messages": [
                    (_strip(m.provider_message_id, world), m.content, m.direction, m.sender, m.status, m.created_at,
                     m.status_changed_at, m.error_code, m.error_title,
                     _strip(json.dumps(m.data, sort_keys=True), world), m.attachments, m.reply_to_provider_id,
                     m.webhook_event_id is not None)
                    for m in conversation.messages.order_by("pk")
                ],
                # The batch pushes its receipts' updates after its messages, one by one they come
                # as the deliveries did: each kind keeps its order (the updates are about other
                # messages, already on the agent's screen).
                **{key: [
                    (e.event, sorted(re.sub(r"\d+", "N", g) for g in e.groups), e.payload.get("message", {}).get("content"))
                    for e in LiveEvent.objects.filter(  # an assignment is for the agent's sockets only
                        Q(conversation_id=conversation.pk) | Q(payload__conversation__id=conversation.pk),
                        pk__gt=since_live).order_by("pk")
                    if (e.event == "channels.message.updated") == (key == "live_updates")
                ] for key in ("live", "live_updates")},
            })
        out["customers"][who] = {
            "display_name": customer.display_name,
            "last_seen_at": customer.last_seen_at,
            "identities": sorted((i.kind, _strip(i.value, world), i.verified, i.origin, i.source, i.first_seen_at,
                                  i.last_seen_at, refs.get(i.source_ref, i.source_ref))
                                 for i in customer.identities.all()),
            "conversations": conversations,
            "timeline": [
                (e.kind, e.channel, e.title, e.body, e.occurred_at, e.data.get("direction"))
                for e in TimelineEntry.objects.filter(customer=customer).order_by("occurred_at", "kind", "body")
            ],
        }
    for event in WebhookEvent.objects.filter(pk__gt=since_event, inbox__in=inboxes.values()).order_by("pk"):
        out["deliveries"].append((event.status, event.attempts, event.last_error.split(":")[0]))
    return out


def test_the_batch_path_stores_exactly_what_the_one_by_one_path_stores(django_capture_on_commit_callbacks):
    results = {}
    for world, batch in ((1, False), (2, True)):
        since_event = WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        inboxes = build_world(world)
        since_live = LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        created, applied = process(world, batch=batch, capture=django_capture_on_commit_callbacks)
        results[world] = (snapshot(world, inboxes, since_event, since_live), sorted(created), applied)

    one_by_one, batched = results[1], results[2]
    assert batched[0]["customers"] == one_by_one[0]["customers"]
    assert batched[0]["deliveries"] == one_by_one[0]["deliveries"]
    assert batched[1] == one_by_one[1]
    # The scenario is not trivial: L, M and N starting conversations, A's three messages, B's new
    # ones, the new customers D, H and P, Q reopening an assigned conversation, I (one of I's
    # messages shares a delivery with H) and most receipts went the batch way; all else took the
    # other: duplicates (no-ops either way), the snoozed, switching and unnamed customers, G
    # (reopening an unassigned conversation), O (new, named by a later message), the automatic
    # e-mail of the new K, J's automatic answer and J's mails after it, the receipts that share
    # G's delivery or wait for it, the broken body.
    assert one_by_one[2] == []
    assert batched[2] == ["wamid.Q1", "wamid.L1", "wamid.M1", "wamid.N1", "wamid.M2", "wamid.A1", "wamid.A2",
                          "wamid.B1", "wamid.A3", "wamid.D1", "wamid.Q2", "wamid.I1", "wamid.H1", "wamid.I2", "wamid.P1",
                          "wamid.P2", "wamid.B2",
                          # the receipts (about messages stored before the batch; R5's wait for G's delivery)
                          "wamid.A0 read", "wamid.R1 delivered", "wamid.R1 read", "wamid.R1 delivered",
                          "wamid.R2 failed", "wamid.R2 read", "wamid.R3 sent", "wamid.R4 read", "wamid.R3 delivered",
                          "wamid.R6 delivered"]
    replies = {m[0]: m[4:9:] for who in "ABG" for c in batched[0]["customers"][who]["conversations"]
               for m in c["messages"] if m[2] == "outbound"}
    assert {name: (row[0], row[3]) for name, row in replies.items()} == {
        "wamid.R1": ("read", ""), "wamid.R2": ("read", "131026"), "wamid.R3": ("delivered", ""),
        "wamid.R4": ("read", ""), "wamid.R5": ("read", "")}
    # L, M and N each started a conversation in the batch, assigned as one by one: Q's reopen came
    # first and counts in Budi's load, so Ayu is full after L, Budi after M, and N, D (new, in the
    # batch after them) and G (reopened, one by one after the batch) wait.
    assignees = {who: [(c["status"], c["assignee"], c["team"]) for c in batched[0]["customers"][who]["conversations"]]
                 for who in "LMNDGQ"}
    assert assignees == {
        "L": [("resolved", None, None), ("open", "Ayu", "Team")],
        "M": [("resolved", None, None), ("open", "Budi", "Team")],
        "N": [("resolved", None, None), ("open", None, "Team")],
        "D": [("open", None, "Team")],
        "G": [("open", None, None)],
        "Q": [("open", "Budi", None)],
    }
    assert [m[0] for m in batched[0]["customers"]["Q"]["conversations"][0]["messages"]] == [
        "wamid.Q0", "wamid.Q1", "wamid.Q2"]
    assert [m[0] for m in batched[0]["customers"]["M"]["conversations"][1]["messages"]] == ["wamid.M1", "wamid.M2"]
    assert [m[0] for m in batched[0]["customers"]["A"]["conversations"][0]["messages"] if m[2] == "inbound"] == [
        "wamid.A0", "wamid.A1", "wamid.A2", "wamid.A3"]
    assert batched[0]["deliveries"][-6] == ("parked", 1, "ParseError")
    # J's automatic answer (one by one) came before J's two mails: they followed it, in order.
    assert [m[0] for m in batched[0]["customers"]["J"]["conversations"][0]["messages"]] == [
        "J0@mail", "Jauto@mail", "J1@mail", "J2@mail"]
    assert Message.objects.filter(provider_message_id=mid(2, "B1")).count() == 1


def drain_statements(capture) -> int:
    """Drain what waits; how many statements it took."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx, capture(execute=True):
        webhook_events_drain()
    # (the subscribed webhook types are cached for a second: whether they are read is timing)
    return len([q for q in ctx.captured_queries if "integrations_webhooksubscription" not in q["sql"]])


def test_a_batch_uses_a_fixed_number_of_statements_whatever_its_size(django_assert_max_num_queries,
                                                                     django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    customers = [f"62813500{n:04d}" for n in range(30)]
    with override_settings(WEBHOOK_BATCH_PROCESSING=False), django_capture_on_commit_callbacks(execute=True):
        for n, number in enumerate(customers):
            WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id=number, msg_id=f"wamid.first{n}",
                                                                  timestamp=BASE + n), headers={})
        webhook_events_drain()

    def deliver(count: int, tag: str, at: int = BASE + 600, first: int = 0) -> int:
        for n in range(count):
            WebhookEvent.objects.create(inbox=inbox, body=wa_text(
                wa_id=customers[first + n], msg_id=f"wamid.{tag}{n}", text=f"{tag} {n}", timestamp=at + n), headers={})
        return drain_statements(django_capture_on_commit_callbacks)

    small, large = deliver(3, "small"), deliver(30, "large")
    assert Message.objects.filter(provider_message_id__startswith="wamid.large").count() == 30
    # One statement per step of the batch, whether it carries 3 messages or 30.
    assert large == small, (small, large)

    # And when each message starts a conversation, auto-assigned in a team: still a fixed number.
    team = TeamFactory()
    add_to_team(UserFactory(availability=Availability.ONLINE, max_concurrent_conversations=100), team)
    Inbox.objects.filter(pk=inbox.pk).update(default_team=team)

    def opening(count: int, tag: str) -> int:
        Conversation.objects.update(status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=2))
        return deliver(count, tag)

    small, large = opening(3, "open-small"), opening(30, "open-large")
    opened = Conversation.objects.exclude(status=ConversationStatus.RESOLVED)
    assert opened.count() == 30 and not opened.filter(assignee=None).exists()
    assert large == small, (small, large)

    # And when each message reopens its assigned conversation, resolved an hour ago (customers
    # of alike histories in each round: the conversations' UPDATE is one per set of changed fields).
    def reopening(count: int, tag: str, first: int) -> int:
        opened.update(status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(hours=1))
        return deliver(count, tag, at=int(timezone.now().timestamp()) - 600, first=first)

    conversations_before = Conversation.objects.count()
    small, large = reopening(3, "reopen-small", first=27), reopening(27, "reopen-large", first=0)
    assert Conversation.objects.count() == conversations_before
    assert Conversation.objects.exclude(status=ConversationStatus.RESOLVED).count() == 27
    assert large == small, (small, large)

    # And when each message comes from a customer nobody knew yet: still a fixed number.
    def newcomers(count: int, tag: str) -> int:
        for n in range(count):
            WebhookEvent.objects.create(inbox=inbox, body=wa_text(
                wa_id=f"62813700{tag}{n:03d}", msg_id=f"wamid.{tag}{n}", timestamp=BASE + 900 + n), headers={})
        return drain_statements(django_capture_on_commit_callbacks)

    customers_before = Customer.objects.count()
    small, large = newcomers(3, "1"), newcomers(30, "2")
    assert Customer.objects.count() == customers_before + 33
    assert Identity.objects.filter(value__startswith="+628137002").count() == 30
    assert large == small, (small, large)

    # And receipts about our replies: still a fixed number.
    conversation = Conversation.objects.exclude(status=ConversationStatus.RESOLVED).first()
    for n in range(30):
        Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                               content=f"reply {n}", provider_message_id=f"wamid.reply{n}", status="sent")

    def receipts(count: int, status: str) -> int:
        for n in range(count):
            WebhookEvent.objects.create(inbox=inbox, body=wa_status(msg_id=f"wamid.reply{n}", status=status,
                                                                    timestamp=BASE + 950), headers={})
        return drain_statements(django_capture_on_commit_callbacks)

    small, large = receipts(3, "delivered"), receipts(30, "read")
    assert Message.objects.filter(provider_message_id__startswith="wamid.reply", status="read").count() == 30
    assert large == small, (small, large)


def test_a_look_that_finds_nothing_waiting_is_one_statement_and_no_claim(django_capture_on_commit_callbacks):
    """A drain ends with looks that find nothing; each is one indexed SELECT outside a
    transaction, not a claim (BEGIN, SELECT … FOR UPDATE, COMMIT)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    inbox = whatsapp_inbox()
    WebhookEvent.objects.create(inbox=inbox, status=WebhookEvent.Status.PROCESSED, body=b"{}", headers={})
    with CaptureQueriesContext(connection) as ctx:
        assert ingest_batch.webhook_events_batch_process() == (0, [])
    assert len(ctx.captured_queries) == 1, ctx.captured_queries
    assert "FOR UPDATE" not in ctx.captured_queries[0]["sql"]
    assert ingest_batch.deliveries_waiting() is False
    waiting = WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id="628137000001", msg_id="wamid.look"),
                                          headers={})
    assert ingest_batch.deliveries_waiting() is True
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_drain() == 1
    waiting.refresh_from_db()
    assert waiting.status == WebhookEvent.Status.PROCESSED
    assert ingest_batch.deliveries_waiting() is False


def test_the_look_asks_the_database_the_claim_writes_to_never_a_read_replica():
    """Routed to a lagging replica, the look would answer "nothing waiting" while deliveries wait
    on the primary, and the drain would end without them."""
    WebhookEvent.objects.create(inbox=whatsapp_inbox(), body=b"{}", headers={})
    with mock.patch.object(ingest_batch.router, "db_for_read", side_effect=AssertionError("read route used")):
        assert ingest_batch.deliveries_waiting() is True


def test_a_conversation_opened_meanwhile_sends_the_batch_the_one_by_one_way(django_capture_on_commit_callbacks,
                                                                          caplog):
    """Between the batch's look at a customer's conversations and its INSERT of a new one, another
    writer opened one for them (through another of their identities, which the batch did not
    lock): the one-unresolved-conversation constraint fails the batch, nothing of it is kept
    (here the other writer's row goes with it: it wrote inside the batch's savepoint), and the
    one-by-one path stores the message."""
    inbox = whatsapp_inbox()
    with override_settings(WEBHOOK_BATCH_PROCESSING=False), django_capture_on_commit_callbacks(execute=True):
        WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id="628136100001", msg_id="wamid.r0",
                                                              timestamp=BASE), headers={})
        webhook_events_drain()
    customer = Identity.objects.get(value="+628136100001").customer
    Conversation.objects.update(status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=2))
    WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id="628136100001", msg_id="wamid.r1",
                                                          timestamp=BASE + 60), headers={})
    real_open = ingest_batch.conversations_open

    def concurrent_writer_first(conversations, **kwargs):
        Conversation.objects.create(customer=customer, last_inbox=inbox)
        return real_open(conversations, **kwargs)

    with mock.patch.object(ingest_batch, "conversations_open", concurrent_writer_first), \
            django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_drain() == 1

    unresolved = Conversation.objects.exclude(status=ConversationStatus.RESOLVED).get()
    assert list(unresolved.messages.values_list("provider_message_id", flat=True)) == ["wamid.r1"]
    assert WebhookEvent.objects.order_by("-pk").values_list("status", flat=True)[0] == WebhookEvent.Status.PROCESSED
    assert Conversation.objects.filter(customer=customer).count() == 2  # the resolved one and the new one
    assert "processing them one by one" in caplog.text and "IntegrityError" in caplog.text


def test_a_new_identity_stored_meanwhile_sends_the_batch_the_one_by_one_way(django_capture_on_commit_callbacks,
                                                                           caplog):
    """Another writer stored the newcomer's identity between the batch's lookup and its INSERT:
    the unique constraint fails the batch, and the one-by-one path (customer_resolve) stores the
    message on one customer."""
    inbox = whatsapp_inbox()
    WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id="628136200001", msg_id="wamid.n1", timestamp=BASE),
                                headers={})
    real_create = ingest_batch.customers_create

    def concurrent_writer_first(created):
        Identity.objects.create(customer=Customer.objects.create(), kind="phone", value="+628136200001")
        return real_create(created)

    with mock.patch.object(ingest_batch, "customers_create", concurrent_writer_first), \
            django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_drain() == 1

    identity = Identity.objects.get(value="+628136200001")
    assert list(Message.objects.filter(conversation__customer=identity.customer).values_list(
        "provider_message_id", flat=True)) == ["wamid.n1"]
    assert "processing them one by one" in caplog.text and "IntegrityError" in caplog.text


def test_a_receipt_that_overtook_its_send_is_retried_and_the_others_apply(django_capture_on_commit_callbacks):
    """While a reply on the inbox is still queued, a receipt about a message we do not know may
    have overtaken the send recording its id: its delivery goes the one-by-one way, which fails
    it for a retry, as before. The other receipts of the batch apply set-based, in one UPDATE."""
    world = 3
    inbox = whatsapp_inbox()
    with override_settings(WEBHOOK_BATCH_PROCESSING=False), django_capture_on_commit_callbacks(execute=True):
        WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id=wa(world, "A"), msg_id=mid(world, "A0"),
                                                              timestamp=BASE), headers={})
        webhook_events_drain()
    known = reply(world, "A", "R1", "sent", inbox)
    Message.objects.create(conversation=known.conversation, inbox=inbox, direction="outbound", sender="agent",
                           content="on its way", status="queued")
    for name, status in (("R0", "delivered"), ("R1", "delivered"), ("R1", "read")):
        WebhookEvent.objects.create(inbox=inbox, body=wa_status(msg_id=mid(world, name), status=status,
                                                                timestamp=BASE + 60), headers={})
    applied = []
    real = ingest_batch.message_statuses_apply

    def spy(steps):
        applied.extend((m.provider_message_id, status) for m, status, *_ in steps)
        return real(steps)

    with mock.patch.object(ingest_batch, "message_statuses_apply", spy), \
            django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert webhook_events_drain() == 3

    assert applied == [(mid(world, "R1"), "delivered"), (mid(world, "R1"), "read")]
    known.refresh_from_db()
    assert known.status == "read"
    rows = list(WebhookEvent.objects.order_by("-pk").values_list("status", "attempts", "last_error")[:3])[::-1]
    # failed for a retry (tests run Celery eagerly: the retries come at once, and it ends parked)
    assert rows[0][0] in ("failed", "parked") and "arrived before the send was recorded" in rows[0][2]
    assert rows[1:] == [("processed", 1, ""), ("processed", 1, "")]
    assert callbacks  # the live pushes and domain events, after commit


def test_a_message_on_a_closed_inbox_that_answers_out_of_hours_gets_its_reply(django_capture_on_commit_callbacks):
    """The batch leaves a message on a closed inbox with an out-of-hours reply to the one-by-one
    path, which answers it; on the same inbox while open, the messages stay in the batch."""
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id="628136300001", msg_id="wamid.h0",
                                                              timestamp=BASE), headers={})
        webhook_events_drain()
    applied = []
    real_apply = ingest_batch._apply

    def spy(candidates):
        applied.extend(c.provider_id for c in candidates)
        return real_apply(candidates)

    always = [(dt.time(0), dt.time(23, 59, 59, 999999))]
    for name, schedule in (("open", dict.fromkeys(range(7), always)), ("closed", {})):
        office_hours_set(inbox=inbox, schedule=schedule, holiday_country="", out_of_hours={"": "We are closed."},
                         auto_reply_enabled=True)
        WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id="628136300001", msg_id=f"wamid.{name}",
                                                              timestamp=int(timezone.now().timestamp())), headers={})
        with mock.patch.object(ingest_batch, "_apply", spy), django_capture_on_commit_callbacks(execute=True):
            assert webhook_events_drain() == 1

    assert applied == ["wamid.open"]
    assert list(Message.objects.filter(sender="system").values_list("content", flat=True)) == ["We are closed."]


def test_a_customer_who_starts_a_conversation_and_writes_on_another_channel_in_one_batch_goes_one_by_one(
        django_capture_on_commit_callbacks):
    """The second message is a channel switch of the conversation the first one starts (or
    reopens): conversation_continue records it, so both messages take the one-by-one path, in
    order, into one conversation."""
    wa_inbox, fb_inbox = whatsapp_inbox(), messenger_inbox()
    with override_settings(WEBHOOK_BATCH_PROCESSING=False), django_capture_on_commit_callbacks(execute=True):
        WebhookEvent.objects.create(inbox=wa_inbox, body=wa_text(wa_id="628136400001", msg_id="wamid.s0",
                                                                 timestamp=BASE), headers={})
        WebhookEvent.objects.create(inbox=fb_inbox, body=messaging(obj="page", sender="64001", mid="m.s0", text="hi",
                                                                   ts=BASE * 1000), headers={})
        webhook_events_drain()
    customer = Identity.objects.get(value="+628136400001").customer
    other = Identity.objects.get(value="64001").customer
    Identity.objects.filter(customer=other).update(customer=customer)
    Conversation.objects.filter(customer=other).delete()
    other.delete()
    agent = UserFactory()
    applied = []
    real_apply = ingest_batch._apply

    def spy(candidates):
        applied.extend(c.provider_id for c in candidates)
        return real_apply(candidates)

    for resolved_ago, tag in ((dt.timedelta(days=3), "new"), (dt.timedelta(hours=1), "reopen")):
        Conversation.objects.filter(customer=customer).update(status=ConversationStatus.RESOLVED,
                                                              resolved_at=timezone.now() - resolved_ago,
                                                              assignee=agent)  # a reopen needs no auto-assignment
        now = int(timezone.now().timestamp())
        WebhookEvent.objects.create(inbox=wa_inbox, body=wa_text(wa_id="628136400001", msg_id=f"wamid.{tag}",
                                                                 timestamp=now - 2), headers={})
        WebhookEvent.objects.create(inbox=fb_inbox, body=messaging(obj="page", sender="64001", mid=f"m.{tag}",
                                                                   text=tag, ts=(now - 1) * 1000), headers={})
        with mock.patch.object(ingest_batch, "_apply", spy), django_capture_on_commit_callbacks(execute=True):
            assert webhook_events_drain() == 2
        conversation = Conversation.objects.get(customer=customer, status=ConversationStatus.OPEN)
        assert list(conversation.messages.order_by("pk").values_list("provider_message_id", flat=True))[-2:] == [
            f"wamid.{tag}", f"m.{tag}"]
        assert conversation.last_inbox_id == fb_inbox.pk
        assert sorted(conversation.inboxes.values_list("kind", flat=True)) == ["messenger", "whatsapp"]
    assert applied == []


def test_a_message_after_one_that_goes_one_by_one_whole_follows_it_also_from_another_channel(
        django_capture_on_commit_callbacks):
    """An automatic e-mail never becomes a batch candidate, so the batch knows its sender only by
    the identity: a later message of the same customer, here on WhatsApp, follows it one by one
    instead of being stored before it."""
    wa_inbox = whatsapp_inbox()
    mail_inbox = inbox_create(name="Mail order", kind="email",
                              config={"address": "support78@toko.example", "inbound_secret": "s" * 12})
    with override_settings(WEBHOOK_BATCH_PROCESSING=False), django_capture_on_commit_callbacks(execute=True):
        WebhookEvent.objects.create(inbox=wa_inbox, body=wa_text(wa_id="628136500001", msg_id="wamid.o0",
                                                                 timestamp=BASE), headers={})
        webhook_events_drain()
    customer = Identity.objects.get(value="+628136500001").customer
    Identity.objects.create(customer=customer, kind="email", value="x78@mail.example", verified=True)
    WebhookEvent.objects.create(inbox=mail_inbox, body=email(78, "X", "Xauto", BASE + 10, auto=True),
                                headers={"content-type": "message/rfc822"})
    WebhookEvent.objects.create(inbox=wa_inbox, body=wa_text(wa_id="628136500001", msg_id="wamid.o1",
                                                             timestamp=BASE + 20), headers={})
    applied = []
    real_apply = ingest_batch._apply

    def spy(candidates):
        applied.extend(c.provider_id for c in candidates)
        return real_apply(candidates)

    with mock.patch.object(ingest_batch, "_apply", spy), django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_drain() == 2
    assert applied == []
    conversation = Conversation.objects.get(customer=customer)
    assert list(conversation.messages.order_by("pk").values_list("provider_message_id", flat=True)) == [
        "wamid.o0", "Xauto.78@mail.example", "wamid.o1"]


def test_a_batch_the_planner_cannot_handle_is_processed_one_by_one(django_capture_on_commit_callbacks):
    """A failure while planning or applying the batch costs nothing: every delivery goes the
    one-by-one way, which stores it (or records its error against it)."""
    inbox = whatsapp_inbox()
    for n in range(3):
        WebhookEvent.objects.create(inbox=inbox, body=wa_text(wa_id=f"62813600{n:04d}", msg_id=f"wamid.p{n}",
                                                              timestamp=BASE + n), headers={})
    with mock.patch.object(ingest_batch, "_resolve_customers", side_effect=RuntimeError("planner bug")), \
            django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_drain() == 3
    assert sorted(Message.objects.values_list("provider_message_id", flat=True)) == ["wamid.p0", "wamid.p1", "wamid.p2"]
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_a_delivery_the_batch_hands_on_is_parsed_once(django_capture_on_commit_callbacks):
    """The planner's parse is handed to the one-by-one path: a new sender's e-mail (parsing a
    MIME message is most of its cost) is parsed once, not once per path."""
    from channels_app.adapters.email import EmailAdapter

    mail_inbox = inbox_create(name="Mail parse", kind="email",
                              config={"address": "support77@toko.example", "inbound_secret": "s" * 12})
    for n, who in enumerate("JK"):
        WebhookEvent.objects.create(inbox=mail_inbox, body=email(77, who, f"{who}9", BASE + n),
                                    headers={"content-type": "message/rfc822"})
    real_parse = EmailAdapter.parse
    with mock.patch.object(EmailAdapter, "parse", autospec=True, side_effect=real_parse) as parse, \
            django_capture_on_commit_callbacks(execute=True):
        assert webhook_events_drain() == 2
    assert Message.objects.filter(inbox=mail_inbox).count() == 2  # new senders: the one-by-one path
    assert parse.call_count == 2


@pytest.mark.django_db
def test_the_webhook_queue_table_is_vacuumed_after_a_few_thousand_dead_rows():
    """Each processed delivery leaves a dead row and a dead entry in the waiting index that the
    claim reads; left to PostgreSQL's default (20 % of the table) they slowed every claim."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("autovacuum settings are PostgreSQL's (SQLite has no autovacuum)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'channels_app_webhookevent'")
        options = set(cursor.fetchone()[0] or [])
    assert {"autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=2000",
            "autovacuum_vacuum_cost_delay=0"} <= options
