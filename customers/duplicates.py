"""The duplicate finder: likely duplicates beyond what identity resolution already saw.

Resolution records suggestions when identities collide. This pass looks for profiles with
no shared identity that are probably one person: very similar names (rapidfuzz) backed by
a second signal (same email local part, same last digits of a phone, same external id
digits). Names alone are not evidence: "Budi" is a very common name.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from rapidfuzz import fuzz

from customers.models import Customer, Identity, IdentityKind, MergeSuggestion
from customers.services import merge_suggestion_record

NAME_THRESHOLD = 88
_NON_ALNUM = re.compile(r"[^a-z0-9 ]+")


@dataclass
class Candidate:
    a: Customer
    b: Customer
    score: float
    evidence: list[dict] = field(default_factory=list)


def _name_key(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(_NON_ALNUM.sub(" ", ascii_name.lower()).split())


def _signals(identities: list[Identity]) -> set[tuple[str, str]]:
    signals = set()
    for identity in identities:
        if identity.kind == IdentityKind.EMAIL:
            signals.add(("email_local_part", identity.value.split("@", 1)[0]))
        elif identity.kind == IdentityKind.PHONE:
            signals.add(("phone_last_digits", identity.value[-8:]))
    return signals


def duplicates_find(*, limit: int = 500) -> list[Candidate]:
    """Pairs of live profiles with near-identical names and a corroborating signal.

    Names are blocked by their first three letters so the comparison is not quadratic in
    the number of customers.
    """
    customers = list(
        Customer.objects.filter(merged_into__isnull=True, is_erased=False)
        .exclude(display_name="")
        .prefetch_related("identities")
    )
    blocks: dict[str, list[Customer]] = defaultdict(list)
    for customer in customers:
        key = _name_key(customer.display_name)
        if len(key) >= 3:
            blocks[key[:3]].append(customer)
    candidates: list[Candidate] = []
    for block in blocks.values():
        if len(block) > 2000:
            continue  # a block this large means a placeholder name, not a person
        for index, first in enumerate(block):
            first_name = _name_key(first.display_name)
            first_signals = _signals(list(first.identities.all()))
            for second in block[index + 1 :]:
                similarity = fuzz.token_sort_ratio(first_name, _name_key(second.display_name))
                if similarity < NAME_THRESHOLD:
                    continue
                shared = first_signals & _signals(list(second.identities.all()))
                if not shared:
                    continue
                evidence = [{"reason": "similar_name", "similarity": round(similarity, 1)}] + [
                    {"reason": kind, "value": value} for kind, value in sorted(shared)
                ]
                score = min(0.85, 0.4 + (similarity - NAME_THRESHOLD) / 100 + 0.2 * len(shared))
                pair = sorted((first, second), key=lambda c: c.pk)
                candidates.append(Candidate(a=pair[0], b=pair[1], score=round(score, 3), evidence=evidence))
    candidates.sort(key=lambda c: -c.score)
    return candidates[:limit]


@transaction.atomic
def duplicates_suggest(*, limit: int = 500) -> int:
    """Record the finder's pairs as merge suggestions (dismissed pairs stay dismissed)."""
    count = 0
    for candidate in duplicates_find(limit=limit):
        suggestion = None
        for item in candidate.evidence:
            suggestion = merge_suggestion_record(
                first=candidate.a, second=candidate.b, score=candidate.score, evidence=item
            )
        if suggestion is not None and suggestion.status == MergeSuggestion.Status.OPEN:
            count += 1
    return count
