from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "Actions"

    def ready(self) -> None:
        from actions import checks, signals  # noqa: F401  (registers checks, connects receivers)
        from actions.api import schema  # noqa: F401  (registers the API-key auth scheme)
