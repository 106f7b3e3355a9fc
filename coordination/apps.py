from django.apps import AppConfig


class CoordinationConfig(AppConfig):
    """Coordinators' pages: the live board, hours, the rota, coverage, statistics (no models of its own)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "coordination"
