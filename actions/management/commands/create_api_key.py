"""Create an organization API key and print it, once.

    python manage.py create_api_key --org acme --name ci --scope actions:write \\
        --scope specs:import --expires-in-days 90

The key is the only line on stdout, so a script can capture it
(`KEY=$(python manage.py create_api_key ...)`); the note about storing it goes to
stderr. Only its hash is stored: a lost key cannot be shown again, only replaced.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from actions.models import APIScope, Organization, OrganizationAPIKey


def _one_of(values: list[str]) -> str:
    return ", ".join(values) if values else "(none)"


class Command(BaseCommand):
    help = "Create an organization API key and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG", help="Organization slug.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. ci.")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help="Repeat for several; default: tools. One of: " + ", ".join(APIScope.values),
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            metavar="N",
            help="The key stops working after N days; default: never.",
        )

    def handle(self, *args, org: str, name: str, scopes: list[str] | None, **options) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            slugs = list(Organization.objects.order_by("slug").values_list("slug", flat=True))
            raise CommandError(f"No organization with slug “{org}”. Valid slugs: {_one_of(slugs)}.")

        scopes = list(dict.fromkeys(scopes or [APIScope.TOOLS.value]))
        unknown = [scope for scope in scopes if scope not in APIScope.values]
        if unknown:
            raise CommandError(
                f"Unknown scope {', '.join(unknown)}. Valid scopes: {_one_of(APIScope.values)}."
            )

        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be a whole number of days, 1 or more.")
        fields = {
            "organization": organization,
            "name": name,
            "scopes": " ".join(scopes),
            "expiry_date": timezone.now() + timedelta(days=days) if days else None,
        }
        try:
            # The key's id, prefix and hash do not exist yet; create_key makes them.
            OrganizationAPIKey(**fields).full_clean(exclude=["id", "prefix", "hashed_key"])
        except ValidationError as error:
            raise CommandError(
                "; ".join(
                    f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items()
                )
            ) from error

        key_obj, key = OrganizationAPIKey.objects.create_key(**fields)
        self.stdout.write(key)
        self.stderr.write(
            f"Created API key “{key_obj.name}” (prefix {key_obj.prefix}) for "
            f"{organization.slug} with scopes {key_obj.scopes}. This is the only time it "
            "is shown: store it somewhere safe.",
            style_func=self.style.WARNING,
        )
