"""A library's policy page: Markdown written by library staff, shown to any librarian in the consortium.

The text comes from many hands (every library admin of the consortium) and lands in the pages of
librarians at other libraries, so it is treated as untrusted: raw HTML is never passed through,
only web and mail links become links, and every link opens in a new tab without handing the staff
console to the target page (`window.opener`) or leaking its address (`Referer`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# Checked on the normalized destination (entities decoded, control characters percent-encoded), so
# "java&#115;cript:" or "java\tscript:" cannot sneak past as something that starts with http.
_ALLOWED_LINK = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)

LINK_REL = "noopener noreferrer"


def is_allowed_link(url: str) -> bool:
    """Whether a link may be shown to librarians as a link: http, https or mailto only."""
    return bool(_ALLOWED_LINK.match(url.strip()))


class _PolicyMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        # markdown-it leaves a link whose destination fails this check as plain text, which is
        # what we want for javascript:, data:, relative paths and anything else unexpected.
        return is_allowed_link(url)


def _link_open(
    self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    token.attrSet("rel", LINK_REL)
    token.attrSet("target", "_blank")
    rendered: str = self.renderToken(tokens, idx, options, env)
    return rendered


def _build() -> MarkdownIt:
    md = _PolicyMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Tables are common in policy pages (fees, loan periods); the commonmark preset leaves them off.
    md.enable(["table", "strikethrough"], ignoreInvalid=True)
    # An image would make every librarian's browser fetch a third-party URL when the page opens:
    # a tracking pixel at best. `![alt](url)` therefore renders as "!" and a plain link.
    md.disable("image")
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _build()


def render_policy(markdown_text: str) -> SafeString:
    """Render a policy page to HTML that is safe to put in a template as is."""
    # Safe because the parser escapes all text and raw HTML is disabled: the only markup in the
    # output is what markdown-it itself generates, with link targets restricted above.
    return mark_safe(_MD.render(markdown_text or ""))
