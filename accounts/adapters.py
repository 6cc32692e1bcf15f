from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Agents are invited by an admin; nobody signs themselves up."""

    def is_open_for_signup(self, request) -> bool:
        return False
