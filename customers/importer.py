"""CSV import of customers: column mapping, dry run, dedup through `customer_resolve`.

Each row is resolved like any channel would resolve it, so a row whose phone or email is
already known updates that customer instead of creating a duplicate. A bad row is recorded
with its line number (the header is line 1) and the reason, and the import goes on.
Progress counters are written after every batch so the agent UI can draw a progress bar.

Rows go in batches of BATCH_SIZE. Two set-based paths take the common cases of a batch with a
fixed number of statements: `_rows_create_new` (the row can only create a new customer) and
`_rows_update_known` (the row names one existing customer and nobody else in the batch touches
it). Every other row goes one by one through `customer_resolve` + `customer_update`
(`_row_apply`). All paths give the same customers, identities, tags, timeline entries, domain
events, counters and row errors (tests/customers/test_import_batch.py compares them).
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from customers import events, services
from customers.identity import (
    PLACEHOLDER,
    IdentityValueError,
    identity_normalise,
    max_identities_per_kind,
)
from customers.models import (
    AttributeDefinition,
    Customer,
    Identity,
    IdentityKind,
    IdentityOrigin,
    ImportJob,
    LifecycleStage,
    TimelineEntry,
)
from customers.services import IdentityInput, timeline_entry_build
from customers.services.profile import (
    customer_attributes_clean,
    customer_fields_set,
    stage_timeline_values,
    tag_name_clean,
)
from customers.services.resolution import SEEN_RESOLUTION
from customers.services.timeline import identity_timeline_values
from cxplatform.db import bulk_set

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_RECORDED_ERRORS = 1000
MAX_FILE_BYTES = 50 * 1024 * 1024
ATTRIBUTE_PREFIX = "attribute:"
IDENTITY_TARGETS = {
    "phone": IdentityKind.PHONE,
    "whatsapp": IdentityKind.WHATSAPP,
    "email": IdentityKind.EMAIL,
    "external_id": IdentityKind.EXTERNAL_ID,
}
FIELD_TARGETS = ("display_name", "language", "time_zone", "lifecycle_stage", "tags")
# What `_row_parse` may put in ParsedRow.fields (all `customer_update` keywords).
ROW_FIELDS = frozenset({"language", "time_zone", "lifecycle_stage", "add_tags"})
# Not re-validated by the bulk update: the import never sets them, and validating a foreign key
# costs a query; the database's foreign keys keep them valid.
UNCHECKED_FIELDS = ["tags", "owner_agent", "owner_team", "merged_into"]

Key = tuple[str, str, str]  # an identity as stored: (kind, scope, value)
_MULTI_VALUE = re.compile(r"[;|]")


def target_choices() -> list[tuple[str, str]]:
    """What a CSV column can be mapped to (value, label); "" ignores the column."""
    choices = [
        ("", _("— ignore —")),
        ("display_name", _("Name")),
        ("phone", _("Phone")),
        ("whatsapp", _("WhatsApp number")),
        ("email", _("Email")),
        ("external_id", _("External id")),
        ("language", _("Language")),
        ("time_zone", _("Time zone")),
        ("lifecycle_stage", _("Lifecycle stage")),
        ("tags", _("Tags (comma separated)")),
    ]
    choices += [
        (f"{ATTRIBUTE_PREFIX}{d.key}", _("Attribute: %(label)s") % {"label": d.label})
        for d in AttributeDefinition.objects.all()
    ]
    return choices


_GUESSES = {
    "display_name": ("name", "nama", "full name", "full_name", "display name", "display_name", "customer", "pelanggan"),
    "phone": ("phone", "telepon", "telp", "hp", "no hp", "mobile", "phone number", "nomor"),
    "whatsapp": ("whatsapp", "wa", "wa_id"),
    "email": ("email", "e-mail", "surel", "mail"),
    "external_id": ("id", "external_id", "external id", "customer_id", "customer id", "kode"),
    "language": ("language", "bahasa", "lang"),
    "time_zone": ("time zone", "time_zone", "timezone", "zona waktu"),
    "lifecycle_stage": ("stage", "lifecycle", "lifecycle_stage"),
    "tags": ("tags", "tag", "label", "labels"),
}


def mapping_guess(headers: list[str]) -> dict[str, str]:
    """A first guess from the header names; the agent corrects it on the mapping page."""
    attribute_keys = set(AttributeDefinition.objects.values_list("key", flat=True))
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        lowered = header.strip().lower()
        target = ""
        for candidate, names in _GUESSES.items():
            if lowered in names and candidate not in used:
                target = candidate
                break
        if not target and lowered.replace(" ", "_") in attribute_keys:
            target = f"{ATTRIBUTE_PREFIX}{lowered.replace(' ', '_')}"
        if target:
            used.add(target)
        mapping[header] = target
    return mapping


def mapping_clean(*, mapping: dict[str, str], headers: list[str]) -> dict[str, str]:
    """Validate a mapping of CSV header → target. Raises ValidationError on "mapping"."""
    valid = {value for value, _label in target_choices()}
    errors = []
    cleaned = {}
    seen: dict[str, str] = {}
    for header, target in mapping.items():
        if header not in headers:
            errors.append(_("Column “%(h)s” is not in the file.") % {"h": header})
            continue
        target = target or ""
        if target not in valid:
            errors.append(
                _("Column “%(h)s”: “%(t)s” is not something a column can be imported as.") % {"h": header, "t": target}
            )
            continue
        if target and target not in IDENTITY_TARGETS and target in seen:
            errors.append(
                _("Columns “%(a)s” and “%(b)s” are both mapped to %(t)s.")
                % {"a": seen[target], "b": header, "t": target}
            )
            continue
        seen.setdefault(target, header)
        cleaned[header] = target
    if not any(t in IDENTITY_TARGETS or t == "display_name" for t in cleaned.values()):
        errors.append(_("Map at least one column to a name, phone, email or external id."))
    if errors:
        raise ValidationError({"mapping": errors})
    return cleaned


def _rows(job: ImportJob) -> Iterator[list[str]]:
    with job.file.open("rb") as handle:
        yield from csv.reader(codecs.iterdecode(handle, "utf-8-sig"))


def csv_preview(*, job: ImportJob, limit: int = 5) -> tuple[list[str], list[list[str]]]:
    """The header and the first rows, for the mapping page."""
    headers: list[str] = []
    rows: list[list[str]] = []
    try:
        for index, row in enumerate(_rows(job)):
            if index == 0:
                headers = [h.strip() for h in row]
            elif len(rows) < limit:
                rows.append(row)
            else:
                break
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError({"file": [_("This file is not a UTF-8 CSV file (%(e)s).") % {"e": exc}]}) from None
    if not headers:
        raise ValidationError({"file": [_("The file is empty.")]})
    return headers, rows


@transaction.atomic
def import_job_create(*, file: UploadedFile, actor: User | None) -> ImportJob:
    """Store the uploaded file and guess the mapping; nothing is imported yet."""
    name = getattr(file, "name", "") or "import.csv"
    if not name.lower().endswith(".csv"):
        raise ValidationError({"file": [_("Upload a .csv file.")]})
    if file.size is not None and file.size > MAX_FILE_BYTES:
        raise ValidationError({"file": [_("The file is larger than 50 MB; split it.")]})
    job = ImportJob(original_name=name[:255], created_by=actor)
    job.file.save(name, file, save=False)
    job.save()
    headers, _rows_preview = csv_preview(job=job)
    job.mapping = mapping_guess(headers)
    job.save(update_fields=["mapping"])
    return job


@transaction.atomic
def import_job_start(*, job: ImportJob, mapping: dict[str, str], dry_run: bool) -> ImportJob:
    """Fix the mapping and queue the import (after commit: never enqueue inside a transaction)."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status == ImportJob.Status.RUNNING:
        raise ValidationError(_("This import is already running."))
    if job.status == ImportJob.Status.DONE and not job.dry_run:
        raise ValidationError(_("This import has already run."))
    headers, _rows_preview = csv_preview(job=job)
    job.mapping = mapping_clean(mapping=mapping, headers=headers)
    job.dry_run = dry_run
    job.status = ImportJob.Status.PENDING
    job.total_rows = job.processed_rows = job.created_rows = job.updated_rows = job.failed_rows = 0
    job.errors = []
    job.started_at = job.finished_at = None
    job.save()
    from customers.tasks import customer_import_task

    transaction.on_commit(lambda: customer_import_task.delay(job.pk))
    return job


