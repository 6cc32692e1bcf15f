"""Agent workspace live behaviour in real Chromium against daphne: reconnect catch-up and
team scoping (list, page, socket)."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.daphne_server import sign_in
from tests.e2e.test_widget import (
    agent_open_latest,
    agent_socket_down,
    agent_socket_up,
    open_widget,
    visitor_send,
)

pytestmark = pytest.mark.e2e


def test_messages_sent_while_the_agent_socket_is_down_show_once_after_reconnect(daphne_server, contexts):
    server = daphne_server
    tag = uuid.uuid4().hex[:8]
    visitor = contexts()
    frame = open_widget(visitor, server)
    visitor_send(frame, f"first {tag}")
    agent = contexts()
    agent_open_latest(agent, server, text=f"first {tag}")
    thread = agent.locator("#thread [data-message-id]")
    expect(thread).to_have_count(1)

    # Kill the socket and keep it down (no new WebSocket can be made) while the visitor writes.
    agent_socket_down(agent)
    for n in (1, 2, 3):
        visitor_send(frame, f"while offline {n} {tag}")
    agent.wait_for_timeout(1500)
    expect(thread).to_have_count(1)  # nothing arrived: the socket really was down

    agent_socket_up(agent)
    for n in (1, 2, 3):
        expect(agent.locator("#thread [data-message-id]", has_text=f"while offline {n} {tag}")).to_have_count(1)
    expect(thread).to_have_count(4)
    ids = [int(i) for i in thread.evaluate_all("els => els.map(e => e.dataset.messageId)")]
    assert ids == sorted(set(ids))

    # A further live message after reconnecting also arrives once.
    visitor_send(frame, f"after {tag}")
    expect(agent.locator("#thread [data-message-id]", has_text=f"after {tag}")).to_have_count(1)
    expect(thread).to_have_count(5)


def test_an_agent_of_another_team_never_sees_the_conversation(daphne_server, contexts):
    server = daphne_server
    tag = uuid.uuid4().hex[:8]
    visitor = contexts()
    frame = open_widget(visitor, server)
    visitor_send(frame, f"sales question {tag}")
    sales = contexts()
    agent_open_latest(sales, server, text=f"sales question {tag}")
    conversation_id = int(re.search(r"/inbox/(\d+)/", sales.url).group(1))

    support = contexts()  # agent1 is in Support only; the web chat inbox routes to Sales
    sign_in(support, server.url, "agent1@demo.cxplatform.test")
    support.goto(f"{server.url}/inbox/")
    support.get_by_role("heading", name="Conversations").wait_for()
    assert support.locator(f'a[href="/inbox/{conversation_id}/"]').count() == 0
    response = support.goto(f"{server.url}/inbox/{conversation_id}/")
    assert response.status == 404
    response = support.goto(f"{server.url}/inbox/{conversation_id}/messages/?after=0")
    assert response.status == 404

    support.goto(f"{server.url}/inbox/")
    support.evaluate("""(id) => new Promise((resolve) => {
        window.__frames = [];
        const ws = new WebSocket("ws://" + location.host + "/ws/agent/");
        ws.onmessage = (e) => window.__frames.push(JSON.parse(e.data));
        ws.onopen = () => { ws.send(JSON.stringify({type: "conversation.open", conversation: id})); resolve(); };
    })""", conversation_id)
    support.wait_for_function("() => window.__frames.some(f => f.type === 'error')")
    visitor_send(frame, f"secret detail {tag}")
    expect(sales.locator("#thread [data-message-id]", has_text=f"secret detail {tag}")).to_have_count(1)
    support.wait_for_timeout(1000)
    frames = support.evaluate("() => window.__frames")
    assert [f["type"] for f in frames if "type" in f] == ["hello", "error"]
    assert all(f.get("event") is None for f in frames), frames
    assert tag not in str(frames)


def test_the_workspace_script_speaks_the_agents_language(daphne_server, contexts):
    """The live status line and the unread labels the script writes come from Django's
    JavaScript catalog (locale/id/LC_MESSAGES/djangojs.po), like the page around them."""
    server = daphne_server
    tag = uuid.uuid4().hex[:8]
    visitor = contexts()
    frame = open_widget(visitor, server)
    visitor_send(frame, f"halo {tag}")
    lead = contexts()
    sign_in(lead, server.url, "supervisor@demo.cxplatform.test")
    switch = "from accounts.models import User; User.objects.filter(email='supervisor@demo.cxplatform.test')"
    server.manage(switch + ".update(language='id')")
    try:
        lead.goto(f"{server.url}/inbox/")
        expect(lead.get_by_role("heading", name="Percakapan")).to_be_visible()
        expect(lead.locator("#live-status")).to_have_text("Terhubung")
        badge = lead.locator("[data-unread-for]").first
        expect(badge).to_have_attribute("aria-label", "1 pesan belum dibaca")  # rendered by the server

        visitor_send(frame, f"masih di sana? {tag}")
        expect(badge).to_have_text("2")
        expect(badge).to_have_attribute("aria-label", "2 pesan belum dibaca")  # written by the script
    finally:
        server.manage(switch + ".update(language='en')")
