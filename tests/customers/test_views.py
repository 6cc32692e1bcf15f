from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers import services
from customers.models import Customer, CustomerMerge, ImportJob
from customers.services import IdentityInput, customer_resolve
from tests.customers.factories import AttributeDefinitionFactory, CustomerFactory, IdentityFactory, TimelineEntryFactory

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'


class ControlLabels(HTMLParser):
    """Collects form controls without a <label for>, a wrapping label or an aria-label."""

    def __init__(self):
        super().__init__()
        self.label_for: set[str] = set()
        self.controls: list[dict] = []
        self.in_label = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.in_label += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.controls.append({**attrs, "_wrapped": self.in_label > 0})

    def handle_endtag(self, tag):
        if tag == "label":
            self.in_label -= 1

    def unlabelled(self) -> list[dict]:
        return [c for c in self.controls if not (c["_wrapped"] or c.get("aria-label") or c.get("id") in self.label_for)]


def unlabelled_controls(html: str) -> list[dict]:
    parser = ControlLabels()
    parser.feed(html)
    return parser.unlabelled()


@pytest.fixture
def budi(db):
    AttributeDefinitionFactory(key="city", label="City")
    customer = CustomerFactory(display_name=XSS, attributes={"city": XSS})
    IdentityFactory(customer=customer, kind="phone", value="+6281234567890")
    services.note_add(customer=customer, author=None, body=XSS)
    TimelineEntryFactory(customer=customer, title=XSS, body=XSS)
    return customer


def test_list_total_is_counted_up_to_a_cap_and_says_more_than(client, agent, monkeypatch):
    from customers import views

    monkeypatch.setattr(views, "LIST_PAGE_SIZE", 2)
    monkeypatch.setattr(views, "LIST_COUNT_CAP", 4)
    CustomerFactory.create_batch(5, display_name="Budi")
    client.force_login(agent)

    first = " ".join(client.get(reverse("customers:list"), {"q": "budi"}).content.decode().split())
    last = " ".join(client.get(reverse("customers:list"), {"q": "budi", "page": 3}).content.decode().split())

    assert "More than 4 customers" in first
    assert "Page 1 of more than 2" in first
    assert "5 customers" in last
    assert "Page 3 of 3" in last


def test_list_searches_by_partial_phone(client, agent, budi):
    CustomerFactory(display_name="Siti")
    client.force_login(agent)

    response = client.get(reverse("customers:list"), {"q": "0812-3456"})

    assert response.status_code == 200
    assert [c.pk for c in response.context["page"]] == [budi.pk]
    assert unlabelled_controls(response.content.decode()) == []


def test_list_rows_come_from_the_narrowed_query_in_a_flat_number_of_queries(client, agent):
    """The list reads only what its rows show (customer_list(for_rows=True)): every cell comes
    out escaped, and no row loads a deferred field (a query per row)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    def queries() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("customers:list"), {"q": "budi"})
        return len(ctx.captured_queries), response.content.decode()

    client.force_login(agent)
    client.get(reverse("customers:list"))  # the first request of a session does a little more (last seen)
    CustomerFactory(display_name="Budi 0")
    one_row, _html = queries()
    for n in range(1, 5):
        customer = CustomerFactory(display_name=f"Budi <{n}>", lifecycle_stage="loyalty", last_seen_at=timezone.now())
        IdentityFactory(customer=customer, kind="phone", value=f"+62812345678{n}")
        customer.tags.set(services.tags_for_names(names=["vip"]))

    count, html = queries()

    assert count == one_row
    assert "Budi &lt;4&gt;" in html and "Budi <4>" not in html
    for shown in ("+628123456784", ">vip<", "Loyalty", reverse("customers:detail", args=[customer.pk])):
        assert shown in html, shown


def test_list_segment_choices_come_from_one_plain_query_and_still_filter(client, agent):
    """The segment select's options are read with one ordinary query (a ModelChoiceField would
    open a server-side cursor on PostgreSQL: DECLARE, FETCH, CLOSE) and choosing one filters."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.models import Segment

    loyal = Segment.objects.create(name="Loyal <b>", filters={"stage": "loyalty"})
    Segment.objects.create(name="Everyone", filters={})
    CustomerFactory(display_name="Sari", lifecycle_stage="loyalty")
    CustomerFactory(display_name="Budi", lifecycle_stage="reach")
    client.force_login(agent)

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("customers:list"), {"segment": loyal.pk})

    html = response.content.decode()
    assert [c.display_name for c in response.context["page"]] == ["Sari"]
    assert f'<option value="{loyal.pk}" selected>Loyal &lt;b&gt;</option>' in html
    assert ">Everyone</option>" in html
    assert not [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(("DECLARE", "FETCH"))]