@dataclass
class _Counters:
    processed: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0

    def reset(self) -> None:
        self.processed = self.created = self.updated = self.failed = 0


def _split(value: str) -> list[str]:
    return [part.strip() for part in _MULTI_VALUE.split(value) if part.strip()]


@dataclass
class ParsedRow:
    line: int
    identities: list[IdentityInput]
    display_name: str
    fields: dict
    attributes: dict
    # The valid identities as stored, each once, in the order `customer_resolve` takes them
    # (placeholders such as "null" skipped as it skips them); `invalid`: one value is not an
    # identity at all, so the row path fails the row. Normalised once, for both bulk paths.
    keys: list[Key] = field(default_factory=list)
    invalid: bool = False


def _row_keys(parsed: ParsedRow) -> ParsedRow:
    keys: dict[Key, None] = {}
    for item in parsed.identities:
        try:
            norm = identity_normalise(kind=item.kind, value=item.value, scope=item.scope)
        except IdentityValueError as exc:
            parsed.invalid = parsed.invalid or exc.code != PLACEHOLDER
            continue
        keys[(norm.kind, norm.scope, norm.value)] = None
    parsed.keys = list(keys)
    return parsed


def _row_parse(*, job: ImportJob, headers: list[str], row: list[str], line: int) -> ParsedRow:
    """Map one CSV row onto identities, profile fields and attributes (no database)."""
    if len(row) > len(headers):
        raise ValidationError(
            _("The row has %(n)s cells but the header has %(h)s.") % {"n": len(row), "h": len(headers)}
        )
    values = dict(zip(headers, row + [""] * (len(headers) - len(row)), strict=True))
    identities: list[IdentityInput] = []
    fields: dict = {}
    attributes: dict = {}
    for header, target in job.mapping.items():
        raw = (values.get(header) or "").strip()
        if not target or not raw:
            continue
        if target in IDENTITY_TARGETS:
            identities += [IdentityInput(IDENTITY_TARGETS[target], part) for part in _split(raw)]
        elif target == "tags":
            fields["add_tags"] = [t.strip() for t in raw.split(",") if t.strip()]
        elif target == "lifecycle_stage":
            stage = raw.lower()
            if stage not in LifecycleStage.values:
                raise ValidationError(_("%(header)s: “%(v)s” is not a lifecycle stage.") % {"header": header, "v": raw})
            fields["lifecycle_stage"] = stage
        elif target.startswith(ATTRIBUTE_PREFIX):
            attributes[target[len(ATTRIBUTE_PREFIX) :]] = raw
        else:
            fields[target] = raw
    display_name = fields.pop("display_name", "")
    if not identities and not display_name:
        raise ValidationError(_("The row has no name and no phone, email or id."))
    return _row_keys(
        ParsedRow(line=line, identities=identities, display_name=display_name, fields=fields, attributes=attributes)
    )


