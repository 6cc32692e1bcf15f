"""Agent workspace: composer helpers (canned responses, @mentions), conversation controls,
search, unread counts and the customer 360° panel — and that an agent of another team can do
none of it on a conversation they may not see."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from channels_app.models import CannedResponse, Conversation, ConversationRead, Label, Message
from channels_app.services import message_record
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_services_conversations import _listen, _received
from tests.channels_app.test_webhooks import post_whatsapp, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(agent):
    team = TeamFactory(name="Support")
    add_to_team(agent, team)
    return team


@pytest.fixture
def conversation(client, team, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox(team=team)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(text="Halo, ada promo kopi susu?", name="Budi Santoso",
                                             timestamp=int(time.time()) - 60))
    conversation = Conversation.objects.get()
    assert conversation.team_id == team.pk
    return conversation


@pytest.fixture
def outsider(make_user):
    user = make_user(email="sales@example.com", full_name="Sari Sales")
    add_to_team(user, TeamFactory(name="Sales"))
    return user


def _inbound(conversation: Conversation, text: str) -> Message:
    message, _ = message_record(conversation=conversation, inbox=conversation.last_inbox, direction="inbound",
                                sender="customer", content=text)
    return message


# --- composer: canned responses and mentions -----------------------------------------------


def test_canned_responses_are_filtered_and_rendered_with_the_customers_variables(client, agent, conversation):
    CannedResponse.objects.create(shortcut="promo", title="Promo bulan ini",
                                  body="Halo {{customer.first_name}}, promo kopi 20%. Salam, {{agent.first_name}}")
    CannedResponse.objects.create(shortcut="thanks", title="Terima kasih", body="Terima kasih!")
    agent.full_name = "Rina Agen"
    agent.save()
    client.force_login(agent)

    everything = client.get(f"/inbox/{conversation.pk}/canned/").json()["results"]
    promo = client.get(f"/inbox/{conversation.pk}/canned/", {"q": "pro"}).json()["results"]
    by_title = client.get(f"/inbox/{conversation.pk}/canned/", {"q": "terima"}).json()["results"]

    assert [r["shortcut"] for r in everything] == ["promo", "thanks"]
    assert [(r["shortcut"], r["text"]) for r in promo] == [("promo", "Halo Budi, promo kopi 20%. Salam, Rina")]
    assert [r["shortcut"] for r in by_title] == ["thanks"]


def test_mention_candidates_are_only_people_who_may_see_the_conversation(client, agent, team, conversation,
                                                                         make_user, outsider):
    teammate = make_user(email="dewi@example.com", full_name="Dewi Support")
    add_to_team(teammate, team)
    client.force_login(agent)

    found = client.get(f"/inbox/{conversation.pk}/mentions/", {"q": "@"}).json()["results"]
    dewi = client.get(f"/inbox/{conversation.pk}/mentions/", {"q": "dew"}).json()["results"]

    assert [u["handle"] for u in found] == ["dewi"]  # not the agent themself, not the Sales agent
    assert dewi == [{"id": teammate.pk, "handle": "dewi", "name": "Dewi Support"}]


@pytest.mark.parametrize("url", ["canned/", "mentions/", "messages/"])
def test_composer_endpoints_are_404_for_an_agent_of_another_team(client, conversation, outsider, url):
    client.force_login(outsider)

    assert client.get(f"/inbox/{conversation.pk}/{url}").status_code == 404


# --- controls ------------------------------------------------------------------------------


def test_priority_change_is_stored_and_pushed_to_the_open_conversation(client, agent, conversation,
                                                                       django_capture_on_commit_callbacks):
    listener = _listen(f"conversation.{conversation.pk}")
    client.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/inbox/{conversation.pk}/priority/", {"priority": "urgent"})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.priority == "urgent"
    events = [e["payload"] for e in _received(listener) if e["payload"].get("event") == "channels.conversation.updated"]
    assert [(e["conversation"]["priority"], e["conversation"]["change"]) for e in events] == [("urgent", "priority")]


def test_labels_are_added_and_removed_and_unknown_ones_refused(client, agent, conversation):
    Label.objects.create(name="vip")
    Label.objects.create(name="refund")
    client.force_login(agent)

    client.post(f"/inbox/{conversation.pk}/labels/", {"action": "add", "name": "vip"})
    client.post(f"/inbox/{conversation.pk}/labels/", {"action": "add", "name": "refund"})
    assert sorted(conversation.labels.values_list("name", flat=True)) == ["refund", "vip"]

    client.post(f"/inbox/{conversation.pk}/labels/", {"action": "remove", "name": "vip"})
    assert list(conversation.labels.values_list("name", flat=True)) == ["refund"]

    response = client.post(f"/inbox/{conversation.pk}/labels/", {"action": "add", "name": "typo"}, follow=True)
    assert "No such label: typo." in response.content.decode()
    assert list(conversation.labels.values_list("name", flat=True)) == ["refund"]


def test_snooze_time_is_read_in_the_agents_time_zone(client, agent, conversation):
    agent.time_zone = "Asia/Makassar"  # UTC+8
    agent.save()
    client.force_login(agent)
    year = timezone.now().year + 1

    client.post(f"/inbox/{conversation.pk}/status/", {"status": "snoozed", "snoozed_until": f"{year}-01-02T09:00"})

    conversation.refresh_from_db()
    assert conversation.status == "snoozed"
    assert conversation.snoozed_until == dt.datetime(year, 1, 2, 1, 0, tzinfo=dt.UTC)


def test_transfer_to_another_of_my_teams_and_not_to_a_team_i_am_not_in(client, agent, conversation, outsider):
    billing = TeamFactory(name="Billing")
    add_to_team(agent, billing)
    sales_team = outsider.team_memberships.get().team
    client.force_login(agent)

    refused = client.post(f"/inbox/{conversation.pk}/team/", {"team": sales_team.pk})
    conversation.refresh_from_db()
    assert refused.status_code == 302 and conversation.team_id != sales_team.pk

    client.post(f"/inbox/{conversation.pk}/team/", {"team": billing.pk})
    conversation.refresh_from_db()
    assert conversation.team_id == billing.pk


@pytest.mark.parametrize("url,data", [
    ("priority/", {"priority": "high"}),
    ("labels/", {"action": "add", "name": "vip"}),
    ("team/", {"team": 0}),
    ("status/", {"status": "resolved"}),
    ("reply/", {"content": "hello"}),
    ("read/", {}),
])
def test_an_agent_of_another_team_cannot_act_on_the_conversation(client, conversation, outsider, url, data):
    Label.objects.create(name="vip")
    client.force_login(outsider)

    assert client.post(f"/inbox/{conversation.pk}/{url}", data).status_code == 404
    conversation.refresh_from_db()
    assert (conversation.priority, conversation.status, conversation.labels.count()) == ("none", "open", 0)


def test_detail_page_has_every_control_with_an_accessible_name(client, agent, conversation):
    client.force_login(agent)

    html = client.get(f"/inbox/{conversation.pk}/").content.decode()

    for control_id in ("id_content", "id_inbox", "id_attachment", "id_private", "label-add", "id_priority",
                       "id_team", "id_status", "id_snoozed_until", "workspace-search"):
        assert f'id="{control_id}"' in html
        assert f'for="{control_id}"' in html, control_id


# --- search --------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [
    "kopi susu",            # message content
    "budi",                 # customer name
    "0812-3456-7890",       # local spelling
    "(0812) 3456 7890",
    "+62 812 3456 7890",
    "6281234567890",
])
def test_search_finds_the_conversation_by_text_name_or_phone_in_any_spelling(client, agent, conversation, q):
    client.force_login(agent)

    response = client.get("/inbox/search/", {"q": q})

    assert response.status_code == 200
    assert [c.pk for c in response.context["conversations"]] == [conversation.pk]


def test_search_by_email_identity(client, agent, conversation):
    from customers.services import identity_add

    identity_add(customer=conversation.customer, kind="email", value="Budi.S@Example.com")
    client.force_login(agent)

    response = client.get("/inbox/search/", {"q": "budi.s@example"})

    assert [c.pk for c in response.context["conversations"]] == [conversation.pk]
    assert [c.pk for c in response.context["customers"]] == [conversation.customer_id]


def test_search_never_shows_another_teams_conversation_and_has_a_clear_empty_state(client, conversation, outsider):
    client.force_login(outsider)

    response = client.get("/inbox/search/", {"q": "kopi susu"})

    assert response.context["conversations"] == []
    assert "No conversation you can see matches." in response.content.decode()
    assert "Halo, ada promo" not in response.content.decode()


def test_search_query_count_does_not_grow_with_results(client, agent, team, django_assert_max_num_queries):
    from tests.channels_app.test_api import _conversation

    for _ in range(12):
        conversation = _conversation(team=team)
        _inbound(conversation, "kopi susu please")
    client.force_login(agent)

    with django_assert_max_num_queries(14):
        response = client.get("/inbox/search/", {"q": "kopi"})

    assert len(response.context["conversations"]) == 12


def test_short_query_asks_for_more(client, agent, conversation):
    client.force_login(agent)

    response = client.get("/inbox/search/", {"q": "k"})

    assert "Type at least 2 characters." in response.content.decode()


# --- unread counts -------------------------------------------------------------------------


def _unread_q(viewer):
    """The tab counters' unread rule in the ORM, the reference for selectors.inbox_view_list's
    SQL: a customer message, and no read marker or a customer message after it."""
    from django.db.models import Exists, OuterRef, Q, Subquery

    markers = ConversationRead.objects.filter(user=viewer, conversation=OuterRef("pk"))
    marker = ConversationRead.objects.filter(user=viewer, conversation=OuterRef(OuterRef("pk"))).values(
        "last_read_message_id")[:1]
    newer = Exists(Message.objects.filter(conversation=OuterRef("pk"), direction="inbound", pk__gt=Subquery(marker)))
    return Q(last_inbound_at__isnull=False) & (~Exists(markers) | newer)


def _row_unread(html: str, pk: int) -> str:
    import re

    match = re.search(rf'data-unread-for="{pk}"(?P<attrs>[^>]*)>(?P<n>[^<]*)<', html)
    assert match, html
    return "" if " hidden" in match.group("attrs") else match.group("n")


def test_unread_count_shows_on_the_list_clears_on_open_and_counts_new_messages(client, agent, conversation):
    client.force_login(agent)

    assert _row_unread(client.get("/inbox/").content.decode(), conversation.pk) == "1"
    client.get(f"/inbox/{conversation.pk}/")
    read = ConversationRead.objects.get(user=agent, conversation=conversation)
    assert read.last_read_message_id == Message.objects.get().pk
    assert _row_unread(client.get("/inbox/").content.decode(), conversation.pk) == ""

    _inbound(conversation, "halo lagi")
    _inbound(conversation, "masih di sana?")
    assert _row_unread(client.get("/inbox/").content.decode(), conversation.pk) == "2"


def test_unread_is_per_agent_and_tabs_count_conversations_with_unread(client, agent, team, conversation,
                                                                      make_user):
    teammate = make_user(email="dewi@example.com")
    add_to_team(teammate, team)
    client.force_login(agent)
    client.get(f"/inbox/{conversation.pk}/")  # the agent read it; the teammate did not

    mine = {t["key"]: t["unread"] for t in client.get("/inbox/").context["tabs"]}
    client.force_login(teammate)
    theirs = {t["key"]: t["unread"] for t in client.get("/inbox/").context["tabs"]}

    assert mine == {"mine": 0, "unassigned": 0, "teams": 0}
    assert theirs["teams"] == 1
    assert theirs["mine"] == 0


def test_marking_read_from_the_page_only_moves_forward(client, agent, conversation):
    first = Message.objects.get()
    second = _inbound(conversation, "dua")
    client.force_login(agent)

    assert client.post(f"/inbox/{conversation.pk}/read/", {"message": second.pk}).json() == {
        "last_read_message_id": second.pk}
    client.post(f"/inbox/{conversation.pk}/read/", {"message": first.pk})

    assert ConversationRead.objects.get(user=agent).last_read_message_id == second.pk


def test_list_query_count_is_flat_with_unread_counts_and_tabs(client, agent, team, django_assert_max_num_queries):
    from tests.channels_app.test_api import _conversation

    for _ in range(15):
        _inbound(_conversation(team=team), "halo")
    client.force_login(agent)

    with django_assert_max_num_queries(16):
        response = client.get("/inbox/")

    assert len(response.context["page"]) == 15
    assert all(c.unread_count == 1 for c in response.context["page"])


def test_tab_unread_counts_follow_each_viewers_read_marker(supervisor, team):
    from channels_app import selectors
    from channels_app.services import workspace
    from tests.channels_app.test_api import _conversation

    never_opened = _conversation(team=team)
    _inbound(never_opened, "halo")
    read = _conversation(team=team)
    _inbound(read, "halo")
    read_then_new = _conversation(team=team)
    _inbound(read_then_new, "halo")
    only_replies = _conversation(team=team)
    message_record(conversation=only_replies, inbox=only_replies.last_inbox, direction="outbound", sender="agent",
                   content="Selamat pagi")
    for conversation in (read, read_then_new):
        workspace.conversation_mark_read(conversation=conversation, user=supervisor)
    _inbound(read_then_new, "masih ada?")

    tabs = {t["key"]: t["unread"] for t in selectors.inbox_view_list(viewer=supervisor)}
    unread = selectors.conversation_list(viewer=supervisor).filter(_unread_q(supervisor))

    assert tabs["all"] == 2
    assert {c.pk for c in unread} == {never_opened.pk, read_then_new.pk}


def test_tab_unread_counts_agree_with_the_orm_rules_for_every_kind_of_viewer(agent, supervisor, outsider, team,
                                                                              make_user):
    """inbox_view_list counts in SQL of its own; here it must agree with the ORM's visibility
    (conversation_visibility) and the unread rule stated with the ORM (_unread_q) for a lead, an agent
    with a team, an agent of another team and an agent with no team at all."""
    from django.db.models import Q

    from channels_app import selectors
    from channels_app.services import workspace
    from tests.channels_app.test_api import _conversation

    loner = make_user(email="loner@example.com")
    other_team = outsider.teams.get()
    cases = [
        _conversation(team=team), _conversation(team=team, assignee=agent), _conversation(team=None, assignee=agent),
        _conversation(team=None), _conversation(team=other_team), _conversation(team=other_team, assignee=agent),
        _conversation(team=None, assignee=loner), _conversation(team=team, status="resolved"),
        _conversation(team=team, assignee=outsider), _conversation(team=None),
    ]
    for conversation in cases:
        _inbound(conversation, "halo")
    for viewer in (agent, supervisor, loner):
        workspace.conversation_mark_read(conversation=cases[1], user=viewer)
        workspace.conversation_mark_read(conversation=cases[3], user=viewer)
    _inbound(cases[3], "masih ada?")  # read, then a new message: unread again
    _conversation(team=team, assignee=agent)  # no customer message at all: never unread

    def orm_counts(viewer):
        unread = (selectors.conversation_list(viewer=viewer).exclude(status="resolved")
                  .filter(_unread_q(viewer)))
        views = {"mine": Q(assignee=viewer), "unassigned": Q(assignee__isnull=True),
                 "teams": Q(team_id__in=selectors.team_ids_for_user(user=viewer))}
        if selectors.user_is_supervisor_or_admin(user=viewer):
            views["all"] = Q()
        return {name: unread.filter(condition).count() for name, condition in views.items()}

    for viewer in (agent, supervisor, outsider, loner):
        tabs = {t["key"]: t["unread"] for t in selectors.inbox_view_list(viewer=viewer)}
        assert tabs == orm_counts(viewer), viewer.email
    assert {t["key"]: t["unread"] for t in selectors.inbox_view_list(viewer=agent)} == {
        "mine": 2, "unassigned": 1, "teams": 2}
    assert {t["key"]: t["unread"] for t in selectors.inbox_view_list(viewer=loner)} == {
        "mine": 1, "unassigned": 0, "teams": 0}


def _list_queries(client, path: str = "/inbox/") -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow_with_the_number_of_conversations(client, agent, team):
    from tests.channels_app.test_api import _conversation

    client.force_login(agent)
    client.get("/inbox/")  # the first request of a session does a little more (last seen)
    for _ in range(30):
        _inbound(_conversation(team=team), "halo")
    with_two_pages = _list_queries(client)
    for _ in range(30):
        _inbound(_conversation(team=team), "halo")

    assert _list_queries(client) == with_two_pages
    assert _list_queries(client, "/inbox/?page=3") == with_two_pages - 1  # the last page: no count


def test_list_rows_show_what_they_name_from_the_narrowed_query_in_a_flat_number_of_queries(client, agent, team):
    """The list reads only the columns its rows show (selectors.ROW_FIELDS): every cell must
    still come out, and none may load a deferred field (a query per row)."""
    from django.urls import reverse

    from tests.channels_app.test_api import _conversation

    client.force_login(agent)
    client.get("/inbox/")
    plain = _conversation(team=team)
    _inbound(plain, "halo")
    one_row = _list_queries(client)
    for n in range(4):
        full = _conversation(team=team, assignee=agent)
        full.customer.display_name = f"Sari <Pelanggan> {n}"
        full.customer.save()
        full.labels.add(Label.objects.get_or_create(name="vip", defaults={"colour": "#aa0000"})[0])
        Conversation.objects.filter(pk=full.pk).update(priority="urgent")
        _inbound(full, "halo")
    agent.full_name = "Rina Agen"
    agent.save()

    html = client.get("/inbox/").content.decode()

    assert _list_queries(client) == one_row
    assert f'href="{reverse("channels_app:detail", args=[full.pk])}" data-conversation-link data-conversation-id="{full.pk}"' in html
    assert "Sari &lt;Pelanggan&gt; 3" in html and "<Pelanggan>" not in html
    for shown in ("Rina Agen", "Support", "vip", "WhatsApp", f'data-assignee="{agent.pk}"', f'data-team="{team.pk}"',
                  'class="badge priority-urgent"'):
        assert shown in html, shown
    assert 'data-assignee=""' in html  # the unassigned one


def test_list_total_is_counted_up_to_a_cap_and_says_more_than(client, agent, team, monkeypatch):
    from channels_app import views
    from tests.channels_app.test_api import _conversation

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    monkeypatch.setattr(views, "LIST_COUNT_CAP", 4)
    for _ in range(7):
        _conversation(team=team)
    client.force_login(agent)

    first = client.get("/inbox/")
    last = client.get("/inbox/", {"page": 4})

    assert (first.context["page"].paginator.count, first.context["page"].paginator.is_capped) == (4, True)
    assert "Page 1 of more than 2" in first.content.decode()
    assert first.context["page"].has_next()
    assert (last.context["page"].paginator.count, last.context["page"].paginator.is_capped) == (7, False)
    assert "Page 4 of 4" in last.content.decode()
    assert len(last.context["page"]) == 1


def test_views_tabs_filter_the_list(client, agent, team):
    from tests.channels_app.test_api import _conversation

    mine = _conversation(team=team, assignee=agent)
    waiting = _conversation(team=team)
    client.force_login(agent)

    assert [c.pk for c in client.get("/inbox/", {"view": "mine"}).context["page"]] == [mine.pk]
    assert [c.pk for c in client.get("/inbox/", {"view": "unassigned"}).context["page"]] == [waiting.pk]
    assert {c.pk for c in client.get("/inbox/", {"view": "teams"}).context["page"]} == {mine.pk, waiting.pk}


# --- customer 360 --------------------------------------------------------------------------


def test_side_panel_shows_identities_stage_previous_conversations_and_timeline(client, agent, team, conversation):
    from tests.channels_app.test_api import _conversation

    older = _conversation(team=team, status="resolved")
    Conversation.objects.filter(pk=older.pk).update(customer=conversation.customer)
    client.force_login(agent)

    response = client.get(f"/inbox/{conversation.pk}/")
    html = response.content.decode()
    panel = response.context["panel"]

    assert [i.value for i in panel["identities"]] == ["+6281234567890"]
    assert "+6281234567890" in html
    assert [c.pk for c in panel["previous_conversations"]] == [older.pk]
    assert f'href="/inbox/{older.pk}/"' in html
    assert conversation.customer.get_lifecycle_stage_display() in html
    assert any("kopi susu" in entry.body for entry in panel["timeline"])


def test_conversation_page_query_count_is_flat_and_a_read_conversation_is_not_written_again(
        client, agent, team, conversation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.channels_app.test_api import _conversation

    client.force_login(agent)
    client.get(f"/inbox/{conversation.pk}/")  # the first view marks it read
    few = _list_queries(client, f"/inbox/{conversation.pk}/")
    for i in range(10):
        _inbound(conversation, f"pesan {i}")
        older = _conversation(team=team, status="resolved")
        Conversation.objects.filter(pk=older.pk).update(customer=conversation.customer)
    client.get(f"/inbox/{conversation.pk}/")

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/inbox/{conversation.pk}/")

    assert len(ctx.captured_queries) == few
    assert len(response.context["chat"]) == 11
    assert len(response.context["panel"]["previous_conversations"]) == 5
    assert not [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))]
    assert ConversationRead.objects.get(user=agent).last_read_message_id == response.context["chat"][-1].pk


def test_conversation_page_reads_its_customer_and_labels_once(client, agent, conversation):
    """The side panel uses the customer (and owner) read with the conversation instead of
    reading it again, and one query gives the label chips and the "add label" choices."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    customer = conversation.customer
    customer.owner_agent = agent
    customer.save()
    agent.full_name = "Rina Agen"
    agent.save()
    vip, _late = Label.objects.create(name="vip", colour="#aa0000"), Label.objects.create(name="zzz-later")
    conversation.labels.add(vip)
    client.force_login(agent)
    client.get(f"/inbox/{conversation.pk}/")

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/inbox/{conversation.pk}/")

    sqls = [q["sql"] for q in ctx.captured_queries]
    assert not [sql for sql in sqls if sql.startswith('SELECT "customers_customer"')]
    assert len([sql for sql in sqls if 'FROM "channels_app_label"' in sql]) == 1
    assert not [sql for sql in sqls if sql.lstrip().upper().startswith(("DECLARE", "FETCH"))]  # the team select
    html = " ".join(response.content.decode().split())
    assert "Owner: Rina Agen" in html
    assert [label.name for label in response.context["labels"]] == ["vip"]
    assert '<option value="zzz-later">zzz-later</option>' in html and '<option value="vip">' not in html


