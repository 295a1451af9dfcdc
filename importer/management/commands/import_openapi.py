"""python manage.py import_openapi PATH --org SLUG [--source NAME] [--base-url URL]
[--dry-run] [--skip-invalid] [--json]

Imports an OpenAPI 2.0/3.0/3.1/3.2 document (JSON or YAML) into a spec source of the
organization, in this process (no worker needed). Exit 0 on success, 1 on an import
error, printed as its code, operation and message (or as JSON with --json). Warnings
(an operation imported with something to know, e.g. recursive_schema_cut) are printed
after the counts, and never change the exit code.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from actions.models import Organization, SpecSource
from importer.jobs import submit_import
from importer.models import SpecImport
from importer.run import run_import


class Command(BaseCommand):
    help = "Import an OpenAPI spec into an organization's actions."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The spec file (.json, .yaml or .yml).")
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument(
            "--source", help="The spec source to import into (default: from the file name)."
        )
        parser.add_argument("--base-url", default="", help="Override the spec's server URL.")
        parser.add_argument("--dry-run", action="store_true", help="Show the diff; write nothing.")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid operations and report the invalid ones.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, path, org, source, base_url, dry_run, skip_invalid, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            known = ", ".join(Organization.objects.values_list("slug", flat=True)[:20])
            raise CommandError(f"No organization with slug “{org}”. Known: {known or 'none'}.")
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No file at {path}.")
        name = source or slugify(file.stem) or "spec"
        if name != slugify(name):
            raise CommandError(
                f"“{name}” is not a valid source name: use letters, digits, '-' and '_'."
            )
        spec_source, _ = SpecSource.objects.get_or_create(organization=organization, name=name)
        job = submit_import(
            organization,
            spec_source,
            file.read_bytes(),
            file.name,
            via=SpecImport.Via.COMMAND,
            base_url=base_url,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            queue=False,
        )
        job = run_import(job)
        if options["json"]:
            self.stdout.write(json.dumps(result_json(job), indent=2))
        else:
            self._print(job)
        if job.status == SpecImport.Status.FAILED:
            raise SystemExit(1)

    def _print(self, job: SpecImport) -> None:
        if job.status == SpecImport.Status.FAILED:
            for error in job.errors:
                where = f" {error['operation']}" if error.get("operation") else ""
                self.stderr.write(f"{error['code']}:{where} {error['message']}")
                if error.get("fix"):
                    self.stderr.write(f"  fix: {error['fix']}")
            return
        verb = "Would import" if job.dry_run else "Imported"
        counts = job.counts()
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {job.filename} into “{job.source.name}”: {counts['created']} created, "
                f"{counts['updated']} updated, {counts['removed']} removed, "
                f"{counts['unchanged']} unchanged."
            )
        )
        for error in job.errors:
            self.stdout.write(f"  skipped {error['operation']}: {error['message']}")
        for warning in job.warnings:
            at = f" (at {warning['pointer']})" if warning.get("pointer") else ""
            self.stdout.write(
                self.style.WARNING(
                    f"  warning: {warning['code']}: {warning['operation']}: "
                    f"{warning['message']}{at}"
                )
            )
            if warning.get("fix"):
                self.stdout.write(f"    fix: {warning['fix']}")


def result_json(job: SpecImport) -> dict:
    return {"status": job.status, **job.counts(), "errors": job.errors, "warnings": job.warnings}