def _row_apply(*, job: ImportJob, parsed: ParsedRow, source: str) -> bool:
    """Resolve and update one row like a channel would; returns True when a customer was created."""
    fields = dict(parsed.fields)
    with transaction.atomic():
        result = services.customer_resolve(
            identities=parsed.identities,
            source=source,
            display_name=parsed.display_name,
            asserted_by=IdentityOrigin.BUSINESS,
            strict=True,
        )
        if parsed.attributes:
            fields["attributes"] = parsed.attributes
            fields["attribute_definitions"] = job._attribute_definitions  # loaded once per run
        if fields:
            services.customer_update(customer=result.customer, **fields)
    return result.created


def _waves(rows: list[ParsedRow]) -> list[list[ParsedRow]]:
    """Split a batch into waves in which no two rows share an identity or a stored customer.

    A row goes one wave after the last earlier row it shares one with, so rows about the same
    customer are applied in file order, wave after wave, and the rows of one wave are
    independent: the set-based paths may apply them all at once and in any order, with the
    outcome of one by one in file order. Nearly every batch is one wave, or two when a row
    repeats a customer an earlier row of the batch created or updated. One query."""
    wanted = {key for parsed in rows for key in parsed.keys}
    owners = {
        (kind, scope, value): customer_id
        for kind, scope, value, customer_id in Identity.objects.filter(value__in={key[2] for key in wanted})
        .values_list("kind", "scope", "value", "customer_id")
        if (kind, scope, value) in wanted
    } if wanted else {}
    waves: list[list[ParsedRow]] = []
    last_wave: dict[object, int] = {}  # identity key or stored customer id → the last wave touching it
    for parsed in rows:
        touched = [*parsed.keys, *(owners[key] for key in parsed.keys if key in owners)]
        wave = max((last_wave[token] + 1 for token in touched if token in last_wave), default=0)
        for token in touched:
            last_wave[token] = wave
        if wave == len(waves):
            waves.append([])
        waves[wave].append(parsed)
    return waves


