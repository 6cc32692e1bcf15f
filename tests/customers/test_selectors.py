from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from customers import selectors, services
from customers.models import TimelineKind
from tests.customers.factories import BASE_TIME, CustomerFactory, IdentityFactory, TagFactory, TimelineEntryFactory

pytestmark = pytest.mark.django_db


def test_timeline_is_newest_first_with_id_breaking_ties():
    customer = CustomerFactory()
    same_time = BASE_TIME + dt.timedelta(hours=1)
    older = TimelineEntryFactory(customer=customer, occurred_at=BASE_TIME)
    tie_a = TimelineEntryFactory(customer=customer, occurred_at=same_time)
    tie_b = TimelineEntryFactory(customer=customer, occurred_at=same_time)
    newest = TimelineEntryFactory(customer=customer, occurred_at=BASE_TIME + dt.timedelta(hours=2))
    TimelineEntryFactory()  # another customer's

    page = selectors.customer_timeline(customer=customer)

    assert page.entries == [newest, tie_b, tie_a, older]
    assert page.next_cursor is None


def test_timeline_cursor_pages_through_everything_once():
    customer = CustomerFactory()
    entries = [
        TimelineEntryFactory(customer=customer, occurred_at=BASE_TIME + dt.timedelta(minutes=i // 2)) for i in range(7)
    ]

    seen, cursor = [], None
    for _ in range(10):
        page = selectors.customer_timeline(customer=customer, cursor=cursor, page_size=3)
        seen += page.entries
        cursor = page.next_cursor
        if cursor is None:
            break

    assert [e.pk for e in seen] == [e.pk for e in sorted(entries, key=lambda e: (e.occurred_at, e.pk), reverse=True)]


def test_timeline_filters_by_channel_and_kind():
    customer = CustomerFactory()
    wa_message = TimelineEntryFactory(customer=customer, channel="whatsapp", kind=TimelineKind.MESSAGE)
    TimelineEntryFactory(customer=customer, channel="email", kind=TimelineKind.MESSAGE)
    wa_resolved = TimelineEntryFactory(customer=customer, channel="whatsapp", kind=TimelineKind.CONVERSATION_RESOLVED)

    by_channel = selectors.customer_timeline(customer=customer, channel="whatsapp")
    by_both = selectors.customer_timeline(customer=customer, channel="whatsapp", kind=TimelineKind.MESSAGE)

    assert by_channel.entries == [wa_resolved, wa_message]
    assert by_both.entries == [wa_message]


def test_timeline_channels_are_each_listed_once():
    customer = CustomerFactory()
    for channel in ("whatsapp", "email", "whatsapp", "", "whatsapp"):
        TimelineEntryFactory(customer=customer, channel=channel)
    TimelineEntryFactory(channel="instagram")  # another customer's

    assert selectors.timeline_channels(customer=customer) == ["email", "whatsapp"]


@pytest.mark.parametrize("page_size", [5, 50])
def test_timeline_page_is_one_query_whatever_its_size(page_size, django_assert_num_queries):
    customer = CustomerFactory()
    for _ in range(60):
        TimelineEntryFactory(customer=customer)
    first = selectors.customer_timeline(customer=customer, page_size=page_size)

    with django_assert_num_queries(1):
        page = selectors.customer_timeline(customer=customer, cursor=first.next_cursor, page_size=page_size)

    assert len(page.entries) == min(page_size, 60 - page_size)


def test_bad_timeline_cursor_is_a_validation_error_on_cursor():
    with pytest.raises(ValidationError) as excinfo:
        selectors.customer_timeline(customer=CustomerFactory(), cursor="not-a-cursor")

    assert "cursor" in excinfo.value.message_dict


@pytest.mark.parametrize("query", ["Budi", "budi s", "3456", "0812-3456", "+62812", "budi.s@", "BUDI.S@MAIL"])
def test_search_by_name_or_any_identity(query, agent):
    budi = CustomerFactory(display_name="Budi Santoso")
    IdentityFactory(customer=budi, kind="phone", value="+6281234567890")
    IdentityFactory(customer=budi, kind="email", value="budi.s@mail.co.id")
    other = CustomerFactory(display_name="Siti")
    IdentityFactory(customer=other, kind="phone", value="+6289999999999")

    assert list(selectors.customer_list(viewer=agent, q=query)) == [budi]


def test_lists_exclude_merged_away_and_erased_profiles(agent, supervisor):
    live, merged, erased = CustomerFactory(), CustomerFactory(), CustomerFactory()
    services.customer_merge(survivor=live, merged=merged, actor=supervisor)
    services.customer_erase(customer=erased, actor=supervisor)

    assert list(selectors.customer_list(viewer=agent)) == [live]


def test_list_filters_by_stage_tag_channel_and_segment(agent, supervisor):
    vip = TagFactory(name="VIP")
    match = CustomerFactory(lifecycle_stage="loyalty")
    match.tags.add(vip)
    IdentityFactory(customer=match, kind="phone", value="+6281234567890")
    wrong_stage = CustomerFactory(lifecycle_stage="reach")
    wrong_stage.tags.add(vip)
    IdentityFactory(customer=wrong_stage, kind="phone", value="+6281234567891")
    segment = services.segment_create(
        name="Loyal VIPs", filters={"stage": "loyalty", "tags": ["vip"]}, actor=supervisor
    )

    assert list(selectors.customer_list(viewer=agent, stage="loyalty", tag="vip", channel="phone")) == [match]
    assert list(selectors.customer_list(viewer=agent, channel="email")) == []
    assert list(selectors.customer_list(viewer=agent, segment=segment)) == [match]
    assert selectors.segment_customer_count(viewer=agent, segment=segment) == 1


def test_customer_list_query_count_does_not_grow_with_rows(agent, django_assert_max_num_queries):
    for i in range(30):
        customer = CustomerFactory()
        IdentityFactory(customer=customer)
        customer.tags.add(TagFactory(name=f"t{i % 3}"))
    assert agent.has_perm("customers.view_customer")  # the permission cache is per request, not per row

    with django_assert_max_num_queries(4):  # customers, identities, tags, consents
        rows = [
            (c.display_name, [i.value for i in c.identities.all()], [t.name for t in c.tags.all()])
            for c in selectors.customer_list(viewer=agent)
        ]

    assert len(rows) == 30


def test_lookup_normalises_the_value(agent):
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="phone", value="+6281234567890")

    assert selectors.customer_lookup(viewer=agent, kind="phone", value="0812-3456-7890") == customer
    assert selectors.customer_lookup(viewer=agent, kind="phone", value="0812-3456-7899") is None


def test_channel_filter_finds_customers_active_on_a_channel_without_an_identity_of_that_kind(agent):
    on_whatsapp = CustomerFactory()
    IdentityFactory(customer=on_whatsapp, kind="phone", value="+6281234567890")
    TimelineEntryFactory(customer=on_whatsapp, channel="whatsapp")
    email_only = CustomerFactory()
    TimelineEntryFactory(customer=email_only, channel="email")

    assert list(selectors.customer_list(viewer=agent, channel="whatsapp")) == [on_whatsapp]
