from django.urls import path

from actions.api.contacts import ContactView
from actions.api.staff import ActionViewSet
from actions.api.tools import ToolListView

app_name = "api"

ACTION_LIST = {"get": "list", "post": "create"}
ACTION_DETAIL = {
    "get": "retrieve",
    "put": "update",
    "patch": "partial_update",
    "delete": "destroy",
}

urlpatterns = [
    path("tools", ToolListView.as_view(), name="tools"),
    path("contacts/<str:external_id>", ContactView.as_view(), name="contact"),
    path("actions", ActionViewSet.as_view(ACTION_LIST), name="actions"),
    path("actions/<int:pk>", ActionViewSet.as_view(ACTION_DETAIL), name="action"),
]
