"""Issue 13.14: origins are compared by scheme, host and port, each written one way, wherever an origin is
checked (routing/access.py: the APIs' CORS, the widget, the sockets); http:// ones are refused with HTTPS on."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.test import Client

from consortium.admin import ConsortiumForm
from consortium.origins import Origin, normalize_origin, parse_origin
from libraries.consortium_file.validate import validate
from routing import access
from tests.factories import make_consortium, make_library, make_staff
from tests.routing.socket_helpers import staff_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_process")]
TYPED = ["https://WWW.Alpha-Library.org:443/", "http://lab.example.org:8080"]


def test_an_origin_is_written_one_way() -> None:
    assert parse_origin("HTTPS://Example.ORG:443/") == Origin("https", "example.org", 443)
    assert normalize_origin("https://example.org:443") == "https://example.org"
    assert normalize_origin("http://example.org:80/") == "http://example.org"
    assert normalize_origin("https://example.org:8443") == "https://example.org:8443"
    assert normalize_origin("http://[::1]:8000") == "http://[::1]:8000"
    for bad in ("null", "", "https://example.org/widget", "ftp://example.org", "https://u:p@example.org",
                "https://example.org:99999", "https://example.org?x=1", "example.org"):
        assert normalize_origin(bad) is None, bad


def test_allowed_origins_match_by_scheme_host_and_port(settings: Any) -> None:
    consortium = make_consortium("orig", allowed_origins=TYPED)
    for origin in ("https://www.alpha-library.org", "https://www.alpha-library.org:443", "http://lab.example.org:8080"):
        assert access.origin_allowed(origin, consortium), origin
    for origin in ("http://www.alpha-library.org", "https://www.alpha-library.org:8443", "http://lab.example.org",
                   "https://lab.example.org:8080", "https://www.alpha-library.org.evil.example", "null"):
        assert not access.origin_allowed(origin, consortium), origin
    # The site's own pages, while HTTPS is off (development, these tests): any port, either scheme.
    assert access.own_origin("http://127.0.0.1:8000") and access.own_origin("https://localhost")
    assert not access.own_origin("http://evil.example.com:8000")
    settings.HTTPS = True
    assert not access.origin_allowed("http://lab.example.org:8080", consortium), "plain http, in production"
    assert access.origin_allowed("https://www.alpha-library.org", consortium)
    assert access.own_origin("https://localhost") and access.own_origin("https://LOCALHOST:443")
    for own in ("http://127.0.0.1:8000", "http://localhost", "https://localhost:8443"):
        assert not access.own_origin(own), own


def test_the_widget_and_the_api_compare_whole_origins(settings: Any) -> None:
    make_library(make_consortium("orw", allowed_origins=TYPED), "orw-a")
    client = Client()

    def widget(origin: str) -> int:
        return client.get("/api/v1/orw/widget", HTTP_ORIGIN=origin).status_code

    assert widget("https://www.alpha-library.org") == 200
    assert widget("https://www.alpha-library.org:8443") == 403
    assert widget("http://www.alpha-library.org") == 403
    r = client.options("/api/v1/orw/chats", HTTP_ORIGIN="https://www.alpha-library.org",
                       HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert r.status_code == 204 and r["Access-Control-Allow-Origin"] == "https://www.alpha-library.org"
    assert client.options("/api/v1/orw/chats", HTTP_ORIGIN="https://www.alpha-library.org:8443").status_code == 403
    settings.HTTPS = True
    assert widget("http://lab.example.org:8080") == 403


async def test_the_staff_socket_refuses_an_http_origin_in_production(settings: Any) -> None:
    library = await database_sync_to_async(make_library)(await database_sync_to_async(make_consortium)("ors"), "ors-a")
    librarian = await database_sync_to_async(make_staff)(library, "orslib")
    settings.HTTPS = True
    plain = await staff_socket(librarian, origin=b"http://127.0.0.1:8000")
    refused = await plain.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    await plain.disconnect()
    secure = await staff_socket(librarian, origin=b"https://127.0.0.1")
    assert (await secure.receive_json_from(timeout=5))["type"] == "hello"
    await secure.disconnect()


def test_the_admin_and_the_import_store_origins_normalised_and_refuse_http_in_production(settings: Any) -> None:
    form = ConsortiumForm()
    # The admin refuses a trailing slash (docs say origins have no path); the rest is written one way.
    form.cleaned_data = {"allowed_origins": ["https://WWW.Alpha-Library.org:443", TYPED[1],
                                             "https://www.alpha-library.org"]}
    assert form.clean_allowed_origins() == ["https://www.alpha-library.org", "http://lab.example.org:8080"]
    doc = {"consortium": {"slug": "imp", "name": "Imp", "timezone": "America/New_York", "allowed_origins": TYPED},
           "libraries": [{"slug": "imp-a", "name": "Imp A", "kind": "public", "timezone": "America/New_York"}]}
    assert not [p for p in validate(doc) if "allowed_origins" in str(p)]
    settings.HTTPS = True
    with pytest.raises(ValidationError, match="http:// origins are refused while HTTPS is on"):
        form.clean_allowed_origins()
    problems = [str(p) for p in validate(doc) if "allowed_origins" in str(p)]
    assert len(problems) == 1 and "http:// origins are refused while HTTPS is on" in problems[0], problems
