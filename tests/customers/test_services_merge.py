from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditEntry
from customers import events, services
from customers.models import Customer, CustomerConsent, CustomerMerge, MergeSuggestion, TimelineEntry, TimelineKind
from tests.customers.factories import (
    AttributeDefinitionFactory,
    CustomerFactory,
    CustomerNoteFactory,
    IdentityFactory,
    TagFactory,
    TimelineEntryFactory,
)

pytestmark = pytest.mark.django_db

HISTORY_KINDS = (TimelineKind.MERGE, TimelineKind.UNMERGE)


def profile_state(customer: Customer) -> dict:
    """Everything that makes up a profile, as plain data (merge/unmerge history excluded)."""
    customer = Customer.objects.get(pk=customer.pk)
    return {
        "fields": {
            name: getattr(customer, name)
            for name in (
                "display_name",
                "language",
                "time_zone",
                "owner_agent_id",
                "owner_team_id",
                "lifecycle_stage",
                "attributes",
                "last_seen_at",
                "last_contacted_at",
                "merged_into_id",
                "is_erased",
            )
        },
        "tags": sorted(customer.tags.values_list("name", flat=True)),
        "identities": sorted(
            customer.identities.values_list("pk", "kind", "scope", "value", "verified", "origin", "source")
        ),
        "notes": sorted(customer.notes.values_list("pk", "body")),
        "consents": sorted(customer.consents.values_list("pk", "channel", "opted_in_at", "opted_out_at", "source")),
        "timeline": sorted(customer.timeline.exclude(kind__in=HISTORY_KINDS).values_list("pk", "kind", "title")),
    }


@pytest.fixture
def two_profiles(agent):
    AttributeDefinitionFactory(key="city")
    AttributeDefinitionFactory(key="tier")
    AttributeDefinitionFactory(key="birthday")
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    survivor = CustomerFactory(
        display_name="Budi Santoso", language="", attributes={"city": "Bandung", "tier": "gold"}, last_seen_at=t0
    )
    merged = CustomerFactory(
        display_name="budi s",
        language="id",
        owner_agent=agent,
        attributes={"city": "Jakarta", "birthday": "1990-02-01"},
        last_seen_at=t0 + dt.timedelta(days=3),
        lifecycle_stage="conversion",
    )
    survivor.tags.add(TagFactory(name="vip"), TagFactory(name="reseller"))
    merged.tags.add(TagFactory(name="vip"), TagFactory(name="wholesale"))
    IdentityFactory(customer=survivor, kind="email", value="budi@mail.co.id")
    IdentityFactory(customer=merged, kind="phone", value="+6281234567890")
    IdentityFactory(customer=merged, kind="instagram", value="1784", scope="ig-1")
    CustomerNoteFactory(customer=survivor, body="Prefers email")
    CustomerNoteFactory(customer=merged, body="Asked about delivery")
    TimelineEntryFactory(customer=survivor, channel="email")
    TimelineEntryFactory(customer=merged, channel="whatsapp")
    TimelineEntryFactory(customer=merged, channel="instagram")
    services.consent_record(customer=survivor, channel="email", opted_in=True, source="form")
    services.consent_record(customer=merged, channel="email", opted_in=False, source="unsubscribe link")
    services.consent_record(customer=merged, channel="whatsapp", opted_in=True, source="whatsapp keyword")
    return survivor, merged


def test_merge_moves_everything_and_survivor_wins_conflicts(two_profiles, supervisor):
    survivor, merged = two_profiles

    merge = services.customer_merge(survivor=survivor, merged=merged, actor=supervisor, reason="same phone")

    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert merged.merged_into_id == survivor.pk
    assert survivor.attributes == {"city": "Bandung", "tier": "gold", "birthday": "1990-02-01"}
    assert survivor.language == "id"  # empty on the survivor, filled from the merged profile
    assert survivor.lifecycle_stage == "reach"
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["reseller", "vip", "wholesale"]
    assert sorted(survivor.identities.values_list("value", flat=True)) == ["+6281234567890", "1784", "budi@mail.co.id"]
    assert survivor.notes.count() == 2
    assert survivor.timeline.exclude(kind=TimelineKind.MERGE).count() == 3
    assert sorted(survivor.consents.values_list("channel", flat=True)) == ["email", "whatsapp"]
    assert survivor.consents.get(channel="email").is_opted_in is True
    assert merge.snapshot["attribute_conflicts"] == {
        "city": {"survivor": "Bandung", "merged": "Jakarta"},
        "lifecycle_stage": {"survivor": "reach", "merged": "conversion"},
    }
    assert merge.snapshot["consent_conflicts"][0]["channel"] == "email"
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CUSTOMER_MERGED)
    assert (entry.actor, entry.target_id, entry.data["merged"], entry.data["reason"]) == (
        supervisor,
        str(survivor.pk),
        merged.pk,
        "same phone",
    )


