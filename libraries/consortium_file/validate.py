"""Read and validate a consortium file: every problem at once, and the canonical form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from consortium.models import ALERT_DEFAULTS, DEFAULT_COLORS, SETTING_DEFAULTS
from consortium.origins import normalize_origin
from libraries.consortium_file.fields import FieldReader, at_path, describe, shown
from libraries.consortium_file.schema import (
    COLOR_KEYS,
    COLOR_RE,
    CONSORTIUM_KEYS,
    E164,
    LIBRARY_KEYS,
    LIBRARY_KINDS,
    MAX_CAPACITY,
    MAX_INT,
    MAX_RETENTION_DAYS,
    MAX_SMS_HELP,
    MODES,
    QUEUE_KEYS,
    ROLES,
    SMS_KEYWORD,
    STAFF_KEYS,
    TOP_KEYS,
    USERNAME_RE,
    ZIP_RE,
    Doc,
    InvalidConsortiumFile,
    Problem,
    put_optional,
)
from libraries.models import Library, OfferMode, StaffProfile


def validate(data: Any) -> list[Problem]:
    """Every problem of a parsed consortium file (empty when it can be imported). No database."""
    return Reader().document(data)[1]


def normalize(data: Any) -> Doc:
    """The canonical form of a valid file (what `export` writes). Raises InvalidConsortiumFile."""
    doc, problems = Reader().document(data)
    if problems:
        raise InvalidConsortiumFile(problems)
    return doc


_URL = URLValidator(schemes=["http", "https"])


@dataclass
class _Names:
    queues: set[str]
    libraries: set[str]


class Reader(FieldReader):
    """Walks a parsed file, collecting problems and building the canonical document."""

    # -- the document ------------------------------------------------------------------------

    def document(self, data: Any) -> tuple[Doc, list[Problem]]:
        if data is None:
            self.err("", "the file is empty")
            return {}, self.problems
        if not isinstance(data, dict):
            self.err("", "the file must be a mapping with the keys consortium, queues, libraries and staff, "
                         f"not {describe(data)}")
            return {}, self.problems
        top = self.mapping(data, "", TOP_KEYS, required=("consortium", "queues"))
        consortium = self.consortium(top.get("consortium"), "consortium") if "consortium" in top else {}
        default_tz = consortium.get("timezone") or None
        raw_queues = self.items(top.get("queues"), "queues")
        raw_libraries = self.items(top.get("libraries"), "libraries")
        raw_staff = self.items(top.get("staff"), "staff")
        if "queues" in top and not raw_queues:
            self.err("queues", "a consortium needs at least one shared queue (the last step of every plan)")

        # Names first, so that references may point forward in the file. A name that is itself
        # malformed still counts as declared: its own problem is reported once, not at every use.
        declared_queues = [q.get("slug") for q in raw_queues if isinstance(q, dict)]
        declared_libraries = [lib.get("slug") for lib in raw_libraries if isinstance(lib, dict)]
        names = _Names(
            queues={s for s in declared_queues if isinstance(s, str)},
            libraries={s for s in declared_libraries if isinstance(s, str)},
        )

        queues = [self.queue(q, at_path("queues", i), default_tz, names) for i, q in enumerate(raw_queues)]
        libraries = [self.library(lib, at_path("libraries", i), default_tz, names)
                     for i, lib in enumerate(raw_libraries)]
        staff = [self.staff(s, at_path("staff", i), names) for i, s in enumerate(raw_staff)]

        self.unique([(at_path(at_path("queues", i), "slug"), f'"{q["slug"]}"') for i, q in enumerate(queues) if q],
                    "shared queue")
        self.unique([(at_path(at_path("libraries", i), "slug"), f'"{lib["slug"]}"')
                     for i, lib in enumerate(libraries) if lib], "library")
        # Case-blind: "Ana" and "ana" are two Django accounts, but in one file surely one person twice.
        self.unique([(at_path(at_path("staff", i), "username"), f'"{s["username"]}"')
                     for i, s in enumerate(staff) if s], "username", key=lambda v: v.lower())
        # A ZIP code finds a patron's home library: listed twice, it would not say which one.
        self.unique([(p, f'"{z}"') for p, z in self.zips], "ZIP code")
        # A text is routed by the number it was sent to, and by the keyword it starts with.
        numbers = [("consortium.sms_number", consortium["sms_number"])] if consortium.get("sms_number") else []
        numbers += [(at_path(at_path("libraries", i), "sms_number"), lib["sms_number"])
                    for i, lib in enumerate(libraries) if lib and lib.get("sms_number")]
        self.unique([(p, f'"{n}"') for p, n in numbers], "number")
        self.unique([(at_path(at_path("libraries", i), "sms_keyword"), f'"{lib["sms_keyword"]}"')
                     for i, lib in enumerate(libraries) if lib and lib.get("sms_keyword")],
                    "keyword", key=lambda v: v.lower())

        order = {q["slug"]: i for i, q in enumerate(queues) if q}
        for s in staff:
            if s:
                s["queues"].sort(key=lambda slug: order.get(slug, len(order)))
        doc = {
            "consortium": consortium,
            "queues": [q for q in queues if q],
            "libraries": sorted((lib for lib in libraries if lib), key=lambda lib: lib["slug"]),
            "staff": sorted((s for s in staff if s), key=lambda s: (s["library"], s["username"])),
        }
        return doc, self.problems

    def consortium(self, value: Any, path: str) -> Doc:
        c = self.mapping(value, path, CONSORTIUM_KEYS, required=("slug", "name", "timezone"))
        slug = self.slug(c["slug"], at_path(path, "slug")) if "slug" in c else None
        settings = dict(SETTING_DEFAULTS)
        given = self.mapping(c.get("settings", {}), at_path(path, "settings"), SETTING_DEFAULTS)
        for key in given:
            found = self.positive(given, key, at_path(path, "settings"))
            if found is not None:
                settings[key] = found
        origins: list[tuple[str, str]] = []
        for i, raw in enumerate(self.items(c.get("allowed_origins"), at_path(path, "allowed_origins"))):
            p = at_path(at_path(path, "allowed_origins"), i)
            origin = self.origin(raw, p)
            if origin:
                origins.append((p, origin))
        self.unique([(p, f'"{o}"') for p, o in origins], "origin")
        # An extension: the ask pages' colours, e.g. colors: {accent: "#0b5394", accent_text: "#ffffff"}.
        colors = dict(DEFAULT_COLORS)
        given_colors = self.mapping(c.get("colors", {}), at_path(path, "colors"), COLOR_KEYS)
        for key, raw in given_colors.items():
            if isinstance(raw, str) and COLOR_RE.match(raw.strip()):
                colors[key] = raw.strip().lower()
            else:
                shown = f'"{raw}"' if isinstance(raw, str) else describe(raw)
                self.err(at_path(at_path(path, "colors"), key), f"{shown} is not a colour like #1d4ed8")
        doc: Doc = {
            "slug": slug or "",
            "name": self.text(c, "name", path),
            "timezone": self.timezone(c, "timezone", path, None),
            "allowed_origins": list(dict.fromkeys(o for _, o in origins)),
            "settings": settings,
            "colors": colors,
        }
        put_optional(doc, "sms_number", self.sms_number(c.get("sms_number"), at_path(path, "sms_number")))
        put_optional(doc, "sms_help", self.text(c, "sms_help", path, max_length=MAX_SMS_HELP))
        if "alerts" in c:
            doc["alerts"] = self.alerts(c["alerts"], at_path(path, "alerts"))
        return doc

    def alerts(self, value: Any, path: str) -> Doc:
        """An extension: when the coordinators are alerted (docs/coordinators.md, "Alerts"), the
        defaults filled in. Left out of the file: the defaults, and no `alerts` in the canonical form."""
        given = self.mapping(value, path, ALERT_DEFAULTS)
        alerts: Doc = dict(ALERT_DEFAULTS)
        for key, raw in given.items():
            if key == "mail":
                if isinstance(raw, bool):
                    alerts[key] = raw
                else:
                    self.err(at_path(path, key), f"must be true or false, not {describe(raw)}")
                continue
            found = self.positive(given, key, path, maximum=100 if key == "unstaffed_percent" else MAX_INT)
            if found is not None:
                alerts[key] = found
        return alerts

    def sms_number(self, value: Any, path: str) -> str:
        """A phone number in E.164, the form Twilio writes in `To` and `From`."""
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            self.err(path, f'write numbers in quotes with their + ("+{value}"), or YAML reads them as numbers')
            return ""
        if not isinstance(value, str) or not E164.match(value.strip()):
            self.err(path, f"{shown(value)} is not a phone number in E.164 form, like \"+18505551234\" "
                           "(a +, the country code, then digits only)")
            return ""
        return value.strip()

    def sms_keyword(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a keyword of digits only, like 311, reads as a number unquoted: fine
        if not isinstance(value, str) or not SMS_KEYWORD.match(value.strip()):
            self.err(path, f"{shown(value)} is not a keyword: use 2-20 letters or digits, no spaces")
            return ""
        return value.strip()

    def origin(self, value: Any, path: str) -> str | None:
        """'https://Example.org:443/' -> 'https://example.org': the form browsers send in Origin."""
        if not isinstance(value, str):
            self.err(path, f"must be an origin like https://www.example.org, not {describe(value)}")
            return None
        origin = normalize_origin(value)
        if origin is None:
            self.err(path, f'"{value}" is not an origin: write scheme://host or scheme://host:port '
                           "(http or https, no path)")
            return None
        if django_settings.HTTPS and origin.startswith("http://"):
            # Refused when a browser sends it (routing/access.py): say so here rather than import it.
            self.err(path, f'"{value}": http:// origins are refused while HTTPS is on (a page on plain http '
                           "can be altered in transit); use https://")
            return None
        return origin

    def queue(self, value: Any, path: str, default_tz: str | None, names: _Names) -> Doc:
        q = self.mapping(value, path, QUEUE_KEYS, required=("slug", "name"))
        slug = self.slug(q["slug"], at_path(path, "slug")) if "slug" in q else None
        if slug and slug in names.libraries:
            self.err(at_path(path, "slug"), f'"{slug}" is also a library\'s slug (its local queue); '
                                        "shared queues need slugs of their own")
        doc = {
            "slug": slug,
            "name": self.text(q, "name", path),
            "mode": self.choice(q, "mode", path, MODES, OfferMode.BROADCAST.value),
            "timezone": self.timezone(q, "timezone", path, default_tz),
            "languages": self.languages(q, path),
            "hours": self.hours(q.get("hours"), at_path(path, "hours")),
        }
        put_optional(doc, "closures", self.closures(q.get("closures"), at_path(path, "closures")))
        special = self.special_hours(q.get("special_hours"), at_path(path, "special_hours"))
        put_optional(doc, "special_hours", special)
        return doc if slug else {}

    def library(self, value: Any, path: str, default_tz: str | None, names: _Names) -> Doc:
        lib = self.mapping(value, path, LIBRARY_KEYS, required=("slug", "name"))
        slug = self.slug(lib["slug"], at_path(path, "slug")) if "slug" in lib else None

        zips: list[str] = []
        for i, z in enumerate(self.items(lib.get("zip_codes"), at_path(path, "zip_codes"))):
            p = at_path(at_path(path, "zip_codes"), i)
            if isinstance(z, str) and ZIP_RE.match(z.strip()):
                zips.append(z.strip())
                self.zips.append((p, z.strip()))
            elif isinstance(z, int) and not isinstance(z, bool):
                # Unquoted, YAML reads 33602 as a number and 02134 as an octal one: insist on quotes.
                self.err(p, f'write ZIP codes in quotes ("{z}"), or YAML may read them as numbers')
            else:
                self.err(p, f"{shown(z)} is not a five-digit ZIP code")

        partners: list[tuple[str, str]] = []
        for i, raw in enumerate(self.items(lib.get("partners"), at_path(path, "partners"))):
            p = at_path(at_path(path, "partners"), i)
            partner = self.slug(raw, p)
            if partner is None:
                continue
            if partner == slug:
                self.err(p, "a library cannot be its own partner")
            elif partner not in names.libraries:
                self.err(p, f'"{partner}" is not a library of this file')
            else:
                partners.append((p, partner))
        self.unique([(p, f'"{v}"') for p, v in partners], "partner")

        fallback = None
        if "fallback" in lib:
            fallback = self.slug(lib["fallback"], at_path(path, "fallback"))
            if fallback and fallback not in names.queues:
                hint = " (a library; fallback names a shared queue)" if fallback in names.libraries else ""
                self.err(at_path(path, "fallback"), f'"{fallback}" is not a shared queue of this file{hint}')

        doc: Doc = {
            "slug": slug,
            "name": self.text(lib, "name", path),
            "kind": self.choice(lib, "kind", path, LIBRARY_KINDS, Library.Kind.PUBLIC.value),
            "timezone": self.timezone(lib, "timezone", path, default_tz),
        }
        put_optional(doc, "city", self.text(lib, "city", path, max_length=100))
        doc["zip_codes"] = list(dict.fromkeys(zips))
        doc["partners"] = list(dict.fromkeys(v for _, v in partners))
        put_optional(doc, "fallback", fallback)
        doc["mode"] = self.choice(lib, "mode", path, MODES, OfferMode.BROADCAST.value)
        put_optional(doc, "local_timeout", self.positive(lib, "local_timeout", path))
        put_optional(doc, "partner_timeout", self.positive(lib, "partner_timeout", path))
        put_optional(doc, "followup_due_hours", self.positive(lib, "followup_due_hours", path))
        put_optional(doc, "transcript_retention_days",
                      self.positive(lib, "transcript_retention_days", path, maximum=MAX_RETENTION_DAYS))
        doc["hours"] = self.hours(lib.get("hours"), at_path(path, "hours"))
        put_optional(doc, "closures", self.closures(lib.get("closures"), at_path(path, "closures")))
        special = self.special_hours(lib.get("special_hours"), at_path(path, "special_hours"))
        put_optional(doc, "special_hours", special)
        policy = lib.get("policy")
        if policy is not None and not isinstance(policy, str):
            self.err(at_path(path, "policy"), f"must be text (Markdown), not {describe(policy)}")
        elif policy and policy.strip():
            doc["policy"] = policy  # kept byte for byte: it is a page of Markdown
        if "policy_reviewed" in lib:
            reviewed = self.date(lib["policy_reviewed"], at_path(path, "policy_reviewed"))
            put_optional(doc, "policy_reviewed", reviewed)
        put_optional(doc, "website", self.url(lib.get("website"), at_path(path, "website")))
        put_optional(doc, "key_links", self.key_links(lib.get("key_links"), at_path(path, "key_links")))
        if "route" in lib:
            doc["route"] = self.route(lib["route"], at_path(path, "route"), names)
        put_optional(doc, "sms_number", self.sms_number(lib.get("sms_number"), at_path(path, "sms_number")))
        put_optional(doc, "sms_keyword", self.sms_keyword(lib.get("sms_keyword"), at_path(path, "sms_keyword")))
        return doc if slug else {}

    def url(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.err(path, f"must be a web address, not {describe(value)}")
            return ""
        try:
            _URL(value.strip())
        except ValidationError:
            self.err(path, f'"{value}" is not an http(s) web address')
            return ""
        if len(value.strip()) > 200:
            self.err(path, "is longer than 200 characters")
        return value.strip()

    def key_links(self, value: Any, path: str) -> list[dict[str, str]]:
        out = []
        for i, raw in enumerate(self.items(value, path)):
            p = at_path(path, i)
            item = self.mapping(raw, p, ("title", "url"), required=("title", "url"))
            title, url = self.text(item, "title", p), self.url(item.get("url"), at_path(p, "url"))
            if title and url:
                out.append({"title": title, "url": url})
        return out

    def route(self, value: Any, path: str, names: _Names) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        steps = self.items(value, path)
        if isinstance(value, list) and not steps:
            self.err(path, "has no steps (leave route out to use the default plan)")
        out: list[dict[str, Any]] = []
        step_names: list[tuple[str, str]] = []
        for i, raw in enumerate(steps):
            p = at_path(path, i)
            step = self.mapping(raw, p, ("name", "queues", "wait"), required=("name", "queues"))
            name = self.text(step, "name", p, max_length=50)
            if name:
                step_names.append((at_path(p, "name"), f'"{name}"'))
            queues: list[str] = []
            raw_queues = step.get("queues")
            if isinstance(raw_queues, list) and not raw_queues:
                self.err(at_path(p, "queues"), "lists no queue")
            for j, q in enumerate(self.items(raw_queues, at_path(p, "queues"))):
                qp = at_path(at_path(p, "queues"), j)
                slug = self.slug(q, qp)
                if slug and slug not in names.queues and slug not in names.libraries:
                    self.err(qp, f'"{slug}" is neither a library nor a shared queue of this file')
                elif slug:
                    queues.append(slug)
            wait = self.positive(step, "wait", p)
            last = i == len(steps) - 1
            if last and wait is not None:
                self.err(at_path(p, "wait"), "the last step waits as long as it takes: leave wait out")
            elif not last and "wait" not in step:  # (a wait that is there but wrong is reported already)
                self.err(at_path(p, "wait"), "is required on every step but the last (seconds before moving on)")
            entry: dict[str, Any] = {"name": name, "queues": list(dict.fromkeys(queues))}
            if not last and wait is not None:  # the last step has no wait, and says so by leaving it out
                entry["wait"] = wait
            out.append(entry)
        self.unique(step_names, "step name")
        return out

    def staff(self, value: Any, path: str, names: _Names) -> Doc:
        s = self.mapping(value, path, STAFF_KEYS, required=("username", "library"))
        username = None
        if "username" in s:
            raw = s["username"]
            if not isinstance(raw, str) or not USERNAME_RE.match(raw) or len(raw) > 150:
                self.err(at_path(path, "username"), f"{shown(raw)} is not a username (letters, digits and "
                                                "@.+-_, at most 150 characters)")
            else:
                username = raw
        library = self.slug(s["library"], at_path(path, "library")) if "library" in s else None
        if library and library not in names.libraries:
            self.err(at_path(path, "library"), f'"{library}" is not a library of this file')
        email = self.text(s, "email", path, max_length=254)
        if email:
            try:
                validate_email(email)
            except ValidationError:
                self.err(at_path(path, "email"), f'"{email}" is not an email address')
        queues: list[tuple[str, str]] = []
        for i, raw in enumerate(self.items(s.get("queues"), at_path(path, "queues"))):
            p = at_path(at_path(path, "queues"), i)
            slug = self.slug(raw, p)
            if slug in names.libraries:
                self.err(p, f'"{slug}" is a library: staff answer their own library\'s queue anyway; '
                            "list shared queues here")
            elif slug and slug not in names.queues:
                self.err(p, f'"{slug}" is not a shared queue of this file')
            elif slug:
                queues.append((p, slug))
        self.unique([(p, f'"{v}"') for p, v in queues], "queue")
        password = s.get("password")
        if password is not None and (not isinstance(password, str) or not password):
            self.err(at_path(path, "password"), f"must be text, not {describe(password)}")
            password = None
        # Django keeps first and last name; the file has one name. It goes whole into first_name,
        # which get_full_name() gives back unchanged: no guessing where a name splits.
        name = " ".join(self.text(s, "name", path, max_length=150).split())
        doc: Doc = {"username": username}
        put_optional(doc, "name", name)
        put_optional(doc, "email", email)
        doc["library"] = library
        doc["role"] = self.choice(s, "role", path, ROLES, StaffProfile.Role.LIBRARIAN.value)
        doc["queues"] = list(dict.fromkeys(v for _, v in queues))
        put_optional(doc, "capacity", self.positive(s, "capacity", path, maximum=MAX_CAPACITY))
        doc["languages"] = self.languages(s, path)
        if password:
            doc["password"] = password
        return doc if username and library else {}

