"""The agent's composer in real Chromium: `/` opens the canned responses, the keyboard picks
one and it is sent; a file is attached and reaches the web chat visitor as a link; the
search shortcut."""
from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.test_widget import agent_open_latest, open_widget, visitor_send

pytestmark = pytest.mark.e2e

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


def test_slash_opens_canned_responses_the_keyboard_picks_one_and_it_is_sent(daphne_server, contexts):
    server = daphne_server
    tag = uuid.uuid4().hex[:8]
    server.manage(
        "from channels_app.services import canned_response_create as c\n"
        f"c(shortcut='ship-{tag}', title='Shipping {tag}', body='Your parcel ships today, ref {tag}.')\n"
        f"c(shortcut='sorry-{tag}', title='Apology {tag}', body='Sorry for the wait ({tag}).')\n"
    )
    visitor = contexts()
    frame = open_widget(visitor, server)
    visitor_send(frame, f"where is my parcel {tag}")
    agent = contexts()
    agent_open_latest(agent, server, text=f"where is my parcel {tag}")

    reply = agent.get_by_role("combobox", name="Reply")
    reply.click()
    reply.press_sequentially("/s")
    options = agent.get_by_role("listbox", name="Suggestions").get_by_role("option")
    expect(options.filter(has_text=f"/ship-{tag}")).to_have_count(1)
    reply.press_sequentially(f"orry-{tag[:3]}")  # filters as the agent types
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text(f"Apology {tag}")
    reply.press("Escape")
    expect(agent.get_by_role("listbox", name="Suggestions")).to_be_hidden()
    reply.fill("")
    reply.press_sequentially(f"/ship-{tag}")
    expect(options).to_have_count(1)
    reply.press("Enter")
    expect(reply).to_have_value(f"Your parcel ships today, ref {tag}.")

    agent.get_by_role("button", name="Send", exact=True).click()
    expect(frame.locator(".msg.outbound", has_text=f"Your parcel ships today, ref {tag}.")).to_have_count(1)
    expect(agent.locator("#thread [data-message-id]", has_text=f"ref {tag}.")).to_have_count(1)


def test_agent_attaches_a_file_and_the_visitor_gets_a_link_to_it(daphne_server, contexts):
    server = daphne_server
    tag = uuid.uuid4().hex[:8]
    visitor = contexts()
    frame = open_widget(visitor, server)
    visitor_send(frame, f"can you send the receipt {tag}")
    agent = contexts()
    agent_open_latest(agent, server, text=f"receipt {tag}")

    agent.get_by_role("combobox", name="Reply").fill(f"Here it is {tag}")
    agent.get_by_label("Attach a file").set_input_files(
        files=[{"name": f"receipt-{tag}.png", "mimeType": "image/png", "buffer": PNG}])
    agent.get_by_role("button", name="Send", exact=True).click()

    sent = agent.locator("#thread [data-message-id]", has_text=f"Here it is {tag}")
    expect(sent).to_have_count(1)
    link = sent.get_by_role("link", name=f"receipt-{tag}.png")
    expect(link).to_have_count(1)
    response = agent.request.get(server.url + link.get_attribute("href"))
    assert (response.status, response.body()) == (200, PNG)

    bubble = frame.locator(".msg.outbound", has_text=f"Here it is {tag}")
    expect(bubble).to_contain_text(f"📎 receipt-{tag}.png: {server.url}/inbox/media/")
    url = bubble.inner_text().split(f"receipt-{tag}.png: ", 1)[1].split()[0]
    public = visitor.request.get(url)  # the visitor has no session: the signed link is enough
    assert (public.status, public.body()) == (200, PNG)


def test_search_shortcut_and_empty_state(daphne_server, contexts):
    from tests.e2e.daphne_server import sign_in

    server = daphne_server
    agent = contexts()
    sign_in(agent, server.url, "agent3@demo.cxplatform.test")
    agent.goto(f"{server.url}/inbox/")
    agent.get_by_role("heading", name="Conversations").first.wait_for()

    agent.keyboard.press("/")
    search = agent.get_by_role("searchbox", name="Search conversations and customers")
    expect(search).to_be_focused()
    search.fill(f"nothing-{uuid.uuid4().hex[:8]}")
    search.press("Enter")

    expect(agent.get_by_text("No conversation you can see matches.")).to_be_visible()
    agent.keyboard.press("Control+k")
    expect(agent.get_by_role("searchbox", name="Search conversations and customers")).to_be_focused()