def _rows_create_new(*, job: ImportJob, rows: list[ParsedRow], source: str) -> set[int]:
    """The first bulk path: rows (of one wave) whose identities are all valid, unknown to the
    database and not shared with any other of the rows can only create a new customer each,
    exactly as `customer_resolve` would (no anchor, no suggestion) — so create them with three
    multi-row INSERTs instead of ~9 statements a row. Returns the lines handled; every other
    row (matches, invalid values, extra fields) takes one of the other paths.
    """
    limit = max_identities_per_kind()
    candidates: list[tuple[ParsedRow, dict]] = []
    seen: Counter = Counter()
    for parsed in rows:
        if set(parsed.fields) - {"add_tags"} or parsed.invalid:
            continue  # the row path records the invalid value's error, with the same words
        try:
            attributes = (customer_attributes_clean(attributes=parsed.attributes, definitions=job._attribute_definitions)
                          if parsed.attributes else {})
        except ValidationError:
            continue
        if max(Counter(kind for kind, _scope, _value in parsed.keys).values(), default=0) > limit:
            continue
        seen.update(parsed.keys)
        candidates.append((parsed, attributes))
    values = {key[2] for key in seen}
    known = {(kind, scope, value) for kind, scope, value in
             Identity.objects.filter(value__in=values).values_list("kind", "scope", "value")} if values else set()
    fresh = [(p, a) for p, a in candidates if all(seen[key] == 1 and key not in known for key in p.keys)]
    if not fresh:
        return set()
    now = timezone.now()
    try:
        with transaction.atomic():
            customers = Customer.objects.bulk_create([
                Customer(display_name=p.display_name[:200], attributes={k: v for k, v in a.items() if v is not None})
                for p, a in fresh
            ])
            Identity.objects.bulk_create([
                _identity_new(customer=customer, key=key, source=source, at=now)
                for customer, (p, _a) in zip(customers, fresh, strict=True) for key in p.keys
            ])
            _tags_add([(customer, p) for customer, (p, _a) in zip(customers, fresh, strict=True)])
    except IntegrityError:
        # Another writer created one of these identities since the lookup: let every row of
        # the batch go the row path, which resolves against what is now there.
        logger.info("import %s: a concurrent writer took an identity; falling back to row by row", job.pk)
        return set()
    for customer, (p, _a) in zip(customers, fresh, strict=True):
        transaction.on_commit(
            lambda c=customer: events.customer_created.send(sender=Customer, event=events.CUSTOMER_CREATED, customer=c)
        )
        if p.attributes:  # the row path sets them with customer_update, after customer_resolve created the customer
            _updated_on_commit(customer, ["attributes"])
    return {p.line for p, _a in fresh}


