from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    name = "consortium"
    verbose_name = "Consortium"

    def ready(self) -> None:
        from consortium import timestamps

        timestamps.install()
