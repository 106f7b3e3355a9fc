from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Chats and routing"

    def ready(self) -> None:
        from routing import receivers, signals  # noqa: F401  (connect the queues-changed and sign-out receivers)