def test_merge_then_unmerge_restores_both_profiles_exactly(two_profiles, supervisor):
    survivor, merged = two_profiles
    before = (profile_state(survivor), profile_state(merged))

    merge = services.customer_merge(survivor=survivor, merged=merged, actor=supervisor, reason="same phone")
    assert (profile_state(survivor), profile_state(merged)) != before
    services.customer_unmerge(merge=merge, actor=supervisor)

    assert (profile_state(survivor), profile_state(merged)) == before
    merge.refresh_from_db()
    assert merge.undone_by == supervisor and merge.undone_at is not None
    assert AuditEntry.objects.filter(action=AuditEntry.Action.CUSTOMER_UNMERGED, actor=supervisor).count() == 1
    assert TimelineEntry.objects.filter(kind=TimelineKind.UNMERGE).count() == 2


def test_unmerge_keeps_what_happened_on_the_survivor_after_the_merge(two_profiles, supervisor):
    survivor, merged = two_profiles
    merge = services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)
    later = TimelineEntryFactory(customer=survivor, channel="whatsapp", title="after merge")
    services.customer_update(customer=survivor, attributes={"birthday": "1991-01-01"})

    services.customer_unmerge(merge=merge, actor=supervisor)

    survivor.refresh_from_db()
    assert later in survivor.timeline.all()
    assert survivor.attributes["birthday"] == "1991-01-01"  # changed since the merge: an edit, not the merge's value


def test_merge_undo_twice_is_refused(two_profiles, supervisor):
    survivor, merged = two_profiles
    merge = services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)
    services.customer_unmerge(merge=merge, actor=supervisor)

    with pytest.raises(ValidationError):
        services.customer_unmerge(merge=merge, actor=supervisor)


def test_cannot_merge_into_itself_or_a_merged_away_profile(supervisor):
    one, two, three = CustomerFactory(), CustomerFactory(), CustomerFactory()
    services.customer_merge(survivor=one, merged=two, actor=supervisor)

    with pytest.raises(ValidationError) as same:
        services.customer_merge(survivor=one, merged=one, actor=supervisor)
    with pytest.raises(ValidationError) as gone:
        services.customer_merge(survivor=three, merged=two, actor=supervisor)

    assert "source" in same.value.message_dict
    assert "source" in gone.value.message_dict


def test_undo_of_an_earlier_merge_waits_for_the_later_one(supervisor):
    one, two, three = CustomerFactory(), CustomerFactory(), CustomerFactory()
    first = services.customer_merge(survivor=two, merged=one, actor=supervisor)
    second = services.customer_merge(survivor=three, merged=two, actor=supervisor)

    with pytest.raises(ValidationError):
        services.customer_unmerge(merge=first, actor=supervisor)
    services.customer_unmerge(merge=second, actor=supervisor)
    services.customer_unmerge(merge=first, actor=supervisor)

    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_merge_emits_domain_event_on_commit(two_profiles, supervisor, django_capture_on_commit_callbacks):
    survivor, merged = two_profiles
    received = []

    def listener(sender, **kwargs):
        received.append((kwargs["event"], kwargs["survivor"].pk, kwargs["merged"].pk))

    events.customer_merged.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)
    finally:
        events.customer_merged.disconnect(listener)

    assert received == [("customers.customer.merged", survivor.pk, merged.pk)]


def test_accepting_a_suggestion_merges_into_the_older_profile(supervisor):
    older, newer = CustomerFactory(), CustomerFactory()
    suggestion = services.merge_suggestion_record(first=newer, second=older, score=0.9, evidence={"reason": "x"})

    merge = services.merge_suggestion_accept(suggestion=suggestion, actor=supervisor)

    suggestion.refresh_from_db()
    assert (merge.survivor_id, merge.merged_id) == (older.pk, newer.pk)
    assert (suggestion.status, suggestion.decided_by) == (MergeSuggestion.Status.ACCEPTED, supervisor)


def test_timeline_written_for_a_merged_away_profile_lands_on_the_survivor(supervisor):
    survivor, merged = CustomerFactory(), CustomerFactory()
    services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)

    entry = services.timeline_record(
        customer=merged,
        kind="message",
        occurred_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        channel="whatsapp",
        title="hi",
    )

    assert entry.customer_id == survivor.pk


def test_erase_anonymises_and_keeps_the_row(two_profiles, admin_user):
    survivor, merged = two_profiles
    services.customer_merge(survivor=survivor, merged=merged, actor=admin_user)

    services.customer_erase(customer=survivor, actor=admin_user)

    for profile in (survivor, merged):
        profile.refresh_from_db()
        assert (profile.display_name, profile.attributes, profile.is_erased) == ("", {}, True)
        assert profile.tags.count() == 0
    assert survivor.identities.count() == 0 and survivor.notes.count() == 0
    assert CustomerConsent.objects.count() == 0
    assert set(TimelineEntry.objects.values_list("body", "title")) == {("", "")}
    assert CustomerMerge.objects.get().snapshot == {"erased": True}
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DATA_ERASED)
    assert entry.actor == admin_user
    assert "Budi" not in str(entry.data)


