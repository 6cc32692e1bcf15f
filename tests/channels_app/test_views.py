from __future__ import annotations

import time

import pytest

from channels_app.models import Conversation, Message
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import post_whatsapp, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(client, agent, django_capture_on_commit_callbacks):
    team = TeamFactory()
    add_to_team(agent, team)
    inbox = whatsapp_inbox(team=team)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(text="Halo, ada promo?", name="Budi", timestamp=int(time.time()) - 60))
    return Conversation.objects.get()


def test_agent_sees_their_teams_conversations_and_the_thread(client, agent, conversation):
    client.force_login(agent)

    listing = client.get("/inbox/")
    detail = client.get(f"/inbox/{conversation.pk}/")

    assert listing.status_code == 200
    assert "Budi" in listing.content.decode()
    assert detail.status_code == 200
    assert "Halo, ada promo?" in detail.content.decode()


def test_agent_of_another_team_gets_404(client, make_user, conversation):
    outsider = make_user()
    add_to_team(outsider, TeamFactory())
    client.force_login(outsider)

    assert client.get(f"/inbox/{conversation.pk}/").status_code == 404
    assert "Budi" not in client.get("/inbox/").content.decode()


def test_private_note_from_the_page(client, agent, conversation):
    client.force_login(agent)

    response = client.post(f"/inbox/{conversation.pk}/reply/", {"content": "pelanggan lama", "private": "on"})

    assert response.status_code == 302
    note = Message.objects.get(private=True)
    assert (note.content, note.author_id) == ("pelanggan lama", agent.pk)


def test_resolve_from_the_page(client, agent, conversation):
    client.force_login(agent)

    response = client.post(f"/inbox/{conversation.pk}/status/", {"status": "resolved"})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == "resolved"


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get("/inbox/")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- live fragment (same partial as the page) -----------------------------------------------


def test_message_fragment_renders_only_newer_messages_escaped_and_is_404_for_other_teams(client, agent, make_user):
    from channels_app.services import message_record
    from tests.accounts.factories import TeamFactory, add_to_team
    from tests.channels_app.test_api import _conversation

    team = TeamFactory()
    add_to_team(agent, team)
    conversation = _conversation(team=team)
    inbox = conversation.last_inbox
    first, _ = message_record(conversation=conversation, inbox=inbox, direction="inbound", sender="customer",
                              content="old one")
    message_record(conversation=conversation, inbox=inbox, direction="inbound", sender="customer",
                   content="<img src=x onerror=alert(1)>")
    client.force_login(agent)

    html = client.get(f"/inbox/{conversation.pk}/messages/", {"after": first.pk}).content.decode()

    assert "old one" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html
    assert html.count("data-message-id=") == 1
    other = make_user(email="other@example.com")
    client.force_login(other)
    assert client.get(f"/inbox/{conversation.pk}/messages/").status_code == 404


def test_a_long_conversation_page_shows_the_latest_messages_and_links_to_earlier_ones(client, agent, conversation):
    """A years-long chat does not render thousands of messages: the page holds the latest
    CHAT_PAGE, `?before=<id>` the ones before, and only the latest view marks them read."""
    from channels_app.models import ConversationRead
    from channels_app.views import CHAT_PAGE

    first = Message.objects.get()
    Message.objects.bulk_create([
        Message(conversation=conversation, inbox=first.inbox, direction="inbound", sender="customer",
                content=f"pesan nomor {n}", status="received") for n in range(CHAT_PAGE + 5)])
    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    client.force_login(agent)

    def thread(html: str) -> str:
        return html[html.index('id="thread"'):html.index("</ol>", html.index('id="thread"'))]

    page = client.get(f"/inbox/{conversation.pk}/").content.decode()
    latest = thread(page)
    assert f"pesan nomor {CHAT_PAGE + 4}<" in latest and "pesan nomor 5<" in latest
    assert "pesan nomor 4<" not in latest and "Halo, ada promo?" not in latest
    assert f'href="?before={ids[-CHAT_PAGE]}" id="earlier-messages"' in page
    assert ConversationRead.objects.get(user=agent, conversation=conversation).last_read_message_id == ids[-1]

    ConversationRead.objects.all().delete()
    page = client.get(f"/inbox/{conversation.pk}/", {"before": ids[-CHAT_PAGE]}).content.decode()
    earlier = thread(page)
    assert "Halo, ada promo?" in earlier and "pesan nomor 4<" in earlier and "pesan nomor 5<" not in earlier
    assert 'id="earlier-messages"' not in page  # nothing older
    assert "Back to the latest messages" in page
    assert not ConversationRead.objects.exists()


def test_the_workspace_script_gets_its_strings_in_the_agents_language(client, agent, conversation):
    agent.language = "id"
    agent.save(update_fields=["language"])
    client.force_login(agent)
    page = client.get("/inbox/").content.decode()
    catalog = page.index('src="/jsi18n/?lang=id"')
    assert catalog < page.index("js/workspace.js")  # deferred scripts run in order: the catalog first

    response = client.get("/jsi18n/?lang=id")
    body = response.content.decode()
    assert "Menyambungkan ulang" in body and "%s pesan belum dibaca" in body
    assert "private" in response["Cache-Control"] and "max-age=3600" in response["Cache-Control"]
