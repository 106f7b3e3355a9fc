"""routing.validation.Fields: one way to check a socket frame or an HTTP body."""

from __future__ import annotations

import pytest

from routing.validation import MAX_JSON_DEPTH, Fields, Invalid, json_object, nesting_depth


def test_every_problem_is_kept_and_the_first_names_its_field() -> None:
    f = Fields({"body": 5, "client_id": "", "after": True, "status": "busy"})
    f.text("body", required=True, max_len=10)
    f.client_id()
    f.integer("after")
    f.choice("status", ("available", "away"))
    with pytest.raises(Invalid) as raised:
        f.check()
    assert raised.value.code == "invalid"
    assert raised.value.detail == "body must be a string"
    assert set(raised.value.fields) == {"body", "client_id", "after", "status"}
    assert raised.value.fields["status"] == ["must be available or away"]


def test_a_value_over_its_limit_is_too_large() -> None:
    f = Fields({"body": "x" * 11})
    assert f.text("body", max_len=10) == ""
    with pytest.raises(Invalid) as raised:
        f.check()
    assert raised.value.code == "too_large" and "at most 10" in raised.value.detail


def test_text_strips_unless_told_and_blank_required_text_is_refused() -> None:
    assert Fields({"q": "  hi  "}).text("q") == "hi"
    assert Fields({"q": "  hi  "}).text("q", strip=False) == "  hi  "
    f = Fields({"q": "   "})
    f.text("q", required=True, strip=False)
    assert f.problems == {"q": ["must not be empty"]}


def test_integers_objects_and_emails() -> None:
    f = Fields({"rating": 6, "to": {"queue": 3}, "email": "not-mail"})
    assert f.integer("rating", minimum=1, maximum=5) == 0
    assert f.object("to", '{"queue": slug}', queue=str) == {}
    f.email("email")
    f.integer("missing", required=True, minimum=1, maximum=5)
    assert f.problems == {"rating": ["must be a whole number from 1 to 5"], "to": ['must be {"queue": slug}'],
                          "email": ["must be an email address"], "missing": ["must be a whole number from 1 to 5"]}
    ok = Fields({"rating": 4, "to": {"library": "tampa"}})
    assert ok.integer("rating", minimum=1, maximum=5) == 4
    assert ok.object("to", "", library=str) == {"library": "tampa"}
    assert ok.object("absent", "", required=False) == {}
    ok.check()


def test_form_numbers_and_optional_choices() -> None:
    f = Fields({"read_scale": "3", "blank": "", "bad": "7", "outcome": "", "other": "maybe"})
    assert f.optional_integer("read_scale", minimum=1, maximum=6) == 3
    assert f.optional_integer("blank", minimum=1, maximum=6) is None
    assert f.optional_integer("absent", minimum=1, maximum=6) is None
    assert f.optional_integer("bad", minimum=1, maximum=6) is None
    assert f.choice("outcome", ("answered", "referred"), required=False) == ""
    assert f.choice("other", ("answered", "referred"), required=False) == ""
    assert f.problems == {"bad": ["must be a whole number from 1 to 6"], "other": ["must be answered or referred"]}


@pytest.mark.parametrize(("raw", "code", "detail"), [
    ("x" * 20, "too_large", "a frame is limited to 10 bytes"),
    ("{nope", "invalid", "a frame is not valid JSON"),
    ("[1]", "invalid", "a frame must be a JSON object"),
])
def test_json_objects_one_way_for_frames_and_bodies(raw: str, code: str, detail: str) -> None:
    with pytest.raises(Invalid) as raised:
        json_object(raw, what="a frame", max_bytes=10)
    assert (raised.value.code, raised.value.detail) == (code, detail)
    assert json_object(b'{"a": 1}', what="the body") == {"a": 1}
    assert json_object(b"", what="the body") == {}


def test_nesting_depth_counts_brackets_outside_strings_in_linear_time() -> None:
    assert nesting_depth(b'{"a": [1, {"b": "]]]"}], "c": "\\"[[["}') == 3
    assert nesting_depth(b"[" * 60_000) == 60_000
    # Unclosed strings and lone quotes, the worst case of a string pattern, still scan in one pass.
    assert nesting_depth(b'"\\"' * 20_000) == 0 and nesting_depth(b'"' * 60_000) == 0


@pytest.mark.parametrize("raw", ["[" * 60_000, '{"a":' * 33 + "1" + "}" * 33, "[" * 2_000 + "]" * 2_000,
                                 '{"type": "message", "body": ' + "[" * 5_000 + "]" * 5_000 + "}"])
def test_deep_json_is_invalid_not_a_recursion_error(raw: str) -> None:
    """The parser recurses once per level: RecursionError (not a ValueError) under a thousand levels."""
    with pytest.raises(Invalid) as raised:
        json_object(raw, what="the body")
    nested = f"the body nests deeper than {MAX_JSON_DEPTH} levels"
    assert (raised.value.code, raised.value.detail) == ("invalid", nested)
    depth_32 = '{"a":' * 31 + "[1]" + "}" * 31
    assert nesting_depth(depth_32.encode()) == MAX_JSON_DEPTH
    assert json_object(depth_32, what="the body")["a"]
