"""CSV import of customers: column mapping, dry run, dedup through `customer_resolve`.

Each row is resolved like any channel would resolve it, so a row whose phone or email is
already known updates that customer instead of creating a duplicate. A bad row is recorded
with its line number (the header is line 1) and the reason, and the import goes on.
Progress counters are written after every batch so the agent UI can draw a progress bar.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

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
    NormalisedIdentity,
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
)
from customers.services import IdentityInput
from customers.services.profile import customer_attributes_clean, tag_name_clean

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
    return ParsedRow(line=line, identities=identities, display_name=display_name, fields=fields, attributes=attributes)


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


def _rows_create_new(*, job: ImportJob, rows: list[ParsedRow], source: str) -> set[int]:
    """The bulk path: rows whose identities are all valid, unknown to the database and not
    shared with any other row of the batch can only create a new customer each, exactly as
    `customer_resolve` would (no anchor, no suggestion) — so create them with three
    multi-row INSERTs instead of ~9 statements a row. Returns the lines handled; every other
    row (matches, repeats within the batch, invalid values, extra fields) takes the row path.
    """
    limit = max_identities_per_kind()
    candidates: list[tuple[ParsedRow, list[NormalisedIdentity], dict]] = []
    seen: Counter = Counter()
    for parsed in rows:
        if set(parsed.fields) - {"add_tags"}:
            continue
        try:
            norms = []
            for item in parsed.identities:
                try:
                    norms.append(identity_normalise(kind=item.kind, value=item.value, scope=item.scope))
                except IdentityValueError as exc:
                    if exc.code != PLACEHOLDER:  # "null", "-": skipped without an error, as the row path does
                        raise
            attributes = (customer_attributes_clean(attributes=parsed.attributes, definitions=job._attribute_definitions)
                          if parsed.attributes else {})
        except (IdentityValueError, ValidationError):
            continue  # the row path records the same error, with the same words
        keys = {(n.kind, n.scope, n.value) for n in norms}
        if max(Counter(n.kind for n in norms).values(), default=0) > limit:
            continue
        seen.update(keys)
        candidates.append((parsed, norms, attributes))
    values = {key[2] for key in seen}
    known = {(kind, scope, value) for kind, scope, value in
             Identity.objects.filter(value__in=values).values_list("kind", "scope", "value")} if values else set()
    fresh = [(p, n, a) for p, n, a in candidates
             if all(seen[key] == 1 and key not in known for key in {(x.kind, x.scope, x.value) for x in n})]
    if not fresh:
        return set()
    now = timezone.now()
    try:
        with transaction.atomic():
            customers = Customer.objects.bulk_create([
                Customer(display_name=p.display_name[:200], attributes={k: v for k, v in a.items() if v is not None})
                for p, _n, a in fresh
            ])
            identities = []
            for customer, (_p, norms, _a) in zip(customers, fresh, strict=True):
                unique = {(n.kind, n.scope, n.value): n for n in norms}
                identities += [
                    Identity(customer=customer, kind=n.kind, scope=n.scope, value=n.value, verified=False,
                             origin=IdentityOrigin.BUSINESS, source=source[:100], first_seen_at=now, last_seen_at=now)
                    for n in unique.values()
                ]
            Identity.objects.bulk_create(identities)
            tag_names = sorted({name for p, _n, _a in fresh for name in p.fields.get("add_tags", [])})
            if tag_names:
                tags = {tag.name.lower(): tag for tag in services.tags_for_names(names=tag_names)}
                links = {
                    (customer.pk, tags[key].pk)
                    for customer, (p, _n, _a) in zip(customers, fresh, strict=True)
                    for key in (tag_name_clean(name).lower() for name in p.fields.get("add_tags", []))
                    if key in tags
                }
                Through = Customer.tags.through
                Through.objects.bulk_create([Through(customer_id=c, tag_id=t) for c, t in links], ignore_conflicts=True)
    except IntegrityError:
        # Another writer created one of these identities since the lookup: let every row of
        # the batch go the row path, which resolves against what is now there.
        logger.info("import %s: a concurrent writer took an identity; falling back to row by row", job.pk)
        return set()
    for customer in customers:
        transaction.on_commit(
            lambda c=customer: events.customer_created.send(sender=Customer, event=events.CUSTOMER_CREATED, customer=c)
        )
    return {p.line for p, _n, _a in fresh}


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
            for line, row in batch:
                counters.processed += 1
                if not any(cell.strip() for cell in row):
                    continue
                try:
                    parsed_rows.append(_row_parse(job=job, headers=headers, row=row, line=line))
                except ValidationError as exc:
                    fail(line, exc)
            done = _rows_create_new(job=job, rows=parsed_rows, source=source)
            counters.created += len(done)
            for parsed in parsed_rows:
                if parsed.line in done:
                    continue
                try:
                    created = _row_apply(job=job, parsed=parsed, source=source)
                except ValidationError as exc:
                    fail(parsed.line, exc)
                else:
                    if created:
                        counters.created += 1
                    else:
                        counters.updated += 1

        if job.dry_run:
            # One transaction rolled back at the end, so rows see each other like a real run.
            with transaction.atomic():
                batch: list[tuple[int, list[str]]] = []
                for line, row in enumerate(rows, start=2):
                    batch.append((line, row))
                process(batch)
                transaction.set_rollback(True)
            flush()
        else:
            batch = []
            for line, row in enumerate(rows, start=2):
                batch.append((line, row))
                if len(batch) >= BATCH_SIZE:
                    with transaction.atomic():
                        process(batch)
                    flush()
                    batch = []
            if batch:
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