def _updated_on_commit(customer: Customer, changed: list[str]) -> None:
    """`customer_updated` as `customer_update` (called by the importer, no actor) sends it."""
    transaction.on_commit(lambda: events.customer_updated.send(
        sender=Customer, event=events.CUSTOMER_UPDATED, customer=customer, changed=changed, actor=None))


def _identity_new(*, customer: Customer, key: Key, source: str, at) -> Identity:
    """An identity the import asserts, as `customer_resolve` attaches it (business, unverified)."""
    kind, scope, value = key
    return Identity(customer=customer, kind=kind, scope=scope, value=value, verified=False,
                    origin=IdentityOrigin.BUSINESS, source=source[:100], first_seen_at=at, last_seen_at=at)


def _tags_add(rows: list[tuple[Customer, ParsedRow]]) -> None:
    """`customer.tags.add(*tags_for_names(names=row's tags))` for many rows: each tag looked up
    (or created) once, in the order the rows name them, and the links in one INSERT."""
    names = list(dict.fromkeys(name for _c, parsed in rows for name in parsed.fields.get("add_tags", [])))
    if not names:
        return
    tags = {tag.name.lower(): tag for tag in services.tags_for_names(names=names)}
    links = {
        (customer.pk, tags[key].pk)
        for customer, parsed in rows
        for key in (tag_name_clean(name).lower() for name in parsed.fields.get("add_tags", []))
        if key in tags
    }
    Through = Customer.tags.through
    Through.objects.bulk_create([Through(customer_id=c, tag_id=t) for c, t in links], ignore_conflicts=True)


@dataclass
class _KnownRow:
    """A row for `_rows_update_known`, with what customer_resolve + customer_update would do."""

    parsed: ParsedRow
    customer: Customer
    matched: list[Identity]  # stored identities of the row: touched (last seen) when stale
    new_keys: list[Key]  # attached to the customer, each with a timeline entry
    renamed: bool = False  # the customer had no name: customer_resolve gives it the row's
    changed: list[str] = field(default_factory=list)  # customer_update's fields, as its event names them
    previous_stage: str = ""


def _rows_update_known(*, job: ImportJob, rows: list[ParsedRow], source: str) -> set[int]:
    """The second bulk path: a row (of one wave) whose stored identities all belong to ONE live
    customer that none of the other rows touches, and whose new identities no other row names,
    updates that customer exactly as `_row_apply` would (identities attached and touched, the name given if it
    had none, fields and attributes set, tags added, timeline entries, `customer_updated` on
    commit) — with a fixed number of statements for all the rows. Returns the lines handled; the
    others (no stored identity, two customers, invalid values, values the update would refuse, a
    customer at its identity limit, a customer or new identity shared with another row) take the
    row path, which records the same errors with the same words."""
    planned = _known_rows_plan(job=job, rows=rows)
    if not planned:
        return set()
    now = timezone.now()
    try:
        with transaction.atomic():
            attached = Identity.objects.bulk_create([
                _identity_new(customer=row.customer, key=key, source=source, at=now)
                for row in planned for key in row.new_keys
            ])
            touched = [identity for row in planned for identity in row.matched
                       if now - identity.last_seen_at > SEEN_RESOLUTION]  # customer_resolve's _identity_touch
            for identity in touched:
                identity.last_seen_at = now
            bulk_set(Identity, touched, ["last_seen_at"])
            by_fields: dict[tuple[str, ...], list[Customer]] = defaultdict(list)
            for row in planned:
                fields = {*row.changed, *(["display_name"] if row.renamed else [])}
                if fields:
                    row.customer.updated_at = now
                    by_fields[(*sorted(fields), "updated_at")].append(row.customer)
            for fields, customers in by_fields.items():
                bulk_set(Customer, customers, list(fields))
            entries = []
            attached_iter = iter(attached)
            for row in planned:
                entries += [
                    timeline_entry_build(customer=row.customer, occurred_at=now,
                                         **identity_timeline_values(next(attached_iter)))
                    for _key in row.new_keys
                ]
                if "lifecycle_stage" in row.changed and row.previous_stage != row.customer.lifecycle_stage:
                    entries.append(timeline_entry_build(
                        customer=row.customer, occurred_at=now,
                        **stage_timeline_values(customer=row.customer, previous_stage=row.previous_stage, actor=None)))
            TimelineEntry.objects.bulk_create(entries)
            _tags_add([(row.customer, row.parsed) for row in planned])
    except IntegrityError:
        # Another writer stored one of the new identities since the lookup: the row path
        # resolves these rows against what is there now.
        logger.info("import %s: a concurrent writer took an identity; falling back to row by row", job.pk)
        return set()
    for row in planned:
        if row.changed:
            _updated_on_commit(row.customer, row.changed)
    return {row.parsed.line for row in planned}


