from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from customers import services
from customers.models import Customer, Identity, IdentityOrigin, MergeSuggestion
from customers.services import IdentityInput, customer_resolve
from tests.customers.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


def test_three_channels_resolve_into_one_customer():
    # given an email conversation, then an agent records the phone
    first = customer_resolve(
        identities=[IdentityInput("email", "Budi@Mail.co.id", verified=True)], source="inbox:email", display_name="Budi"
    )
    services.identity_add(customer=first.customer, kind="phone", value="0812-3456-7890")

    # when WhatsApp (wa_id without +) and Instagram (with the phone the customer gave) arrive
    whatsapp = customer_resolve(
        identities=[IdentityInput("whatsapp", "6281234567890", verified=True, scope="wa-inbox")], source="inbox:wa"
    )
    instagram = customer_resolve(
        identities=[
            IdentityInput("instagram", "17841400000001", verified=True, scope="ig-inbox"),
            IdentityInput("phone", "+62 812 3456 7890", verified=True),
        ],
        source="inbox:ig",
    )

    # then all three land on the one customer, which holds all identities
    assert first.created is True
    assert whatsapp.created is False and instagram.created is False
    assert whatsapp.customer.pk == first.customer.pk == instagram.customer.pk
    assert Customer.objects.count() == 1
    assert sorted(first.customer.identities.values_list("kind", "scope", "value", "verified")) == [
        ("email", "", "budi@mail.co.id", True),
        ("instagram", "ig-inbox", "17841400000001", True),
        ("phone", "", "+6281234567890", True),
    ]
    assert MergeSuggestion.objects.count() == 0


def test_unverified_typed_email_does_not_attach_visitor_to_existing_customer():
    # given a customer proved by WhatsApp and email
    victim = CustomerFactory(display_name="Siti")
    IdentityFactory(customer=victim, kind="email", value="siti@mail.co.id", verified=True)
    IdentityFactory(customer=victim, kind="phone", value="+6281111111111", verified=True)

    # when an anonymous widget visitor types Siti's email
    result = customer_resolve(
        identities=[
            IdentityInput("web_visitor", "visitor-token-1", verified=True, scope="widget-1"),
            IdentityInput("email", "SITI@mail.co.id", verified=False),
        ],
        source="inbox:widget",
    )

    # then the visitor gets their own profile, Siti keeps hers, a suggestion records why
    assert result.created is True
    assert result.customer.pk != victim.pk
    assert list(result.customer.identities.values_list("kind", "value")) == [("web_visitor", "visitor-token-1")]
    assert Identity.objects.get(value="siti@mail.co.id").customer_id == victim.pk
    suggestion = MergeSuggestion.objects.get()
    assert {suggestion.a_id, suggestion.b_id} == {victim.pk, result.customer.pk}
    assert suggestion.score == 0.6
    assert suggestion.evidence[0]["reason"] == "unverified_identity_matches"
    assert suggestion.evidence[0]["value"] == "siti@mail.co.id"


def test_unverified_typed_phone_without_other_identity_gets_a_separate_profile():
    victim = CustomerFactory()
    IdentityFactory(customer=victim, kind="phone", value="+6281234567890", verified=True)

    result = customer_resolve(identities=[IdentityInput("phone", "081234567890")], source="form")

    assert result.created is True
    assert result.customer.pk != victim.pk
    assert result.customer.identities.count() == 0
    assert result.suggestions[0].status == MergeSuggestion.Status.OPEN


def test_verified_identity_takes_over_a_value_someone_else_only_typed():
    # given a visitor who typed somebody's phone into a form
    claimant = customer_resolve(identities=[IdentityInput("phone", "081234567890")], source="form").customer

    # when the real owner writes on WhatsApp from that number
    owner = customer_resolve(identities=[IdentityInput("whatsapp", "6281234567890", verified=True)], source="inbox:wa")

    # then the owner gets their own profile with the now-verified phone; the claimant loses it
    assert owner.customer.pk != claimant.pk
    identity = Identity.objects.get(value="+6281234567890")
    assert (identity.customer_id, identity.verified, identity.origin) == (
        owner.customer.pk,
        True,
        IdentityOrigin.CHANNEL,
    )
    assert owner.suggestions[0].evidence[0]["reason"] == "verified_identity_claimed_elsewhere"


def test_verified_phone_lands_on_customer_whose_phone_an_agent_recorded():
    customer = CustomerFactory()
    services.identity_add(customer=customer, kind="phone", value="0812-3456-7890")

    result = customer_resolve(identities=[IdentityInput("whatsapp", "6281234567890", verified=True)], source="inbox:wa")

    assert result.customer.pk == customer.pk
    assert Identity.objects.get(value="+6281234567890").verified is True


def test_identities_on_two_customers_never_merge_them_silently():
    one = CustomerFactory()
    two = CustomerFactory()
    IdentityFactory(customer=one, kind="phone", value="+6281234567890", verified=True)
    IdentityFactory(customer=two, kind="email", value="budi@mail.co.id", verified=True)

    result = customer_resolve(
        identities=[
            IdentityInput("phone", "081234567890", verified=True),
            IdentityInput("email", "budi@mail.co.id", verified=True),
        ],
        source="inbox:x",
    )

    assert result.customer.pk == one.pk
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0
    assert Identity.objects.get(value="budi@mail.co.id").customer_id == two.pk
    suggestion = MergeSuggestion.objects.get()
    assert (suggestion.a_id, suggestion.b_id, suggestion.score) == (one.pk, two.pk, 0.9)


