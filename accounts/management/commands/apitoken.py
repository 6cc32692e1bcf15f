from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_create
from cxplatform.api.permissions import ALL_SCOPES


class Command(BaseCommand):
    help = "Create an API token for a user and print only the token (it is not shown again)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="CLI token")
        parser.add_argument(
            "--scopes",
            default="",
            help="Comma-separated <group>:read|write (groups: customers, conversations, inboxes, events, "
            "reports, webhooks, accounts). Empty: everything the user may do.",
        )

    def handle(self, *args, email, name, scopes, **options):
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        unknown = [scope for scope in wanted if scope not in ALL_SCOPES]
        if unknown:
            raise CommandError(f"Unknown scope: {', '.join(unknown)}. Known: {', '.join(ALL_SCOPES)}.")
        try:
            user = User.objects.get(email__iexact=email, is_active=True)
        except User.DoesNotExist:
            raise CommandError(f"No active user with email {email}.") from None
        _token, raw = api_token_create(user=user, name=name, scopes=list(dict.fromkeys(wanted)))
        self.stdout.write(raw)
