"""PUT/GET /api/v1/contacts/{external_id}: the organization's system pushes its contacts.

    PUT /api/v1/contacts/cus_42
    {"email": "ada@example.com", "attributes": {"plan": "pro"}, "segments": ["premium"]}

Every body field is optional: a field given replaces the stored value (`segments`
replaces the membership, `attributes` the whole object), a field left out stays as
it is. 201 when the contact is new, 200 when it existed; both return the contact.
The organization is the key's; segments are its own, by slug.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from actions.api.parsers import JSONParser
from actions.api.serializers import JSONObjectField
from actions.contacts import upsert_contact
from actions.models import APIScope, Contact
from actions.validators import validate_storable_json


class ContactChangesSerializer(serializers.Serializer):
    """The PUT body. Types are checked here; the rules are the model's (full_clean)."""

    name = serializers.CharField(required=False, allow_blank=True)
    email = serializers.CharField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True)
    attributes = JSONObjectField(
        required=False, help_text="A JSON object; replaces the stored attributes."
    )
    segments = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="Segment slugs; replaces the contact's membership ([] removes it from all).",
    )

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise ValidationError(
                {
                    field: [f"Unknown field. Send any of: {', '.join(self.fields)}."]
                    for field in unknown
                }
            )
        return super().to_internal_value(data)

    def validate_attributes(self, value):
        try:
            validate_storable_json(value)
        except DjangoValidationError as error:
            raise ValidationError(error.messages) from None
        return value


class ContactSerializer(serializers.ModelSerializer):
    attributes = JSONObjectField(help_text="Free-form values (plan, country...).")
    segments = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "external_id",
            "name",
            "email",
            "phone",
            "attributes",
            "segments",
            "created_at",
            "updated_at",
        ]

    def get_segments(self, contact: Contact) -> list[str]:
        return sorted(segment.slug for segment in contact.segments.all())


INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid fields, each with its message; an unknown segment slug is named "
    "and the valid ones listed.",
)
NOT_FOUND = OpenApiResponse(description="No contact with this ID in the key's organization.")


class ContactView(APIView):
    required_scopes = {
        "GET": APIScope.CONTACTS_WRITE.value,
        "PUT": APIScope.CONTACTS_WRITE.value,
    }
    throttle_scope = "default"
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Get a contact",
        responses={200: ContactSerializer, 404: NOT_FOUND},
    )
    def get(self, request, external_id: str):
        if not _storable(external_id):
            raise NotFound(NOT_FOUND.description)
        contact = (
            Contact.objects.for_organization(request.user.organization)
            .filter(external_id=external_id)
            .prefetch_related("segments")
            .first()
        )
        if contact is None:
            raise NotFound(NOT_FOUND.description)
        return Response(ContactSerializer(contact).data)

    @extend_schema(
        summary="Create or update a contact",
        request=ContactChangesSerializer,
        responses={
            200: OpenApiResponse(ContactSerializer, description="Updated."),
            201: OpenApiResponse(ContactSerializer, description="Created."),
            400: INVALID,
        },
    )
    def put(self, request, external_id: str):
        if not _storable(external_id):
            raise ValidationError({"external_id": ["The ID may not contain NUL characters."]})
        changes = ContactChangesSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        try:
            contact, created = upsert_contact(
                request.user.organization, external_id, changes.validated_data
            )
        except DjangoValidationError as error:
            raise ValidationError(serializers.as_serializer_error(error)) from None
        body = ContactSerializer(contact).data
        if not created:
            return Response(body)
        location = reverse("api:contact", args=[contact.external_id])
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


def _storable(text: str) -> bool:
    try:
        validate_storable_json(text)
    except DjangoValidationError:
        return False
    return True
