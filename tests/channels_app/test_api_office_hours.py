"""Office hours API: list / create / retrieve / replace / change, validation with field names,
"open now / next opening" status, permissions and token scopes."""
from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_create
from channels_app.models import InboxAutomaticMessage, OfficeHours, OfficeHoursInterval
from channels_app.services import inbox_create, office_hours_set

pytestmark = pytest.mark.django_db

WEEKDAYS_8_17 = [{"weekday": day, "opens_at": "08:00", "closes_at": "17:00"} for day in range(5)]
SATURDAY_9_13 = {"weekday": 5, "opens_at": "09:00", "closes_at": "13:00"}


def chat_inbox(name: str = "Web chat"):
    return inbox_create(name=name, kind="webchat", config={"allowed_origins": ["https://toko.example"]})


def jakarta_hours(inbox, **overrides):
    schedule = {day: [(dt.time(8), dt.time(17))] for day in range(5)}
    schedule[5] = [(dt.time(9), dt.time(13))]
    return office_hours_set(inbox=inbox, schedule=overrides.pop("schedule", schedule), time_zone="Asia/Jakarta",
                            holiday_country="ID", out_of_hours={"id": "Kami sedang tutup.", "": "We are closed."},
                            **overrides)


def post(client, data):
    return client.post("/api/v1/office-hours/", data, content_type="application/json")


def test_supervisor_sets_up_office_hours_for_an_inbox(client, supervisor):
    inbox = chat_inbox()
    client.force_login(supervisor)

    response = post(client, {
        "inbox": inbox.pk, "time_zone": "Asia/Makassar", "holiday_country": "id", "greeting_enabled": True,
        "schedule": [*WEEKDAYS_8_17, SATURDAY_9_13, {"weekday": 0, "opens_at": "18:00", "closes_at": "20:30"}],
        "automatic_messages": [{"kind": "out_of_hours", "language": "id", "body": "Kami tutup."},
                               {"kind": "greeting", "language": "", "body": "Hello!"}],
    })

    assert response.status_code == 201, response.json()
    body = response.json()
    office_hours = OfficeHours.objects.get()
    assert body == {
        "id": office_hours.pk, "inbox": inbox.pk, "time_zone": "Asia/Makassar", "holiday_country": "ID",
        "is_enabled": True, "auto_reply_enabled": True, "greeting_enabled": True,
        "schedule": [{"weekday": 0, "opens_at": "08:00", "closes_at": "17:00"},
                     {"weekday": 0, "opens_at": "18:00", "closes_at": "20:30"},
                     *WEEKDAYS_8_17[1:], SATURDAY_9_13],
        "automatic_messages": [{"kind": "greeting", "language": "", "body": "Hello!"},
                               {"kind": "out_of_hours", "language": "id", "body": "Kami tutup."}],
        "updated_at": body["updated_at"],
    }
    assert OfficeHoursInterval.objects.filter(office_hours=office_hours).count() == 7
    assert InboxAutomaticMessage.objects.filter(office_hours=office_hours).count() == 2


def test_an_inbox_has_one_set_of_office_hours(client, supervisor):
    inbox = chat_inbox()
    jakarta_hours(inbox)
    client.force_login(supervisor)

    response = post(client, {"inbox": inbox.pk, "schedule": WEEKDAYS_8_17})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "inbox": ["This inbox already has office hours: change them instead."]}
    assert OfficeHoursInterval.objects.count() == 6  # unchanged


@pytest.mark.parametrize(("change", "fields"), [
    ({"time_zone": "Asia/Bandung"}, {"time_zone": ["Unknown time zone: use an IANA name such as Asia/Jakarta."]}),
    ({"time_zone": "../../etc/passwd"}, {"time_zone": ["Unknown time zone: use an IANA name such as Asia/Jakarta."]}),
    ({"holiday_country": "XX"}, {"holiday_country": ["No public holiday calendar for this country code."]}),
    ({"schedule": [{"weekday": 1, "opens_at": "17:00", "closes_at": "08:00"}]},
     {"schedule": {"0": {"closes_at": ["Must be after opens_at."]}}}),
    ({"schedule": [{"weekday": 7, "opens_at": "08:00", "closes_at": "17:00"}]},
     {"schedule": {"0": {"weekday": ["Ensure this value is less than or equal to 6."]}}}),
    ({"schedule": [{"weekday": 2, "opens_at": "08:00", "closes_at": "12:30"},
                   {"weekday": 2, "opens_at": "12:00", "closes_at": "17:00"}]},
     {"schedule": ["Day 2: openings 08:00–12:30 and 12:00–17:00 overlap."]}),
    ({"automatic_messages": [{"kind": "greeting", "language": "id", "body": "a"},
                             {"kind": "greeting", "language": "ID", "body": "b"}]},
     {"automatic_messages": ["At most one text per kind and language."]}),
    ({"inbox": 999_999}, {"inbox": ["No such inbox."]}),
])
def test_invalid_office_hours_are_refused_with_the_field_named(client, supervisor, change, fields):
    inbox = chat_inbox()
    client.force_login(supervisor)

    response = post(client, {"inbox": inbox.pk, "schedule": WEEKDAYS_8_17, **change})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert OfficeHours.objects.count() == 0


