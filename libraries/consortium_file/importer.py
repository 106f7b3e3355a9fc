"""Import a consortium file: check what needs the database, then write it all in one transaction."""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.db import models, transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from consortium.models import AlertSettings, Consortium
from libraries.consortium_file.schema import WEEKDAYS, Doc, InvalidConsortiumFile, Problem
from libraries.consortium_file.validate import normalize
from libraries.hours import parse_interval
from libraries.models import Closure, Library, LibraryPartner, Queue, SpecialHours, StaffProfile, WeeklyInterval


@dataclass
class Tally:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # active in the database, not in the file
    deactivated: list[str] = field(default_factory=list)  # missing and pruned

    def count(self, name: str, created: bool, changed: bool) -> None:
        (self.created if created else self.updated if changed else self.unchanged).append(name)


@dataclass
class ImportReport:
    consortium: str
    consortium_status: str = "unchanged"  # created | updated | unchanged
    queues: Tally = field(default_factory=Tally)
    libraries: Tally = field(default_factory=Tally)
    staff: Tally = field(default_factory=Tally)
    # username -> "/accounts/reset/<uidb64>/<token>/" for accounts that have no password yet
    set_password_paths: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    pruned: bool = False

    @property
    def changed(self) -> bool:
        return self.consortium_status != "unchanged" or any(
            t.created or t.updated or t.deactivated for t in (self.queues, self.libraries, self.staff)
        )

    def lines(self, base_url: str = "http://127.0.0.1:8000") -> list[str]:
        """The human report, as import_consortium prints it."""
        head = "Dry run, nothing written. " if self.dry_run else ""
        out = [f"{head}Consortium {self.consortium}: {self.consortium_status}."]
        kinds = (("shared queues", self.queues), ("libraries", self.libraries), ("staff", self.staff))
        for label, tally in kinds:
            out.append(f"  {label}: {len(tally.created)} created, {len(tally.updated)} updated, "
                       f"{len(tally.unchanged)} unchanged")
            for verb, names in (("created", tally.created), ("updated", tally.updated)):
                out.extend(_listing(f"{verb}:", names))
            if tally.deactivated:
                out.extend(_listing("deactivated (not in the file; --prune):", tally.deactivated))
            elif tally.missing:
                out.extend(_listing("not in the file, left as they are (--prune deactivates them):",
                                    tally.missing))
        if not self.changed:
            out.append("Nothing changed.")
        out.extend(self.link_lines(base_url))
        return out

    def link_lines(self, base_url: str = "http://127.0.0.1:8000") -> list[str]:
        if not self.set_password_paths:
            return []
        days = _reset_days()
        out = [f"Set-password links (each works once, for {days} day{'s' if days != 1 else ''}):"]
        base = base_url.rstrip("/")
        out.extend(f"  {username}: {base}{p}" for username, p in sorted(self.set_password_paths.items()))
        return out


def _listing(label: str, names: list[str]) -> list[str]:
    if not names:
        return []
    return textwrap.wrap(f"{label} {', '.join(sorted(names))}", width=100,
                         initial_indent="    ", subsequent_indent="      ", break_on_hyphens=False)