def _known_rows_plan(*, job: ImportJob, rows: list[ParsedRow]) -> list[_KnownRow]:
    """Which rows `_rows_update_known` may write, with the customers edited in memory (nothing
    saved). Three queries: the rows' stored identities (locked, as customer_resolve locks
    them), their customers, and how many identities of each kind those customers have."""
    wanted = {key for parsed in rows for key in parsed.keys}
    if not wanted:
        return []
    stored: dict[Key, Identity] = {
        (identity.kind, identity.scope, identity.value): identity
        for identity in Identity.objects.select_for_update().filter(value__in={key[2] for key in wanted})
        if (identity.kind, identity.scope, identity.value) in wanted
    }
    if not stored:
        return []
    owners = {parsed.line: {stored[key].customer_id for key in parsed.keys if key in stored} for parsed in rows}
    rows_per_customer = Counter(pk for pks in owners.values() for pk in pks)
    rows_per_new_key = Counter(key for parsed in rows for key in parsed.keys if key not in stored)
    candidates = [
        parsed for parsed in rows
        if len(owners[parsed.line]) == 1 and not parsed.invalid and not set(parsed.fields) - ROW_FIELDS
        and rows_per_customer[next(iter(owners[parsed.line]))] == 1
        and all(rows_per_new_key[key] == 1 for key in parsed.keys if key not in stored)
    ]
    if not candidates:
        return []
    customers = Customer.objects.in_bulk({next(iter(owners[parsed.line])) for parsed in candidates})
    attaching = {next(iter(owners[p.line])) for p in candidates if any(key not in stored for key in p.keys)}
    per_kind = Counter(
        Identity.objects.filter(customer_id__in=attaching).values_list("customer_id", "kind")) if attaching else Counter()
    limit = max_identities_per_kind()
    planned = []
    for parsed in candidates:
        customer = customers[next(iter(owners[parsed.line]))]
        new_keys = [key for key in parsed.keys if key not in stored]
        kinds = Counter(kind for kind, _scope, _value in new_keys)
        if not customer.is_active_profile or any(per_kind[(customer.pk, k)] + n > limit for k, n in kinds.items()):
            continue  # a merged or erased profile, or too many identities: the row path decides
        row = _KnownRow(parsed=parsed, customer=customer, matched=[stored[k] for k in parsed.keys if k in stored],
                        new_keys=new_keys, previous_stage=customer.lifecycle_stage)
        if _known_row_edit(job=job, row=row):
            planned.append(row)
    return planned


def _known_row_edit(*, job: ImportJob, row: _KnownRow) -> bool:
    """Edit the row's customer in memory as customer_resolve and customer_update would; False
    when they would refuse the row (the row path then records why)."""
    customer, parsed = row.customer, row.parsed
    if parsed.display_name and not customer.display_name:
        customer.display_name = parsed.display_name[:200]
        row.renamed = True
    fields = {name: value for name, value in parsed.fields.items() if name != "add_tags"}
    if not parsed.fields and not parsed.attributes:
        return True  # _row_apply does not call customer_update
    if parsed.attributes:
        fields["attributes"] = parsed.attributes
    try:
        row.changed = customer_fields_set(customer=customer, fields=fields,
                                          attribute_definitions=job._attribute_definitions)
        if row.changed:
            customer.full_clean(exclude=UNCHECKED_FIELDS)
    except ValidationError:
        return False
    return True


