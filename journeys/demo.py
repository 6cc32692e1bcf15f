"""Demo history for `seed_demo`: six months of events, conversations, stage changes and CSAT
so the funnel, KPI and CSAT dashboards show meaningful pictures. Idempotent.

Past timestamps are written the way the services record them (`occurred_at`, `created_at`,
`at`); where a service only knows "now" (resolving a conversation, creating a customer) the
demo back-dates that one column afterwards. Surveys are created as already sent, without
messages, so the demo never contacts a provider.
"""
from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from accounts.models import Role
from accounts.selectors import users_with_role
from channels_app.models import (
    Conversation,
    ConversationStatus,
    Inbox,
    InboxKind,
    Message,
    MessageDirection,
    MessageSender,
)
from customers.models import Customer
from journeys import services
from journeys.models import CsatResponse, CsatSurvey, CustomerEvent

MONTHS = 6
PROSPECTS = 60
CONVERSATIONS = 140
EVENT_CHANNELS = ["instagram", "whatsapp", "website", "webchat", "email", "messenger"]
CHAT_KINDS = [InboxKind.WHATSAPP, InboxKind.WHATSAPP, InboxKind.WHATSAPP, InboxKind.INSTAGRAM, InboxKind.WEBCHAT,
              InboxKind.EMAIL, InboxKind.TELEGRAM, InboxKind.MESSENGER]
RATINGS = [1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 5, 3, 2, 4, 5, 5, 4, 5, 3, 5]
QUESTIONS = ["Halo, pesanan saya sudah dikirim belum?", "Apakah ukuran 40 masih ada?", "Bisa bayar COD?",
             "Barang yang saya terima rusak, bagaimana klaimnya?", "Promo minggu ini apa saja kak?",
             "Saya mau ganti alamat pengiriman.", "Kapan toko buka hari Minggu?"]
ANSWERS = ["Sudah kami cek, Kak. Paket sedang dalam perjalanan.", "Masih ada, Kak. Mau dipesan sekarang?",
           "Bisa, Kak, untuk wilayah Jabodetabek.", "Mohon maaf, Kak. Silakan kirim foto barangnya, kami ganti.",
           "Diskon 20% untuk semua sepatu lari, Kak.", "Baik, alamat sudah kami perbarui."]


