import pytest
from django.core.exceptions import ValidationError

from actions.context import ATTRIBUTE_PREFIX, MAGIC_FIELDS, validate_magic_field


def refusal(path: str) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        validate_magic_field(path)
    (message,) = info.value.messages
    return info.value.code, message


def test_catalogue_is_the_one_the_design_promises():
    # Adding a path here exposes a new conversation value to every organization's
    # endpoints: it must be a deliberate change to DESIGN.md too.
    assert set(MAGIC_FIELDS) == {
        "contact.external_id",
        "contact.email",
        "contact.name",
        "contact.phone",
        "contact.attributes.",
        "conversation.id",
        "conversation.ticket_number",
        "session.id",
        "channel",
        "organization.id",
    }
    assert all(label.strip() for label in MAGIC_FIELDS.values())


@pytest.mark.parametrize("path", [p for p in MAGIC_FIELDS if p != ATTRIBUTE_PREFIX])
def test_every_catalogue_path_is_accepted(path):
    validate_magic_field(path)


@pytest.mark.parametrize("key", ["plan", "subscription_id", "Plan-Tier_2", "x", "0", "k" * 100])
def test_contact_attribute_with_a_simple_key_is_accepted(key):
    validate_magic_field(f"contact.attributes.{key}")


@pytest.mark.parametrize(
    "key", ["", "address.city", "plan tier", "plän", "k" * 101, "plan\n", "$where", "a/b"]
)
def test_contact_attribute_with_an_empty_or_odd_key_is_refused_with_an_example(key):
    code, message = refusal(f"contact.attributes.{key}")
    assert code == "invalid_attribute_key"
    assert "letters, digits, '_' or '-'" in message
    assert "contact.attributes.plan" in message


@pytest.mark.parametrize(
    "path",
    [
        "contact.password",
        "",
        "Contact.Email",
        "contact.email ",
        " channel",
        "contact",
        "contact.attributes",
        "organization.api_key",
        "global.STRIPE_KEY",
    ],
)
def test_unknown_path_is_refused_and_the_catalogue_listed(path):
    code, message = refusal(path)
    assert code == "unknown_magic_field"
    assert f"“{path}” is not a context value" in message
    assert "Pick one of:" in message
    assert "contact.email" in message
    assert "contact.attributes.<key>" in message
    assert "organization.id" in message
