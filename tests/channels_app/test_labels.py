"""Labels: set on a conversation through the API, filter the conversation list by label."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import Conversation, Label
from channels_app.services import conversation_labels_set, label_create
from customers.models import Customer
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import telegram_inbox, whatsapp_inbox

pytestmark = pytest.mark.django_db


def _conversation(*, team=None, inbox=None) -> Conversation:
    inbox = inbox or whatsapp_inbox()
    conversation = Conversation.objects.create(customer=Customer.objects.create(display_name="Budi"), team=team,
                                               last_inbox=inbox, last_message_at=timezone.now())
    conversation.inboxes.add(inbox)
    return conversation


def test_agent_sets_labels_on_a_conversation_they_can_see(client, agent):
    team = TeamFactory()
    add_to_team(agent, team)
    label_create(name="vip")
    label_create(name="refund", colour="#FF0000")
    conversation = _conversation(team=team)
    client.force_login(agent)

    response = client.post(f"/api/v1/conversations/{conversation.pk}/labels/", {"labels": ["VIP", "refund", "vip"]},
                           content_type="application/json")

    assert response.status_code == 200, response.json()
    assert response.json() == {"labels": ["refund", "vip"]}
    assert sorted(conversation.labels.values_list("name", flat=True)) == ["refund", "vip"]
    detail = client.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert detail["labels"] == ["refund", "vip"]


def test_setting_labels_replaces_them_and_an_empty_list_clears(client, supervisor):
    label_create(name="vip")
    label_create(name="refund")
    conversation = _conversation()
    conversation_labels_set(conversation=conversation, labels=["vip", "refund"])
    client.force_login(supervisor)

    replaced = client.post(f"/api/v1/conversations/{conversation.pk}/labels/", {"labels": ["refund"]},
                           content_type="application/json")
    assert replaced.json() == {"labels": ["refund"]}
    cleared = client.post(f"/api/v1/conversations/{conversation.pk}/labels/", {"labels": []},
                          content_type="application/json")
    assert cleared.json() == {"labels": []}
    assert conversation.labels.count() == 0


def test_unknown_label_is_rejected_and_nothing_changes(client, supervisor):
    label_create(name="vip")
    conversation = _conversation()
    conversation_labels_set(conversation=conversation, labels=["vip"])
    client.force_login(supervisor)

    response = client.post(f"/api/v1/conversations/{conversation.pk}/labels/", {"labels": ["vip", "typo", "bad"]},
                           content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["labels"] == ["No such label: bad, typo."]
    assert list(conversation.labels.values_list("name", flat=True)) == ["vip"]
    assert Label.objects.count() == 1


def test_labels_on_a_conversation_the_agent_cannot_see_is_404(client, agent):
    label_create(name="vip")
    conversation = _conversation(team=TeamFactory())
    client.force_login(agent)

    response = client.post(f"/api/v1/conversations/{conversation.pk}/labels/", {"labels": ["vip"]},
                           content_type="application/json")

    assert response.status_code == 404
    assert conversation.labels.count() == 0


def test_conversation_list_filters_by_label(client, supervisor):
    label_create(name="vip")
    label_create(name="refund")
    vip, refund, both, none = (_conversation() for _ in range(4))
    conversation_labels_set(conversation=vip, labels=["vip"])
    conversation_labels_set(conversation=refund, labels=["refund"])
    conversation_labels_set(conversation=both, labels=["vip", "refund"])
    client.force_login(supervisor)

    results = client.get("/api/v1/conversations/?label=vip").json()["results"]
    unknown = client.get("/api/v1/conversations/?label=nothing").json()["results"]

    assert [r["id"] for r in results] == [both.pk, vip.pk]  # each once, newest first
    assert [r["labels"] for r in results] == [["refund", "vip"], ["vip"]]
    assert unknown == []
    assert none.pk not in [r["id"] for r in client.get("/api/v1/conversations/?label=refund").json()["results"]]


def _labelled_team_conversations(client, make_user):
    """Signs in an agent of a team; returns a function adding `n` of the team's conversations,
    each on WhatsApp and Telegram and labelled "vip" and "refund"."""
    team = TeamFactory()
    alice = make_user()
    add_to_team(alice, team)
    label_create(name="vip")
    label_create(name="refund")
    wa, tg = whatsapp_inbox(), telegram_inbox()
    client.force_login(alice)

    def add(n: int) -> None:
        for _ in range(n):
            conversation = _conversation(team=team, inbox=wa)
            conversation.inboxes.add(tg)
            conversation_labels_set(conversation=conversation, labels=["vip", "refund"])

    return add


def test_label_filtered_list_query_count_is_flat(client, make_user, django_assert_max_num_queries):
    _labelled_team_conversations(client, make_user)(25)

    with django_assert_max_num_queries(10):
        response = client.get("/api/v1/conversations/?label=vip")

    results = response.json()["results"]
    assert len(results) == 25
    assert {tuple(r["labels"]) for r in results} == {("refund", "vip")}


def test_inbox_page_rows_show_their_channels_and_labels_in_a_flat_number_of_queries(client, make_user):
    """The rows read the prefetched lists (Conversation.inbox_list / label_list): one query each
    for all rows, whatever the page size; the detail API reads the same methods unprefetched."""
    add_conversations = _labelled_team_conversations(client, make_user)

    def page_queries(n: int) -> tuple[int, str]:
        add_conversations(n)
        client.get("/inbox/")  # the first request of a session also caches what later ones reuse
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/inbox/")
        assert response.status_code == 200
        return len(queries), response.content.decode()

    few, _ = page_queries(2)
    many, html = page_queries(20)
    assert many == few
    assert html.count('<span class="badge">WhatsApp</span> <span class="badge">Telegram</span>') == 22
    assert html.count(">refund</span> ") == 22 and html.count(">vip</span> ") == 22
    assert html.index(">refund</span>") < html.index(">vip</span>")  # by name

    first = Conversation.objects.order_by("pk").first()
    detail = client.get(f"/api/v1/conversations/{first.pk}/").json()
    assert detail["labels"] == ["refund", "vip"] and [i["kind"] for i in detail["inboxes"]] == ["whatsapp", "telegram"]


def test_label_api_agents_list_supervisors_create(client, agent, supervisor):
    client.force_login(agent)
    assert client.post("/api/v1/labels/", {"name": "vip"}, content_type="application/json").status_code == 403

    client.force_login(supervisor)
    created = client.post("/api/v1/labels/", {"name": "VIP", "colour": "#AA00CC"}, content_type="application/json")
    duplicate = client.post("/api/v1/labels/", {"name": "vip"}, content_type="application/json")
    bad_colour = client.post("/api/v1/labels/", {"name": "x", "colour": "red"}, content_type="application/json")

    assert created.status_code == 201, created.json()
    assert (created.json()["name"], created.json()["colour"]) == ("vip", "#aa00cc")
    assert duplicate.status_code == 400
    assert bad_colour.json()["error"]["fields"]["colour"] == ["A colour is #RRGGBB."]
    client.force_login(agent)
    assert [label["name"] for label in client.get("/api/v1/labels/").json()] == ["vip"]


def test_admin_lists_labels_with_their_conversation_count(client, admin_user):
    vip = label_create(name="vip", colour="#aa00cc")
    conversation_labels_set(conversation=_conversation(), labels=["vip"])
    client.force_login(admin_user)

    response = client.get("/admin/channels_app/label/")

    assert response.status_code == 200
    assert b"#aa00cc" in response.content
    assert client.get(f"/admin/channels_app/conversation/?labels__id__exact={vip.pk}").status_code == 200