@pytest.mark.parametrize("gone", ["merged", "erased"])
def test_side_panel_has_no_customer_card_for_a_merged_or_erased_profile(client, agent, conversation, gone):
    from customers.models import Customer

    customer = conversation.customer
    if gone == "merged":
        customer.merged_into = Customer.objects.create(display_name="Survivor")
    else:
        customer.is_erased = True
    customer.save()
    client.force_login(agent)

    response = client.get(f"/inbox/{conversation.pk}/")

    assert response.status_code == 200
    assert response.context["panel"] == {"customer": None}


@pytest.mark.parametrize(("status", "rating", "shown"), [("answered", 4, "<strong>4/5</strong>"), ("sent", None, "CSAT: —"),
                                                         (None, None, "CSAT: —")])
def test_conversation_page_shows_the_csat_rating(client, agent, conversation, status, rating, shown):
    from journeys.models import CsatResponse, CsatSurvey

    if status:
        survey = CsatSurvey.objects.create(conversation=conversation, customer=conversation.customer, status=status,
                                           send_after=timezone.now())
        if rating:
            CsatResponse.objects.create(survey=survey, customer=conversation.customer, rating=rating, via="link",
                                        responded_at=timezone.now())
    client.force_login(agent)

    response = client.get(f"/inbox/{conversation.pk}/")

    assert response.context["csat_rating"] == rating
    assert shown in " ".join(response.content.decode().split())


def test_side_panel_escapes_customer_text(client, agent, conversation):
    conversation.customer.display_name = "<script>alert(1)</script>"
    conversation.customer.save()
    client.force_login(agent)

    html = client.get(f"/inbox/{conversation.pk}/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
