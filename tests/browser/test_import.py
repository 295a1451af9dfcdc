"""Importing an OpenAPI spec from the dashboard, in a real browser: upload, preview,
confirm, the result, the new rows in the actions list; a broken spec's errors; the
progress page that polls until the job ends.

Tasks run in-process (eager) when the upload commits, as on the embedded default, so
the flow reaches its result without a worker; the progress page is driven with a
pending job and Playwright's clock, which decides when the page polls.
"""

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

from actions.models import Action, SpecSource
from importer.jobs import submit_import
from importer.models import SpecImport
from importer.run import run_import
from tests.importer.specs import (
    BASE_URL,
    PETSTORE_SIMPLE,
    RECURSIVE_OPTIONAL,
    SCHEMA_CIRCULAR,
    petstore_pinned,
    write_spec,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("eager_tasks"),
]


def open_import_form(page, live_server):
    page.goto(f"{live_server.url}/admin/actions/action/")
    page.get_by_role("link", name="Import from OpenAPI").click()
    expect(page.locator("h1")).to_have_text("Import from OpenAPI")


def test_support_admin_imports_a_spec_and_its_actions_appear_pinned_first(
    signed_in_page, live_server, tmp_path
):
    page = signed_in_page
    spec = write_spec(tmp_path, "petstore.json", petstore_pinned())
    open_import_form(page, live_server)

    page.set_input_files("#id_file", spec)
    page.fill("#id_source", "petstore")
    page.fill("#id_base_url", BASE_URL)
    page.get_by_role("button", name="Preview the import").click()

    expect(page.locator("h2")).to_have_text("Preview")
    expect(page.locator("#import-summary")).to_have_text(
        re.compile(r"Importing will add 20, change 0 and remove 0 actions;\s+0 stay as they are.")
    )
    expect(page.locator(".import-diff li")).to_have_count(20)
    expect(page.locator(".import-diff")).to_contain_text("GET /store/inventory (getInventory)")
    assert not Action.objects.exists()  # the preview wrote nothing

    page.get_by_role("button", name="Confirm the import").click()

    expect(page.locator("h2")).to_have_text("Imported")
    expect(page.locator("#import-summary")).to_have_text(
        re.compile(r"20 created, 0 updated, 0 removed,\s+0 unchanged.")
    )
    page.get_by_role("link", name="See the imported actions").click()

    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(20)
    # x-open-pinned puts the inventory first, ahead of "Add a new pet to the store".
    expect(rows.first.locator("th, td").nth(1)).to_contain_text("Returns pet inventories by status")
    expect(rows.nth(1)).to_contain_text("Add a new pet to the store")
    expect(rows.first).to_contain_text(f"{BASE_URL}/store/inventory")
    assert Action.objects.filter(source__name="petstore").count() == 20
    assert list(Action.objects.filter(pinned=True).values_list("operation_key", flat=True)) == [
        "GET /store/inventory"
    ]


def test_a_broken_spec_shows_its_first_invalid_operation_and_the_full_list(
    signed_in_page, live_server
):
    page = signed_in_page
    open_import_form(page, live_server)

    page.set_input_files("#id_file", SCHEMA_CIRCULAR)
    page.fill("#id_source", "circles")
    page.get_by_role("button", name="Preview the import").click()

    lead = page.locator(".errornote")
    expect(lead).to_contain_text("invalid_tool_schema on PUT /circular")
    expect(lead).to_contain_text("#/components/schemas/MultiPart")
    problems = page.locator("table.import-problems tbody tr")
    expect(problems).to_have_count(2)
    expect(problems.nth(0).locator("td").first).to_have_text("PUT /circular")
    expect(problems.nth(1).locator("td").first).to_have_text("POST /not-quite-circular")
    expect(page.get_by_role("button", name="Confirm the import")).to_have_count(0)
    assert not Action.objects.exists()


def test_warnings_show_in_the_admins_warning_style_on_the_preview_and_the_result(
    signed_in_page, live_server
):
    page = signed_in_page
    open_import_form(page, live_server)

    page.set_input_files("#id_file", RECURSIVE_OPTIONAL)
    page.fill("#id_source", "circles")
    page.get_by_role("button", name="Preview the import").click()

    for heading in ("Preview", "Imported"):
        expect(page.locator("h2")).to_have_text(heading)
        expect(page.get_by_role("heading", name="Warnings (2)")).to_be_visible()
        warnings = page.locator("ul.messagelist.import-warnings li.warning")
        expect(warnings).to_have_count(2)
        expect(warnings.first).to_contain_text("PUT /circular: The input is recursive")
        expect(warnings.first).to_contain_text("(at #/components/schemas/MultiPart)")
        expect(warnings.first).to_contain_text("Fix: Nothing to do if 3 levels are enough")
        expect(warnings.nth(1)).to_contain_text("POST /not-quite-circular")
        # Django admin's warning message: its alert icon, not the success tick.
        expect(warnings.first).to_have_css("background-image", re.compile("icon-alert"))
        if heading == "Preview":
            page.get_by_role("button", name="Confirm the import").click()
    assert Action.objects.filter(source__name="circles").count() == 3


def test_the_progress_page_polls_and_reloads_when_the_job_finishes(
    signed_in_page, live_server, support_admin
):
    page = signed_in_page
    user, _ = support_admin
    source = SpecSource.objects.create(organization=user.organization, name="petstore")
    job = submit_import(
        user.organization,
        source,
        PETSTORE_SIMPLE.read_bytes(),
        PETSTORE_SIMPLE.name,
        via=SpecImport.Via.DASHBOARD,
        user=user,
        dry_run=True,
        queue=False,  # pending until this test runs it
    )
    # The page polls on setTimeout; a paused clock lets the test say when.
    start = datetime.now()
    page.clock.install(time=start)
    page.clock.pause_at(start)
    page.goto(f"{live_server.url}/admin/importer/specimport/{job.pk}/job/")

    expect(page.locator("#import-state")).to_have_text("Checking the spec…")
    expect(page.locator("#import-count")).to_have_text("0 / ?")

    SpecImport.objects.filter(pk=job.pk).update(operations_done=1, operations_total=2)
    page.clock.run_for(600)  # the first poll

    expect(page.locator("#import-count")).to_have_text("1 / 2")
    expect(page.locator("#import-progress")).to_have_attribute("max", "2")
    expect(page.locator("#import-state")).to_be_visible()

    run_import(job)
    page.clock.run_for(1100)  # the next poll sees the end and reloads

    expect(page.locator("h2")).to_have_text("Preview")
    expect(page.locator("#import-summary")).to_contain_text("Importing will add 2")
    expect(page.locator("#import-state")).to_have_count(0)
