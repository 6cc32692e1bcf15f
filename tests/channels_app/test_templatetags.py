from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation

from channels_app.models import Conversation, ConversationPriority, ConversationStatus, Inbox, InboxKind

TEMPLATE = Template('{% load choices %}{{ c|choice_label:"status" }}|{{ c|choice_label:"priority" }}|'
                    '{{ i|choice_label:"kind" }}')


@pytest.mark.parametrize("language", ["en", "id"])
@pytest.mark.parametrize("status", ConversationStatus.values)
def test_choice_label_is_what_get_display_shows_in_the_active_language(language, status):
    conversation = Conversation(status=status, priority=ConversationPriority.HIGH)
    inbox = Inbox(kind=InboxKind.WHATSAPP)

    with translation.override(language):
        shown = TEMPLATE.render(Context({"c": conversation, "i": inbox}))
        expected = "|".join([conversation.get_status_display(), conversation.get_priority_display(),
                             inbox.get_kind_display()])

    assert shown == expected


def test_choice_label_shows_an_unknown_value_as_it_is():
    assert TEMPLATE.render(Context({"c": Conversation(status="weird", priority="none"),
                                    "i": Inbox(kind="x")})).startswith("weird|")
