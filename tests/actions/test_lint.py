import pytest

from actions.lint import action_warnings, description_warnings, name_warnings
from actions.validators import derive_tool_name

# Names and descriptions as a careful support admin writes them.
GOOD_ACTIONS = [
    (
        "Look up an order",
        "Looks up an order by its number and returns its status, items and delivery "
        "estimate. Use when the customer asks where their order is.",
    ),
    (
        "Cancel subscription",
        "Cancels the customer's subscription at the end of the current billing period. "
        "Use only when the customer clearly asks to cancel.",
    ),
    (
        "Change delivery address",
        "Changes the delivery address of an order that has not shipped yet.",
    ),
    ("Request a refund", "Request a refund for an order."),
    ("Cancel and refund", "Cancel an order and issue a refund."),
    ("Track a parcel", "Track the shipment of a parcel with its tracking number."),
    ("Reset password", "Sends the customer a link to reset their password."),
    ("Book a demo", "Use this to book a product demo with our sales team."),
    ("List open invoices", "Lists the customer's open invoices with amounts and due dates."),
    ("Reserve a table", "Reserve a table for the customer at the requested time."),
    ("Get order status", "Get the status of the order the customer is asking about."),
]


@pytest.mark.parametrize(("name", "description"), GOOD_ACTIONS)
def test_well_named_and_described_action_gets_no_warning(name, description):
    assert action_warnings(name, derive_tool_name(name), description) == []


@pytest.mark.parametrize(
    ("name", "tool_name"),
    [
        ("get_data", "get_data"),
        ("Get data", "get_data"),
        ("  GET DATA ", "get_data"),
        ("API", "api"),
        ("Test action", "test_action"),
        ("Webhook", "webhook"),
        ("Action 1", "action_1"),
        ("Tool2", "tool2"),
        ("Endpoint 12", "endpoint_12"),
        ("New action", "new_action"),
        # A good name does not hide a generic tool name: the AI reads the tool name.
        ("Look up an order", "get_data"),
        ("Fetch data", "lookup_order"),
    ],
)
def test_generic_name_or_tool_name_gets_a_warning_with_an_example(name, tool_name):
    (warning,) = name_warnings(name, tool_name)
    assert f"“{name}” is a generic name" in warning
    assert "say what this one does" in warning
    assert "Cancel subscription" in warning


@pytest.mark.parametrize(
    "name",
    [
        "Get order status",
        "Update delivery address",
        "Send password reset email",
        "Test drive booking",
        "Process refund",
        "Actionable insights report",
        "Data export for GDPR requests",
    ],
)
def test_specific_name_gets_no_warning(name):
    assert name_warnings(name, derive_tool_name(name)) == []


@pytest.mark.parametrize(
    "description",
    [
        "Customer subscription information and billing details.",  # no verb
        "The orders endpoint of the shop API.",  # "orders" after "the" is a noun
        "Use it when they ask about it.",  # no verb from the list, no object
        "Refund, cancel or update.",  # verbs, nothing to act on
        "Lookup",
        "Very important!!!",
        "",
    ],
)
def test_description_without_a_verb_and_an_object_gets_a_warning_with_an_example(description):
    (warning,) = description_warnings(description)
    assert "with a verb and an object" in warning
    assert "Cancels the customer's subscription" in warning


def test_action_warnings_collect_name_and_description_warnings():
    warnings = action_warnings("get_data", "get_data", "Customer subscription information.")
    assert len(warnings) == 2
    assert "generic name" in warnings[0]
    assert "verb and an object" in warnings[1]
