from django.urls import path, register_converter
from django.urls.converters import StringConverter

from actions.api.contacts import ContactView
from actions.api.staff import ActionViewSet
from actions.api.tools import ToolListView

app_name = "api"


class AnyTextConverter(StringConverter):
    """Any non-empty text: an organization's own IDs may contain "/" (sent as is or as
    %2F) and even line breaks, which `str` and `path` would turn into a 404."""

    regex = r"[\s\S]+"


register_converter(AnyTextConverter, "anytext")

ACTION_LIST = {"get": "list", "post": "create"}
ACTION_DETAIL = {
    "get": "retrieve",
    "put": "update",
    "patch": "partial_update",
    "delete": "destroy",
}

urlpatterns = [
    path("tools", ToolListView.as_view(), name="tools"),
    path("contacts/<anytext:external_id>", ContactView.as_view(), name="contact"),
    path("actions", ActionViewSet.as_view(ACTION_LIST), name="actions"),
    path("actions/<int:pk>", ActionViewSet.as_view(ACTION_DETAIL), name="action"),
]
