from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for a user and print it (the only time it is shown). "
        "Example: manage.py api_key_create ada@example.com --name ci --scope read"
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scope",
            action="append",
            choices=["read", "write"],
            help="read (default) and/or write; repeat for both.",
        )

    def handle(self, *args, email, name, scope, **options):
        user = get_user_model().objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with the email {email}.")
        try:
            api_key, token = api_key_create(
                user=user, name=name, scopes=scope or ["read"]
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stderr.write(
            f"Key {api_key.prefix}… for {user.email} "
            f"(scopes: {', '.join(api_key.scopes)}). It is not shown again:"
        )
        self.stdout.write(token)
