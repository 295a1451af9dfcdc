"""python manage.py rotate_secrets

Re-encrypts every stored secret under the newest key (the first of
SECRET_ENCRYPTION_KEYS). After it reports no failures, older keys can be removed.
A secret no configured key opens is reported and left as it is.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from execution import secrets
from execution.models import GlobalVariable

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt every secret under the newest encryption key."

    def handle(self, *args, **options):
        current = secrets.current_key_fingerprint()
        rotated = failed = 0
        ids = list(GlobalVariable.objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), BATCH):
            with transaction.atomic():
                batch = GlobalVariable.objects.select_for_update().filter(
                    pk__in=ids[start : start + BATCH]
                )
                for variable in batch:
                    try:
                        variable.value_encrypted = secrets.rotate(variable.value_encrypted)
                    except secrets.SecretUnavailable:
                        failed += 1
                        self.stderr.write(
                            f"Cannot decrypt {variable.name} of {variable.organization_id}: no "
                            "configured key opens it. Set its value again in the dashboard."
                        )
                        continue
                    variable.key_fingerprint = current
                    variable.save(update_fields=["value_encrypted", "key_fingerprint"])
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} secret(s) under key {current}.")
        if failed:
            raise CommandError(f"{failed} secret(s) could not be decrypted; see above.")
