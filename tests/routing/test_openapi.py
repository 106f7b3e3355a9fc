"""The OpenAPI description (routing/api/openapi.yaml) against the URLconf: every API route is
described, every described path resolves to its route, and a path answers 405 exactly for the
methods the description does not list. tests/live/test_openapi.py checks the answers themselves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from routing.api.openapi import description
from tests.factories import make_consortium

METHODS = ("get", "post", "put", "patch", "delete")
# The HTTP API: the protocol's endpoints and the staff console's JSON (pages and sockets are not).
API = re.compile(r"^(api/v1/|staff/api/)")


def routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def as_openapi(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def described() -> dict[str, Any]:
    paths: dict[str, Any] = description()["paths"]
    return paths


def sample(path: str, consortium: str = "oa") -> str:
    return path.replace("{consortium_slug}", consortium).replace("{chat_id}", "c0ffee").replace(
        "{file_id}", "f00d")


def test_every_api_route_is_described_and_nothing_else() -> None:
    in_urlconf = {as_openapi(r) for r in routes() if API.match(r)}
    assert in_urlconf, "the API's routes were found"
    assert in_urlconf == set(described())


def test_every_described_path_resolves_to_its_own_route() -> None:
    for path in described():
        match = resolve(sample(path))
        assert as_openapi(match.route) == path


@pytest.mark.django_db(transaction=True)  # the long-poll reads the database from another thread
def test_a_path_refuses_exactly_the_methods_it_does_not_describe() -> None:
    make_consortium("oa")  # a known consortium: an unknown one is 404 before the method is looked at
    client = Client()
    for path, item in described().items():
        for method in METHODS:
            body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
            response = getattr(client, method)(sample(path), **body)
            if method in item:
                assert response.status_code != 405, (method, path)
            else:
                assert response.status_code == 405, (method, path, response.status_code)


@pytest.mark.django_db
def test_the_description_is_served_as_json() -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    served = json.loads(response.content)
    assert served == description()
    assert served["openapi"].startswith("3.1")
