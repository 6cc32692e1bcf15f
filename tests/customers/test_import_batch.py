"""The import's set-based paths (`_rows_create_new`, `_rows_update_known`, applied wave by wave)
give exactly what importing one row at a time in file order gives: the same CSV is imported
into the same small world twice, once with both paths switched off, and everything written is
compared (customers, identities, tags, attributes, timeline, merge suggestions, domain events,
counters, row errors). The clock is frozen so timestamps compare exactly too."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from customers import events, importer
from customers.importer import import_job_create, import_job_start
from customers.models import Customer, Identity, ImportJob, MergeSuggestion, Tag, TimelineEntry
from tests.customers.factories import AttributeDefinitionFactory, CustomerFactory, IdentityFactory
from tests.customers.test_importer import upload

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
HEADER = "Name,Phone,Id,Email,Stage,Lang,TZ,City,Level,Tags"
MAPPING = {"Name": "display_name", "Phone": "phone", "Id": "external_id", "Email": "email", "Stage": "lifecycle_stage",
           "Lang": "language", "TZ": "time_zone", "City": "attribute:city", "Level": "attribute:level", "Tags": "tags"}
# (what the row is, the CSV line); batches of 10 rows. "new:" and "known:" rows must take that
# set-based path, the others go one by one.
ROWS = [
    # batch 1
    ("known:ana", 'Ana Baru,0811-0000-0001,,ana@mail.test,acquisition,id,Asia/Jakarta,Bandung,3,"vip, Gold"'),
    ("known:bob gets a name", "Bob,,,bob@mail.test,,,,Depok,,"),
    ("known:dan twice in a batch", "Dan,0811-0000-0004,,,acquisition,,,,,"),
    ("known:dan twice in a batch (second wave)", "Dan,+62 811 0000 0004,,,,,,Solo,,"),
    ("eve is two customers", "Eve,0811-0000-0005,,eve@mail.test,,,,,,"),
    ("new:zed", "Zed,0899-1111-0001,,zed@mail.test,,,,Bandung,,vip"),
    ("new yan with a stage", "Yan,0899-1111-0002,,,conversion,,,,,"),
    ("fay at her e-mail limit", "Fay,,,fay1@mail.test; fay3@mail.test,,,,,,"),
    ("hal was merged away", "Hal,0811-0000-0008,,,,,,Jambi,,"),
    ("ivy's level is no number", "Ivy,0811-0000-0009,,,,,,,abc,"),
    # batch 2
    ("jon's language is unknown", "Jon,0811-0000-0010,,,,xx,,,,"),
    ("kim's time zone is unknown", "Kim,0811-0000-0011,,,,,Mars/Base,,,"),
    ("known:lee only tags", "Lee,0811-0000-0012,,,,,,,,loyal"),
    ("known:mia same stage", "Mia,0811-0000-0013,,,acquisition,,,,,"),
    ("known:ned adds an e-mail", "Ned,0811-0000-0014,,ned@mail.test,,,,,,"),
    ("known:nia names ned's new e-mail (second wave): her phone goes to ned", "Nia,0899-1111-0003,,ned@mail.test,,,,,,"),
    ("oli's e-mail is invalid", "Oli,0811-0000-0015,,oli@@mail,,,,,,"),
    ("known:pam placeholder e-mail", "Pam,0811-0000-0016,,null,conversion,,,,,"),
    ("known:zed again, from batch 1", "Zed Z,+62 899 1111 0001,,,,,,Bandung,,"),
    ("known:cit adds her id", "Cit,0811-0000-0003,C-3,,conversion,,,,7,"),
    # batch 3
    ("new:qin", "Qin,0899-1111-0004,,,,,,,,"),
    ("known:qin again (second wave)", "Qin,0899 1111 0004,,,acquisition,,,,,"),
    ("known:ana again", "Ana,0811-0000-0001,,,,,,,,VIP"),
    ("new:only a name", "Rai,,,,,,,,,"),
    ("blank", ",,,,,,,,,"),
    ("nothing to go by", ",,,,,,,Medan,,"),
    ("known:yan again, from batch 1", "Yan,+62 899 1111 0002,,,,,,,,"),
    ("known:fay adds a phone (her e-mails are at the limit)", "Fay,0811-0000-0020,,fay1@mail.test,,,,,,"),
    ("known:ana by phone again (second wave)", "Ana,0811 0000 0001,,,retention,,,,,"),
    ("known:ana by the e-mail batch 1 gave her (third wave: after the rows about her)", "A,,,ana@mail.test,loyalty,,,,,"),
    # batch 4: errors are recorded in file order, whichever step finds them
    ("oli's e-mail is still invalid", "Oli,0811-0000-0015,,oli@@mail,,,,,,"),
    ("no such stage", "Sam,0899-1111-0009,,,vip,,,,,"),
]


@pytest.fixture
def attributes(db):
    AttributeDefinitionFactory(key="city", label="City")
    AttributeDefinitionFactory(key="level", label="Level", type="number")


def build_world() -> None:
    """The customers the CSV meets, as earlier imports and channels left them."""
    with mock.patch("django.utils.timezone.now", return_value=NOW - dt.timedelta(hours=1)):
        def person(name: str, *identities: tuple[str, str, dt.timedelta], **fields) -> Customer:
            customer = CustomerFactory(display_name=name, **fields)
            for kind, value, seen_ago in identities:
                IdentityFactory(customer=customer, kind=kind, value=value, verified=kind != "email",
                                first_seen_at=NOW - dt.timedelta(days=1), last_seen_at=NOW - seen_ago)
            return customer

        stale, fresh = dt.timedelta(minutes=2), dt.timedelta(seconds=10)
        ana = person("Ana", ("phone", "+6281100000001", stale), attributes={"city": "Medan", "vip_since": "2024"})
        ana.tags.create(name="old")
        person("", ("email", "bob@mail.test", fresh))
        person("Cit", ("phone", "+6281100000003", stale), ("email", "cit@mail.test", stale), language="en")
        person("Dan", ("phone", "+6281100000004", stale))
        person("Eve 1", ("phone", "+6281100000005", stale))
        person("Eve 2", ("email", "eve@mail.test", stale))
        person("Fay", ("email", "fay1@mail.test", stale), ("email", "fay2@mail.test", stale))
        person("Hal", ("phone", "+6281100000008", stale), merged_into=ana)
        for n, name in ((9, "Ivy"), (10, "Jon"), (11, "Kim"), (12, "Lee"), (14, "Ned"), (15, "Oli"), (16, "Pam")):
            person(name, ("phone", f"+62811000000{n:02d}", stale))
        person("Mia", ("phone", "+6281100000013", fresh), lifecycle_stage="acquisition")


def world_wipe() -> None:
    Customer.objects.update(merged_into=None)
    for model in (TimelineEntry, MergeSuggestion, Identity, Customer, Tag, ImportJob):
        model.objects.all().delete()


def import_csv(agent, capture, *, batched: bool) -> tuple[ImportJob, list[tuple], list[tuple[str, int]]]:
    """Import ROWS into a fresh world; returns the job, the domain events and the lines each
    set-based path took. Not `batched`: one row at a time, in file order."""
    sent: list[tuple] = []
    taken: list[tuple[str, int]] = []

    def spy(path: str, real):
        def run(**kwargs):
            lines = real(**kwargs) if batched else set()
            taken.extend((path, line) for line in sorted(lines))
            return lines
        return run

    def on_event(sender, event, customer, changed=None, **kwargs):
        sent.append((event, customer.pk, tuple(changed or ()), customer.display_name, customer.lifecycle_stage,
                     customer.updated_at - NOW))

    build_world()
    job = import_job_create(file=upload("\n".join([HEADER, *(line for _what, line in ROWS)]) + "\n"), actor=agent)
    events.customer_created.connect(on_event, dispatch_uid="test-import-batch-created")
    events.customer_updated.connect(on_event, dispatch_uid="test-import-batch-updated")
    try:
        with mock.patch.object(importer, "BATCH_SIZE", 10), \
                mock.patch.object(importer, "_waves", importer._waves if batched else lambda rows: [rows]), \
                mock.patch.object(importer, "_rows_create_new", spy("new", importer._rows_create_new)), \
                mock.patch.object(importer, "_rows_update_known", spy("known", importer._rows_update_known)), \
                mock.patch("django.utils.timezone.now", return_value=NOW), capture(execute=True):
            import_job_start(job=job, mapping=MAPPING, dry_run=False)
    finally:
        events.customer_created.disconnect(dispatch_uid="test-import-batch-created")
        events.customer_updated.disconnect(dispatch_uid="test-import-batch-updated")
    job.refresh_from_db()
    return job, sent, taken


def stored(job: ImportJob, sent: list[tuple]) -> dict:
    """Everything the import wrote, with customers named by their identities (or their name)."""
    identities = list(Identity.objects.order_by("pk"))
    by_customer: dict[int, list[str]] = {}
    for identity in identities:
        by_customer.setdefault(identity.customer_id, []).append(identity.value)
    customers = list(Customer.objects.prefetch_related("tags"))
    label = {c.pk: ",".join(sorted(by_customer.get(c.pk, []))) or f"name:{c.display_name}" for c in customers}
    label[None] = None
    identity_value = {str(i.pk): i.value for i in identities}

    def source(text: str) -> str:
        return text.replace(f"import:{job.pk}", "import:JOB")

    def offset(moment: dt.datetime | None) -> dt.timedelta | None:
        return None if moment is None else moment - NOW

    return {
        "job": (job.status, job.total_rows, job.processed_rows, job.created_rows, job.updated_rows, job.failed_rows,
                job.errors),
        "customers": sorted(
            (label[c.pk], c.display_name, c.language, c.time_zone, c.lifecycle_stage, sorted(c.attributes.items()),
             list(c.attributes), sorted(t.name for t in c.tags.all()), offset(c.updated_at), offset(c.last_seen_at),
             label[c.merged_into_id], c.is_erased)
            for c in customers
        ),
        "identities": sorted(
            (label[i.customer_id], i.kind, i.scope, i.value, i.verified, i.origin, source(i.source), i.source_ref,
             offset(i.first_seen_at), offset(i.last_seen_at))
            for i in identities
        ),
        "timeline": sorted(
            (label[e.customer_id], e.kind, e.title, e.body, e.channel, e.ref_type,
             identity_value.get(e.ref_id, e.ref_id) if e.ref_type == "customers.identity" else e.ref_id,
             sorted((k, source(v) if isinstance(v, str) else v) for k, v in e.data.items()), offset(e.occurred_at))
            for e in TimelineEntry.objects.all()
        ),
        "suggestions": sorted(
            (label[s.a_id], label[s.b_id], s.score, s.status, [sorted((k, source(str(v))) for k, v in item.items())
                                                               for item in s.evidence])
            for s in MergeSuggestion.objects.all()
        ),
        "tags": sorted(Tag.objects.values_list("name", flat=True)),
        "events": sorted((name, label[pk], *rest) for name, pk, *rest in sent),
    }


def test_set_based_paths_store_what_one_row_at_a_time_stores(agent, attributes, django_capture_on_commit_callbacks):
    with override_settings(CUSTOMERS_MAX_IDENTITIES_PER_KIND=2):
        one_by_one_job, one_by_one_events, none_taken = import_csv(agent, django_capture_on_commit_callbacks,
                                                                  batched=False)
        one_by_one = stored(one_by_one_job, one_by_one_events)
        world_wipe()
        batched_job, batched_events, taken = import_csv(agent, django_capture_on_commit_callbacks, batched=True)
        batched = stored(batched_job, batched_events)

    assert none_taken == []
    assert sorted(taken) == sorted((what.split(":")[0], line) for line, (what, _csv) in enumerate(ROWS, start=2)
                                   if what.startswith(("new:", "known:")))
    for part in one_by_one:
        assert batched[part] == one_by_one[part], part
    # The world is what the cases say it is (so the comparison above compares something).
    assert batched["job"][3:] == (4, 18, 9, [  # and one blank line
        {"row": 9, "reason": "identities: fay3@mail.test: This customer already has 2 identities of this kind."},
        {"row": 10, "reason": "This profile was merged or erased and can no longer be edited."},
        {"row": 11, "reason": "attributes: level: must be a number"},
        {"row": 12, "reason": "language: Unknown language code; use an ISO code such as id, en or jv."},
        {"row": 13, "reason": "time_zone: Mars/Base is not a time zone such as Asia/Jakarta."},
        {"row": 18, "reason": "identities: “oli@@mail” is not a valid email address."},
        {"row": 27, "reason": "The row has no name and no phone, email or id."},
        {"row": 32, "reason": "identities: “oli@@mail” is not a valid email address."},
        {"row": 33, "reason": "Stage: “vip” is not a lifecycle stage."},
    ])
    ana = next(c for c in batched["customers"] if c[0] == "+6281100000001,ana@mail.test")
    assert ana[1:6] == ("Ana", "id", "Asia/Jakarta", "loyalty", [("city", "Bandung"), ("level", 3), ("vip_since", "2024")])
    assert ana[7:10] == (["Gold", "old", "vip"], dt.timedelta(0), None)
    assert [e[2:5] for e in batched["events"] if e[1] == ana[0]] == [
        (("language", "time_zone", "lifecycle_stage", "attributes"), "Ana", "acquisition"),
        (("lifecycle_stage",), "Ana", "loyalty"),
        (("lifecycle_stage",), "Ana", "retention"),
    ]
    assert sorted(e[1:3] for e in batched["timeline"] if e[0] == ana[0]) == [
        ("identity", "Email ana@mail.test added"), ("stage_changed", "Stage: Acquisition → Retention"),
        ("stage_changed", "Stage: Reach → Acquisition"), ("stage_changed", "Stage: Retention → Loyalty")]
    assert [i[8:] for i in batched["identities"] if i[0] == ana[0]] == [
        (dt.timedelta(0), dt.timedelta(0)), (dt.timedelta(days=-1), dt.timedelta(0))]  # e-mail new, phone touched


def repeats_csv(customers: list[Customer]) -> str:
    lines = ["Name,Phone,Email,Stage,City,Tags"]
    lines += [f"Customer {c.pk},0812{c.pk:08d},again{c.pk}@mail.test,acquisition,Bandung,{'vip' if c.pk % 2 else ''}"
              for c in customers]
    return "\n".join(lines) + "\n"


def import_repeats(n: int, agent, capture) -> tuple[int, ImportJob]:
    customers = []
    for _ in range(n):
        customer = CustomerFactory(display_name="" if len(customers) % 3 else "Known")
        IdentityFactory(customer=customer, kind="phone", value=f"+62812{customer.pk:08d}", verified=False,
                        origin="business", last_seen_at=NOW - dt.timedelta(days=1))
        customers.append(customer)
    job = import_job_create(file=upload(repeats_csv(customers)), actor=agent)
    mapping = {"Name": "display_name", "Phone": "phone", "Email": "email", "Stage": "lifecycle_stage",
               "City": "attribute:city", "Tags": "tags"}
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        import_job_start(job=job, mapping=mapping, dry_run=False)
    job.refresh_from_db()
    return len(queries), job


def test_statements_for_known_customers_do_not_grow_with_the_rows(agent, attributes,
                                                                   django_capture_on_commit_callbacks):
    small, small_job = import_repeats(20, agent, django_capture_on_commit_callbacks)
    large, large_job = import_repeats(200, agent, django_capture_on_commit_callbacks)

    assert (small_job.updated_rows, large_job.updated_rows, large_job.failed_rows) == (20, 200, 0)
    assert TimelineEntry.objects.count() == 2 * 220  # the new e-mail and the stage change, every row
    # Multi-row INSERTs and UPDATEs are split by SQLite's parameter limit (not PostgreSQL's), so a
    # few more statements for 10× the rows; the row path took about 20 a row (3,600 more here).
    assert large - small <= (0 if connection.vendor == "postgresql" else 12), (small, large)
