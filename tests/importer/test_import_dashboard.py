"""The dashboard's import flow, through the test client: the button on the actions
list, upload, the preview of the diff, confirm, the result or the errors, the
status.json the progress page polls, and the import history.

Tasks run in-process (eager) once the request's transaction commits, as on the
embedded default: each POST that submits a job is wrapped in
django_capture_on_commit_callbacks(execute=True).
"""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import formats, timezone

from actions.models import Action, SpecSource
from importer.jobs import submit_import
from importer.models import SpecImport
from importer.run import run_import
from tests.factories import make_organization, make_superuser, make_user
from tests.importer.specs import (
    BASE_URL,
    PETSTORE,
    PETSTORE_SIMPLE,
    RECURSIVE_CUTS,
    RECURSIVE_OPTIONAL,
    SCHEMA_CIRCULAR,
    V2_ADDED,
    V2_CHANGED,
    V2_REMOVED,
    petstore_v2,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

UPLOAD_URL = reverse("admin:importer_specimport_upload")
ACTIONS_URL = reverse("admin:actions_action_changelist")
HISTORY_URL = reverse("admin:importer_specimport_changelist")


def job_url(job) -> str:
    return reverse("admin:importer_specimport_job", args=[job.pk])


def confirm_url(job) -> str:
    return reverse("admin:importer_specimport_confirm", args=[job.pk])


def status_url(job) -> str:
    return reverse("admin:importer_specimport_status", args=[job.pk])


@pytest.fixture
def org():
    return make_organization(name="Acme")


@pytest.fixture
def admin_user(org):
    return make_user(org, username="ada")


@pytest.fixture
def signed_in(client, admin_user):
    client.force_login(admin_user)
    return client


def spec_upload(path=PETSTORE_SIMPLE, content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, content or path.read_bytes(), "application/json")


def upload(client, capture, *, file=None, source="petstore", base_url="", skip_invalid=False):
    """POST the upload form, let the dry run execute on commit, return the response."""
    data = {"source": source, "base_url": base_url}
    if file is not None:
        data["file"] = file
    if skip_invalid:
        data["skip_invalid"] = "on"
    with capture(execute=True):
        return client.post(UPLOAD_URL, data)


def confirm(client, capture, job):
    with capture(execute=True):
        return client.post(confirm_url(job))


def text(response) -> str:
    """The page's text, tags stripped and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_the_actions_list_has_an_import_from_openapi_button(signed_in):
    page = signed_in.get(ACTIONS_URL).content.decode()

    assert re.search(rf'<a href="{UPLOAD_URL}"[^>]*>Import from OpenAPI</a>', page)
    form = signed_in.get(UPLOAD_URL)
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.content.decode()


def test_the_upload_form_requires_a_file(signed_in, django_capture_on_commit_callbacks):
    response = upload(signed_in, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert "field-file" in response.content.decode()
    assert "This field is required." in text(response)
    assert not SpecImport.objects.exists()


def test_the_upload_form_refuses_an_http_base_url(signed_in, django_capture_on_commit_callbacks):
    response = upload(
        signed_in,
        django_capture_on_commit_callbacks,
        file=spec_upload(PETSTORE),
        base_url="http://petstore.example.com/v3",
    )

    assert response.status_code == 200
    assert "Actions only call HTTPS endpoints: use https://." in text(response)
    assert not SpecImport.objects.exists()


def test_the_upload_form_refuses_a_file_over_the_size_limit(
    signed_in, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_MAX_BYTES = 100

    response = upload(signed_in, django_capture_on_commit_callbacks, file=spec_upload())

    assert response.status_code == 200
    size = PETSTORE_SIMPLE.stat().st_size
    assert f"The file is {size:,} bytes, over the 100-byte limit." in text(response)
    assert not SpecImport.objects.exists()


def test_an_upload_makes_a_dry_run_and_the_job_page_previews_the_diff(
    signed_in, org, admin_user, django_capture_on_commit_callbacks
):
    response = upload(
        signed_in, django_capture_on_commit_callbacks, file=spec_upload(PETSTORE), base_url=BASE_URL
    )

    job = SpecImport.objects.get()
    assert response.status_code == 302
    assert response.url == job_url(job)
    assert (job.dry_run, job.status, job.via) == (True, "succeeded", "dashboard")
    assert (job.created_by, job.base_url, job.source.name) == (admin_user, BASE_URL, "petstore")
    assert not Action.objects.exists()  # a preview writes nothing

    page = signed_in.get(response.url)

    assert page.status_code == 200
    shown = text(page)
    assert "Preview" in shown
    assert "Importing will add 20, change 0 and remove 0 actions; 0 stay as they are." in shown
    assert "Added (20)" in shown
    assert "<code>GET /pet/{petId} (getPetById)</code>" in page.content.decode()
    assert f'action="{confirm_url(job)}"' in page.content.decode()
    assert "import-warnings" not in page.content.decode()  # a spec without warnings


def test_a_preview_of_a_reimport_lists_added_changed_and_removed_operations(
    signed_in, org, django_capture_on_commit_callbacks
):
    upload(
        signed_in, django_capture_on_commit_callbacks, file=spec_upload(PETSTORE), base_url=BASE_URL
    )
    confirm(signed_in, django_capture_on_commit_callbacks, SpecImport.objects.get())
    v2 = spec_upload(PETSTORE, json.dumps(petstore_v2()).encode())

    response = upload(signed_in, django_capture_on_commit_callbacks, file=v2, base_url=BASE_URL)

    shown = text(signed_in.get(response.url))
    assert "Importing will add 1, change 1 and remove 1 action; 18 stay as they are." in shown
    assert f"Added (1) {V2_ADDED}" in shown
    assert f"Changed (1) {V2_CHANGED}" in shown
    assert f"Removed (1) {V2_REMOVED}" in shown
    assert Action.objects.filter(operation_key="GET /user/logout").exists()


def test_confirming_a_preview_imports_once_even_when_posted_twice(
    signed_in, org, django_capture_on_commit_callbacks
):
    upload(
        signed_in, django_capture_on_commit_callbacks, file=spec_upload(PETSTORE), base_url=BASE_URL
    )
    preview = SpecImport.objects.get()

    first = confirm(signed_in, django_capture_on_commit_callbacks, preview)
    second = confirm(signed_in, django_capture_on_commit_callbacks, preview)  # a double click

    job = SpecImport.objects.get(dry_run=False)
    assert first.url == second.url == job_url(job)
    assert (job.preview, job.status, job.base_url) == (preview, "succeeded", BASE_URL)
    assert Action.objects.filter(organization=org).count() == 20
    shown = text(signed_in.get(first.url))
    assert "Imported" in shown
    assert "20 created, 0 updated, 0 removed, 0 unchanged." in shown
    assert f"{ACTIONS_URL}?source={job.source_id}" in signed_in.get(first.url).content.decode()
    assert "This preview has already been confirmed." in text(signed_in.get(job_url(preview)))


def test_confirm_takes_a_post_of_a_successful_preview_only(
    signed_in, org, django_capture_on_commit_callbacks
):
    upload(signed_in, django_capture_on_commit_callbacks, file=spec_upload(SCHEMA_CIRCULAR))
    failed = SpecImport.objects.get()

    assert signed_in.get(confirm_url(failed)).status_code == 405
    assert confirm(signed_in, django_capture_on_commit_callbacks, failed).status_code == 404
    assert SpecImport.objects.count() == 1
    assert not Action.objects.exists()


def test_a_broken_spec_shows_its_first_invalid_operation_and_every_problem(
    signed_in, django_capture_on_commit_callbacks
):
    response = upload(
        signed_in, django_capture_on_commit_callbacks, file=spec_upload(SCHEMA_CIRCULAR)
    )

    page = signed_in.get(response.url)
    html = page.content.decode()
    lead = re.search(r'<p class="errornote">(.*?)</p>', html, re.S).group(1)
    assert "<code>invalid_tool_schema</code> on <strong>PUT /circular</strong>" in lead
    assert "<code>#/components/schemas/MultiPart</code>" in lead
    assert "Fix: Make the input non-recursive" in lead
    shown = text(page)
    assert "Nothing was changed." in shown
    assert "Every problem found (2)" in shown
    problems = re.findall(r"<tr>\s*<td>([^<]*)</td>", html)
    assert problems == ["PUT /circular", "POST /not-quite-circular"]
    assert "Confirm the import" not in shown


def test_skip_invalid_previews_and_imports_the_valid_operations_listing_the_others(
    signed_in, django_capture_on_commit_callbacks
):
    response = upload(
        signed_in,
        django_capture_on_commit_callbacks,
        file=spec_upload(SCHEMA_CIRCULAR),
        skip_invalid=True,
    )
    preview = SpecImport.objects.get()
    assert (preview.skip_invalid, preview.status) == (True, "succeeded")

    shown = text(signed_in.get(response.url))
    assert "Importing will add 1, change 0 and remove 0 actions" in shown
    assert "Operations that will be skipped (2)" in shown
    confirmed = confirm(signed_in, django_capture_on_commit_callbacks, preview)

    shown = text(signed_in.get(confirmed.url))
    assert "1 created, 0 updated, 0 removed, 0 unchanged." in shown
    assert "Skipped operations (2) Operation Code Problem Where Fix PUT /circular" in shown
    assert list(Action.objects.values_list("operation_key", flat=True)) == ["PUT /nestedTest"]


def warning_items(html: str) -> list[str]:
    """The text of each item of the page's warning list (Django's messagelist style)."""
    listed = re.search(r'<ul class="messagelist import-warnings"[^>]*>(.*?)</ul>', html, re.S)
    assert listed, "no warning list on the page"
    items = re.findall(r'<li class="warning"[^>]*>(.*?)</li>', listed.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", item).split()) for item in items]


def test_the_preview_and_the_result_list_warnings_after_the_counts(
    signed_in, django_capture_on_commit_callbacks
):
    response = upload(
        signed_in, django_capture_on_commit_callbacks, file=spec_upload(RECURSIVE_OPTIONAL)
    )
    preview = SpecImport.objects.get()

    html = signed_in.get(response.url).content.decode()
    shown = text(signed_in.get(response.url))
    assert "Importing will add 3, change 0 and remove 0 actions" in shown
    assert shown.index("stay as they are.") < shown.index("Warnings (2)") < shown.index("Added")
    items = warning_items(html)
    assert len(items) == 2
    for item, (_, operation, pointer) in zip(items, RECURSIVE_CUTS, strict=True):
        assert item.startswith(f"{operation}: The input is recursive ({pointer}")
        assert f"(at {pointer}). Fix: Nothing to do if 3 levels are enough" in item
    assert html.count('data-code="recursive_schema_cut"') == 2
    assert "Operations that will be skipped" not in shown  # warnings are not errors
    confirmed = confirm(signed_in, django_capture_on_commit_callbacks, preview)

    page = signed_in.get(confirmed.url)
    shown = text(page)
    assert "3 created, 0 updated, 0 removed, 0 unchanged. Warnings (2)" in shown
    assert warning_items(page.content.decode()) == items
    assert "Skipped operations" not in shown
    history = signed_in.get(HISTORY_URL).content.decode()
    assert "3 created, 0 updated, 0 removed, 0 unchanged; 2 warnings" in history


def test_status_json_reports_progress_while_pending_and_the_end_when_finished(
    signed_in, org, admin_user, django_capture_on_commit_callbacks
):
    source = SpecSource.objects.create(organization=org, name="petstore")
    job = submit_import(
        org,
        source,
        PETSTORE_SIMPLE.read_bytes(),
        "petstore-simple.json",
        via=SpecImport.Via.DASHBOARD,
        user=admin_user,
        dry_run=True,
        queue=False,
    )
    SpecImport.objects.filter(pk=job.pk).update(operations_done=1, operations_total=2)

    assert signed_in.get(status_url(job)).json() == {
        "status": "pending",
        "done": 1,
        "total": 2,
        "finished": False,
    }
    page = signed_in.get(job_url(job))
    assert "Checking the spec…" in text(page)
    assert f'data-status-url="{status_url(job)}"' in page.content.decode()
    assert "1 / 2" in text(page)

    run_import(job)

    assert signed_in.get(status_url(job)).json() == {
        "status": "succeeded",
        "done": 2,
        "total": 2,
        "finished": True,
    }


def test_another_organizations_job_does_not_exist(signed_in, django_capture_on_commit_callbacks):
    stranger = make_user(make_organization())
    other = SpecSource.objects.create(organization=stranger.organization, name="petstore")
    with django_capture_on_commit_callbacks(execute=True):
        theirs = submit_import(
            stranger.organization,
            other,
            PETSTORE_SIMPLE.read_bytes(),
            "petstore-simple.json",
            via=SpecImport.Via.DASHBOARD,
            user=stranger,
            dry_run=True,
        )
    theirs.refresh_from_db()
    assert theirs.status == "succeeded"

    assert signed_in.get(job_url(theirs)).status_code == 404
    assert signed_in.get(status_url(theirs)).status_code == 404
    assert confirm(signed_in, django_capture_on_commit_callbacks, theirs).status_code == 404
    assert theirs.sha256[:12] not in signed_in.get(HISTORY_URL).content.decode()
    assert not Action.objects.exists()


def test_a_user_without_an_organization_cannot_upload(client):
    client.force_login(make_superuser())

    assert client.get(UPLOAD_URL).status_code == 404


def test_the_history_shows_who_when_which_file_which_source_and_the_result(
    signed_in, admin_user, django_capture_on_commit_callbacks
):
    upload(
        signed_in, django_capture_on_commit_callbacks, file=spec_upload(PETSTORE), base_url=BASE_URL
    )
    preview = SpecImport.objects.get()
    confirm(signed_in, django_capture_on_commit_callbacks, preview)
    upload(
        signed_in,
        django_capture_on_commit_callbacks,
        file=spec_upload(SCHEMA_CIRCULAR),
        source="circles",
    )
    imported = SpecImport.objects.get(dry_run=False)
    failed = SpecImport.objects.get(source__name="circles")

    page = signed_in.get(HISTORY_URL)

    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('id="result_list"') :]
    headers = re.findall(r'<div class="text"><a href="[^"]*">([^<]+)</a>', table)
    assert headers == [
        "Created at", "Source", "File", "File hash", "Via", "Created by", "Result",
    ]  # fmt: skip
    rows = {job.pk: history_row(table, job) for job in (preview, imported, failed)}
    for job in (preview, imported, failed):
        row = rows[job.pk]
        when = formats.localize(timezone.template_localtime(job.created_at))
        assert row["created_at"] == when
        assert row["source"] == job.source.name
        assert row["job_link"] == f'<a href="{job_url(job)}">{job.filename}</a>'
        assert row["short_hash"] == f'<code title="{job.sha256}">{job.sha256[:12]}</code>'
        assert (row["via"], row["created_by"]) == ("Dashboard", "ada")
    assert rows[preview.pk]["result"] == "Preview: 20 created, 0 updated, 0 removed, 0 unchanged"
    assert rows[imported.pk]["result"] == "20 created, 0 updated, 0 removed, 0 unchanged"
    assert rows[failed.pk]["result"] == "Failed: invalid_tool_schema PUT /circular"


def history_row(table: str, job) -> dict[str, str]:
    """One import's row of the history: {column: cell HTML}."""
    # The history is read-only (no row checkboxes): find the row by its job link.
    link = re.escape(f"/specimport/{job.pk}/job/")
    row = re.search(rf"<tr>(?:(?!</tr>).)*{link}(?:(?!</tr>).)*</tr>", table, re.S)
    assert row, f"no row for import {job.pk}"
    return dict(re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row.group(0), re.S))
