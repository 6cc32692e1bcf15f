"""Agents' attachments: upload in the composer → stored → validated against what the channel
can deliver → sent by the adapter with a signed, expiring URL (the provider downloads it from
us) or, for email, as a MIME attachment; web chat visitors get a link."""
from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from channels_app.models import Conversation, Message
from channels_app.services import message_deliver, message_record
from channels_app.services.inboxes import inbox_create
from customers.services import identity_add
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.adapters.test_email import smtp_server  # noqa: F401  (fixture)
from tests.channels_app.test_webhooks import line_inbox, messenger_inbox, telegram_inbox, whatsapp_inbox

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4 struk belanja"


@pytest.fixture
def team(agent):
    team = TeamFactory()
    add_to_team(agent, team)
    return team


@pytest.fixture(autouse=True)
def public_base(settings):
    settings.PUBLIC_BASE_URL = "https://cx.example.com"


def _reachable_conversation(inbox, *, kind: str, value: str, scoped: bool) -> Conversation:
    from tests.channels_app.test_api import _conversation

    conversation = _conversation(team=inbox.default_team, inbox=inbox)
    identity_add(customer=conversation.customer, kind=kind, value=value, scope=str(inbox.uuid) if scoped else "",
                 verified=True)
    message_record(conversation=conversation, inbox=inbox, direction="inbound", sender="customer", content="halo")
    return conversation


def _reply(client, conversation, *, text="", name="struk.png", content=PNG, mime="image/png", private=False):
    data = {"content": text, "attachment": SimpleUploadedFile(name, content, content_type=mime)}
    if private:
        data["private"] = "on"
    return client.post(f"/inbox/{conversation.pk}/reply/", data, follow=True)


def _local(url: str) -> str:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "cx.example.com")
    return parts.path


