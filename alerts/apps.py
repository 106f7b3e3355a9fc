from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alerts to coordinators: conditions that need someone, mailed (throttled) and shown on the live board."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "alerts"
