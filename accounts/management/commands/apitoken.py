from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print only the token (it is not shown again)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="CLI token")

    def handle(self, *args, email, name, **options):
        try:
            user = User.objects.get(email__iexact=email, is_active=True)
        except User.DoesNotExist:
            raise CommandError(f"No active user with email {email}.")
        _token, raw = api_token_create(user=user, name=name)
        self.stdout.write(raw)
