"""/api/v1/actions[/{id}]: staff and CI scripts manage and filter an organization's actions.

    GET    /api/v1/actions?tags=billing&channel=email&pinned=true   (actions:read)
    POST   /api/v1/actions                                          (actions:write)
    GET    /api/v1/actions/42                                       (actions:read)
    PATCH  /api/v1/actions/42  {"pinned": true}                     (actions:write)
    PUT    /api/v1/actions/42                                       (actions:write)
    DELETE /api/v1/actions/42                                       (actions:write)

The organization is the key's: another organization's action is a 404. Lists are
pinned first, then by name, paginated, and filtered by actions.filters.ActionFilterSet
(the dashboard's filters too). Writes follow the dashboard's rules (see
actions.authoring) and are atomic.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.pagination import PageNumberPagination

from actions.api.parsers import JSONParser
from actions.api.schema import ERROR_SCHEMA
from actions.api.serializers import ActionSerializer
from actions.filters import ActionFilterSet
from actions.models import Action, APIScope

READ, WRITE = APIScope.ACTIONS_READ.value, APIScope.ACTIONS_WRITE.value
INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT, description="Invalid fields, each with the dashboard's message."
)
INVALID_FILTER = OpenApiResponse(
    OpenApiTypes.OBJECT, description="An invalid filter value (the message lists the valid ones)."
)
NOT_FOUND = OpenApiResponse(description="No action with this id in the key's organization.")
CONFLICT = OpenApiResponse(
    ERROR_SCHEMA,
    description="A concurrent request took the name, tool name or tag; nothing was saved.",
)


class ActionPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(
    list=extend_schema(
        summary="List actions",
        description="Pinned actions first, then by name; filters combine with AND.",
        responses={
            200: ActionSerializer(many=True),
            400: INVALID_FILTER,
            404: OpenApiResponse(description="No such page."),
        },
    ),
    create=extend_schema(
        summary="Create an action",
        responses={201: ActionSerializer, 400: INVALID, 409: CONFLICT},
    ),
    retrieve=extend_schema(
        summary="Get an action", responses={200: ActionSerializer, 404: NOT_FOUND}
    ),
    update=extend_schema(
        summary="Replace an action",
        responses={200: ActionSerializer, 400: INVALID, 404: NOT_FOUND, 409: CONFLICT},
    ),
    partial_update=extend_schema(
        summary="Change some fields of an action",
        responses={200: ActionSerializer, 400: INVALID, 404: NOT_FOUND, 409: CONFLICT},
    ),
    destroy=extend_schema(
        summary="Delete an action",
        responses={204: OpenApiResponse(description="Deleted."), 404: NOT_FOUND},
    ),
)
class ActionViewSet(viewsets.ModelViewSet):
    queryset = Action.objects.none()  # the model, for the schema; see get_queryset
    serializer_class = ActionSerializer
    filterset_class = ActionFilterSet
    pagination_class = ActionPagination
    parser_classes = [JSONParser]
    required_scopes = {
        "GET": READ,
        "HEAD": READ,
        "POST": WRITE,
        "PUT": WRITE,
        "PATCH": WRITE,
        "DELETE": WRITE,
    }
    throttle_scope = "staff"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, without a key
            return Action.objects.none()
        return (
            Action.objects.for_organization(self.request.user.organization)
            .select_related("source")
            .prefetch_related("tags", "segments", "headers", "parameters")
            .order_by("-pinned", "name")
        )
