"""Delete a chat at a patron's request when they no longer have its token (docs/privacy.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from routing import privacy
from routing.services.common import ServiceError


class Command(BaseCommand):
    help = "Delete a chat's messages, files and personal data, keeping an anonymous row for statistics."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("chat_id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            privacy.chat_forget(options["chat_id"], timezone.now())
        except ServiceError as e:
            raise CommandError(e.detail) from e
        self.stdout.write(f"chat {options['chat_id']} deleted; an anonymous row remains for the statistics")
