"""Agents for the websocket benchmarks: accounts, signed-in sessions and open conversations.

Sessions are created the way Django's login() stores them (same session engine and auth hash),
so the daphne process authenticates each socket exactly as it does a browser's.
"""
from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone

from accounts.models import Availability, Role, Team, TeamMembership, User
from accounts.services import user_create
from channels_app.models import Conversation, ConversationStatus
from customers.models import Identity

BACKEND = settings.AUTHENTICATION_BACKENDS[0]


def agents(count: int) -> list[User]:
    """`count` agents (bench-live-agent-N), online, spread over the bench teams."""
    teams = list(Team.objects.filter(name__startswith="Bench team")) or [Team.objects.create(name="Bench team 1")]
    existing = {u.email: u for u in User.objects.filter(email__startswith="bench-live-agent")}
    out = []
    for i in range(count):
        email = f"bench-live-agent{i + 1}@bench.cxplatform.test"
        user = existing.get(email)
        if user is None:
            user = user_create(email=email, password=None, full_name=f"Live agent {i + 1}", role=Role.AGENT)
            TeamMembership.objects.create(team=teams[i % len(teams)], user=user)
        out.append(user)
    User.objects.filter(pk__in=[u.pk for u in out]).update(availability=Availability.ONLINE)
    return out


def session_cookie(user: User) -> dict[str, str]:
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = BACKEND
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return {settings.SESSION_COOKIE_NAME: store.session_key}


def open_conversations(users: list[User]) -> list[tuple[User, str]]:
    """One open conversation per agent, assigned to it, with a dataset customer whose phone
    (WhatsApp id) is returned: a message from that phone lands in that agent's conversation."""
    phones = list(Identity.objects.filter(kind="phone", value__startswith="+62812").order_by("id")
                  .values_list("customer_id", "value")[: len(users) * 3])
    pairs = []
    taken = 0
    for user in users:
        while taken < len(phones):
            customer_id, phone = phones[taken]
            taken += 1
            conversation = (Conversation.objects.filter(customer_id=customer_id)
                            .exclude(status=ConversationStatus.RESOLVED).first())
            if conversation is None:
                conversation = Conversation.objects.filter(customer_id=customer_id).order_by("-id").first()
            if conversation is None:
                continue
            Conversation.objects.filter(pk=conversation.pk).update(
                status=ConversationStatus.OPEN, assignee=user, team=None, assigned_at=timezone.now(), resolved_at=None)
            pairs.append((user, phone.lstrip("+")))
            break
    return pairs