def test_whatsapp_reply_with_an_image_sends_a_signed_link_the_provider_can_download(
        client, agent, team, provider_server, django_capture_on_commit_callbacks):
    provider_server.respond(json_body={"messages": [{"id": "wamid.OUT1"}]})
    conversation = _reachable_conversation(whatsapp_inbox(team=team, api_base_url=provider_server.url),
                                           kind="phone", value="+6281234567890", scoped=False)
    client.force_login(agent)

    _reply(client, conversation, text="Ini struknya")
    message = Message.objects.get(direction="outbound")
    outcome = message_deliver(message_id=message.pk)

    assert outcome.message.status == "sent"
    [item] = message.attachments
    assert (item["kind"], item["mime_type"], item["size"], item["filename"]) == ("image", "image/png", len(PNG),
                                                                                 "struk.png")
    payload = provider_server.last.json()
    assert payload["type"] == "image"
    assert payload["image"]["caption"] == "Ini struknya"
    client.logout()  # the provider has no session: the signature is the permission
    download = client.get(_local(payload["image"]["link"]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["X-Content-Type-Options"] == "nosniff"


def test_telegram_document_goes_by_send_document_with_caption(client, agent, team, provider_server):
    provider_server.respond(json_body={"ok": True, "result": {"message_id": 77, "chat": {"id": 1111111}}})
    conversation = _reachable_conversation(telegram_inbox(team=team, api_base_url=provider_server.url),
                                           kind="telegram", value="1111111", scoped=True)
    client.force_login(agent)

    _reply(client, conversation, text="Struk terlampir", name="struk.pdf", content=PDF, mime="application/pdf")
    message_deliver(message_id=Message.objects.get(direction="outbound").pk)

    assert provider_server.last.path.endswith("/sendDocument")
    body = provider_server.last.json()
    assert (body["chat_id"], body["caption"]) == ("1111111", "Struk terlampir")
    assert re.match(r"^https://cx\.example\.com/inbox/media/[^/]+/$", body["document"])


def test_email_reply_carries_the_file_as_a_mime_attachment(client, agent, team, smtp_server):  # noqa: F811
    inbox = inbox_create(name="Mail", kind="email", default_team=team, config={
        "address": "support@cx.example.com", "inbound_secret": "x" * 24, "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port, "smtp_security": "none"})
    conversation = _reachable_conversation(inbox, kind="email", value="budi@example.co.id", scoped=False)
    client.force_login(agent)

    _reply(client, conversation, text="Terlampir invoice.", name="invoice-42.pdf", content=PDF,
           mime="application/pdf")
    outcome = message_deliver(message_id=Message.objects.get(direction="outbound").pk)

    assert outcome.message.status == "sent", outcome.message.error_title
    sent = message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    [part] = list(sent.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "invoice-42.pdf", "application/pdf", PDF)


def test_web_chat_visitor_gets_a_link_to_the_file(client, agent, team):
    inbox = inbox_create(name="Chat", kind="webchat", default_team=team, config={
        "allowed_origins": ["https://shop.example.com"], "identity_secret": "s3cret-s3cret-s3cret"})
    conversation = _reachable_conversation(inbox, kind="web_visitor", value="a" * 48, scoped=True)
    client.force_login(agent)

    _reply(client, conversation, text="Ini katalognya", name="katalog.pdf", content=PDF, mime="application/pdf")

    message = Message.objects.get(direction="outbound")
    first, link_line = message.content.split("\n")
    assert first == "Ini katalognya"
    url = link_line.split(": ", 1)[1]
    assert link_line.startswith("📎 katalog.pdf: https://cx.example.com/inbox/media/")
    client.logout()
    assert b"".join(client.get(_local(url)).streaming_content) == PDF


@pytest.mark.parametrize("make_inbox,kind,value,scoped,upload,text,error", [
    (line_inbox, "line", "U4af4980629", True, ("menu.pdf", PDF, "application/pdf"), "",
     "LINE (LINE) can only send images (JPEG or PNG) from here."),
    (messenger_inbox, "messenger", "7012345678901234", True, ("struk.png", PNG, "image/png"), "hi",
     "Facebook (Facebook Messenger) cannot send text together with a file: send the file alone, then the text."),
])
def test_a_channel_that_cannot_send_the_file_is_named_in_a_clear_error(client, agent, team, make_inbox, kind, value,
                                                                       scoped, upload, text, error):
    conversation = _reachable_conversation(make_inbox(team=team), kind=kind, value=value, scoped=scoped)
    client.force_login(agent)
    name, content, mime = upload

    response = _reply(client, conversation, text=text, name=name, content=content, mime=mime)

    assert error in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()


def test_too_big_and_active_content_files_are_refused_with_a_form_error(client, agent, team, settings):
    settings.CHANNEL_ATTACHMENT_MAX_BYTES = 1024
    conversation = _reachable_conversation(whatsapp_inbox(team=team), kind="phone", value="+6281234567890",
                                           scoped=False)
    client.force_login(agent)

    big = _reply(client, conversation, name="big.pdf", content=b"x" * 2048, mime="application/pdf")
    svg = _reply(client, conversation, name="logo.svg", content=b"<svg onload=alert(1)>", mime="image/svg+xml")

    assert "big.pdf is 2.0\xa0KB: attachments may be at most 1.0\xa0KB." in big.content.decode()
    assert "Files of type image/svg+xml cannot be sent." in svg.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()


def test_without_a_public_https_address_the_agent_is_told_why(client, agent, team, settings):
    settings.PUBLIC_BASE_URL = ""
    conversation = _reachable_conversation(whatsapp_inbox(team=team), kind="phone", value="+6281234567890",
                                           scoped=False)
    client.force_login(agent)

    response = _reply(client, conversation, text="struk")

    assert "set PUBLIC_BASE_URL" in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()


def test_a_private_note_may_carry_any_file_and_is_never_sent(client, agent, team, provider_server):
    conversation = _reachable_conversation(line_inbox(team=team), kind="line", value="U4af4980629", scoped=True)
    client.force_login(agent)

    _reply(client, conversation, text="bukti transfer", name="bukti.pdf", content=PDF, mime="application/pdf",
           private=True)

    note = Message.objects.get(direction="outbound")
    assert (note.private, note.status, note.attachments[0]["filename"]) == (True, "sent", "bukti.pdf")
    html = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert f"/inbox/{conversation.pk}/attachments/{note.uuid}/0/" in html
    assert provider_server.requests == []


def test_signed_links_expire_and_cannot_be_forged(client, agent, team, settings, monkeypatch):
    from channels_app.services.media import signed_media_url

    settings.CHANNEL_MEDIA_URL_MAX_AGE = 60
    conversation = _reachable_conversation(whatsapp_inbox(team=team), kind="phone", value="+6281234567890",
                                           scoped=False)
    client.force_login(agent)
    _reply(client, conversation, text="struk")
    item = Message.objects.get(direction="outbound").attachments[0]
    path = _local(signed_media_url(item=item))
    client.logout()

    assert client.get(path).status_code == 200
    assert client.get(path.replace("/media/", "/media/x")).status_code == 404
    forged = path.rstrip("/")[:-3] + "AAA/"
    assert client.get(forged).status_code == 404
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)
    assert client.get(path).status_code == 404