def test_export_contains_the_profile_and_is_audited(two_profiles, agent):
    survivor, _merged = two_profiles

    data = services.customer_export(customer=survivor, actor=agent)

    assert data["customer"]["display_name"] == "Budi Santoso"
    assert [i["value"] for i in data["identities"]] == ["budi@mail.co.id"]
    assert [n["body"] for n in data["notes"]] == ["Prefers email"]
    assert len(data["timeline"]) == 1
    assert (
        AuditEntry.objects.filter(
            action=AuditEntry.Action.DATA_EXPORTED, actor=agent, target_id=str(survivor.pk)
        ).count()
        == 1
    )


def test_attribute_validation_names_the_bad_key():
    AttributeDefinitionFactory(key="age", type="number")
    AttributeDefinitionFactory(key="size", type="choice", choices=["S", "M"])
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as excinfo:
        services.customer_update(customer=customer, attributes={"age": "old", "size": "XL", "nope": 1})

    assert excinfo.value.message_dict["attributes"] == [
        "age: must be a number",
        "size: must be one of: S, M",
        "nope: no such attribute; an admin defines attributes first.",
    ]
    customer.refresh_from_db()
    assert customer.attributes == {}


def test_merge_moves_only_registered_foreign_keys(supervisor):
    from customers import merge_hooks

    survivor, merged = CustomerFactory(), CustomerFactory()
    note = CustomerNoteFactory(customer=merged)
    merge_hooks.unregister("customers.CustomerNote", "customer")
    try:
        merge = services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)
    finally:
        merge_hooks.register("customers.CustomerNote", "customer")

    note.refresh_from_db()
    assert note.customer_id == merged.pk
    assert "customers.CustomerNote" not in [moved["model"] for moved in merge.snapshot["moved"]]
    assert {"model": "customers.Identity", "field": "customer", "ids": []} in merge.snapshot["moved"]


def test_stage_change_is_on_the_timeline_and_signalled(supervisor, django_capture_on_commit_callbacks):
    customer = CustomerFactory(lifecycle_stage="reach")
    received = []

    def listener(sender, **kwargs):
        received.append((kwargs["event"], kwargs["changed"]))

    events.customer_updated.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.customer_update(customer=customer, actor=supervisor, lifecycle_stage="conversion")
    finally:
        events.customer_updated.disconnect(listener)

    entry = customer.timeline.get()
    assert (entry.kind, entry.title, entry.data) == (
        "stage_changed",
        "Stage: Reach → Conversion",
        {"from": "reach", "to": "conversion", "by": supervisor.pk},
    )
    assert received == [("customers.customer.updated", ["lifecycle_stage"])]


def test_merge_participants_prepare_before_rows_move_and_restore_after_they_return(supervisor):
    from customers import merge_hooks

    survivor, merged = CustomerFactory(), CustomerFactory()
    note = CustomerNoteFactory(customer=merged, body="open")
    calls = []

    def prepare(*, survivor, merged):
        # still on the merged profile: nothing has moved yet
        calls.append(("prepare", list(merged.notes.values_list("body", flat=True))))
        merged.notes.update(body="folded")
        return {"folded": [note.pk]}

    def restore(*, survivor, merged, data):
        calls.append(("restore", list(merged.notes.values_list("pk", flat=True)), data))
        merged.notes.filter(pk__in=data["folded"]).update(body="open")

    merge_hooks.register_participant("test.fold", prepare=prepare, restore=restore)
    try:
        merge = services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)
        note.refresh_from_db()
        assert (note.customer_id, note.body) == (survivor.pk, "folded")
        services.customer_unmerge(merge=merge, actor=supervisor)
    finally:
        merge_hooks.unregister_participant("test.fold")

    note.refresh_from_db()
    assert (note.customer_id, note.body) == (merged.pk, "open")
    assert calls == [("prepare", ["open"]), ("restore", [note.pk], {"folded": [note.pk]})]
    assert merge.snapshot["participants"]["test.fold"] == {"folded": [note.pk]}


def test_merged_away_or_erased_profiles_cannot_be_edited(supervisor):
    survivor, merged, erased = CustomerFactory(), CustomerFactory(), CustomerFactory()
    services.customer_merge(survivor=survivor, merged=merged, actor=supervisor)
    services.customer_erase(customer=erased, actor=supervisor)

    for customer in (Customer.objects.get(pk=merged.pk), Customer.objects.get(pk=erased.pk)):
        with pytest.raises(ValidationError):
            services.identity_add(customer=customer, kind="email", value="x@mail.co.id")
        with pytest.raises(ValidationError):
            services.note_add(customer=customer, author=supervisor, body="hi")
        with pytest.raises(ValidationError):
            services.customer_update(customer=customer, display_name="x")


def test_timeline_writes_for_an_erased_customer_keep_no_text(supervisor):
    customer = CustomerFactory()
    stale = Customer.objects.get(pk=customer.pk)
    services.customer_erase(customer=customer, actor=supervisor)

    entry = services.timeline_record(
        customer=stale,
        kind="message",
        occurred_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        title="From Budi",
        body="hello",
        data={"x": 1},
    )

    assert (entry.title, entry.body, entry.data) == ("", "", {})
