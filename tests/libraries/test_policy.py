from __future__ import annotations

import pytest
from django.utils.safestring import SafeString

from libraries.policy import is_allowed_link, render_policy


def test_script_is_escaped() -> None:
    html = render_policy("<script>alert(1)</script>")
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_img_onerror_is_escaped() -> None:
    html = render_policy("<img src=x onerror=alert(1)>")
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_html_block_is_escaped() -> None:
    html = render_policy('<div onclick="steal()">\n\nhi\n\n</div>')
    assert "<div" not in html


@pytest.mark.parametrize("text", [
    "[x](javascript:alert(1))",
    "[x](JavaScript:alert(1))",
    "[x](java&#115;cript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](vbscript:msgbox)",
    "[x](/relative/path)",
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)",
])
def test_unsafe_or_unexpected_links_are_text(text: str) -> None:
    html = render_policy(text)
    assert "<a" not in html
    assert "href" not in html


def test_markdown_renders() -> None:
    html = render_policy("# Cards\n\n- free\n- for residents\n\n[Catalog](https://catalog.example.org)")
    assert "<h1>Cards</h1>" in html
    assert "<li>free</li>" in html
    assert '<a href="https://catalog.example.org"' in html
    assert ">Catalog</a>" in html


def test_every_link_opens_apart() -> None:
    html = render_policy("[a](https://a.example.org) [m](mailto:ref@example.org) <http://b.example.org>")
    assert html.count('rel="noopener noreferrer"') == 3
    assert html.count('target="_blank"') == 3


def test_tables_render() -> None:
    html = render_policy("| fee | amount |\n|---|---|\n| card | 0 |")
    assert "<table>" in html
    assert "<td>card</td>" in html


def test_images_do_not_load_third_party_content() -> None:
    assert "<img" not in render_policy("![pixel](https://tracker.example.org/p.gif)")


def test_is_safe_string() -> None:
    assert isinstance(render_policy("hi"), SafeString)
    assert render_policy("") == ""


def test_allowed_links() -> None:
    assert is_allowed_link("https://x.org")
    assert is_allowed_link("MAILTO:a@b.org")
    assert not is_allowed_link("javascript:alert(1)")
    assert not is_allowed_link("//evil.example.org")
