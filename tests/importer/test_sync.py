"""Sync: a source's actions become exactly its spec's operations, all or nothing."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import Action, ActionParameter, Organization, SpecSource
from importer.drafts import OperationDraft, RowDraft, draft_errors
from importer.sync import sync_source
from tests.conftest import require_service
from tests.factories import make_action, make_organization, make_segment

pytestmark = pytest.mark.django_db


def draft(path: str, method: str = "GET", **fields) -> OperationDraft:
    slug = path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"
    placeholders = [p[1:-1] for p in path.split("/") if p.startswith("{")]
    values = {
        "operation_key": f"{method} {path}",
        "operation_id": f"{method.lower()}_{slug}",
        "name": f"{method} {path}",
        "tool_name": f"{method.lower()}_{slug}",
        "description": f"Calls {method} {path} on the pet store API for the customer.",
        "method": method,
        "endpoint": f"https://api.pets.example/v1{path}",
        "parameters": [RowDraft("path", p, required=True) for p in placeholders],
        "headers": [RowDraft("header", "Authorization", "static", "Bearer {{global.PETS}}")],
        "tags": ["pets"],
        **fields,
    }
    made = OperationDraft(**values)
    assert draft_errors(made) == [], draft_errors(made)
    return made


SPEC_V1 = [
    draft("/pets"),
    draft("/pets/{pet_id}"),
    draft(
        "/pets",
        "POST",
        body_schema={"type": "object", "properties": {"name": {"type": "string"}}},
        pinned=True,
    ),
]


@pytest.fixture
def org():
    return make_organization()


@pytest.fixture
def source(org):
    return SpecSource.objects.create(organization=org, name="petstore")


def generated(source):
    return {a.operation_key: a for a in Action.objects.filter(source=source)}


def test_a_first_import_creates_one_action_per_operation_on_the_widget_only(org, source):
    result = sync_source(org, source, SPEC_V1)
    assert result.counts() == {"created": 3, "updated": 0, "removed": 0, "unchanged": 0}
    actions = generated(source)
    assert set(actions) == {"GET /pets", "GET /pets/{pet_id}", "POST /pets"}
    for action in actions.values():
        action.full_clean()  # what sync wrote obeys every action rule
        assert action.channels == ["widget"]
        assert [t.name for t in action.tags.all()] == ["pets"]
        assert action.headers.get().value == "Bearer {{global.PETS}}"
    assert actions["POST /pets"].pinned
    assert actions["GET /pets/{pet_id}"].parameters.get().key == "pet_id"


def test_reimporting_an_unchanged_spec_writes_nothing(org, source):
    sync_source(org, source, SPEC_V1)
    version = Organization.objects.get(pk=org.pk).tools_version
    with CaptureQueriesContext(connection) as captured:
        result = sync_source(org, source, SPEC_V1)
    assert result.counts() == {"created": 0, "updated": 0, "removed": 0, "unchanged": 3}
    writes = [
        q["sql"] for q in captured if q["sql"].split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}
    ]
    assert writes == []
    assert Organization.objects.get(pk=org.pk).tools_version == version


def test_reimport_keeps_ids_and_admin_settings_and_overwrites_what_the_spec_owns(org, source):
    sync_source(org, source, SPEC_V1)
    before = generated(source)
    kept = before["GET /pets"]
    vip = make_segment(org)
    kept.channels = ["widget", "sms"]
    kept.save()
    kept.segments.add(vip)
    kept.description = "An admin's edit that the spec will overwrite when it changes."
    kept.save()

    changed = draft("/pets", description="Lists every pet in the store, newest first, paged.")
    result = sync_source(org, source, [changed, *SPEC_V1[1:]])

    assert result.changed == ["GET /pets (get_pets)"]
    after = generated(source)
    assert {k: a.pk for k, a in after.items()} == {k: a.pk for k, a in before.items()}
    kept = after["GET /pets"]
    assert kept.description == "Lists every pet in the store, newest first, paged."
    assert kept.channels == ["widget", "sms"]
    assert list(kept.segments.all()) == [vip]


def test_vanished_operations_actions_are_removed(org, source):
    sync_source(org, source, SPEC_V1)
    result = sync_source(org, source, SPEC_V1[:1])
    assert result.removed == ["GET /pets/{pet_id}", "POST /pets"]
    assert set(generated(source)) == {"GET /pets"}
    assert not ActionParameter.objects.filter(action__source=source).exists()


def test_hand_authored_actions_and_other_sources_are_never_touched(org, source):
    mine = make_action(org, name="Look up an order", tool_name="look_up_an_order")
    other = SpecSource.objects.create(organization=org, name="billing")
    sync_source(org, other, [draft("/invoices")])
    sync_source(org, source, SPEC_V1)
    sync_source(org, source, [])
    assert Action.objects.get(pk=mine.pk).name == "Look up an order"
    assert set(generated(other)) == {"GET /invoices"}
    assert generated(source) == {}


def test_a_dry_run_reports_the_diff_and_writes_nothing(org, source):
    sync_source(org, source, SPEC_V1)
    result = sync_source(org, source, [draft("/pets"), draft("/owners")], dry_run=True)
    assert result.diff() == {
        "added": ["GET /owners (get_owners)"],
        "changed": [],
        "removed": ["GET /pets/{pet_id}", "POST /pets"],
    }
    assert set(generated(source)) == {"GET /pets", "GET /pets/{pet_id}", "POST /pets"}


def test_a_name_taken_by_a_hand_authored_action_gets_a_stable_variant(org, source):
    make_action(org, name="GET /pets", tool_name="get_pets")
    sync_source(org, source, SPEC_V1)
    action = generated(source)["GET /pets"]
    assert action.name == "GET /pets (petstore)"
    assert action.tool_name.startswith("get_pets_") and action.tool_name != "get_pets"
    first = (action.name, action.tool_name)
    sync_source(org, source, SPEC_V1)
    action = generated(source)["GET /pets"]
    assert (action.name, action.tool_name) == first


def test_a_failure_midway_leaves_everything_as_it_was(org, source, monkeypatch):
    sync_source(org, source, SPEC_V1)
    snapshot = {k: (a.pk, a.description) for k, a in generated(source).items()}

    def explode(*args, **kwargs):
        raise RuntimeError("the database went away mid-import")

    monkeypatch.setattr(ActionParameter.objects, "bulk_create", explode)
    with pytest.raises(RuntimeError):
        sync_source(org, source, [draft("/pets", description="A new description for pets.")])
    assert {k: (a.pk, a.description) for k, a in generated(source).items()} == snapshot


def test_an_import_renews_the_tool_lists_once(org, source):
    version = Organization.objects.get(pk=org.pk).tools_version
    with CaptureQueriesContext(connection) as captured:
        sync_source(org, source, SPEC_V1)
    bumps = [q for q in captured if q["sql"].startswith("UPDATE") and "tools_version" in q["sql"]]
    assert len(bumps) == 1
    assert Organization.objects.get(pk=org.pk).tools_version != version


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_imports_of_one_source_end_in_exactly_one_spec():
    require_service(connection.vendor == "postgresql", "needs PostgreSQL row locking")
    org = make_organization()
    source = SpecSource.objects.create(organization=org, name="petstore")
    spec_a = [draft(f"/a{i}") for i in range(30)]
    spec_b = [draft(f"/b{i}") for i in range(30)]
    errors = []

    def run(spec):
        try:
            sync_source(Organization.objects.get(pk=org.pk), source, spec)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(spec,)) for spec in (spec_a, spec_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    keys = set(generated(source))
    assert keys in ({d.operation_key for d in spec_a}, {d.operation_key for d in spec_b})


@pytest.mark.django_db(transaction=True)
def test_an_import_in_progress_does_not_hold_up_rows_that_refer_to_the_organization():
    """Imports take turns on the organization's row, but an invoke's log row (its
    foreign key checks the organization) must not wait for an import to finish."""
    require_service(connection.vendor == "postgresql", "needs PostgreSQL row locking")
    from unittest import mock

    import importer.sync
    from execution.models import Execution

    org = make_organization()
    action = make_action(org)
    source = SpecSource.objects.create(organization=org, name="petstore")
    locked, release = threading.Event(), threading.Event()
    real = importer.sync._with_free_names

    def held(*args, **kwargs):  # inside the import's transaction, the lock taken
        locked.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    def run():
        try:
            sync_source(Organization.objects.get(pk=org.pk), source, SPEC_V1)
        finally:
            connection.close()

    with mock.patch.object(importer.sync, "_with_free_names", held):
        thread = threading.Thread(target=run)
        thread.start()
        try:
            assert locked.wait(10)
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
            try:
                Execution.objects.create(
                    organization=org, action=action, action_name=action.name,
                    tool_name=action.tool_name, channel="widget",
                )  # fmt: skip
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")
        finally:
            release.set()
            thread.join()
    assert Execution.objects.count() == 1 and len(generated(source)) == 3


def test_the_same_spec_imported_into_many_sources_never_collides(org):
    """Each source's variant of a taken name hashes the source too, and keeps going
    until it is free."""
    for index in range(6):
        source = SpecSource.objects.create(organization=org, name=f"copy-{index}")
        sync_source(org, source, SPEC_V1)
    tool_names = list(Action.objects.filter(organization=org).values_list("tool_name", flat=True))
    assert len(tool_names) == 18
    assert len(set(tool_names)) == 18
