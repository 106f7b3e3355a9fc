"""python manage.py demo_banner [--port 8000]: where to click and whom to sign in as, for the demo."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from consortium.models import Consortium
from libraries.models import StaffProfile

DEMO_SLUG = "sunshine"
DEMO_PASSWORD = "demo-password-1"  # as in deploy/demo-consortium.yaml


class Command(BaseCommand):
    help = "Print how to open the demo consortium and a few accounts to sign in with."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        base = f"http://127.0.0.1:{options['port']}"
        consortium = Consortium.objects.filter(slug=DEMO_SLUG).first()
        if consortium is None:
            self.stdout.write(f'The demo consortium "{DEMO_SLUG}" is not loaded yet: run\n'
                              "  python manage.py import_consortium deploy/demo-consortium.yaml")
            return
        out = [
            "",
            f"  {consortium.name} is running.",
            "",
            f"  Patrons ask a question:    {base}/ask/{consortium.slug}/",
            f"  Librarians answer:         {base}/staff/",
            f"  Coordinators manage:       {base}/admin/",
            "",
        ]
        if settings.SMS_SIMULATOR:
            out[-1:-1] = [f"  A patron texts (simulator): {base}/sms/simulator/"]
        accounts = self.sign_ins(consortium)
        if accounts:
            out.append(f'  Sign in as (password "{DEMO_PASSWORD}"):')
            width = max(len(p.user.username) for p in accounts)
            for p in accounts:
                role = p.get_role_display().lower().replace("_", " ")
                notes = [p.library.name]
                if "es" in (p.languages or []):
                    notes.append("habla español")
                if p.library.timezone != consortium.timezone:
                    notes.append(p.library.timezone)
                out.append(f"    {p.user.username:<{width}}  {role}, {', '.join(notes)}")
            out.append("")
        out.append("  Tip: two browsers (or a private window) let you be a patron and a librarian at once.")
        out.append("")
        self.stdout.write("\n".join(out))

    def sign_ins(self, consortium: Consortium) -> list[StaffProfile]:
        """The coordinators, a library admin and a few librarians whose password is the demo one."""
        profiles = list(StaffProfile.objects.filter(library__consortium=consortium, is_active=True,
                                                    user__is_active=True)
                        .select_related("user", "library__local_queue")
                        .order_by("library__slug", "user__username"))
        picked: list[StaffProfile] = [p for p in profiles if p.role == StaffProfile.Role.COORDINATOR][:2]
        picked += [p for p in profiles if p.role == StaffProfile.Role.LIBRARY_ADMIN][:1]
        # Librarians of libraries open around the clock first (the demo works at any hour), then
        # of another time zone; one who speaks Spanish; each of a different library, for hand-offs.
        librarians = sorted((p for p in profiles if p.role == StaffProfile.Role.LIBRARIAN),
                            key=lambda p: (not _always_open(p), p.library.timezone == consortium.timezone))
        spanish = [p for p in librarians if "es" in (p.languages or [])][:1]
        seen = {p.library_id for p in spanish}
        others = []
        for p in librarians:
            if p.library_id not in seen:
                seen.add(p.library_id)
                others.append(p)
        picked += spanish + others[:3]
        # Only list accounts the demo password really opens (someone may have changed theirs).
        # Demo accounts share one hash, so this checks the password about once, not per account.
        good: set[str] = set()
        shown = []
        for p in picked:
            if p.user.password in good or p.user.check_password(DEMO_PASSWORD):
                good.add(p.user.password)
                shown.append(p)
        return shown


def _always_open(profile: StaffProfile) -> bool:
    queue = getattr(profile.library, "local_queue", None)
    return bool(queue and queue.always_open)
