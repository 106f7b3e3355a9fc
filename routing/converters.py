"""Path converters: the ids in URLs (routing.models.new_id: URL-safe characters), so anything else
(a NUL byte, which PostgreSQL refuses in a query, and answered 500) is an unknown URL, a 404."""

from django.urls import register_converter


class IdConverter:
    regex = "[-A-Za-z0-9_]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(IdConverter, "id")
