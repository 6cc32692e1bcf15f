"""Demo customers for `seed_demo`: idempotent, realistic Indonesian retail data."""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from customers import services
from customers.models import AttributeDefinition, Customer, CustomerNote, IdentityOrigin, LifecycleStage, TimelineKind
from customers.services import IdentityInput

DEMO_INBOX = {
    "whatsapp": "demo-wa",
    "instagram": "demo-ig",
    "messenger": "demo-fb",
    "telegram": "demo-tg",
    "web_visitor": "demo-web",
}
NAMES = [
    "Budi Santoso",
    "Siti Rahayu",
    "Agus Pratama",
    "Dewi Lestari",
    "Rina Wijaya",
    "Andi Saputra",
    "Putri Kusuma",
    "Eko Nugroho",
    "Wahyu Hidayat",
    "Sri Wahyuni",
    "Joko Susilo",
    "Ayu Permata",
    "Rudi Hartono",
    "Lina Halim",
    "Hendra Gunawan",
    "Maya Sari",
    "Fajar Ramadhan",
    "Indah Puspita",
    "Yusuf Maulana",
    "Nina Marlina",
    "Bayu Aditya",
    "Citra Anggraini",
    "Dimas Prasetyo",
    "Fitri Handayani",
    "Gilang Permana",
    "Hana Safitri",
    "Irfan Hakim",
    "Kartika Dewi",
    "Lukman Hakim",
    "Mega Utami",
]
CITIES = ["Jakarta", "Bandung", "Surabaya", "Medan", "Semarang", "Makassar", "Denpasar", "Yogyakarta"]
STAGES = [s.value for s in LifecycleStage]


@transaction.atomic
def seed_demo_customers(stdout=None) -> list[Customer]:
    """Create (or refresh) ~30 demo customers with identities across channels, notes,
    a timeline and one open merge suggestion. Safe to run repeatedly."""
    rng = random.Random(42)
    AttributeDefinition.objects.get_or_create(
        key="city", defaults={"label": "City", "type": AttributeDefinition.Type.TEXT}
    )
    AttributeDefinition.objects.get_or_create(
        key="tier",
        defaults={
            "label": "Member tier",
            "type": AttributeDefinition.Type.CHOICE,
            "choices": ["silver", "gold", "platinum"],
        },
    )
    AttributeDefinition.objects.get_or_create(
        key="birthday", defaults={"label": "Birthday", "type": AttributeDefinition.Type.DATE}
    )
    now = timezone.now()
    customers = []
    for index, name in enumerate(NAMES, start=1):
        first = name.split()[0].lower()
        phone = f"+62812{index:04d}{7000 + index:04d}"
        identities = [
            IdentityInput("external_id", f"demo-{index:03d}"),
            IdentityInput("phone", phone, verified=index % 3 != 0),
        ]
        if index % 2 == 0:
            identities.append(IdentityInput("email", f"{first}{index}@demo.example.id", verified=index % 4 == 0))
        if index % 3 == 0:
            identities.append(
                IdentityInput("instagram", f"1784{index:010d}", verified=True, scope=DEMO_INBOX["instagram"])
            )
        if index % 5 == 0:
            identities.append(
                IdentityInput("telegram", f"{500000 + index}", verified=True, scope=DEMO_INBOX["telegram"])
            )
        result = services.customer_resolve(
            identities=identities, source="demo", display_name=name, asserted_by=IdentityOrigin.BUSINESS
        )
        customer = result.customer
        services.customer_update(
            customer=customer,
            language="id",
            time_zone="Asia/Jakarta",
            lifecycle_stage=STAGES[index % len(STAGES)],
            attributes={"city": CITIES[index % len(CITIES)], "tier": ["silver", "gold", "platinum"][index % 3]},
            add_tags=(["vip"] if index % 7 == 0 else []) + (["reseller"] if index % 11 == 0 else []),
        )
        if not CustomerNote.objects.filter(customer=customer).exists():
            services.note_add(
                customer=customer,
                author=None,
                body=f"Prefers {'WhatsApp' if index % 2 else 'email'}; lives in {CITIES[index % len(CITIES)]}.",
            )
        if index % 2:
            services.consent_record(
                customer=customer,
                channel="whatsapp",
                opted_in=True,
                source="demo keyword JOIN",
                at=now - dt.timedelta(days=30),
            )
        for step in range(3):
            channel = ["whatsapp", "instagram", "email"][(index + step) % 3]
            services.timeline_record(
                customer=customer,
                kind=TimelineKind.MESSAGE,
                occurred_at=now - dt.timedelta(days=rng.randint(0, 60), minutes=step),
                channel=channel,
                title=f"Message on {channel}",
                body=["Is the blue one in stock?", "Where is my order?", "Thank you!"][step],
                ref_type="demo.message",
                ref_id=f"{index}-{step}",
            )
        services.customer_touch(customer=customer, contacted_at=now - dt.timedelta(days=index))
        customers.append(customer)
    # A widget visitor types Siti's email: a separate profile plus a merge suggestion.
    services.customer_resolve(
        identities=[
            IdentityInput("web_visitor", "demo-visitor-1", verified=True, scope=DEMO_INBOX["web_visitor"]),
            IdentityInput("email", "siti2@demo.example.id"),
        ],
        source="demo widget",
        display_name="Siti (website)",
    )
    if stdout is not None:
        stdout.write(f"customers: {len(customers)} demo customers, 1 widget visitor with a merge suggestion\n")
    return customers
