"""The Spanish catalogue is complete for everything a patron reads (issue 18.4), and stays so.

- Every msgid reachable from the patron's pages (their templates, and what they include), the chat
  script's strings (SCRIPT_STRINGS), the chat's system lines and the mails to patrons has a Spanish
  msgstr in locale/es/LC_MESSAGES/django.po, and the compiled .mo (what Django reads) has it too.
- No patron template has words outside {% translate %} / {% blocktranslate %} (text, or an attribute
  a person reads: alt, title, placeholder, aria-label).
- No system line and no mail to a patron is written as a literal in the code: a new one must go
  through gettext, and so lands in the first check.

Read with the standard library and Django's own template parser: no gettext tools needed.
"""

from __future__ import annotations

import ast
import gettext
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.template import engines
from django.template.base import Lexer, TokenType
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils import translation
from django.utils.module_loading import import_string

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")

PATRON_TEMPLATES = ("routing/patron/ask.html", "routing/patron/_chat.html", "routing/patron/home.html")
# The Python modules whose gettext strings a patron reads: the script's strings, the system lines, the mails.
PATRON_SOURCES = ("routing/patron/i18n.py", "routing/services/common.py", "routing/services/offers.py",
                  "routing/services/transfers.py", "routing/services/presence.py", "routing/services/followups.py",
                  "routing/tasks.py")
# The staff and coordinator pages converted to gettext so far (issue 18.4: in the staff member's language),
# and the Python modules whose strings they read (the board script's, the alerts').
STAFF_TEMPLATES = ("coordination/base.html", "coordination/board.html", "coordination/forbidden.html",
                   "coordination/rota.html", "coordination/coverage.html", "coordination/hours_grid.html",
                   "coordination/my_rota.html", "coordination/hours_edit.html", "coordination/statistics.html",
                   "coordination/blocks.html", "coordination/block.html", "coordination/_blocks_table.html",
                   "routing/staff/base.html", "routing/staff/forbidden.html", "staff/_language.html",
                   "routing/staff/tickets.html", "routing/staff/ticket.html", "routing/staff/history.html",
                   "routing/staff/history_chat.html", "routing/staff/console.html", "routing/staff/canned.html",
                   "routing/staff/canned_edit.html", "routing/staff/canned_fields.html",
                   "routing/staff/classify_fields.html", "routing/staff/library_page.html",
                   "routing/staff/library_panel.html", "registration/login.html", "registration/locked_out.html",
                   "review/home.html", "review/_list.html", "review/notable.html", "review/coordinator.html",
                   "review/detail.html", "review/settings.html", "coordination/overdue.html",
                   "coordination/mentors.html", "routing/staff/mentor_board.html", "routing/staff/mentor_watch.html",
                   "knowledge/staff_list.html", "knowledge/staff_edit.html", "texting/simulator.html")
STAFF_SOURCES = ("coordination/i18n.py", "alerts/text.py", "alerts/tasks.py", "routing/staff/i18n.py",
                 "coordination/views/rota.py", "coordination/views/my_rota.py", "coordination/views/hours.py",
                 "coordination/views/blocks.py", "coordination/views/statistics.py", "coordination/charts.py",
                 "routing/outcomes.py", "review/views.py", "coordination/forms.py", "coordination/views/_page.py",
                 "coordination/views/coverage.py", "knowledge/staff_views.py", "review/forms.py", "review/models.py",
                 "routing/models.py", "libraries/models.py", "knowledge/models.py", "alerts/models.py",
                 "texting/models.py", "knowledge/services.py",
                 # The refusals a librarian's socket and pages write (their `detail`, lazy: see ServiceError).
                 "routing/services/offers.py", "routing/services/transfers.py", "routing/services/chats.py",
                 "routing/services/mentoring.py", "routing/services/handbacks.py", "routing/services/shares.py",
                 "routing/services/shifts.py", "routing/services/presence.py", "routing/sockets/staff.py",
                 "routing/staff_room.py", "routing/services/blocks.py", "libraries/rota.py",
                 "routing/services/canned.py", "review/scoring.py", "routing/files.py",
                 "routing/services/transcripts.py",
                 # The admin's own forms (their labels, hints and refusals).
                 "consortium/admin.py", "libraries/admin/common.py", "libraries/admin/libraries.py",
                 "libraries/admin/staff.py", "libraries/admin/queues.py", "libraries/admin/hours.py",
                 "libraries/hours.py")
