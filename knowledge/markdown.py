"""An answer's text: Markdown from many hands, shown to patrons. Rendered exactly as policy pages are
(libraries.policy: no raw HTML, only web and mail links, no images), and turned into plain text for a
librarian's reply, which the patron's chat shows as text with its web addresses made links."""

from __future__ import annotations

import re

from django.utils.safestring import SafeString

from libraries.policy import is_allowed_link, render_policy

_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_SPACES = re.compile(r"\n{3,}")


def answer_html(markdown_text: str) -> SafeString:
    return render_policy(markdown_text)


def _link_text(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if not is_allowed_link(url):
        return label  # as the rendered page shows it: the text without the link
    return url if label.strip() == url else f"{label} ({url})"


def answer_plain(markdown_text: str) -> str:
    """The text a librarian inserts into a reply: links written out as "label (address)"."""
    text = _LINK.sub(_link_text, markdown_text or "")
    text = _HEADING.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    return _SPACES.sub("\n\n", text).strip()


def answer_snippet(markdown_text: str, limit: int = 180) -> str:
    """The first words of the plain text, on one line, for a suggestion."""
    flat = " ".join(answer_plain(markdown_text).split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"
