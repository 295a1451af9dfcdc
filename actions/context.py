"""The conversation-context catalogue that magic fields draw from.

A magic field is a header or parameter value that the runtime fills from the
conversation (who the contact is, which conversation, which channel) instead of the
AI. The AI never sees these values, and so can never forge them.
"""

from django.core.exceptions import ValidationError

ATTRIBUTE_PREFIX = "contact.attributes."

# path -> what a support admin sees in the dashboard's picker
MAGIC_FIELDS: dict[str, str] = {
    "contact.external_id": "Contact: ID in your system",
    "contact.email": "Contact: email",
    "contact.name": "Contact: name",
    "contact.phone": "Contact: phone",
    ATTRIBUTE_PREFIX: "Contact: attribute…",
    "conversation.id": "Conversation: ID",
    "conversation.ticket_number": "Conversation: ticket number",
    "session.id": "Session: ID",
    "channel": "Channel the conversation is on",
    "organization.id": "Organization: ID",
}

_ATTRIBUTE_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def validate_magic_field(path: str) -> None:
    """Refuse a magic-field path that is not in the catalogue.

    >>> validate_magic_field("contact.email")
    >>> validate_magic_field("contact.attributes.plan")
    >>> validate_magic_field("contact.password")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    django.core.exceptions.ValidationError: ...
    """
    if path in MAGIC_FIELDS and path != ATTRIBUTE_PREFIX:
        return
    if path.startswith(ATTRIBUTE_PREFIX):
        key = path.removeprefix(ATTRIBUTE_PREFIX)
        if key and len(key) <= 100 and set(key) <= _ATTRIBUTE_KEY_CHARS:
            return
        raise ValidationError(
            "A contact attribute needs a key of letters, digits, '_' or '-' "
            "(for example contact.attributes.plan).",
            code="invalid_attribute_key",
        )
    raise ValidationError(
        "“%(path)s” is not a context value. Pick one of: %(known)s.",
        code="unknown_magic_field",
        params={
            "path": path,
            "known": ", ".join(p if p != ATTRIBUTE_PREFIX else p + "<key>" for p in MAGIC_FIELDS),
        },
    )
