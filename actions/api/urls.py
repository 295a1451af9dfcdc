from django.urls import path

from actions.api.tools import ToolListView

app_name = "api"

urlpatterns = [
    path("tools", ToolListView.as_view(), name="tools"),
]
