"""Create a demo organization with a support admin, segments and realistic actions.

Idempotent: running it again updates the same rows and resets the admin's password
to the one it prints, so a new user always has working credentials.
"""

import os
import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from actions.models import (
    Action,
    ActionHeader,
    ActionParameter,
    Contact,
    Organization,
    Segment,
    Tag,
    User,
    ValueKind,
)

SEGMENTS = [
    ("Premium customers", "premium", "Customers on a paid plan."),
    ("Beta testers", "beta", "Customers who opted in to early features."),
]

ACTIONS = [
    {
        "name": "Look up an order",
        "description": "Looks up an order by its number and returns its status, items and "
        "delivery estimate. Use when the customer asks where their order is.",
        "method": "GET",
        "endpoint": "https://api.demo-shop.example/v1/orders/{order_id}",
        "tags": ["orders"],
        "pinned": True,
        "parameters": [
            ("path", "order_id", ValueKind.AI, "", "The order number, e.g. A-1042"),
        ],
        "headers": [
            ("Authorization", ValueKind.STATIC, "Bearer {{global.SHOP_API_KEY}}"),
            ("X-Customer-Email", ValueKind.MAGIC, "contact.email"),
        ],
    },
    {
        "name": "Cancel subscription",
        "description": "Cancels the customer's subscription at the end of the current billing "
        "period. Use only when the customer clearly asks to cancel.",
        "method": "POST",
        "endpoint": "https://api.demo-shop.example/v1/subscriptions/{subscription_id}/cancel",
        "tags": ["billing"],
        "segments": ["premium"],
        "requires_form": True,
        "body_schema": {
            "type": "object",
            "properties": {
                "reason": {
                    "type": "string",
                    "enum": ["too_expensive", "missing_features", "other"],
                    "description": "Why the customer is cancelling.",
                },
                "feedback": {"type": "string", "description": "The customer's own words."},
            },
            "required": ["reason"],
        },
        "parameters": [
            ("path", "subscription_id", ValueKind.MAGIC, "contact.attributes.subscription_id", ""),
        ],
        "headers": [("Authorization", ValueKind.STATIC, "Bearer {{global.SHOP_API_KEY}}")],
    },
    {
        "name": "Change delivery address",
        "description": "Changes the delivery address of an order that has not shipped yet. "
        "Use when the customer wants their parcel sent somewhere else.",
        "method": "PATCH",
        "endpoint": "https://api.demo-shop.example/v1/orders/{order_id}/address",
        "tags": ["orders"],
        "body_schema": {
            "type": "object",
            "properties": {
                "line1": {"type": "string"},
                "line2": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "city": {"type": "string"},
                "postal_code": {"type": "string"},
                "country": {"type": "string", "description": "ISO 3166-1 alpha-2 code"},
            },
            "required": ["line1", "city", "postal_code", "country"],
        },
        "parameters": [("path", "order_id", ValueKind.AI, "", "The order number")],
        "headers": [("Authorization", ValueKind.STATIC, "Bearer {{global.SHOP_API_KEY}}")],
    },
    {
        "name": "Search help articles",
        "description": "Searches the help center for articles that answer a question. Use "
        "before escalating, to point the customer to a guide.",
        "method": "GET",
        "endpoint": "https://help.demo-shop.example/api/articles",
        "tags": ["help"],
        "channels": ["widget", "email", "whatsapp"],
        "parameters": [
            ("query", "q", ValueKind.AI, "", "Keywords from the customer's question"),
            ("query", "locale", ValueKind.STATIC, "en", ""),
        ],
    },
    {
        "name": "Book a repair appointment",
        "description": "Books a repair appointment for a device at the nearest service point. "
        "Use when a premium customer reports a broken device.",
        "method": "POST",
        "endpoint": "https://api.demo-shop.example/v1/repairs",
        "tags": ["repairs"],
        "segments": ["premium", "beta"],
        "body_schema": {
            "type": "object",
            "properties": {
                "device_serial": {"type": "string"},
                "issue": {"type": "string"},
                "preferred_date": {"type": "string", "format": "date"},
            },
            "required": ["device_serial", "issue"],
        },
        "headers": [
            ("Authorization", ValueKind.STATIC, "Bearer {{global.SHOP_API_KEY}}"),
            ("X-Ticket", ValueKind.MAGIC, "conversation.ticket_number"),
        ],
    },
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization, its support admin and sample actions."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo-admin")
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_PASSWORD", ""),
            help="Defaults to $DEMO_PASSWORD, else a new random password.",
        )

    @transaction.atomic
    def handle(self, *args, username: str, password: str, **options):
        org, _ = Organization.objects.update_or_create(slug="demo", defaults={"name": "Demo Shop"})
        password = password or secrets.token_urlsafe(12)
        user, _ = User.objects.update_or_create(
            username=username,
            defaults={
                "organization": org,
                "is_staff": True,
                "is_active": True,
                "email": "admin@demo-shop.example",
            },
        )
        user.set_password(password)
        user.save()

        segments = {}
        for name, slug, description in SEGMENTS:
            segments[slug], _ = Segment.objects.update_or_create(
                organization=org, slug=slug, defaults={"name": name, "description": description}
            )
        contact, _ = Contact.objects.update_or_create(
            organization=org,
            external_id="cus_1001",
            defaults={
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "attributes": {"plan": "pro", "subscription_id": "sub_42"},
            },
        )
        contact.segments.set([segments["premium"]])

        for spec in ACTIONS:
            self._upsert_action(org, segments, spec)

        self.stdout.write(
            self.style.SUCCESS("Demo organization “Demo Shop” (slug: demo) is ready.")
        )
        self.stdout.write(f"  Sign in as: {username}")
        self.stdout.write(f"  Password:   {password}")

    def _upsert_action(self, org, segments, spec) -> None:
        action = Action.objects.filter(organization=org, name=spec["name"]).first() or Action(
            organization=org, name=spec["name"]
        )
        action.description = spec["description"]
        action.method = spec["method"]
        action.endpoint = spec["endpoint"]
        action.body_schema = spec.get("body_schema")
        action.pinned = spec.get("pinned", False)
        action.requires_form = spec.get("requires_form", False)
        action.channels = spec.get("channels", ["widget"])
        action.full_clean()
        action.save()
        action.tags.set(
            [Tag.objects.get_or_create(organization=org, name=name)[0] for name in spec["tags"]]
        )
        action.segments.set([segments[slug] for slug in spec.get("segments", [])])
        action.headers.all().delete()
        for key, kind, value in spec.get("headers", []):
            header = ActionHeader(action=action, key=key, kind=kind, value=value)
            header.full_clean()
            header.save()
        action.parameters.all().delete()
        for location, key, kind, value, description in spec.get("parameters", []):
            parameter = ActionParameter(
                action=action,
                location=location,
                key=key,
                kind=kind,
                value=value,
                description=description,
            )
            parameter.full_clean()
            parameter.save()
