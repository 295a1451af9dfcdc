"""Small factories for tests: each makes one valid row and takes overrides by keyword.

    org = make_organization()
    action = make_action(organization=org, method="POST", body_schema={...})
    admin = make_user(organization=org)       # a support admin of org
    root = make_superuser()

Every call makes new, unique names, so tests never collide. The factories save
without full_clean(), so a test can store an invalid row on purpose; their defaults
pass full_clean().
"""

from itertools import count

from actions.models import Action, Contact, Organization, Segment, Tag, User

_sequence = count(1)


def _next() -> int:
    return next(_sequence)


def make_organization(**fields) -> Organization:
    n = _next()
    fields = {"name": f"Acme {n}", "slug": f"acme-{n}", **fields}
    return Organization.objects.create(**fields)


def make_segment(organization: Organization | None = None, **fields) -> Segment:
    n = _next()
    fields = {
        "name": f"Premium customers {n}",
        "slug": f"premium-{n}",
        "description": "Customers on a paid plan.",
        **fields,
    }
    return Segment.objects.create(organization=organization or make_organization(), **fields)


def make_tag(organization: Organization | None = None, **fields) -> Tag:
    fields = {"name": f"billing-{_next()}", **fields}
    return Tag.objects.create(organization=organization or make_organization(), **fields)


def make_contact(
    organization: Organization | None = None, *, segments: tuple[Segment, ...] = (), **fields
) -> Contact:
    n = _next()
    fields = {
        "external_id": f"cus_{n}",
        "name": f"Ada Lovelace {n}",
        "email": f"ada{n}@example.com",
        "attributes": {"plan": "pro"},
        **fields,
    }
    contact = Contact.objects.create(organization=organization or make_organization(), **fields)
    contact.segments.set(segments)
    return contact


def make_action(
    organization: Organization | None = None,
    *,
    segments: tuple[Segment, ...] = (),
    tags: tuple[Tag, ...] = (),
    **fields,
) -> Action:
    """A GET that looks up an order; its tool name is derived from the name on save."""
    fields = {
        "name": f"Look up order {_next()}",
        "description": "Looks up an order by its number and returns its status and "
        "delivery estimate. Use when the customer asks where their order is.",
        "method": Action.Method.GET,
        "endpoint": "https://api.example.com/v1/orders/{order_id}",
        **fields,
    }
    action = Action.objects.create(organization=organization or make_organization(), **fields)
    action.segments.set(segments)
    action.tags.set(tags)
    return action


def make_user(
    organization: Organization | None = None, *, password: str | None = None, **fields
) -> User:
    """A support admin: an active staff user of `organization` (a new one by default).

    Without a password the user cannot log in with one; use client.force_login(user),
    or pass password="..." for client.login().
    """
    n = _next()
    fields = {
        "username": f"support{n}",
        "email": f"support{n}@example.com",
        "is_staff": True,
        **fields,
    }
    user = User(organization=organization or make_organization(), **fields)
    _set_password(user, password)
    user.save()
    return user


def make_superuser(*, password: str | None = None, **fields) -> User:
    """A superuser: staff, no organization, sees every organization's objects."""
    n = _next()
    fields = {
        "username": f"root{n}",
        "email": f"root{n}@example.com",
        "is_staff": True,
        "is_superuser": True,
        **fields,
    }
    user = User(**fields)
    _set_password(user, password)
    user.save()
    return user


def _set_password(user: User, password: str | None) -> None:
    if password is None:
        user.set_unusable_password()  # hashing a password is slow; most tests never log in
    else:
        user.set_password(password)
