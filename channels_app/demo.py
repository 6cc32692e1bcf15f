"""Demo data for channels: one inbox of every kind and conversations that cross channels,
canned responses (English and Bahasa Indonesia, with variables), labels on some conversations,
and office hours (Mon–Fri 08:00–17:00 and Sat 09:00–13:00 Asia/Jakarta, closed on Indonesian
public holidays) on the inboxes.

Called by `seed_demo`; safe to run again (inboxes are found by name, demo messages by their
provider ids, canned responses by shortcut, labels by name; office hours are only added to an
inbox that has none). Provider secrets are random per installation: demo inboxes cannot talk to
the real providers until an admin enters real credentials.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Team
from channels_app.models import (
    CannedResponse,
    Inbox,
    InboxKind,
    Label,
    Message,
    MessageDirection,
    MessageSender,
    MessageStatus,
    OfficeHours,
)
from channels_app.services import (
    canned_response_create,
    conversation_continue,
    conversation_labels_set,
    conversation_status_set,
    inbox_create,
    label_create,
    message_record,
    message_status_update,
    office_hours_set,
)
from customers.services import IdentityInput, customer_resolve


def _token(n: int = 24) -> str:
    return secrets.token_urlsafe(n)


def _demo_configs() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(name, kind, team name, settings)"""
    return [
        ("WhatsApp Toko Jakarta", InboxKind.WHATSAPP, "Sales", {
            "phone_number_id": "106540352242922", "access_token": _token(), "app_secret": _token(16),
            "verify_token": _token(12)}),
        ("Facebook Page", InboxKind.MESSENGER, "Support", {
            "page_id": "108123456789012", "page_access_token": _token(), "app_secret": _token(16),
            "verify_token": _token(12)}),
        ("Instagram @tokodemo", InboxKind.INSTAGRAM, "Sales", {
            "instagram_account_id": "17841400000000123", "access_token": _token(), "app_secret": _token(16),
            "verify_token": _token(12)}),
        ("Telegram bot", InboxKind.TELEGRAM, "Support", {
            "bot_token": f"7000000001:{secrets.token_urlsafe(26)[:35]}", "secret_token": secrets.token_hex(16)}),
        ("LINE Official Account", InboxKind.LINE, "Support", {
            "channel_access_token": _token(), "channel_secret": secrets.token_hex(16)}),
        ("SMS (Twilio)", InboxKind.TWILIO_SMS, "Support", {
            "account_sid": "AC" + secrets.token_hex(16), "auth_token": secrets.token_hex(16),
            "from_number": "+14155550100"}),
        ("Email halo@tokodemo.test", InboxKind.EMAIL, "Support", {
            "address": "halo@tokodemo.test", "inbound_secret": _token()}),
        ("Web chat", InboxKind.WEBCHAT, "Sales", {
            "allowed_origins": ["https://tokodemo.test"], "identity_secret": _token(),
            "greeting": "Halo! Ada yang bisa kami bantu?"}),
        ("API (integrations)", InboxKind.API, "Support", {
            "callback_url": "https://integrations.tokodemo.test/cx-callback", "secret": _token()}),
        ("Call center", InboxKind.VOICE, "Support", {}),
        ("Toko Kemang (store visits)", InboxKind.IN_PERSON, "Sales", {}),
    ]


def seed_demo_inboxes(stdout=None) -> dict[str, Inbox]:
    teams = {team.name: team for team in Team.objects.filter(name__in=["Sales", "Support"])}
    inboxes: dict[str, Inbox] = {}
    for name, kind, team_name, config in _demo_configs():
        inbox = Inbox.objects.filter(name=name, kind=kind).first()
        if inbox is None:
            inbox = inbox_create(name=name, kind=kind, config=config, default_team=teams.get(team_name))
            if stdout is not None:
                where = "logged by agents or POST /api/v1/inboxes/<id>/messages/" if kind in (
                    InboxKind.VOICE, InboxKind.IN_PERSON) else inbox.webhook_url
                stdout.write(f"  inbox {inbox.get_kind_display():<20} {where}")
        inboxes[kind] = inbox
    return inboxes


def _demo_phone(index: int) -> str:
    """The phone number customers.demo gives its index-th demo customer."""
    return f"+62812{index:04d}{7000 + index:04d}"


def _demo_customer(name: str, identities: list[IdentityInput]):
    """The demo customer holding these identities (customers.demo's, when it ran first), with
    this inbox's platform ids attached. Business-asserted: the seed is the business speaking."""
    return customer_resolve(identities=identities, source="demo", display_name=name, asserted_by="business").customer


def _inbound(inbox: Inbox, customer, pid: str, text: str, at: dt.datetime, **data):
    conversation = conversation_continue(customer=customer, inbox=inbox, at=at).conversation
    message, _ = message_record(conversation=conversation, inbox=inbox, direction=MessageDirection.INBOUND,
                                sender=MessageSender.CUSTOMER, content=text, provider_message_id=pid,
                                created_at=at, data=data)
    return conversation, message


