from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.importer import import_job_create, import_job_run, import_job_start, mapping_guess
from customers.models import Customer, Identity, ImportJob
from tests.customers.factories import AttributeDefinitionFactory, CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db

CSV = (
    "Name,Phone,Email,City,Tags\n"
    "Budi Santoso,0812-3456-7890,budi@mail.co.id,Bandung,vip\n"
    "Siti,+62 811 1111 1111,siti@mail.co.id,Jakarta,\n"
    "Bad Phone,12345,,Medan,\n"
    'Budi again,6281234567890,,Bandung,"vip,reseller"\n'
    ",,,,\n"
    "No Contact,,null,Depok,\n"
    "Agus,,agus@mail.co.id,Surabaya,\n"
)
MAPPING = {"Name": "display_name", "Phone": "phone", "Email": "email", "City": "attribute:city", "Tags": "tags"}


def upload(text: str, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


@pytest.fixture
def city(db):
    return AttributeDefinitionFactory(key="city", label="City")


def run(job: ImportJob, *, mapping=MAPPING, dry_run=False, capture=None) -> ImportJob:
    with capture(execute=True):
        import_job_start(job=job, mapping=mapping, dry_run=dry_run)
    job.refresh_from_db()
    return job


def test_import_reports_bad_rows_and_imports_the_rest(agent, city, django_capture_on_commit_callbacks):
    existing = CustomerFactory(display_name="Agus Old")
    IdentityFactory(customer=existing, kind="email", value="agus@mail.co.id")
    job = import_job_create(file=upload(CSV), actor=agent)

    job = run(job, capture=django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.DONE
    assert (job.total_rows, job.processed_rows) == (7, 7)
    assert (job.created_rows, job.updated_rows, job.failed_rows) == (3, 2, 1)
    assert job.errors == [{"row": 4, "reason": "identities: “12345” is not a valid phone number."}]
    budi = Identity.objects.get(value="+6281234567890").customer
    assert budi.display_name == "Budi Santoso"  # the second row dedupes onto the first
    assert sorted(budi.tags.values_list("name", flat=True)) == ["reseller", "vip"]
    assert budi.attributes == {"city": "Bandung"}
    assert Identity.objects.get(value="agus@mail.co.id").customer_id == existing.pk
    no_contact = Customer.objects.get(display_name="No Contact")  # "null" email is junk, skipped
    assert no_contact.identities.count() == 0
    assert Customer.objects.count() == 4
    assert not job.file  # the uploaded personal data is not kept after a real import


def test_dry_run_counts_but_writes_nothing(agent, city, django_capture_on_commit_callbacks):
    job = import_job_create(file=upload(CSV), actor=agent)

    job = run(job, dry_run=True, capture=django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.DONE
    assert (job.created_rows, job.updated_rows, job.failed_rows) == (4, 1, 1)
    assert Customer.objects.count() == 0
    assert job.file  # kept for the real run


def test_rerunning_a_finished_job_is_a_no_op(agent, city, django_capture_on_commit_callbacks):
    job = run(import_job_create(file=upload(CSV), actor=agent), capture=django_capture_on_commit_callbacks)

    again = import_job_run(job_id=job.pk)

    assert again.created_rows == 4
    assert Customer.objects.count() == 4


def test_unknown_attribute_value_is_a_row_error_naming_the_attribute(agent, django_capture_on_commit_callbacks):
    AttributeDefinitionFactory(key="age", label="Age", type="number")
    job = import_job_create(file=upload("name,age\nAna,thirty\nBeni,31\n"), actor=agent)

    job = run(job, mapping={"name": "display_name", "age": "attribute:age"}, capture=django_capture_on_commit_callbacks)

    assert job.errors == [{"row": 2, "reason": "attributes: age: must be a number"}]
    assert list(Customer.objects.values_list("display_name", "attributes")) == [("Beni", {"age": 31})]


def test_mapping_is_guessed_from_headers(city):
    assert mapping_guess(["Nama", "No HP", "Email", "City", "Notes"]) == {
        "Nama": "display_name",
        "No HP": "phone",
        "Email": "email",
        "City": "attribute:city",
        "Notes": "",
    }


def test_mapping_without_name_or_identity_is_refused(agent):
    job = import_job_create(file=upload("city\nBandung\n"), actor=agent)

    with pytest.raises(ValidationError) as excinfo:
        import_job_start(job=job, mapping={"city": ""}, dry_run=False)

    assert excinfo.value.message_dict["mapping"] == ["Map at least one column to a name, phone, email or external id."]


def test_non_csv_upload_is_refused(agent):
    with pytest.raises(ValidationError) as excinfo:
        import_job_create(file=upload("x", name="customers.xlsx"), actor=agent)

    assert list(excinfo.value.message_dict) == ["file"]


def test_a_whatsapp_column_imports_numbers_as_people_type_them(agent, django_capture_on_commit_callbacks):
    job = import_job_create(file=upload("Name,WhatsApp\nRina,0812-3456-7890\nDewi,+62 813 1111 2222\n"), actor=agent)

    job = run(job, mapping={"Name": "display_name", "WhatsApp": "whatsapp"}, capture=django_capture_on_commit_callbacks)

    assert (job.created_rows, job.failed_rows, job.errors) == (2, 0, [])
    assert Identity.objects.get(value="+6281234567890").customer.display_name == "Rina"
    assert Identity.objects.get(value="+6281311112222").kind == "phone"
