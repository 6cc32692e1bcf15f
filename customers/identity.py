"""Normalising identity values: one spelling per phone number, email or platform id.

Pure functions, no ORM: channels, the importer, the API and the resolver all call
`identity_normalise` so "0812-3456-7890", "+62 812 3456 7890" and "6281234567890" are one
number.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from customers.models import SCOPED_KINDS, IdentityKind

# Placeholder values people and systems type when they have nothing real to give.
DEFAULT_BLOCKLIST = (
    "",
    "null",
    "none",
    "nil",
    "undefined",
    "anonymous",
    "unknown",
    "n/a",
    "na",
    "-",
    "test",
    "test@test.com",
    "test@example.com",
    "email@email.com",
    "a@a.com",
    "no@email.com",
    "noemail@noemail.com",
    "none@none.com",
    "x@x.com",
)
_PLACEHOLDER_LOCAL_PARTS = {
    "noemail",
    "no-email",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "null",
    "none",
    "anonymous",
}
_NON_DIGITS = re.compile(r"\D+")


PLACEHOLDER = "placeholder"


class IdentityValueError(ValidationError):
    """The value cannot be an identity of that kind: invalid, or a placeholder
    (code "placeholder": callers usually skip those quietly rather than fail)."""


@dataclass(frozen=True)
class NormalisedIdentity:
    kind: str
    scope: str
    value: str


def blocklist() -> set[str]:
    return {str(v).strip().lower() for v in getattr(settings, "CUSTOMERS_IDENTITY_BLOCKLIST", DEFAULT_BLOCKLIST)}


def max_identities_per_kind() -> int:
    return int(getattr(settings, "CUSTOMERS_MAX_IDENTITIES_PER_KIND", 5))


def is_junk(value: str) -> bool:
    """Placeholders are never identities: blocklisted words, all-zeros, one repeated digit."""
    cleaned = (value or "").strip().lower()
    if cleaned in blocklist():
        return True
    digits = _NON_DIGITS.sub("", cleaned)
    if digits and len(digits) >= 5 and len(set(digits)) == 1 and not re.search(r"[a-z]", cleaned):
        return True  # 00000000, 1111111
    if "@" in cleaned and cleaned.split("@", 1)[0] in _PLACEHOLDER_LOCAL_PARTS:
        return True
    return False


def phone_normalise(raw: str, *, region: str | None = None, lenient: bool = False) -> str:
    """E.164 for a phone number typed any common way; raises IdentityValueError if invalid.

    A bare "6281234567890" (country code without "+", as WhatsApp wa_ids and many CSV files
    write it) is read as international when it starts with the region's country code and is
    too long to be a national number.

    `lenient` accepts any *possible* number (right length for its country) even when the
    bundled metadata does not know its range yet: for numbers a provider has proved exist
    (a WhatsApp wa_id), rejecting them would lose a real customer's message.
    """
    return _phone_normalise(raw or "", region or settings.PHONE_DEFAULT_REGION, lenient)


@functools.lru_cache(maxsize=65536)
def _phone_normalise(raw: str, region: str, lenient: bool) -> str:
    # Cached: busy customers write many messages and parsing costs ~0.2 ms. Invalid numbers
    # raise, and exceptions are not cached.
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    digits = _NON_DIGITS.sub("", text)
    if not digits:
        raise IdentityValueError(_("“%(value)s” is not a phone number.") % {"value": raw})
    candidates: list[str] = []
    if text.startswith("+"):
        candidates.append("+" + digits)
    else:
        country_code = str(phonenumbers.country_code_for_region(region) or "")
        national = None
        try:
            national = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            pass
        national_ok = national is not None and phonenumbers.is_valid_number(national)
        if national_ok:  # the first candidate below would be this very number
            return phonenumbers.format_number(national, phonenumbers.PhoneNumberFormat.E164)
        if country_code and digits.startswith(country_code) and not digits.startswith("0") and not national_ok:
            candidates.append("+" + digits)
        candidates.append(digits)
        if not (country_code and digits.startswith(country_code)):
            candidates.append("+" + digits)  # a wa_id from another country
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) or (lenient and phonenumbers.is_possible_number(number)):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise IdentityValueError(_("“%(value)s” is not a valid phone number.") % {"value": raw})


def email_normalise(raw: str) -> str:
    value = (raw or "").strip().lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:") :]
    try:
        validate_email(value)
    except ValidationError:
        raise IdentityValueError(_("“%(value)s” is not a valid email address.") % {"value": raw}) from None
    return value


_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")


def identity_normalise(*, kind: str, value: str, scope: str = "") -> NormalisedIdentity:
    """The stored form of an identity; raises IdentityValueError for invalid or junk values.

    WhatsApp ids that are phone numbers become `phone` identities (global); other platform
    ids keep their kind and the inbox scope they came from.
    """
    try:
        kind = IdentityKind(kind)
    except ValueError:
        raise IdentityValueError(_("“%(kind)s” is not an identity kind.") % {"kind": kind}) from None
    raw = "" if value is None else str(value).strip()
    # Platform ids (Telegram user id, PSID, ...) are numbers the platform assigned: a run of
    # one digit is a real id there, so only the placeholder words apply to them.
    platform_id = kind in (IdentityKind.MESSENGER, IdentityKind.INSTAGRAM, IdentityKind.TELEGRAM,
                           IdentityKind.LINE, IdentityKind.WEB_VISITOR)
    if (raw.lower() in blocklist() or not raw) if platform_id else is_junk(raw):
        raise IdentityValueError(
            _("“%(value)s” is a placeholder, not a real %(kind)s.") % {"value": raw, "kind": kind.label},
            code=PLACEHOLDER,
        )
    if kind == IdentityKind.PHONE:
        return NormalisedIdentity(IdentityKind.PHONE.value, "", phone_normalise(raw))
    if kind == IdentityKind.WHATSAPP:
        compact = _PHONE_SEPARATORS.sub("", raw)
        digits = compact.lstrip("+")
        if digits.isdigit():
            if compact.startswith("+") or not digits.startswith("0"):
                # A wa_id is always international without the "+": never read it as national
                # ("6591234567" is a Singapore number, not an Indonesian one).
                return NormalisedIdentity(IdentityKind.PHONE.value, "", phone_normalise("+" + digits, lenient=True))
            # A trunk "0": the number as people type it at home (a CSV, a form), the national way.
            return NormalisedIdentity(IdentityKind.PHONE.value, "", phone_normalise(raw))
    if kind == IdentityKind.EMAIL:
        value = email_normalise(raw)
        if is_junk(value):
            raise IdentityValueError(
                _("“%(value)s” is a placeholder, not a real %(kind)s.") % {"value": raw, "kind": kind.label},
                code=PLACEHOLDER,
            )
        return NormalisedIdentity(IdentityKind.EMAIL.value, "", value)
    if len(raw) > 255:
        raise IdentityValueError(_("An identity is at most 255 characters."))
    if kind in SCOPED_KINDS:
        scope = (scope or "").strip()
        if not scope:
            raise IdentityValueError(_("%(kind)s: needs the inbox it belongs to (scope).") % {"kind": kind.label})
        return NormalisedIdentity(kind.value, scope[:64], raw)
    return NormalisedIdentity(kind.value, "", raw)


def phone_search_digits(query: str) -> str:
    """Digits to search phone identities with: "0812 34" → "81234" (drop the trunk zero)."""
    digits = _NON_DIGITS.sub("", query or "")
    if digits.startswith("0"):
        digits = digits.lstrip("0")
    return digits