def _outbound(conversation, inbox: Inbox, pid: str, text: str, at: dt.datetime, status: str, **data):
    message, _ = message_record(conversation=conversation, inbox=inbox, direction=MessageDirection.OUTBOUND,
                                sender=MessageSender.AGENT, author=conversation.assignee, content=text,
                                provider_message_id=pid, created_at=at, status=MessageStatus.SENT, data=data)
    Message.objects.filter(pk=message.pk).update(sent_at=at)
    if status != MessageStatus.SENT:
        message_status_update(inbox=inbox, provider_message_id=pid, status=status, at=at)
    return message


# (shortcut, language, title, body): the same answers in Bahasa Indonesia and English.
DEMO_CANNED_RESPONSES = [
    ("salam", "id", "Salam pembuka",
     "Halo Kak {{customer.first_name}}, saya {{agent.first_name}} dari Toko Demo. Ada yang bisa saya bantu?"),
    ("greeting", "en", "Greeting",
     "Hi {{customer.first_name}}, this is {{agent.first_name}} from Toko Demo. How can I help?"),
    ("terima-kasih", "id", "Terima kasih",
     "Terima kasih, Kak {{customer.first_name}}! Senang bisa membantu. Salam, {{agent.first_name}}"),
    ("thanks", "en", "Thank you",
     "Thank you, {{customer.first_name}}! Glad we could help. Best regards, {{agent.first_name}}"),
    ("retur", "id", "Cara retur",
     "Kak {{customer.first_name}}, barang bisa diretur dalam 7 hari setelah diterima. Balas dengan nomor "
     "pesanan, nanti kami kirim label retur ke email Kakak."),
    ("returns", "en", "How to return an item",
     "{{customer.first_name}}, items can be returned within 7 days of delivery. Reply with your order number "
     "and we will email you a return label."),
    ("jam-buka", "id", "Jam buka",
     "Kami buka Senin–Jumat 08.00–17.00 WIB dan Sabtu 09.00–13.00 WIB; tutup pada hari libur nasional."),
    ("hours", "en", "Opening hours",
     "We are open Mon–Fri 08:00–17:00 and Sat 09:00–13:00 (Jakarta time), closed on public holidays."),
]

# (name, colour, description)
DEMO_LABELS = [
    ("vip", "#b45309", "Loyal, high-value customer"),
    ("pembayaran", "#2563eb", "Payment question or confirmation"),
    ("retur", "#dc2626", "Return or exchange"),
    ("garansi", "#059669", "Warranty claim"),
]

# Demo conversation (by one of its messages' provider id) → its labels.
DEMO_CONVERSATION_LABELS = {
    "demo-wa-1": ["pembayaran", "vip"],
    "demo-web-1": ["retur"],
    "demo-call-1": ["garansi"],
}

# Every touchpoint but the API channel (integrations answer around the clock).
DEMO_OFFICE_HOURS_KINDS = [kind for kind in InboxKind.values if kind != InboxKind.API]
DEMO_SCHEDULE = {**{day: [(dt.time(8), dt.time(17))] for day in range(5)}, 5: [(dt.time(9), dt.time(13))]}
DEMO_OUT_OF_HOURS = {
    "id": "Terima kasih sudah menghubungi Toko Demo. Kami buka Senin–Jumat 08.00–17.00 WIB dan Sabtu "
          "09.00–13.00 WIB (tutup pada hari libur nasional); pesan Kakak akan kami balas saat buka.",
    "": "Thanks for contacting Toko Demo. We are open Mon–Fri 08:00–17:00 and Sat 09:00–13:00 (Jakarta time), "
        "closed on Indonesian public holidays; we will reply when we are back.",
}


def seed_demo_canned_responses() -> int:
    existing = set(CannedResponse.objects.values_list("shortcut", flat=True))
    created = 0
    for shortcut, language, title, body in DEMO_CANNED_RESPONSES:
        if shortcut not in existing:
            canned_response_create(shortcut=shortcut, title=title, body=body, language=language)
            created += 1
    return created


def seed_demo_labels() -> int:
    existing = set(Label.objects.values_list("name", flat=True))
    created = 0
    for name, colour, description in DEMO_LABELS:
        if name not in existing:
            label_create(name=name, colour=colour, description=description)
            created += 1
    return created


def seed_demo_office_hours(inboxes: dict[str, Inbox]) -> int:
    """Office hours on every demo inbox that has none (an admin's changes are kept)."""
    created = 0
    for kind in DEMO_OFFICE_HOURS_KINDS:
        inbox = inboxes.get(kind)
        if inbox is None or OfficeHours.objects.filter(inbox=inbox).exists():
            continue
        office_hours_set(inbox=inbox, schedule=DEMO_SCHEDULE, time_zone="Asia/Jakarta", holiday_country="ID",
                         out_of_hours=DEMO_OUT_OF_HOURS, auto_reply_enabled=True, greeting_enabled=False)
        created += 1
    return created


