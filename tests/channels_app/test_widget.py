"""Web chat widget endpoints: history scoped to the visitor token, durable ingest, identity
hash, rate limit, contact details, frame-ancestors, snippet page."""
from __future__ import annotations

import json

import pytest

from channels_app.adapters.webchat import user_hash
from channels_app.models import Message
from channels_app.services import inbox_create

pytestmark = pytest.mark.django_db

TOKEN_A = "a" * 32
TOKEN_B = "b" * 32


@pytest.fixture
def webchat(db):
    return inbox_create(name="Chat", kind="webchat", config={
        "allowed_origins": ["https://shop.example.com"], "identity_secret": "s3cret-s3cret-s3cret",
        "greeting": "Halo!"})


def send(client, inbox, token, text, **extra):
    return client.post(f"/widget/api/{inbox.uuid}/messages/", data=json.dumps({"token": token, "text": text, **extra}),
                       content_type="application/json")


def test_a_visitor_message_is_stored_and_only_that_visitor_sees_it(client, webchat, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert send(client, webchat, TOKEN_A, "<b>hi</b>").status_code == 202

    mine = client.get(f"/widget/api/{webchat.uuid}/messages/", {"token": TOKEN_A}).json()
    theirs = client.get(f"/widget/api/{webchat.uuid}/messages/", {"token": TOKEN_B}).json()

    assert [m["text"] for m in mine["messages"]] == ["<b>hi</b>"]
    assert mine["status"] in ("open", "pending")
    assert theirs["messages"] == []
    assert Message.objects.get().content == "<b>hi</b>"


def test_a_foreign_origin_cannot_use_the_visitor_api(client, webchat):
    response = client.post(f"/widget/api/{webchat.uuid}/messages/", data=json.dumps({"token": TOKEN_A, "text": "x"}),
                           content_type="application/json", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert Message.objects.count() == 0


@pytest.mark.parametrize(("hash_ok", "status"), [(True, 202), (False, 400)])
def test_a_claimed_user_id_needs_the_hmac_of_the_inbox_secret(client, webchat, hash_ok, status,
                                                              django_capture_on_commit_callbacks):
    good = user_hash("s3cret-s3cret-s3cret", "user-42")
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, webchat, TOKEN_A, "hello", user={"id": "user-42", "hash": good if hash_ok else "0" * 64})
    assert response.status_code == status
    assert Message.objects.count() == (1 if hash_ok else 0)


def test_a_visitor_is_rate_limited(client, webchat):
    codes = [send(client, webchat, TOKEN_A, f"m{n}").status_code for n in range(22)]
    assert codes[:20] == [202] * 20
    assert codes[20:] == [429, 429]
    assert send(client, webchat, TOKEN_B, "other visitor").status_code == 202


def test_a_bad_token_or_empty_text_is_refused(client, webchat):
    assert send(client, webchat, "short", "hi").status_code == 400
    assert send(client, webchat, TOKEN_A, "   ").status_code == 400


def test_contact_details_become_unverified_identities(client, webchat):
    from customers.models import Identity

    send(client, webchat, TOKEN_A, "hi")
    response = client.post(f"/widget/api/{webchat.uuid}/contact/", data=json.dumps(
        {"token": TOKEN_A, "email": "Budi@Example.com"}), content_type="application/json")

    assert response.status_code == 200
    email = Identity.objects.get(kind="email")
    visitor = Identity.objects.get(kind="web_visitor")
    assert email.value == "budi@example.com" and email.verified is False
    assert email.customer_id == visitor.customer_id


def test_rating_needs_a_resolved_conversation(client, webchat):
    send(client, webchat, TOKEN_A, "hi")
    response = client.post(f"/widget/api/{webchat.uuid}/rating/", data=json.dumps({"token": TOKEN_A, "rating": 5}),
                           content_type="application/json")
    assert response.status_code == 400


def test_the_frame_may_only_be_embedded_by_allowed_origins(client, webchat):
    response = client.get(f"/widget/frame/{webchat.uuid}/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://shop.example.com"
    assert "X-Frame-Options" not in response
    assert b"Halo!" in response.content


def test_unknown_inbox_is_404(client):
    assert client.get("/widget/demo/?inbox=00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/widget/embed.js").status_code == 200


def test_snippet_page_is_for_supervisors(client, agent, supervisor, webchat):
    client.force_login(agent)
    assert client.get("/inbox/webchat/").status_code == 403
    client.force_login(supervisor)
    page = client.get("/inbox/webchat/").content.decode()
    assert f'data-inbox="{webchat.uuid}"' in page
    assert "Copy the snippet of Chat" in page


def test_a_verified_user_sees_their_other_channels_but_a_wrong_hash_does_not(client, webchat,
                                                                             django_capture_on_commit_callbacks):
    from channels_app.models import Conversation
    from channels_app.services import message_record
    from customers.models import Identity

    good = user_hash("s3cret-s3cret-s3cret", "user-42")
    with django_capture_on_commit_callbacks(execute=True):
        send(client, webchat, TOKEN_A, "from the widget", user={"id": "user-42", "hash": good})
    customer = Identity.objects.get(kind="external_id", value="user-42").customer
    email_inbox = inbox_create(name="Mail", kind="email", config={"address": "halo@shop.test", "inbound_secret": "x" * 24})
    other = Conversation.objects.get(customer=customer)
    message_record(conversation=other, inbox=email_inbox, direction="inbound", sender="customer", content="by email")
    message_record(conversation=other, inbox=email_inbox, direction="outbound", sender="agent", content="internal",
                   private=True)
    url = f"/widget/api/{webchat.uuid}/messages/"

    verified = client.get(url, {"token": "c" * 32, "user_id": "user-42", "user_hash": good}).json()
    forged = client.get(url, {"token": "c" * 32, "user_id": "user-42", "user_hash": "0" * 64}).json()

    assert [m["text"] for m in verified["messages"]] == ["from the widget", "by email"]
    assert forged["messages"] == []
