"""Delete what is kept about a phone number at its owner's request (docs/sms.md, docs/privacy.md)."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from texting.numbers import masked
from texting.privacy import phone_forget


class Command(BaseCommand):
    help = "Delete every chat from a phone number (an anonymous row stays for statistics), its texts and the number."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("phone", help="in E.164, as texts come: +13055550123")

    def handle(self, *args: Any, **options: Any) -> None:
        phone = options["phone"].strip()
        if not re.fullmatch(r"\+[1-9]\d{6,14}", phone):
            raise CommandError(f'"{phone}" is not a number in E.164 form, like +13055550123')
        count = phone_forget(phone, timezone.now())
        self.stdout.write(f"{masked(phone)}: {count} chat(s) deleted, and the number with its texts")