def _reset_days() -> int:
    from django.conf import settings

    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 86400)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that it rolls back."""


def apply(data: Any, *, prune: bool, dry_run: bool = False) -> ImportReport:
    """Import a parsed consortium file: all of it in one transaction, or nothing.

    Raises InvalidConsortiumFile, with every problem, when the file or the database says no.
    """
    doc = normalize(data)
    report = ImportReport(consortium=doc["consortium"]["slug"], dry_run=dry_run, pruned=prune)
    try:
        with transaction.atomic():
            problems = _database_problems(doc, data)
            if problems:
                raise InvalidConsortiumFile(problems)
            _Importer(doc, report, prune=prune).run()
            if dry_run:
                raise _DryRun
    except _DryRun:
        # The new accounts rolled back with everything else: a link to them would lead nowhere.
        report.set_password_paths = {}
    return report


def _database_problems(doc: Doc, data: dict[str, Any]) -> list[Problem]:
    """What only the database can tell: names taken by rows outside the file."""
    problems: list[Problem] = []
    slug = doc["consortium"]["slug"]
    # Paths point into the file as written (the canonical form has sorted its lists).
    file_index = {s["username"]: i for i, s in enumerate(data.get("staff") or [])}
    library_index = {lib["slug"]: i for i, lib in enumerate(data.get("libraries") or [])}
    users = User.objects.filter(username__in=list(file_index)).select_related("staff__library__consortium")
    for user in users:
        path = f"staff[{file_index[user.username]}].username"
        profile = getattr(user, "staff", None)
        if profile is None:
            problems.append(Problem(path, f'"{user.username}" is an existing account that is not staff '
                                          "of any library; choose another username"))
        elif profile.library.consortium.slug != slug:
            problems.append(Problem(path, f'"{user.username}" belongs to the staff of another consortium '
                                          f'("{profile.library.consortium.slug}")'))
    queues = {q.slug: q for q in Queue.objects.filter(consortium__slug=slug).select_related("library")}
    for i, q in enumerate(doc["queues"]):
        existing = queues.get(q["slug"])
        if existing and existing.kind != Queue.Kind.SHARED:
            problems.append(Problem(f"queues[{i}].slug", f'"{q["slug"]}" is the local queue of a library '
                                                          "already in this consortium; pick another slug"))
    for lib in doc["libraries"]:
        existing = queues.get(lib["slug"])
        foreign = existing and (existing.kind != Queue.Kind.LOCAL
                                or (existing.library and existing.library.slug != lib["slug"]))
        if foreign:
            path = f"libraries[{library_index[lib['slug']]}].slug"
            problems.append(Problem(path, f'"{lib["slug"]}" is already the slug of another queue of this '
                                          "consortium, not in the file; pick another slug"))
    problems.extend(_number_problems(doc, library_index))
    return problems


def _number_problems(doc: Doc, library_index: dict[str, int]) -> list[Problem]:
    """A texting number belongs to one consortium: refuse one that another consortium has."""
    slug = doc["consortium"]["slug"]
    wanted = {lib["sms_number"]: f"libraries[{library_index[lib['slug']]}].sms_number"
              for lib in doc["libraries"] if lib.get("sms_number")}
    if doc["consortium"].get("sms_number"):
        wanted[doc["consortium"]["sms_number"]] = "consortium.sms_number"
    problems = []
    for number, owner in Consortium.objects.filter(sms_number__in=list(wanted)).exclude(slug=slug).values_list(
            "sms_number", "slug"):
        problems.append(Problem(wanted[number], f'"{number}" is the number of another consortium ("{owner}")'))
    foreign = (Library.objects.filter(sms_number__in=list(wanted)).exclude(consortium__slug=slug)
               .values_list("sms_number", "consortium__slug"))
    for number, owner in foreign:
        problems.append(Problem(wanted[number], f'"{number}" is the number of a library of another consortium '
                                                f'("{owner}")'))
    return problems


def _save(obj: models.Model, values: dict[str, Any]) -> tuple[bool, bool]:
    """Set values on obj and save only what differs. Returns (created, changed)."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if obj.pk is None:
        obj.save()
        return True, True
    if changed:
        obj.save(update_fields=changed)
    return False, bool(changed)