def _say(stdout, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def seed_demo_journeys(stdout=None) -> None:
    """Events and conversations over the last six months (each part only once)."""
    _say(stdout, "Journeys:")
    rng = random.Random(2026)
    now = timezone.now()
    events = _seed_events(rng, now)
    conversations = _seed_conversations(rng, now)
    services.resolutions_sync()
    # Surveys before any sync pass: a scheduled survey would be sent to a real provider.
    surveys = _seed_csat(rng, now)
    acquisitions = services.lifecycle_sync_from_messages()
    assessed = _seed_maturity(now)
    _say(stdout, f"  events: {events}, conversations: {conversations}, surveys: {surveys}, "
                 f"acquisitions from messages: {acquisitions}, maturity assessments: {assessed}")


def _demo_customers() -> list[Customer]:
    return list(
        Customer.objects.filter(identities__kind="external_id", identities__value__startswith="demo-",
                                merged_into__isnull=True, is_erased=False)
        .order_by("pk").distinct()
    )


@transaction.atomic
def _seed_events(rng: random.Random, now: dt.datetime) -> int:
    if CustomerEvent.objects.filter(external_id__startswith="demo-evt-").exists():
        return 0
    people: list[dict] = [
        {"external_id": identity} for identity in
        Customer.objects.filter(pk__in=[c.pk for c in _demo_customers()])
        .filter(identities__kind="external_id").values_list("identities__value", flat=True)
    ]
    people += [{"email": f"prospek{n:03d}@demo.example.id"} for n in range(PROSPECTS)]
    count = 0
    for index, who in enumerate(people):
        start = now - dt.timedelta(days=rng.uniform(3, MONTHS * 30), hours=rng.uniform(0, 12))
        channel = rng.choice(EVENT_CHANNELS)
        plan = [("campaign.clicked", start, channel)]
        t = start
        if rng.random() < 0.8:
            t += dt.timedelta(days=rng.uniform(0.1, 10))
            plan.append((rng.choice(["signup", "lead.created"]), t, channel))
            if rng.random() < 0.6:
                t += dt.timedelta(days=rng.uniform(1, 25))
                plan.append(("order.paid", t, rng.choice([channel, "website"])))
                if rng.random() < 0.5:
                    t += dt.timedelta(days=rng.uniform(10, 100))
                    plan.append(("order.completed", t, "website"))
                    if rng.random() < 0.45:
                        t += dt.timedelta(days=rng.uniform(3, 30))
                        plan.append(("referral.created", t, channel))
        for step, (event_type, when, via) in enumerate(plan):
            if when >= now:
                break
            result = services.customer_event_record(
                event_id=f"demo-evt-{index:03d}-{step}", event_type=event_type, occurred_at=when,
                display_name="" if "external_id" in who else f"Prospek {index}",
                properties={"channel": via, "summary": f"{event_type} via {via}"}, **who,
            )
            if result.event.customer_created:
                # Demo only: the profile "appeared" when the first event happened.
                Customer.objects.filter(pk=result.event.customer_id).update(created_at=when - dt.timedelta(hours=1))
            count += 1
    return count


def _seed_conversations(rng: random.Random, now: dt.datetime) -> int:
    from channels_app.services import (
        conversation_assign,
        conversation_continue,
        conversation_status_set,
        message_record,
    )

    if Message.objects.filter(provider_message_id__startswith="demo-j-").exists():
        return 0
    inboxes = {inbox.kind: inbox for inbox in Inbox.objects.filter(is_active=True).order_by("pk")}
    agents = list(users_with_role(role=Role.AGENT).filter(is_active=True).order_by("pk"))
    busy = set(Conversation.objects.exclude(status=ConversationStatus.RESOLVED).values_list("customer_id", flat=True))
    customers = [c for c in _demo_customers() if c.pk not in busy]
    kinds = [kind for kind in CHAT_KINDS if kind in inboxes]
    if not (inboxes and agents and customers and kinds):
        return 0
    starts = sorted(now - dt.timedelta(days=rng.uniform(0.2, MONTHS * 30)) for _ in range(CONVERSATIONS))
    free_at: dict[int, dt.datetime] = {}
    made = 0
    for n, start in enumerate(starts):
        customer = rng.choice(customers)
        if free_at.get(customer.pk, start) > start:
            continue
        inbox = inboxes[rng.choice(kinds)]
        agent = rng.choice(agents)
        with transaction.atomic():
            end = _one_conversation(rng, n, customer, inbox, agent, start, now, inboxes, kinds,
                                    conversation_continue, conversation_assign, conversation_status_set, message_record)
        free_at[customer.pk] = end or now
        made += 1
    return made


def _one_conversation(rng, n, customer, inbox, agent, start, now, inboxes, kinds,
                      conversation_continue, conversation_assign, conversation_status_set, message_record):
    pid = f"demo-j-{n:04d}"
    conversation = conversation_continue(customer=customer, inbox=inbox, at=start).conversation
    message_record(conversation=conversation, inbox=inbox, direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER,
                   content=rng.choice(QUESTIONS), provider_message_id=f"{pid}-in", created_at=start)
    conversation_assign(conversation=conversation, actor=None, agent=agent)
    t = start + dt.timedelta(minutes=rng.lognormvariate(2.3, 1.0))
    if t < now:
        message_record(conversation=conversation, inbox=inbox, direction=MessageDirection.OUTBOUND, sender=MessageSender.AGENT,
                       author=agent, content=rng.choice(ANSWERS), provider_message_id=f"{pid}-out", created_at=t, status="sent")
    if rng.random() < 0.2:  # the customer follows up on another channel
        other = inboxes[rng.choice(kinds)]
        t += dt.timedelta(minutes=rng.uniform(5, 90))
        if t < now:
            conversation_continue(customer=customer, inbox=other, at=t)
            message_record(conversation=conversation, inbox=other, direction=MessageDirection.INBOUND,
                           sender=MessageSender.CUSTOMER, content="Saya lanjut di sini ya, kak.",
                           provider_message_id=f"{pid}-sw", created_at=t)
    resolved_at = t + dt.timedelta(minutes=rng.lognormvariate(4.0, 1.0))
    if resolved_at >= now - dt.timedelta(hours=6):
        return None  # recent ones stay open for the live overview
    _resolve(conversation, resolved_at, conversation_status_set)
    if rng.random() < 0.12:  # reopened within a day
        again = resolved_at + dt.timedelta(hours=rng.uniform(1, 20))
        if again < now - dt.timedelta(hours=7):
            conversation_continue(customer=customer, inbox=inbox, at=again)
            message_record(conversation=conversation, inbox=inbox, direction=MessageDirection.INBOUND,
                           sender=MessageSender.CUSTOMER, content="Maaf kak, masih ada kendala.",
                           provider_message_id=f"{pid}-re", created_at=again)
            answer = again + dt.timedelta(minutes=rng.uniform(3, 60))
            message_record(conversation=conversation, inbox=inbox, direction=MessageDirection.OUTBOUND,
                           sender=MessageSender.AGENT, author=agent, content="Baik, kami bantu lagi.",
                           provider_message_id=f"{pid}-re-out", created_at=answer, status="sent")
            resolved_at = answer + dt.timedelta(minutes=rng.uniform(10, 120))
            _resolve(conversation, min(resolved_at, now - dt.timedelta(hours=6)), conversation_status_set)
    return resolved_at


def _resolve(conversation: Conversation, at: dt.datetime, conversation_status_set) -> None:
    conversation_status_set(conversation=conversation, status=ConversationStatus.RESOLVED, actor=None)
    # Demo only: the resolution happened in the past.
    Conversation.objects.filter(pk=conversation.pk).update(resolved_at=at)
    services.resolutions_sync()


def _seed_csat(rng: random.Random, now: dt.datetime) -> int:
    """Sent surveys (no message: the demo contacts nobody) and answers for most of them."""
    made = 0
    rows = Conversation.objects.filter(status=ConversationStatus.RESOLVED, csat_survey__isnull=True).select_related("last_inbox")
    scheduled = CsatSurvey.objects.filter(status=CsatSurvey.Status.SCHEDULED, sent_at__isnull=True,
                                          conversation__messages__provider_message_id__startswith="demo-")
    for survey in scheduled.distinct():
        _send_and_answer(rng, survey, now)
        made += 1
    for conversation in rows:
        survey = CsatSurvey.objects.create(
            conversation=conversation, customer=conversation.customer, inbox=conversation.last_inbox,
            assignee=conversation.assignee, team=conversation.team, created_at=conversation.resolved_at,
            send_after=conversation.resolved_at + dt.timedelta(minutes=10),
        )
        _send_and_answer(rng, survey, now)
        made += 1
    return made


def _send_and_answer(rng: random.Random, survey: CsatSurvey, now: dt.datetime) -> None:
    sent_at = min(survey.send_after, now)
    CsatSurvey.objects.filter(pk=survey.pk).update(
        status=CsatSurvey.Status.SENT, sent_at=sent_at, expires_at=sent_at + dt.timedelta(hours=72)
    )
    survey.refresh_from_db()
    if rng.random() < 0.62:
        answered = sent_at + dt.timedelta(minutes=rng.uniform(2, 600))
        if answered < now and not CsatResponse.objects.filter(survey=survey).exists():
            services.csat_response_record(
                survey=survey, rating=rng.choice(RATINGS), via=rng.choice(["link", "reply"]), at=answered,
                nps=rng.choice([None, None, 3, 6, 7, 8, 9, 9, 10, 10]),
                comment=rng.choice(["", "", "Cepat dan ramah", "Terima kasih!", "Agak lama balasnya"]),
            )


# Two assessors, mostly "cross channel" as in both studies of the reference model; the
# earlier assessment half a year ago shows progress in the history view.
MATURITY_DEMO = {
    "Baseline assessment": (180, [
        {"strategy": 2, "data": 2, "technology": 2, "process": 2, "leadership": 2, "roadmap": 1, "people": 1, "metrics": 2, "budget": 1},
        {"strategy": 2, "data": 1, "technology": 3, "process": 2, "leadership": 2, "roadmap": 2, "people": 1, "metrics": 2, "budget": 2},
    ]),
    "Six-month review": (5, [
        {"strategy": 3, "data": 3, "technology": 3, "process": 3, "leadership": 2, "roadmap": 3, "people": 2, "metrics": 3, "budget": 2},
        {"strategy": 3, "data": 3, "technology": 4, "process": 3, "leadership": 3, "roadmap": 2, "people": 2, "metrics": 4, "budget": 2},
    ]),
}


def _seed_maturity(now: dt.datetime) -> int:
    from journeys.models import MaturityAssessment

    assessors = list(users_with_role(role=Role.SUPERVISOR).order_by("pk")[:1]) + list(
        users_with_role(role=Role.ADMIN).filter(is_superuser=True).order_by("pk")[:1])
    if len(assessors) < 2 or MaturityAssessment.objects.filter(title__in=list(MATURITY_DEMO)).exists():
        return 0
    for title, (days_ago, sheets) in MATURITY_DEMO.items():
        with transaction.atomic():
            assessment = services.maturity_assessment_create(title=title, actor=assessors[0])
            MaturityAssessment.objects.filter(pk=assessment.pk).update(created_at=now - dt.timedelta(days=days_ago))
            for assessor, sheet in zip(assessors, sheets, strict=False):
                for dimension, level in sheet.items():
                    services.maturity_score_record(
                        assessment=assessment, assessor=assessor, dimension=dimension, level=level,
                        target_level=min(5, level + 1), horizon="short" if level < 3 else "mid",
                        actions="Pakai dasbor KPI dan CSAT per kanal setiap minggu" if dimension == "metrics" else "",
                    )
    return len(MATURITY_DEMO)