# The project's own apps: their models' choices are read by staff (pages, the admin) in their language.
PROJECT_APPS = ("alerts", "consortium", "coordination", "knowledge", "libraries", "review", "routing", "texting")
GETTEXT = {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy",
           "npgettext", "npgettext_lazy"}
# Names of languages are written in their own language on purpose (the language switch).
ENDONYMS = {"English", "Español"}
SAME_IN_EVERY_LANGUAGE = {"CSV", "UTC", "READ", "SMS"}  # the READ scale is a name
READ_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description", "label"}

Key = tuple[str | None, str]  # (msgctxt, msgid)


def _unquote(line: str) -> str:
    return ast.literal_eval(line.strip())  # a .po string is a C string; these use no octal escapes


def po_entries(path: Path) -> dict[Key, list[str]]:
    """(msgctxt, msgid) -> its msgstrs (one, or one per plural form), fuzzy entries left out as msgfmt does."""
    entries: dict[Key, list[str]] = {}
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        fields: dict[str, str] = {}
        current = None
        fuzzy = False
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            if line.startswith("#") or not line.strip():
                continue
            match = re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")\s*$", line)
            if match:
                current = match[1]
                fields[current] = _unquote(match[2])
            elif current is not None and line.strip().startswith('"'):
                fields[current] += _unquote(line)
        if "msgid" not in fields or not fields["msgid"] or fuzzy:
            continue
        key = (fields.get("msgctxt"), fields["msgid"])
        assert key not in entries, f"{key} is in the catalogue twice"
        entries[key] = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
    return entries


def mo_catalogue() -> dict[object, str]:
    with MO.open("rb") as f:
        return dict(gettext.GNUTranslations(f)._catalog)  # type: ignore[attr-defined]


def template_msgids(name: str) -> Iterator[Key]:
    """The msgids of a template and of what it includes, from Django's own parse of it."""
    template = engines["django"].engine.get_template(name)  # type: ignore[attr-defined]
    for node in template.nodelist.get_nodes_by_type(TranslateNode):
        yield node.message_context.resolve({}) if node.message_context else None, node.filter_expression.var.literal
    for node in template.nodelist.get_nodes_by_type(BlockTranslateNode):
        context = node.message_context.resolve({}) if node.message_context else None
        yield context, node.render_token_list(node.singular)[0]  # a plural is the same entry's msgid_plural
    for literal in re.findall(r'\b_\("([^"]+)"\)', template.source):  # _("...") in a tag's arguments
        yield None, literal
    for include in re.findall(r'{%\s*include\s+"([^"]+)"', template.source):
        yield from template_msgids(include)


def source_msgids(path: Path) -> Iterator[Key]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in GETTEXT):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if not args:  # gettext(variable): its strings are marked where they are written
            continue
        if node.func.id.startswith(("pgettext", "npgettext")):
            yield args[0], args[1]
        else:
            yield None, args[0]  # ngettext's plural is the same entry's msgid_plural, its msgstrs checked with it


def patron_msgids() -> set[Key]:
    found = {key for name in PATRON_TEMPLATES for key in template_msgids(name)}
    return found | {key for source in PATRON_SOURCES for key in source_msgids(ROOT / source)}


def test_every_string_a_patron_reads_has_a_spanish_translation() -> None:
    entries = po_entries(PO)
    wanted = patron_msgids()
    assert len(wanted) > 80, "the patron's strings were found"
    missing = sorted(str(key[1]) for key in wanted if key not in entries)
    empty = sorted(str(key[1]) for key in wanted if key in entries and not all(entries[key]))
    assert missing == [], "not in locale/es/LC_MESSAGES/django.po"
    assert empty == [], "no Spanish msgstr"


