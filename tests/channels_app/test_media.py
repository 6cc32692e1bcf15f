"""Inbound attachments are downloaded in the worker, stored, and served only to allowed agents."""
from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from channels_app.models import Message
from customers.services import customer_erase
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import post_whatsapp, whatsapp_inbox

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64


def _image_delivery(shared_fixture) -> bytes:
    # pywa's example wa_id is not a valid number; a valid one is swapped in (we sign it ourselves).
    return shared_fixture("whatsapp_image_message.json").decode().replace("972987654321", "972544401243").encode()


def test_whatsapp_image_is_fetched_stored_and_served_to_the_team_only(
    client, agent, make_user, provider_server, shared_fixture, django_capture_on_commit_callbacks
):
    team = TeamFactory()
    add_to_team(agent, team)
    inbox = whatsapp_inbox(api_base_url=provider_server.url, team=team)
    provider_server.respond(200, json_body={"url": f"{provider_server.url}/whatsapp_business/attachments/?mid=65463453",
                                            "mime_type": "image/jpeg", "file_size": len(JPEG), "id": "65463453"})
    provider_server.respond(200, body=JPEG, headers={"Content-Type": "image/jpeg"})

    with django_capture_on_commit_callbacks(execute=True):
        assert post_whatsapp(client, inbox, _image_delivery(shared_fixture)).status_code == 200

    message = Message.objects.get()
    item = message.attachments[0]
    assert (item["kind"], item["media_id"], item["mime_type"], item["size"]) == ("image", "65463453", "image/jpeg", len(JPEG))
    assert default_storage.open(item["stored"]).read() == JPEG
    assert [r.path for r in provider_server.requests] == ["/v26.0/65463453", "/whatsapp_business/attachments/?mid=65463453"]
    assert provider_server.requests[1].headers["authorization"] == "Bearer EAAtest-access-token-0001"

    url = f"/inbox/{message.conversation_id}/attachments/{message.uuid}/0/"
    client.force_login(agent)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == JPEG
    assert response["Content-Type"] == "image/jpeg"
    outsider = make_user()
    add_to_team(outsider, TeamFactory())
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_refused_type_is_recorded_not_stored(client, provider_server, shared_fixture, django_capture_on_commit_callbacks, settings):
    settings.CHANNEL_ATTACHMENT_ALLOWED_TYPES = ("application/pdf",)
    inbox = whatsapp_inbox(api_base_url=provider_server.url)
    provider_server.respond(200, json_body={"url": f"{provider_server.url}/dl", "mime_type": "image/jpeg"})
    provider_server.respond(200, body=JPEG, headers={"Content-Type": "image/jpeg"})

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, _image_delivery(shared_fixture))

    item = Message.objects.get().attachments[0]
    assert item["error"] == "type image/jpeg is not accepted"
    assert "stored" not in item


def test_provider_outage_is_retried_then_recorded(client, provider_server, shared_fixture, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox(api_base_url=provider_server.url)
    provider_server.default.status = 503
    provider_server.default.body = b'{"error": {"message": "Service unavailable", "code": 131016}}'

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, _image_delivery(shared_fixture))

    item = Message.objects.get().attachments[0]
    assert item["error"].startswith("Service unavailable")
    assert len(provider_server.requests) == 5  # MEDIA_FETCH_MAX_ATTEMPTS


def test_erase_deletes_stored_files(client, supervisor, provider_server, shared_fixture, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox(api_base_url=provider_server.url)
    provider_server.respond(200, json_body={"url": f"{provider_server.url}/dl", "mime_type": "image/jpeg"})
    provider_server.respond(200, body=JPEG, headers={"Content-Type": "image/jpeg"})
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, _image_delivery(shared_fixture))
    message = Message.objects.get()
    path = message.attachments[0]["stored"]

    customer_erase(customer=message.conversation.customer, actor=supervisor)

    assert not default_storage.exists(path)
    message.refresh_from_db()
    assert message.attachments == []


def test_email_attachments_are_copied_from_the_raw_delivery_into_storage(client, shared_fixture,
                                                                          django_capture_on_commit_callbacks):
    import hashlib
    import hmac

    from channels_app.services import inbox_create

    inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test", "inbound_secret": "s3cret-in"})
    body = shared_fixture("email_reply_thread_with_attachments.eml")
    signature = "sha256=" + hmac.new(b"s3cret-in", body, hashlib.sha256).hexdigest()

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(inbox.webhook_path, data=body, content_type="message/rfc822",
                           HTTP_X_INBOUND_SIGNATURE=signature).status_code == 200

    attachments = Message.objects.get().attachments
    stored = [a for a in attachments if a.get("stored")]
    assert [a["filename"] for a in stored] == ["image001.jpg", "image002.jpg", "image003.jpg", "20170609091403417.pdf"]
    for item in stored:
        assert hashlib.sha256(default_storage.open(item["stored"]).read()).hexdigest() == item["sha256"]
    # HTML parts are refused (they would run script if opened from our origin), with the reason.
    refused = [a for a in attachments if a.get("error")]
    assert {a["mime_type"] for a in refused} == {"text/html"}
    assert len(refused) == 4


@pytest.mark.parametrize(("mime_type", "allowed"), [
    ("image/jpeg", True), ("application/pdf", True), ("audio/ogg; codecs=opus", True),
    ("image/svg+xml", False), ("text/html", False), ("application/x-msdownload", False),
])
def test_attachment_type_policy(mime_type, allowed):
    from channels_app.services.media import allowed_type

    assert allowed_type(mime_type) is allowed
