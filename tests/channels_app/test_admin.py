from __future__ import annotations

import json

import pytest

from channels_app.models import Inbox, Message, WebhookEvent
from channels_app.services import inbox_settings
from tests.channels_app.test_webhooks import wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db


def test_admin_lists_parked_events_and_replays_them(client, admin_user, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    event = WebhookEvent.objects.create(inbox=inbox, body=wa_text(), status="parked", attempts=5,
                                        last_error="RuntimeError: boom")
    client.force_login(admin_user)

    listing = client.get("/admin/channels_app/webhookevent/?status__exact=parked")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/channels_app/webhookevent/",
                               {"action": "replay", "_selected_action": [event.pk]})

    assert listing.status_code == 200
    assert b"RuntimeError: boom" in listing.content
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 6)
    assert Message.objects.count() == 1


def test_admin_event_page_shows_the_raw_body(client, admin_user):
    inbox = whatsapp_inbox()
    event = WebhookEvent.objects.create(inbox=inbox, body=b'{"object": "whatsapp_business_account"}')
    client.force_login(admin_user)

    response = client.get(f"/admin/channels_app/webhookevent/{event.pk}/change/")

    assert response.status_code == 200
    assert b"whatsapp_business_account" in response.content


def test_admin_creates_an_inbox_through_the_service(client, admin_user):
    client.force_login(admin_user)
    settings_json = {"bot_token": "123456789:AAEtestBotTokenABCDEFGHIJ_klmnop", "secret_token": "tg-secret"}

    response = client.post("/admin/channels_app/inbox/add/", {
        "name": "Bot", "kind": "telegram", "is_active": "on", "settings_json": json.dumps(settings_json)})

    assert response.status_code == 302, response.content.decode()[:2000]
    inbox = Inbox.objects.get()
    assert inbox_settings(inbox=inbox) == {**settings_json, "api_base_url": ""}
    assert inbox.config == {"api_base_url": ""}


def test_admin_rejects_invalid_settings_with_the_reason(client, admin_user):
    client.force_login(admin_user)

    response = client.post("/admin/channels_app/inbox/add/", {
        "name": "Bot", "kind": "telegram", "is_active": "on", "settings_json": json.dumps({"bot_token": "nope",
                                                                                        "secret_token": "x"})})

    assert response.status_code == 200
    assert "bot_token must look like" in response.content.decode()
    assert Inbox.objects.count() == 0


def test_admin_change_form_never_shows_a_secret_in_full(client, admin_user):
    inbox = whatsapp_inbox()
    client.force_login(admin_user)

    response = client.get(f"/admin/channels_app/inbox/{inbox.pk}/change/")

    assert response.status_code == 200
    assert "wa-app-secret-for-tests" not in response.content.decode()
    assert "EAAtest-access-token-0001" not in response.content.decode()