def test_profile_escapes_user_text_and_labels_every_control(client, supervisor, budi):
    client.force_login(supervisor)

    response = client.get(reverse("customers:detail", args=[budi.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert XSS not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert unlabelled_controls(html) == []


def test_agent_adds_a_note_and_it_appears_on_the_timeline(client, agent):
    customer = CustomerFactory()
    client.force_login(agent)

    response = client.post(reverse("customers:note_add", args=[customer.pk]), {"body": "Called back about the order"})

    assert response.status_code == 302
    assert list(customer.notes.values_list("body", flat=True)) == ["Called back about the order"]
    assert list(customer.timeline.values_list("kind", "body")) == [("note", "Called back about the order")]


def test_invalid_phone_on_profile_shows_the_reason(client, agent):
    customer = CustomerFactory()
    client.force_login(agent)

    response = client.post(
        reverse("customers:identity_add", args=[customer.pk]), {"kind": "phone", "value": "123"}, follow=True
    )

    assert "“123” is not a valid phone number." in response.content.decode()
    assert customer.identities.count() == 0


def test_agent_cannot_open_merge_preview(client, agent):
    one, two = CustomerFactory(), CustomerFactory()
    client.force_login(agent)

    response = client.get(reverse("customers:merge", args=[one.pk]), {"source": two.pk})

    assert response.status_code == 403


def test_supervisor_previews_merges_and_undoes(client, supervisor):
    one, two = CustomerFactory(display_name="Budi", attributes={}), CustomerFactory(display_name="Budi S")
    IdentityFactory(customer=two, kind="email", value="budi@mail.co.id")
    client.force_login(supervisor)

    preview = client.get(reverse("customers:merge", args=[one.pk]), {"source": two.pk})
    merged = client.post(reverse("customers:merge", args=[one.pk]), {"source": two.pk, "reason": "same email"})
    merge = CustomerMerge.objects.get()
    confirm = client.get(reverse("customers:unmerge", args=[merge.pk]))
    undone = client.post(reverse("customers:unmerge", args=[merge.pk]))

    assert preview.status_code == 200
    assert "budi@mail.co.id" in preview.content.decode()
    assert unlabelled_controls(preview.content.decode()) == []
    assert merged.status_code == 302 and merge.reason == "same email"
    assert confirm.status_code == 200
    assert undone.status_code == 302
    two.refresh_from_db()
    assert two.merged_into_id is None
    assert list(two.identities.values_list("value", flat=True)) == ["budi@mail.co.id"]


def test_erase_needs_the_second_step(client, supervisor):
    customer = CustomerFactory(display_name="Budi")
    client.force_login(supervisor)

    page = client.get(reverse("customers:erase", args=[customer.pk]))
    unconfirmed = client.post(reverse("customers:erase", args=[customer.pk]), {})
    customer.refresh_from_db()
    assert (page.status_code, unconfirmed.status_code, customer.is_erased) == (200, 200, False)

    client.post(reverse("customers:erase", args=[customer.pk]), {"confirm": "on"})

    customer.refresh_from_db()
    assert (customer.is_erased, customer.display_name) == (True, "")


def test_duplicates_page_lists_suggestions_with_evidence(client, supervisor):
    victim = CustomerFactory(display_name="Siti")
    IdentityFactory(customer=victim, kind="email", value="siti@mail.co.id")
    customer_resolve(
        identities=[
            IdentityInput("web_visitor", "v1", verified=True, scope="w"),
            IdentityInput("email", "siti@mail.co.id"),
        ],
        source="inbox:widget",
    )
    client.force_login(supervisor)

    response = client.get(reverse("customers:duplicates"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "an unverified email siti@mail.co.id was typed via inbox:widget" in html
    assert unlabelled_controls(html) == []


def test_fuzzy_duplicate_scan_needs_a_second_signal(client, supervisor):
    one = CustomerFactory(display_name="Budi Santoso")
    IdentityFactory(customer=one, kind="email", value="budi.santoso@mail.co.id")
    two = CustomerFactory(display_name="Budi Santosa")
    IdentityFactory(customer=two, kind="email", value="budi.santoso@kantor.co.id")
    three = CustomerFactory(display_name="Budi Santoso")  # same name, nothing else in common
    IdentityFactory(customer=three, kind="email", value="other@mail.co.id")
    client.force_login(supervisor)

    response = client.get(reverse("customers:duplicates"), {"scan": "1"})

    assert [(c.a.pk, c.b.pk) for c in response.context["fuzzy"]] == [(one.pk, two.pk)]


def test_import_upload_map_and_progress(client, supervisor, django_capture_on_commit_callbacks):
    client.force_login(supervisor)
    upload = SimpleUploadedFile("list.csv", b"Nama,No HP\nBudi,0812-3456-7890\nBad,12\n", content_type="text/csv")

    uploaded = client.post(reverse("customers:import_upload"), {"file": upload})
    job = ImportJob.objects.get()
    mapping_page = client.get(reverse("customers:import_mapping", args=[job.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            reverse("customers:import_mapping", args=[job.pk]), {"col_0": "display_name", "col_1": "phone"}
        )
    status = client.get(reverse("customers:import_status", args=[job.pk])).json()
    progress = client.get(reverse("customers:import_progress", args=[job.pk]))

    assert uploaded.status_code == 302
    assert unlabelled_controls(mapping_page.content.decode()) == []
    assert started.status_code == 302
    assert (status["status"], status["processed"], status["created"], status["failed"], status["percent"]) == (
        "done",
        2,
        1,
        1,
        100,
    )
    assert status["errors"] == [{"row": 3, "reason": "identities: “12” is not a valid phone number."}]
    assert progress.status_code == 200
    assert Customer.objects.get().display_name == "Budi"


def test_agents_cannot_import(client, agent):
    client.force_login(agent)

    assert client.get(reverse("customers:import_upload")).status_code == 403


def test_segment_csv_export_is_supervisor_only_audited_and_injection_safe(client, agent, supervisor):
    from accounts.models import AuditEntry

    vip = CustomerFactory(display_name='=HYPERLINK("http://evil")', lifecycle_stage="loyalty")
    IdentityFactory(customer=vip, kind="phone", value="+6281234567890")
    CustomerFactory(lifecycle_stage="reach")
    segment = services.segment_create(name="Loyal", filters={"stage": "loyalty"})

    client.force_login(agent)
    assert client.get(reverse("customers:list_csv"), {"segment": segment.pk}).status_code == 403
    client.force_login(supervisor)
    response = client.get(reverse("customers:list_csv"), {"segment": segment.pk})

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "id,name,stage,phones,emails,tags,last_contacted_at"
    assert lines[1:] == [f'{vip.pk},"\'=HYPERLINK(""http://evil"")",loyalty,+6281234567890,,,']
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DATA_EXPORTED, actor=supervisor).count() == 1


@pytest.mark.parametrize(
    ("next_url", "expected"), [("https://evil.example/", "/customers/duplicates/"), ("/customers/1/", "/customers/1/")]
)
def test_dismissing_a_suggestion_only_redirects_inside_the_site(client, supervisor, next_url, expected):
    one, two = CustomerFactory(), CustomerFactory()
    suggestion = services.merge_suggestion_record(first=one, second=two, score=0.6, evidence={"reason": "x"})
    client.force_login(supervisor)

    response = client.post(reverse("customers:suggestion_decide", args=[suggestion.pk, "dismiss"]), {"next": next_url})

    assert response["Location"] == expected
    suggestion.refresh_from_db()
    assert suggestion.status == "dismissed"


def test_import_of_a_file_that_is_not_utf8_fails_with_a_reason(client, supervisor, django_capture_on_commit_callbacks):
    client.force_login(supervisor)
    body = b"name,phone\n" + b"Budi,0812-3456-7890\n" * 20 + "Jos\xe9,0812-3456-7891\n".encode("latin-1")
    client.post(
        reverse("customers:import_upload"), {"file": SimpleUploadedFile("l.csv", body, content_type="text/csv")}
    )
    job = ImportJob.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("customers:import_mapping", args=[job.pk]), {"col_0": "display_name", "col_1": "phone"})

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "could not be read" in job.errors[0]["reason"]
    assert Customer.objects.count() == 0


def test_remaining_pages_label_every_control(client, supervisor):
    customer = CustomerFactory()
    other = CustomerFactory()
    merge = services.customer_merge(survivor=customer, merged=other, actor=supervisor)
    client.force_login(supervisor)
    upload = client.get(reverse("customers:import_upload"))
    erase = client.get(reverse("customers:erase", args=[customer.pk]))
    undo = client.get(reverse("customers:unmerge", args=[merge.pk]))

    for response in (upload, erase, undo):
        assert response.status_code == 200
        assert unlabelled_controls(response.content.decode()) == []


def test_supervisor_saves_the_current_filters_as_a_segment(client, supervisor, agent):
    from customers.models import Segment

    client.force_login(agent)
    assert client.post(reverse("customers:segment_save"), {"name": "X", "stage": "loyalty"}).status_code == 403
    client.force_login(supervisor)
    page = client.get(reverse("customers:list"), {"stage": "loyalty", "tag": "vip"})

    response = client.post(
        reverse("customers:segment_save"),
        {"name": "Loyal VIPs", "q": "", "stage": "loyalty", "tag": "vip", "channel": ""},
    )

    segment = Segment.objects.get()
    assert unlabelled_controls(page.content.decode()) == []
    assert (segment.name, segment.filters, segment.created_by) == (
        "Loyal VIPs",
        {"stage": "loyalty", "tags": ["vip"]},
        supervisor,
    )
    assert response["Location"] == f"{reverse('customers:list')}?segment={segment.pk}"


def test_agent_creates_a_customer_and_a_known_phone_finds_the_existing_one(client, agent):
    existing = CustomerFactory(display_name="Budi")
    IdentityFactory(customer=existing, kind="phone", value="+6281234567890")
    client.force_login(agent)

    page = client.get(reverse("customers:create"))
    known = client.post(reverse("customers:create"), {"display_name": "Budi S", "phone": "0812-3456-7890", "email": ""})
    new = client.post(reverse("customers:create"), {"display_name": "Siti", "phone": "", "email": "siti@mail.co.id"})
    bad = client.post(reverse("customers:create"), {"display_name": "X", "phone": "12", "email": ""})

    assert unlabelled_controls(page.content.decode()) == []
    assert known["Location"] == reverse("customers:detail", args=[existing.pk])
    siti = Customer.objects.get(display_name="Siti")
    assert new["Location"] == reverse("customers:detail", args=[siti.pk])
    assert list(siti.identities.values_list("value", "origin")) == [("siti@mail.co.id", "business")]
    assert bad.status_code == 200
    assert "“12” is not a valid phone number." in bad.content.decode()
    assert Customer.objects.count() == 2