def test_every_string_of_the_converted_staff_pages_has_a_spanish_translation() -> None:
    entries = po_entries(PO)
    wanted = {key for name in STAFF_TEMPLATES for key in template_msgids(name)}
    wanted |= {key for source in STAFF_SOURCES for key in source_msgids(ROOT / source)}
    assert sorted(str(key[1]) for key in wanted if not all(entries.get(key, [""]))) == []


def _in_spanish(text: object) -> tuple[str, str]:
    """(English, Spanish) of a lazy string, or of a plain one (which stays English in both)."""
    with translation.override("en"):
        english = str(text)
    with translation.override("es"):
        return english, str(text)


def test_every_choice_of_the_models_reads_in_spanish() -> None:
    """A state, a status, a kind: each choice's label is marked for translation and translated (a plain
    label, or a lazy one missing from the catalogue, reads the same in both languages)."""
    untranslated = []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        for field in model._meta.get_fields():
            for value, label in getattr(field, "flatchoices", None) or ():
                english, spanish = _in_spanish(label)
                if english == spanish and english not in ENDONYMS | SAME_IN_EVERY_LANGUAGE | {"Web", "HELP"}:
                    untranslated.append(f"{model._meta.label}.{field.name}={value}: {english}")
    assert untranslated == []


def test_every_model_and_field_name_the_admin_shows_reads_in_spanish() -> None:
    """verbose_name and verbose_name_plural of the project's models and their fields (the admin's column
    headings, form labels and page titles) are marked for translation and translated."""
    untranslated = []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        names = [model._meta.verbose_name, model._meta.verbose_name_plural]
        names += [field.verbose_name for field in model._meta.get_fields()
                  if (getattr(field, "concrete", False) or field.many_to_many) and not field.auto_created]
        for name in names:
            english, spanish = _in_spanish(name)
            if english == spanish and english not in {"chat", "chats", "id", "plan", "mentor", "slug"}:
                untranslated.append(f"{model._meta.label}: {english}")
    assert untranslated == []


def test_every_help_text_of_the_models_reads_in_spanish() -> None:
    """The admin's hints under its fields (help_text) are marked for translation and translated."""
    untranslated = []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        for field in model._meta.get_fields():
            hint = getattr(field, "help_text", "")
            if hint:
                english, spanish = _in_spanish(hint)
                if english == spanish:
                    untranslated.append(f"{model._meta.label}.{field.name}: {english}")
    assert untranslated == []


@pytest.mark.parametrize("form_class", ["review.forms.SettingsForm", "review.forms.CriterionForm"])
def test_every_label_and_help_text_of_the_review_forms_reads_in_spanish(form_class: str) -> None:
    form = import_string(form_class)()
    untranslated = [f"{name}: {text}" for name, field in form.fields.items()
                    for text in (field.label, field.help_text) if text
                    for english, spanish in [_in_spanish(text)] if english == spanish]
    assert untranslated == []


@pytest.mark.parametrize("name", STAFF_TEMPLATES)
def test_no_converted_staff_template_has_words_outside_translate(name: str) -> None:
    template = engines["django"].engine.get_template(name)  # type: ignore[attr-defined]
    assert untranslated_words(template.source) == []


def test_every_word_the_console_script_writes_is_in_its_catalogue() -> None:
    """The console's modules write words through t("English text") (text.js); each one must be in
    routing/staff/i18n.py's CONSOLE_STRINGS, which hands it to the page in the librarian's language."""
    from routing.staff.i18n import CONSOLE_STRINGS

    scripts = [*ROOT.glob("routing/static/routing/staff/*.js"), ROOT / "knowledge/static/knowledge/console_answers.js"]
    written = {json.loads(f'"{m}"') for path in scripts
               for m in re.findall(r'\bt\("((?:[^"\\]|\\.)*)"', path.read_text(encoding="utf-8"))}
    assert len(written) > 40
    assert sorted(written - set(CONSOLE_STRINGS)) == []


