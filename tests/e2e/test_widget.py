"""The web chat widget and the agent workspace together, in real Chromium against daphne."""
from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.daphne_server import sign_in

pytestmark = pytest.mark.e2e


def open_widget(page, server):
    page.goto(f"{server.url}/widget/demo/?inbox={server.inbox}")
    frame = page.frame_locator("iframe[title='Chat with us']")
    frame.get_by_role("button", name="Open chat").click()
    return frame


def visitor_send(frame, text):
    frame.get_by_label("Message").fill(text)
    frame.get_by_role("button", name="Send", exact=True).click()
    expect(frame.locator(".msg.inbound", has_text=text)).to_have_count(1)


def conversation_holding(server, text, attempts=20):
    """The id of the conversation whose messages include `text`. The widget shows a message once
    its delivery is stored; the conversation may be written a moment later."""
    code = ("from channels_app.models import Message\n"
            f"m = Message.objects.filter(content__contains={text!r}).order_by('-pk').first()\n"
            "print(m.conversation_id if m else '')")
    for _ in range(attempts):
        found = server.manage(code).strip()
        if found:
            return int(found)
        time.sleep(0.25)
    raise AssertionError(f"no conversation holds {text!r}")


def agent_open_latest(page, server, email="agent3@demo.cxplatform.test", text=""):
    """Sign in and open, from the inbox, the conversation holding `text` (without: the first row).
    Clicking the first row raced with another test's conversation when `text` was not yet written."""
    conversation_id = conversation_holding(server, text) if text else None
    sign_in(page, server.url, email)
    page.goto(f"{server.url}/inbox/")
    if conversation_id:
        page.locator(f"[data-conversation-link][data-conversation-id='{conversation_id}']").click()
        expect(page.locator("#thread [data-message-id]", has_text=text)).to_have_count(1)
    else:
        page.locator("[data-conversation-link]").first.click()
    expect(page.locator("#live-status")).to_have_text("Live")


def agent_socket_down(page):
    """Close the agent page's socket and keep it down: no new WebSocket can be made."""
    page.evaluate("""() => {
        window.__RealWebSocket = window.WebSocket;
        window.WebSocket = function () { throw new Error("offline"); };
        window.cxWorkspace.socket.close();
    }""")
    expect(page.locator("#live-status")).to_have_text("Reconnecting…")


def agent_socket_up(page):
    """Let the page's reconnect loop open a socket again."""
    page.evaluate("() => { window.WebSocket = window.__RealWebSocket; }")
    expect(page.locator("#live-status")).to_have_text("Live")


def test_visitor_and_agent_chat_live_then_the_visitor_rates_five(daphne_server, contexts):
    server = daphne_server
    tag = uuid.uuid4().hex[:8]
    visitor = contexts()
    frame = open_widget(visitor, server)
    expect(frame.get_by_text("Halo! Ada yang bisa kami bantu?")).to_be_visible()
    visitor_send(frame, f"Hello, is my order {tag} shipped?")

    agent = contexts()
    agent_open_latest(agent, server, text=f"order {tag}")
    agent_url = agent.url

    # The visitor writes again: it appears on the agent's open page without a reload.
    visitor_send(frame, f"Second question {tag}")
    expect(agent.locator("#thread [data-message-id]", has_text=f"Second question {tag}")).to_have_count(1)
    assert agent.url == agent_url
    expect(agent.locator("#thread .channel-badge").first).to_have_text("Web chat")

    agent.get_by_label("Reply").fill(f"Yes, {tag} left the warehouse today.")
    agent.get_by_role("button", name="Send").click()
    expect(frame.locator(".msg.outbound", has_text=f"{tag} left the warehouse")).to_have_count(1)
    expect(agent.locator("#thread .delivery-status").last).to_have_text("Sent")

    # History persists across a reload of the host page (visitor token in localStorage).
    visitor.reload()
    frame = visitor.frame_locator("iframe[title='Chat with us']")
    frame.get_by_role("button", name="Open chat").click()
    expect(frame.locator(".msg.inbound", has_text=f"Second question {tag}")).to_have_count(1)

    agent.get_by_role("button", name="Resolve").click()
    frame.get_by_role("button", name="Rate 5 out of 5").click()
    expect(frame.get_by_text("Thank you for your rating!")).to_be_visible()
    expect(agent.locator("#csat-rating")).to_contain_text("5/5")
    assert visitor.dialogs == [] and agent.dialogs == []


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"])
def test_markup_from_the_visitor_is_text_everywhere(daphne_server, contexts, payload):
    server = daphne_server
    visitor = contexts()
    frame = open_widget(visitor, server)
    visitor_send(frame, f"{payload} hi")
    agent = contexts()
    agent_open_latest(agent, server, text=f"{payload} hi")
    visitor_send(frame, f"again {payload}")
    expect(agent.locator("#thread [data-message-id]", has_text=f"again {payload}")).to_have_count(1)
    agent.get_by_label("Reply").fill(f"echo {payload}")
    agent.get_by_role("button", name="Send").click()
    expect(frame.locator(".msg.outbound", has_text=f"echo {payload}")).to_have_count(1)
    expect(agent.locator("#thread [data-message-id]", has_text=f"echo {payload}")).to_have_count(1)
    assert agent.locator("#thread img, #thread script").count() == 0
    assert frame.locator("#cx-messages img, #cx-messages script").count() == 0
    agent.goto(f"{server.url}/inbox/")
    agent.get_by_role("heading", name="Conversations").wait_for()
    visitor.wait_for_timeout(500)
    assert visitor.dialogs == [] and agent.dialogs == []
