"""GET /api/v1/openapi.json: the HTTP API's description (routing/api/openapi.yaml), read once."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

SOURCE = Path(__file__).with_name("openapi.yaml")


@cache
def description() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    return loaded


@cache
def _as_json() -> bytes:
    return json.dumps(description(), separators=(",", ":")).encode()


@require_GET
def openapi_json(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_as_json(), content_type="application/json")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"  # a public document: any tool may read it
    return response
