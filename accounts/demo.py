"""Demo users in every role and two teams, for `seed_demo` (idempotent)."""
from __future__ import annotations

from django.db import transaction

from accounts.models import Availability, Role, Team, TeamMembership, User
from accounts.services import roles_sync, user_create, user_role_assign

DEMO_PASSWORD = "cx-demo-2026"
DEMO_USERS = [
    ("admin@demo.cxplatform.test", "Ayu Admin", Role.ADMIN, []),
    ("supervisor@demo.cxplatform.test", "Sari Supervisor", Role.SUPERVISOR, ["Sales", "Support"]),
    ("agent1@demo.cxplatform.test", "Budi Santoso", Role.AGENT, ["Support"]),
    ("agent2@demo.cxplatform.test", "Dewi Lestari", Role.AGENT, ["Support"]),
    ("agent3@demo.cxplatform.test", "Rizky Pratama", Role.AGENT, ["Sales"]),
]
DEMO_TEAMS = [("Support", "After-sales help and complaints"), ("Sales", "Pre-sales questions and orders")]


@transaction.atomic
def seed_demo_accounts(stdout=None) -> dict[str, User]:
    roles_sync()
    teams = {
        name: Team.objects.get_or_create(name=name, defaults={"description": description})[0]
        for name, description in DEMO_TEAMS
    }
    users = {}
    for email, full_name, role, team_names in DEMO_USERS:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = user_create(email=email, password=DEMO_PASSWORD, full_name=full_name, role=role)
        else:
            user_role_assign(user=user, role=role)
        if role == Role.ADMIN and not user.is_superuser:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        for team_name in team_names:
            TeamMembership.objects.get_or_create(team=teams[team_name], user=user, defaults={"is_lead": role == Role.SUPERVISOR})
        if role == Role.AGENT and user.availability == Availability.OFFLINE:
            user.availability = Availability.ONLINE
            user.save(update_fields=["availability"])
        users[email] = user
    if stdout is not None:
        stdout.write(f"Accounts: {len(users)} demo users in {len(teams)} teams")
    return users