class _Importer:
    def __init__(self, doc: Doc, report: ImportReport, *, prune: bool) -> None:
        self.doc = doc
        self.report = report
        self.prune = prune
        # Demo and test files give many accounts the same clear-text password; hashing each one
        # costs a deliberate ~0.3 s. One hash per distinct password keeps `dev.py demo` quick.
        # Sharing the salt among accounts the file already gives one password reveals nothing new.
        self._hashes: dict[str, str] = {}

    def run(self) -> None:
        self.consortium = self.save_consortium(self.doc["consortium"])
        existing = {q.slug: q for q in self.consortium.queues.all()}
        self.shared = {
            q["slug"]: self.save_shared_queue(q, position, existing.get(q["slug"]))
            for position, q in enumerate(self.doc["queues"])
        }
        libraries = {lib.slug: lib for lib in self.consortium.libraries.all()}
        self.libraries: dict[str, Library] = {}
        changed: dict[str, bool] = {}
        created: set[str] = set()
        for lib in self.doc["libraries"]:
            row, is_new, changed[lib["slug"]] = self.save_library(lib, libraries.get(lib["slug"]))
            self.libraries[lib["slug"]] = row
            if is_new:
                created.add(lib["slug"])
        # Partners second: a partner may come later in the file than the library naming it.
        for lib in self.doc["libraries"]:
            changed[lib["slug"]] |= self.save_partners(self.libraries[lib["slug"]], lib["partners"])
            self.report.libraries.count(lib["slug"], lib["slug"] in created, changed[lib["slug"]])
        self.save_all_staff()
        self.missing()

    # -- consortium and queues ---------------------------------------------------------------

    def save_consortium(self, c: Doc) -> Consortium:
        row = Consortium.objects.filter(slug=c["slug"]).first() or Consortium(slug=c["slug"])
        values = {"name": c["name"], "timezone": c["timezone"], "allowed_origins": c["allowed_origins"],
                  "accent_color": c["colors"]["accent"], "accent_text_color": c["colors"]["accent_text"],
                  "sms_number": c.get("sms_number"), "sms_help": c.get("sms_help", ""),
                  "is_active": True, **c["settings"]}
        if row.pk is not None:
            self.free_numbers(row, c)
        created, changed = _save(row, values)
        changed |= self.save_alert_settings(row, c.get("alerts"))
        self.report.consortium_status = "created" if created else "updated" if changed else "unchanged"
        return row

    def save_alert_settings(self, row: Consortium, alerts: Doc | None) -> bool:
        """The file's `alerts`, or the defaults (no row) when it has none. Returns changed."""
        current = AlertSettings.objects.filter(consortium=row).first()
        if alerts is None:
            if current is None:
                return False
            current.delete()
            return True
        return _save(current or AlertSettings(consortium=row), alerts)[1]

    def free_numbers(self, row: Consortium, c: Doc) -> None:
        """Numbers are unique columns: a number moving between this consortium and its libraries, or
        from one library to another, is first taken from whoever has it and no longer should."""
        by_slug = {lib["slug"]: lib.get("sms_number") for lib in self.doc["libraries"]}
        for lib in Library.objects.filter(consortium=row).exclude(sms_number=None):
            if by_slug.get(lib.slug) != lib.sms_number:
                Library.objects.filter(pk=lib.pk).update(sms_number=None)
        if row.sms_number and row.sms_number != c.get("sms_number"):
            Consortium.objects.filter(pk=row.pk).update(sms_number=None)
            row.sms_number = None

    def save_shared_queue(self, q: Doc, position: int, row: Queue | None) -> Queue:
        row = row or Queue(consortium=self.consortium, slug=q["slug"], kind=Queue.Kind.SHARED)
        values = {"name": q["name"], "mode": q["mode"], "timezone": q["timezone"],
                  "languages": q["languages"], "position": position, "always_open": q["hours"] == "always",
                  "is_active": True}
        created, changed = _save(row, values)
        changed |= self.save_hours(row, q)
        self.report.queues.count(q["slug"], created, changed)
        return row

    def save_hours(self, queue: Queue, doc: Doc) -> bool:
        """Make the queue's weekly hours, closures and special hours those of doc. Returns changed."""
        changed = False
        week: dict[str, list[str]] = {} if doc["hours"] == "always" else doc["hours"]
        want = {(WEEKDAYS.index(day), *parse_interval(text)) for day, texts in week.items() for text in texts}
        have = {(w.weekday, w.start_minute, w.end_minute): w.pk for w in queue.weekly.all()}
        if set(have) != want:
            WeeklyInterval.objects.filter(pk__in=[pk for key, pk in have.items() if key not in want]).delete()
            WeeklyInterval.objects.bulk_create(
                WeeklyInterval(queue=queue, weekday=d, start_minute=s, end_minute=e)
                for d, s, e in sorted(want - set(have))
            )
            changed = True

        want_closures = [(c.get("date") or c["from"], c.get("date") or c["to"], c.get("reason", ""))
                         for c in doc.get("closures", [])]
        have_closures: dict[tuple[dt.date, dt.date, str], list[int]] = {}
        for c in queue.closures.all():
            have_closures.setdefault((c.start_date, c.end_date, c.reason), []).append(c.pk)
        if sorted(k for k, pks in have_closures.items() for _ in pks) != sorted(want_closures):
            queue.closures.all().delete()
            Closure.objects.bulk_create(Closure(queue=queue, start_date=s, end_date=e, reason=r)
                                        for s, e, r in want_closures)
            changed = True

        want_special = {s["date"]: s for s in doc.get("special_hours", [])}
        for row in queue.special_hours.all():
            wanted = want_special.pop(row.date, None)
            if wanted is None:
                row.delete()
                changed = True
            else:
                values = {"intervals": _minutes(wanted["hours"]), "reason": wanted.get("reason", "")}
                _, row_changed = _save(row, values)
                changed |= row_changed
        for day, s in want_special.items():
            SpecialHours.objects.create(queue=queue, date=day, intervals=_minutes(s["hours"]),
                                        reason=s.get("reason", ""))
            changed = True
        return changed

    # -- libraries ---------------------------------------------------------------------------

    def save_library(self, lib: Doc, row: Library | None) -> tuple[Library, bool, bool]:
        row = row or Library(consortium=self.consortium, slug=lib["slug"])
        fallback = self.shared[lib["fallback"]] if lib.get("fallback") else None  # None: the first one
        values = {
            "name": lib["name"], "kind": lib["kind"], "timezone": lib["timezone"],
            "city": lib.get("city", ""),
            "zip_codes": lib["zip_codes"], "consortium_queue_id": fallback.pk if fallback else None,
            "local_timeout": lib.get("local_timeout"), "partner_timeout": lib.get("partner_timeout"),
            "transcript_retention_days": lib.get("transcript_retention_days"),
            "followup_due_hours": lib.get("followup_due_hours"),
            "route": _route_json(lib.get("route")), "policy": lib.get("policy", ""),
            "policy_reviewed_on": lib.get("policy_reviewed"), "website": lib.get("website", ""),
            "key_links": lib.get("key_links", []), "sms_number": lib.get("sms_number"),
            "sms_keyword": lib.get("sms_keyword", ""), "is_active": True,
        }
        created, changed = _save(row, values)
        queue = None if created else Queue.objects.filter(library=row).first()
        queue = queue or Queue(consortium=self.consortium, kind=Queue.Kind.LOCAL, library=row)
        q_values = {"slug": lib["slug"], "name": lib["name"], "mode": lib["mode"],
                    "timezone": lib["timezone"], "always_open": lib["hours"] == "always", "is_active": True}
        _, q_changed = _save(queue, q_values)
        changed |= q_changed
        changed |= self.save_hours(queue, lib)
        return row, created, changed

    def save_partners(self, library: Library, partners: list[str]) -> bool:
        """Order the partner rows as the file does, updating positions in place."""
        want = {self.libraries[slug].pk: position for position, slug in enumerate(partners)}
        changed = False
        for link in library.partner_links.all():
            if link.partner_id not in want:
                link.delete()
                changed = True
            else:
                changed |= _save(link, {"position": want.pop(link.partner_id)})[1]
        for partner_id, position in want.items():
            LibraryPartner.objects.create(library=library, partner_id=partner_id, position=position)
            changed = True
        return changed

    # -- staff -------------------------------------------------------------------------------

    def save_all_staff(self) -> None:
        usernames = [s["username"] for s in self.doc["staff"]]
        users = {u.username: u for u in User.objects.filter(username__in=usernames).select_related("staff")}
        for s in self.doc["staff"]:
            self.save_staff(s, users.get(s["username"]))

    def save_staff(self, s: Doc, user: User | None) -> None:
        user = user or User(username=s["username"])
        role = s["role"]
        # Coordinators and library admins work in /admin/, which needs is_staff; what they may see
        # there is up to the admin's own permissions. A superuser stays staff whatever the role.
        values: dict[str, Any] = {
            "first_name": s.get("name", ""), "last_name": "", "email": s.get("email", ""), "is_active": True,
            "is_staff": user.is_superuser or role != StaffProfile.Role.LIBRARIAN,
        }
        if user.get_full_name() == s.get("name", ""):
            # Already "Ana" + "Ruiz" (say, typed in the admin): the same name; leave it as it is.
            del values["first_name"], values["last_name"]
        password_changed = False
        if user.pk is None:
            self.set_password(user, s.get("password"))
        elif s.get("password") and not self.password_matches(user, s["password"]):
            self.set_password(user, s["password"])
            password_changed = True
        created, changed = _save(user, values)
        if password_changed:  # _save only writes the fields it compared
            user.save(update_fields=["password"])
        changed |= password_changed

        profile: StaffProfile | None = None if created else StaffProfile.objects.filter(user=user).first()
        profile = profile or StaffProfile(user=user)
        p_values = {"library_id": self.libraries[s["library"]].pk, "role": role,
                    "capacity": s.get("capacity"), "languages": s["languages"], "is_active": True}
        _, p_changed = _save(profile, p_values)
        want = {self.shared[slug].pk for slug in s["queues"]}
        have = set(profile.queues.values_list("pk", flat=True))
        if want != have:
            profile.queues.set(want)
            p_changed = True
        self.report.staff.count(s["username"], created, changed or p_changed)
        if not user.has_usable_password() and not self.report.dry_run:
            self.report.set_password_paths[user.username] = _set_password_path(user)

    def set_password(self, user: User, raw: str | None) -> None:
        if not raw:
            user.set_unusable_password()
            return
        if raw not in self._hashes:
            user.set_password(raw)
            self._hashes[raw] = user.password
        user.password = self._hashes[raw]

    def password_matches(self, user: User, raw: str) -> bool:
        if self._hashes.get(raw) == user.password:
            return True
        if user.check_password(raw):
            self._hashes.setdefault(raw, user.password)
            return True
        return False

    # -- what the file leaves out -----------------------------------------------------------

    def missing(self) -> None:
        libraries = self.consortium.libraries.filter(is_active=True).exclude(slug__in=list(self.libraries))
        queues = self.consortium.queues.filter(kind=Queue.Kind.SHARED, is_active=True).exclude(
            slug__in=list(self.shared)
        )
        staff = StaffProfile.objects.filter(library__consortium=self.consortium, is_active=True).exclude(
            user__username__in=[s["username"] for s in self.doc["staff"]]
        ).select_related("user")
        self.report.libraries.missing = sorted(lib.slug for lib in libraries)
        self.report.queues.missing = sorted(q.slug for q in queues)
        self.report.staff.missing = sorted(p.user.username for p in staff)
        if not self.prune:
            return
        # Deactivate, never delete: chats, statistics and transcripts keep pointing at these rows.
        for profile in staff:
            profile.is_active = False
            profile.save(update_fields=["is_active"])
            profile.user.is_active = False
            profile.user.save(update_fields=["is_active"])
        Queue.objects.filter(library__in=libraries).update(is_active=False)
        self.report.libraries.deactivated = list(self.report.libraries.missing)
        self.report.queues.deactivated = list(self.report.queues.missing)
        self.report.staff.deactivated = list(self.report.staff.missing)
        libraries.update(is_active=False)
        queues.update(is_active=False)


def _route_json(route: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """As Library.route keeps it: every step with its wait, None on the last (see routing.plan)."""
    if route is None:
        return None
    return [{"name": s["name"], "queues": list(s["queues"]), "wait": s.get("wait")} for s in route]


def _minutes(intervals: list[str]) -> list[list[int]]:
    return [list(parse_interval(text)) for text in intervals]


def _set_password_path(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})