def test_business_asserted_identity_dedups_to_existing_customer():
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="email", value="budi@mail.co.id", verified=True)

    result = customer_resolve(
        identities=[IdentityInput("email", "BUDI@mail.co.id"), IdentityInput("phone", "0812 3456 7890")],
        source="import",
        asserted_by=IdentityOrigin.BUSINESS,
    )

    assert result.customer.pk == customer.pk
    assert [i.value for i in result.attached] == ["+6281234567890"]
    assert Identity.objects.get(value="+6281234567890").origin == IdentityOrigin.BUSINESS


def test_junk_identities_are_skipped_and_reported():
    result = customer_resolve(
        identities=[
            IdentityInput("email", "null"),
            IdentityInput("phone", "0000000000"),
            IdentityInput("email", "ana@mail.co.id"),
        ],
        source="api",
    )

    assert [i.value for i in result.attached] == ["ana@mail.co.id"]
    assert [item.value for item, _reason in result.rejected] == ["null", "0000000000"]


def test_strict_resolve_refuses_invalid_identities_and_writes_nothing():
    with pytest.raises(ValidationError) as excinfo:
        customer_resolve(
            identities=[IdentityInput("email", "a@b.co"), IdentityInput("phone", "123")], source="api", strict=True
        )

    assert "identities" in excinfo.value.message_dict
    assert "not a valid phone number" in excinfo.value.message_dict["identities"][0]
    assert Customer.objects.count() == 0 and Identity.objects.count() == 0


def test_identities_per_kind_are_capped(settings):
    settings.CUSTOMERS_MAX_IDENTITIES_PER_KIND = 2
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="email", value="one@mail.co.id")
    IdentityFactory(customer=customer, kind="email", value="two@mail.co.id")

    result = customer_resolve(
        identities=[
            IdentityInput("email", "one@mail.co.id", verified=True),
            IdentityInput("email", "three@mail.co.id", verified=True),
        ],
        source="inbox:email",
    )

    assert result.customer.pk == customer.pk
    assert result.attached == []
    assert customer.identities.count() == 2
    assert "already has 2 identities" in result.rejected[0][1]


def test_concurrent_resolve_of_same_new_phone_retries_and_finds_the_winner(monkeypatch):
    # given another worker committed the phone after our lookup ran (simulated: first lookup misses)
    winner = CustomerFactory()
    IdentityFactory(customer=winner, kind="phone", value="+6281234567890", verified=True)
    from customers.services import resolution

    real_lookup = resolution._identity_lookup
    calls = []

    def stale_first_lookup(keys):
        calls.append(keys)
        return {} if len(calls) == 1 else real_lookup(keys)

    monkeypatch.setattr(resolution, "_identity_lookup", stale_first_lookup)

    # when our resolve tries to insert the same phone
    result = customer_resolve(identities=[IdentityInput("whatsapp", "6281234567890", verified=True)], source="inbox:wa")

    # then the unique constraint made it retry; the half-created customer was rolled back
    assert len(calls) == 2
    assert result.customer.pk == winner.pk
    assert result.created is False
    assert Customer.objects.count() == 1


def test_repeated_suggestion_for_a_pair_strengthens_one_open_suggestion():
    one, two = CustomerFactory(), CustomerFactory()

    services.merge_suggestion_record(first=two, second=one, score=0.6, evidence={"reason": "x"})
    services.merge_suggestion_record(first=one, second=two, score=0.7, evidence={"reason": "y"})

    suggestion = MergeSuggestion.objects.get()
    assert (suggestion.a_id, suggestion.b_id) == (one.pk, two.pk)
    assert suggestion.evidence == [{"reason": "x"}, {"reason": "y"}]
    assert suggestion.score == 0.75


def test_dismissed_pair_is_not_suggested_again(supervisor):
    one, two = CustomerFactory(), CustomerFactory()
    suggestion = services.merge_suggestion_record(first=one, second=two, score=0.6, evidence={"reason": "x"})
    services.merge_suggestion_dismiss(suggestion=suggestion, actor=supervisor)

    again = services.merge_suggestion_record(first=one, second=two, score=0.9, evidence={"reason": "y"})

    assert again is None
    assert MergeSuggestion.objects.filter(status="open").count() == 0


def test_a_new_identity_on_an_existing_customer_is_on_the_timeline_once():
    first = customer_resolve(
        identities=[IdentityInput("email", "budi@mail.co.id", verified=True)], source="inbox:email"
    )

    customer_resolve(
        identities=[
            IdentityInput("email", "budi@mail.co.id", verified=True),
            IdentityInput("phone", "0812-3456-7890", verified=True),
        ],
        source="inbox:email",
    )
    customer_resolve(
        identities=[
            IdentityInput("email", "budi@mail.co.id", verified=True),
            IdentityInput("phone", "0812-3456-7890", verified=True),
        ],
        source="inbox:email",
    )

    assert list(first.customer.timeline.values_list("kind", "title")) == [("identity", "Phone +6281234567890 added")]
