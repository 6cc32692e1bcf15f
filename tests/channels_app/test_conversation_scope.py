"""conversation_get(for_message=True), compiled once per role shape (cxplatform.db.Compiled),
lets exactly the viewers the conversation_visibility rule lets see a conversation: the
supervisor and admin everything, an agent what is assigned to them or in one of their teams."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from channels_app.models import Conversation
from channels_app.selectors import _visible_conversations, conversation_get
from customers.models import Customer
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import whatsapp_inbox

pytestmark = pytest.mark.django_db


def test_the_message_lookup_sees_what_the_visibility_rule_sees(make_user):
    inbox = whatsapp_inbox()
    first, second, third = TeamFactory(name="First"), TeamFactory(name="Second"), TeamFactory(name="Third")
    agent, both, outsider = make_user(Role.AGENT), make_user(Role.AGENT), make_user(Role.AGENT)
    add_to_team(agent, first)
    add_to_team(both, first)
    add_to_team(both, second)
    viewers = [agent, both, outsider, make_user(Role.SUPERVISOR), make_user(Role.ADMIN)]
    conversations = [
        Conversation.objects.create(customer=Customer.objects.create(display_name=f"C{n}"), last_inbox=inbox,
                                    team=team, assignee=assignee)
        for n, (team, assignee) in enumerate([(None, None), (None, agent), (first, None), (second, None),
                                              (second, agent), (third, outsider), (third, None)])
    ]
    seen = {}
    for viewer in viewers:
        for conversation in conversations:
            expected = _visible_conversations(viewer).filter(pk=conversation.pk).exists()
            try:
                found = conversation_get(viewer=viewer, conversation_id=conversation.pk, for_message=True)
            except Conversation.DoesNotExist:
                found = None
            assert (found is not None) == expected, (viewer.role, conversation.team, conversation.assignee)
            if found is not None:
                assert found.pk == conversation.pk
                with CaptureQueriesContext(connection) as ctx:  # what writing a message reads came along
                    assert (found.customer.display_name, found.last_inbox.kind) == (
                        conversation.customer.display_name, "whatsapp")
                assert ctx.captured_queries == []
            seen[(viewers.index(viewer), conversations.index(conversation))] = found is not None
    # Not a trivial world: each agent sees some and misses some; the supervisor and admin see all.
    assert [sum(seen[(v, c)] for c in range(len(conversations))) for v in range(len(viewers))] == [3, 3, 1, 7, 7]
    with pytest.raises(Conversation.DoesNotExist):
        conversation_get(viewer=viewers[3], conversation_id=max(c.pk for c in conversations) + 1, for_message=True)