def _label_demo_conversations() -> None:
    """Labels on the demo conversations that carry none yet."""
    for provider_id, names in DEMO_CONVERSATION_LABELS.items():
        message = Message.objects.filter(provider_message_id=provider_id).select_related("conversation").first()
        if message is not None and not message.conversation.labels.exists():
            conversation_labels_set(conversation=message.conversation, labels=names)


@transaction.atomic
def seed_demo_channels(stdout=None) -> None:
    """One inbox of every kind, demo customers whose conversations span channels, canned
    responses, labels and office hours."""
    if stdout is not None:
        stdout.write("Channels:")
    inboxes = seed_demo_inboxes(stdout)
    canned = seed_demo_canned_responses()
    labels = seed_demo_labels()
    hours = seed_demo_office_hours(inboxes)
    if stdout is not None and (canned or labels or hours):
        stdout.write(f"  {canned} canned responses (/salam, /greeting, …), {labels} labels, office hours on "
                     f"{hours} inboxes (Mon–Fri 08:00–17:00, Sat 09:00–13:00 Asia/Jakarta, ID public holidays)")
    if not Message.objects.filter(provider_message_id="demo-wa-1").exists():
        _seed_demo_conversations(inboxes, stdout)
    _label_demo_conversations()


def _seed_demo_conversations(inboxes: dict[str, Inbox], stdout=None) -> None:
    now = timezone.now()
    wa, ig, tg = inboxes[InboxKind.WHATSAPP], inboxes[InboxKind.INSTAGRAM], inboxes[InboxKind.TELEGRAM]

    # Rina writes on WhatsApp, follows up on Instagram, then on Telegram: ONE conversation.
    rina = _demo_customer("Rina Wijaya", [
        IdentityInput("phone", _demo_phone(5), verified=True),
        IdentityInput("instagram", "17841459000000001", verified=True, scope=str(ig.uuid)),
        IdentityInput("telegram", "530000001", verified=True, scope=str(tg.uuid)),
    ])
    conversation, _ = _inbound(wa, rina, "demo-wa-1", "Halo, sepatu lari ukuran 39 masih ada?", now - dt.timedelta(hours=5))
    _outbound(conversation, wa, "demo-wa-out-1", "Halo Kak Rina, masih ada warna hitam dan putih.",
              now - dt.timedelta(hours=4, minutes=50), MessageStatus.READ)
    _inbound(ig, rina, "demo-ig-1", "Yang di foto postingan kemarin ya kak, warna putih.", now - dt.timedelta(hours=3))
    _inbound(tg, rina, "demo-tg-1", "Kak, sudah saya transfer. Bisa dikirim hari ini?", now - dt.timedelta(minutes=40))

    # Andi chats on the website, then emails: resolved after the answer.
    web, email = inboxes[InboxKind.WEBCHAT], inboxes[InboxKind.EMAIL]
    andi = _demo_customer("Andi Saputra", [
        IdentityInput("phone", _demo_phone(6)),
        IdentityInput("email", "andi6@demo.example.id", verified=True),
        IdentityInput("web_visitor", "demo-visitor-7f3a", verified=True, scope=str(web.uuid)),
    ])
    conversation, _ = _inbound(web, andi, "demo-web-1", "Apakah bisa retur kalau ukurannya tidak pas?",
                               now - dt.timedelta(days=2, hours=3))
    _inbound(email, andi, "demo-email-1", "Berikut nomor pesanan saya: INV-2026-00123.",
             now - dt.timedelta(days=2, hours=2), subject="Retur pesanan INV-2026-00123")
    _outbound(conversation, email, "demo-email-out-1", "Bisa, Pak Andi. Label retur sudah kami kirim ke email.",
              now - dt.timedelta(days=2, hours=1), MessageStatus.DELIVERED)
    conversation_status_set(conversation=conversation, status="resolved", actor=None)

    # Maya calls the call center, then visits the store: logs in the same conversation.
    voice, store, line = inboxes[InboxKind.VOICE], inboxes[InboxKind.IN_PERSON], inboxes[InboxKind.LINE]
    maya = _demo_customer("Maya Sari", [
        IdentityInput("phone", _demo_phone(16), verified=True),
        IdentityInput("line", "U1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", verified=True, scope=str(line.uuid)),
    ])
    _inbound(voice, maya, "demo-call-1", "Menanyakan garansi blender (panggilan masuk, 4 menit).",
             now - dt.timedelta(days=1, hours=6), call={"direction": "inbound", "duration_seconds": 240,
                                                       "outcome": "answered"})
    _inbound(store, maya, "demo-visit-1", "Datang ke toko membawa blender untuk klaim garansi.",
             now - dt.timedelta(days=1, hours=2), visit={"location": "Toko Kemang", "staff": "Rizky"})
    _inbound(line, maya, "demo-line-1", "Terima kasih, blendernya sudah bisa dipakai lagi 🙏",
             now - dt.timedelta(hours=1))

    if stdout is not None:
        stdout.write("  conversations: Rina Wijaya (WhatsApp → Instagram → Telegram), Andi Saputra (web chat → "
                     "email, resolved), Maya Sari (call → store visit → LINE)")
