from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "Actions"

    def ready(self) -> None:
        from actions import signals  # noqa: F401  (connects the receivers)
        from actions.api import schema  # noqa: F401  (registers the API-key auth scheme)