def test_the_compiled_catalogue_is_the_po_file_compiled() -> None:
    """msgfmt run after the last edit: the .mo has exactly the .po's translated entries."""
    compiled = mo_catalogue()
    for (context, msgid), msgstrs in po_entries(PO).items():
        if not all(msgstrs):
            continue
        key = f"{context}\x04{msgid}" if context else msgid
        if len(msgstrs) == 1:
            assert compiled.get(key) == msgstrs[0], f"{msgid!r}: run msgfmt (see docs/testing.md)"
        else:
            assert [compiled.get((key, n)) for n in range(len(msgstrs))] == msgstrs, msgid


class _Words(HTMLParser):
    """Visible words and read attributes of a template's text, outside scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.words += [value for name, value in attrs if name in READ_ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.words.append(data)


def untranslated_words(source: str) -> list[str]:
    """Words in a template that no {% translate %} or {% blocktranslate %} covers."""
    text = []
    inside_block = 0
    attributes = False  # a block of a tag's attributes (the console's body_attrs): markup, not words
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            word = token.contents.split()[0]
            if word in ("blocktranslate", "blocktrans"):
                inside_block += 1
            elif word in ("endblocktranslate", "endblocktrans"):
                inside_block -= 1
            elif (token.contents.startswith("block ") and token.contents.endswith("_attrs")) or word == "comment":
                attributes = True  # (a comment is no words either)
            elif word in ("endblock", "endcomment"):
                attributes = False
            # A tag's output stands for a word here, so that "{% translate 'x' %}" in an attribute is no gap.
            text.append(" ")
        elif token.token_type == TokenType.VAR:
            text.append(" ")
        elif token.token_type == TokenType.TEXT and not inside_block and not attributes:
            text.append(token.contents)
    parser = _Words()
    parser.feed("".join(text))
    words = [w for chunk in parser.words for w in re.findall(r"[^\W\d_]{2,}", chunk)]
    return [w for w in words if w not in ENDONYMS | SAME_IN_EVERY_LANGUAGE]


@pytest.mark.parametrize("name", PATRON_TEMPLATES)
def test_no_patron_template_has_words_outside_translate(name: str) -> None:
    template = engines["django"].engine.get_template(name)  # type: ignore[attr-defined]
    assert untranslated_words(template.source) == []


def test_the_template_check_finds_words_left_out() -> None:
    assert untranslated_words('<p>{% translate "Hello" %}</p><button title="Close">x</button>') == ["Close"]
    assert untranslated_words("<h2>Your chat</h2>{% blocktranslate %}Hi {{ name }}{% endblocktranslate %}") == [
        "Your", "chat"]
    assert untranslated_words('<script>const a = "not read";</script><a aria-label="{% translate \'Go\' %}">'
                              "{{ name }}</a>") == []


def _literal(node: ast.AST | None) -> bool:
    """A string written in the code, rather than one from gettext or a function that builds one."""
    if isinstance(node, ast.Constant | ast.JoinedStr):
        return isinstance(node, ast.JoinedStr) or isinstance(node.value, str)
    if isinstance(node, ast.BinOp):
        return _literal(node.left) or _literal(node.right)
    return False


def literal_patron_words() -> list[str]:
    """System lines (system_message_post's body) and patron mails (send_once in routing/tasks.py) that are
    literals: each would reach the patron in English only."""
    found = []
    for path in [*ROOT.glob("routing/**/*.py"), *ROOT.glob("texting/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if node.func.id == "system_message_post" and len(node.args) > 1 and _literal(node.args[1]):
                found.append(where)
            if node.func.id == "send_once" and path.name == "tasks.py" and path.parent.name == "routing":
                found += [where for k in node.keywords if k.arg in ("subject", "message") and _literal(k.value)]
    return found


def test_no_system_line_or_patron_mail_is_a_literal() -> None:
    assert literal_patron_words() == []
