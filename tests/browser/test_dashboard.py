"""The dashboard in a real browser: what a support admin does on day one."""

import re

import pytest
from playwright.sync_api import expect

from actions.models import Action

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_support_admin_authors_an_action_with_a_magic_header(signed_in_page, live_server):
    page = signed_in_page
    page.locator("#content-main").get_by_role("link", name="Actions", exact=True).last.click()
    page.get_by_role("link", name=re.compile("Add action", re.I)).click()

    page.fill("#id_name", "Look")  # 4 characters: refused
    page.fill(
        "#id_description",
        "Looks up an order by its number and returns its status and delivery date.",
    )
    page.select_option("#id_method", "GET")
    page.fill("#id_endpoint", "https://api.shop.example/v1/orders/{order_id}")

    page.get_by_text("Add another Header").click()
    row = page.locator("#headers-group tr.form-row.dynamic-headers").first
    row.locator("input[name$='-key']").fill("X-Customer-Email")
    wand = row.get_by_role("button", name="Use a magic field")
    wand.click()
    expect(row.get_by_role("button", name="Use a static value")).to_have_attribute(
        "aria-pressed", "true"
    )
    row.locator("select[name$='-magic_field']").select_option("contact.email")

    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-name .errorlist")).to_contain_text(
        "must be at least 5 characters; it has 4"
    )
    assert not Action.objects.exists()
    # The magic header survived the round trip, still switched on.
    row = page.locator("#headers-group tr.form-row").first
    expect(row.locator("select[name$='-magic_field']")).to_have_value("contact.email")

    page.fill("#id_name", "Look up an order")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).to_contain_text("Look up an order")
    action = Action.objects.get()
    header = action.headers.get()
    assert (header.key, header.kind, header.value) == ("X-Customer-Email", "magic", "contact.email")
    assert action.channels == ["widget"]
    # The endpoint's {order_id} is left to the AI: no row was needed for it.
    assert action.path_placeholders() == ["order_id"]
