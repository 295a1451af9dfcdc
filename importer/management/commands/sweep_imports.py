"""python manage.py sweep_imports [--after SECONDS]

Sends again the imports the task queue lost and fails those no worker can finish
(importer.jobs.sweep_imports): what `celery beat` does every minute, for a
deployment that runs it from cron instead, or by hand after a broker outage.
Exit 0, or 1 if the broker could not be reached.
"""

from django.core.management.base import BaseCommand

from importer.jobs import sweep_imports


class Command(BaseCommand):
    help = "Re-queue lost imports and fail the ones no worker can finish."

    def add_arguments(self, parser):
        parser.add_argument(
            "--after",
            type=int,
            help="Look only at jobs queued this many seconds ago or more "
            "(default: IMPORT_REQUEUE_AFTER_SECONDS).",
        )

    def handle(self, *args, after, **options):
        sweep = sweep_imports(after=after)
        self.stdout.write(f"Re-queued {len(sweep.requeued)} import(s), failed {len(sweep.failed)}.")
        if sweep.broker_down:
            self.stderr.write("The broker could not be reached; the rest wait for the next sweep.")
            raise SystemExit(1)