def _reason(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{name}: {message}" if name != "__all__" else message
            for name, messages in exc.message_dict.items()
            for message in messages
        )
    return "; ".join(exc.messages)


def import_job_run(*, job_id: int) -> ImportJob:
    """Run an import (called by the Celery task). Safe to re-run: rows are resolved, so a
    second run updates the customers the first one created instead of duplicating them."""
    job = ImportJob.objects.get(pk=job_id)
    if job.status == ImportJob.Status.DONE:
        return job
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, started_at=timezone.now())
    source = f"import:{job.pk}"
    job._attribute_definitions = {d.key: d for d in AttributeDefinition.objects.all()}
    counters = _Counters()
    errors: list[dict] = []
    try:
        total = max(0, sum(1 for _row in _rows(job)) - 1)
        ImportJob.objects.filter(pk=job.pk).update(total_rows=total)
        rows = _rows(job)
        headers = [h.strip() for h in next(rows, [])]

        def flush() -> None:
            ImportJob.objects.filter(pk=job.pk).update(
                processed_rows=counters.processed,
                created_rows=counters.created,
                updated_rows=counters.updated,
                failed_rows=counters.failed,
                errors=errors[:MAX_RECORDED_ERRORS],
            )

        def fail(line: int, exc: ValidationError) -> None:
            counters.failed += 1
            if len(errors) < MAX_RECORDED_ERRORS:
                errors.append({"row": line, "reason": _reason(exc)})

        def process(batch: list[tuple[int, list[str]]]) -> None:
            parsed_rows: list[ParsedRow] = []
            failures: list[tuple[int, ValidationError]] = []
            for line, row in batch:
                counters.processed += 1
                if not any(cell.strip() for cell in row):
                    continue
                try:
                    parsed_rows.append(_row_parse(job=job, headers=headers, row=row, line=line))
                except ValidationError as exc:
                    failures.append((line, exc))
            for wave in _waves(parsed_rows):
                new_lines = _rows_create_new(job=job, rows=wave, source=source)
                counters.created += len(new_lines)
                rest = [parsed for parsed in wave if parsed.line not in new_lines]
                known_lines = _rows_update_known(job=job, rows=rest, source=source)
                counters.updated += len(known_lines)
                for parsed in rest:
                    if parsed.line in known_lines:
                        continue
                    try:
                        created = _row_apply(job=job, parsed=parsed, source=source)
                    except ValidationError as exc:
                        failures.append((parsed.line, exc))
                    else:
                        if created:
                            counters.created += 1
                        else:
                            counters.updated += 1
            for line, exc in sorted(failures, key=lambda failure: failure[0]):  # in file order, whatever the path
                fail(line, exc)

        def batches() -> Iterator[list[tuple[int, list[str]]]]:
            batch: list[tuple[int, list[str]]] = []
            for line, row in enumerate(rows, start=2):
                batch.append((line, row))
                if len(batch) >= BATCH_SIZE:
                    yield batch
                    batch = []
            if batch:
                yield batch

        if job.dry_run:
            # The same batches in one transaction rolled back at the end, so rows see each
            # other like a real run (and the counters come out the same).
            with transaction.atomic():
                for batch in batches():
                    process(batch)
                transaction.set_rollback(True)
            flush()
        else:
            for batch in batches():
                with transaction.atomic():
                    process(batch)
                flush()
    except (UnicodeDecodeError, csv.Error) as exc:
        errors.append({"row": counters.processed + 2, "reason": _("The file could not be read: %(e)s") % {"e": exc}})
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, errors=errors, finished_at=timezone.now()
        )
        return ImportJob.objects.get(pk=job.pk)
    except Exception:
        logger.exception("Customer import %s failed", job.pk)
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, finished_at=timezone.now())
        raise
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE, finished_at=timezone.now())
    if not job.dry_run:
        # The uploaded file is a pile of personal data: once imported it is not kept.
        job.file.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(file="")
    return ImportJob.objects.get(pk=job.pk)