def test_list_shows_every_inbox_office_hours_in_a_fixed_number_of_queries(client, supervisor,
                                                                          django_assert_max_num_queries):
    for name in ("A", "B", "C"):
        jakarta_hours(chat_inbox(name))
    client.force_login(supervisor)

    with django_assert_max_num_queries(9):  # session, user, permissions (6) + 3, however many rows
        response = client.get("/api/v1/office-hours/")

    assert response.status_code == 200
    body = response.json()
    assert [len(item["schedule"]) for item in body] == [6, 6, 6]
    assert [len(item["automatic_messages"]) for item in body] == [2, 2, 2]


def test_patch_changes_only_what_is_sent(client, supervisor):
    office_hours = jakarta_hours(chat_inbox())
    client.force_login(supervisor)

    response = client.patch(f"/api/v1/office-hours/{office_hours.pk}/", {"time_zone": "Asia/Jayapura"},
                            content_type="application/json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["time_zone"] == "Asia/Jayapura"
    assert body["schedule"] == [*WEEKDAYS_8_17, SATURDAY_9_13]
    assert {m["language"] for m in body["automatic_messages"]} == {"", "id"}

    response = client.patch(f"/api/v1/office-hours/{office_hours.pk}/", {"schedule": [SATURDAY_9_13]},
                            content_type="application/json")

    assert response.json()["schedule"] == [SATURDAY_9_13]
    assert response.json()["time_zone"] == "Asia/Jayapura"


def test_put_replaces_and_needs_the_schedule(client, supervisor):
    office_hours = jakarta_hours(chat_inbox())
    client.force_login(supervisor)
    url = f"/api/v1/office-hours/{office_hours.pk}/"

    missing = client.put(url, {"time_zone": "Asia/Jakarta"}, content_type="application/json")
    replaced = client.put(url, {"schedule": [SATURDAY_9_13], "is_enabled": False}, content_type="application/json")

    assert missing.status_code == 400
    assert missing.json()["error"]["fields"] == {"schedule": ["This field is required."]}
    assert replaced.status_code == 200
    body = replaced.json()
    assert (body["schedule"], body["is_enabled"], body["automatic_messages"]) == ([SATURDAY_9_13], False, [])
    assert (body["time_zone"], body["holiday_country"]) == ("Asia/Jakarta", "ID")


def test_unknown_office_hours_are_404(client, supervisor):
    client.force_login(supervisor)
    assert client.get("/api/v1/office-hours/999999/").status_code == 404
    assert client.get("/api/v1/office-hours/999999/status/").status_code == 404


def test_agents_may_not_read_or_change_office_hours(client, agent):
    office_hours = jakarta_hours(chat_inbox())
    client.force_login(agent)

    assert client.get("/api/v1/office-hours/").status_code == 403
    assert client.get(f"/api/v1/office-hours/{office_hours.pk}/").status_code == 403
    assert client.patch(f"/api/v1/office-hours/{office_hours.pk}/", {"is_enabled": False},
                        content_type="application/json").status_code == 403


def test_office_hours_belong_to_the_inboxes_token_scope(supervisor):
    office_hours = jakarta_hours(chat_inbox())
    _token, raw = api_token_create(user=supervisor, name="hours", scopes=["inboxes:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert client.get(f"/api/v1/office-hours/{office_hours.pk}/status/").status_code == 200
    refused = client.patch(f"/api/v1/office-hours/{office_hours.pk}/", {"is_enabled": False}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This API token lacks the scope inboxes:write."


@pytest.mark.parametrize(("path", "scope"), [("/api/v1/canned-responses/", "conversations:read"),
                                             ("/api/v1/labels/", "conversations:read")])
def test_canned_responses_and_labels_belong_to_the_conversations_scope(agent, path, scope):
    _token, raw = api_token_create(user=agent, name="tools", scopes=[scope])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(path).status_code == 200


# --- open now / next opening --------------------------------------------------------------


def status_at(client, office_hours, at: str):
    response = client.get(f"/api/v1/office-hours/{office_hours.pk}/status/", {"at": at})
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.mark.parametrize(("at", "expected"), [
    # Monday 10:00 WIB: open until 17:00, next opening Tuesday 08:00
    ("2026-11-23T10:00:00+07:00", {"is_open": True, "at": "2026-11-23T10:00:00+07:00", "holiday": "",
                                   "closed_since": None, "next_opening": "2026-11-24T08:00:00+07:00",
                                   "next_closing": "2026-11-23T17:00:00+07:00"}),
    # the same moment asked in UTC answers in Jakarta time
    ("2026-11-23T03:00:00Z", {"is_open": True, "at": "2026-11-23T10:00:00+07:00", "holiday": "",
                              "closed_since": None, "next_opening": "2026-11-24T08:00:00+07:00",
                              "next_closing": "2026-11-23T17:00:00+07:00"}),
    # Saturday 14:00: closed since 13:00, opens Monday 08:00
    ("2026-11-21T14:00:00+07:00", {"is_open": False, "at": "2026-11-21T14:00:00+07:00", "holiday": "",
                                   "closed_since": "2026-11-21T13:00:00+07:00",
                                   "next_opening": "2026-11-23T08:00:00+07:00",
                                   "next_closing": "2026-11-23T17:00:00+07:00"}),
    # Friday 07:00, before opening
    ("2026-11-27T07:00:00+07:00", {"is_open": False, "at": "2026-11-27T07:00:00+07:00", "holiday": "",
                                   "closed_since": "2026-11-26T17:00:00+07:00",
                                   "next_opening": "2026-11-27T08:00:00+07:00",
                                   "next_closing": "2026-11-27T17:00:00+07:00"}),
    # Independence Day (Monday 17 August 2026) is closed; Tuesday opens as usual
    ("2026-08-17T10:00:00+07:00", {"is_open": False, "at": "2026-08-17T10:00:00+07:00",
                                   "holiday": "Independence Day", "closed_since": "2026-08-15T13:00:00+07:00",
                                   "next_opening": "2026-08-18T08:00:00+07:00",
                                   "next_closing": "2026-08-18T17:00:00+07:00"}),
])
def test_status_says_whether_open_and_when_it_next_opens(client, supervisor, at, expected):
    office_hours = jakarta_hours(chat_inbox())
    client.force_login(supervisor)

    body = status_at(client, office_hours, at)

    assert {key: value for key, value in body.items() if key != "upcoming_holidays"} == expected


def test_status_lists_the_next_public_holidays(client, supervisor):
    office_hours = jakarta_hours(chat_inbox())
    client.force_login(supervisor)

    body = status_at(client, office_hours, "2026-08-10T10:00:00+07:00")

    assert body["upcoming_holidays"][:2] == [{"date": "2026-08-17", "name": "Independence Day"},
                                             {"date": "2026-08-25", "name": "Prophet's Birthday"}]
    assert len(body["upcoming_holidays"]) == 5


def test_a_lunch_break_is_a_closing_and_touching_openings_are_one(client, supervisor):
    office_hours = jakarta_hours(chat_inbox(), schedule={
        0: [(dt.time(8), dt.time(12)), (dt.time(13), dt.time(17))],
        1: [(dt.time(8), dt.time(12)), (dt.time(12), dt.time(17))],
    })
    client.force_login(supervisor)

    monday = status_at(client, office_hours, "2026-11-23T09:00:00+07:00")
    tuesday = status_at(client, office_hours, "2026-11-24T09:00:00+07:00")

    assert (monday["next_closing"], monday["next_opening"]) == ("2026-11-23T12:00:00+07:00",
                                                                "2026-11-23T13:00:00+07:00")
    assert (tuesday["next_closing"], tuesday["next_opening"]) == ("2026-11-24T17:00:00+07:00",
                                                                  "2026-11-30T08:00:00+07:00")


def test_status_when_office_hours_are_off_is_always_open(client, supervisor):
    office_hours = jakarta_hours(chat_inbox(), is_enabled=False)
    client.force_login(supervisor)

    body = status_at(client, office_hours, "2026-11-22T23:00:00+07:00")

    assert (body["is_open"], body["closed_since"], body["next_opening"], body["next_closing"]) == (
        True, None, None, None)


def test_status_with_an_unreadable_moment_is_400(client, supervisor):
    office_hours = jakarta_hours(chat_inbox())
    client.force_login(supervisor)

    response = client.get(f"/api/v1/office-hours/{office_hours.pk}/status/", {"at": "tomorrow"})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["at"]
