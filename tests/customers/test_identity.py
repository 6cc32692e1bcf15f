from __future__ import annotations

import pytest

from customers.identity import IdentityValueError, identity_normalise, phone_normalise


@pytest.mark.parametrize(
    "raw",
    ["0812-3456-7890", "+62 812 3456 7890", "6281234567890", "081234567890", "0062 812 3456 7890", "(0812) 3456 7890"],
)
def test_indonesian_phone_spellings_normalise_to_one_e164_number(raw):
    assert phone_normalise(raw, region="ID") == "+6281234567890"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+1 415 555 2671", "+14155552671"), ("14155552671", "+14155552671"), ("+44 20 7946 0958", "+442079460958")],
)
def test_foreign_numbers_keep_their_country(raw, expected):
    assert phone_normalise(raw, region="ID") == expected


@pytest.mark.parametrize("raw", ["123", "abc", "0812", "+62 000"])
def test_invalid_phone_numbers_are_refused(raw):
    with pytest.raises(IdentityValueError):
        phone_normalise(raw, region="ID")


@pytest.mark.parametrize(("wa_id", "expected"), [("6281234567890", "+6281234567890"), ("6591234567", "+6591234567")])
def test_whatsapp_wa_id_becomes_a_global_phone_identity_read_as_international(wa_id, expected):
    result = identity_normalise(kind="whatsapp", value=wa_id, scope="inbox-1")

    assert (result.kind, result.scope, result.value) == ("phone", "", expected)


@pytest.mark.parametrize("typed", ["+62 812-3456-7890", "0812 3456 7890", "(0812) 3456.7890", "62-812-3456-7890"])
def test_a_whatsapp_number_typed_by_a_person_is_the_same_phone_identity(typed):
    """A CSV or form column of WhatsApp numbers: separators are dropped; a trunk 0 is read the
    national way (default region), anything else as international like a wa_id."""
    result = identity_normalise(kind="whatsapp", value=typed)

    assert (result.kind, result.scope, result.value) == ("phone", "", "+6281234567890")


def test_a_scoped_id_without_its_inbox_names_the_kind_once():
    with pytest.raises(IdentityValueError) as error:
        identity_normalise(kind="telegram", value="12345")
    assert error.value.messages == ["Telegram user id: needs the inbox it belongs to (scope)."]


def test_non_numeric_whatsapp_id_stays_scoped_to_its_inbox():
    result = identity_normalise(kind="whatsapp", value="ID.abc123", scope="inbox-1")

    assert (result.kind, result.scope, result.value) == ("whatsapp", "inbox-1", "ID.abc123")


def test_email_is_validated_and_lower_cased():
    result = identity_normalise(kind="email", value="  Budi.Santoso@Mail.CO.ID ")

    assert (result.kind, result.scope, result.value) == ("email", "", "budi.santoso@mail.co.id")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "null"),
        ("email", "undefined"),
        ("email", "test@test.com"),
        ("email", "noreply@shop.co.id"),
        ("phone", "00000000"),
        ("phone", "anonymous"),
        ("external_id", ""),
        ("email", "not-an-email"),
    ],
)
def test_junk_and_invalid_values_are_never_identities(kind, value):
    with pytest.raises(IdentityValueError):
        identity_normalise(kind=kind, value=value)


def test_blocklist_is_configurable(settings):
    settings.CUSTOMERS_IDENTITY_BLOCKLIST = ["guest-0001"]

    with pytest.raises(IdentityValueError):
        identity_normalise(kind="external_id", value="GUEST-0001")
    assert identity_normalise(kind="external_id", value="null").value == "null"


def test_platform_ids_are_scoped_to_their_inbox():
    result = identity_normalise(kind="messenger", value="7216534", scope="inbox-uuid-1")

    assert (result.kind, result.scope, result.value) == ("messenger", "inbox-uuid-1", "7216534")


def test_platform_id_without_scope_is_refused():
    with pytest.raises(IdentityValueError):
        identity_normalise(kind="instagram", value="17841400000000")


def test_a_whatsapp_id_is_accepted_when_possible_even_if_the_metadata_does_not_know_its_range():
    from customers.identity import identity_normalise

    assert identity_normalise(kind="whatsapp", value="972987654321").value == "+972987654321"
    with pytest.raises(IdentityValueError):
        identity_normalise(kind="phone", value="+972987654321")  # typed phones stay strict
    with pytest.raises(IdentityValueError):
        identity_normalise(kind="whatsapp", value="5678")  # not a possible number anywhere


@pytest.mark.parametrize("kind", ["telegram", "messenger", "instagram", "line"])
def test_platform_ids_made_of_one_repeated_digit_are_real_but_placeholder_words_are_not(kind):
    from customers.identity import identity_normalise

    assert identity_normalise(kind=kind, value="1111111", scope="inbox-1").value == "1111111"
    with pytest.raises(IdentityValueError):
        identity_normalise(kind=kind, value="undefined", scope="inbox-1")
