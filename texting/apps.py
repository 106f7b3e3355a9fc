from django.apps import AppConfig


class TextingConfig(AppConfig):
    name = "texting"
    verbose_name = "Texting (SMS)"
