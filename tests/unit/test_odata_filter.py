"""Unit tests for the OData $filter parser/evaluator used by mapping filters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.odata_filter import FilterError, compile_filter, evaluate, parse, properties


def ok(text: str, record: dict) -> bool:
    return evaluate(parse(text), record)


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        # and binds tighter than or: a or (b and c)
        ("a eq 1 or b eq 1 and c eq 1", {"a": 1, "b": 0, "c": 0}, True),
        ("a eq 1 or b eq 1 and c eq 1", {"a": 0, "b": 1, "c": 0}, False),
        ("(a eq 1 or b eq 1) and c eq 1", {"a": 1, "b": 0, "c": 0}, False),
        # not binds tighter than and/or
        ("not a eq 1 and b eq 1", {"a": 0, "b": 1}, True),
        ("not a eq 1 and b eq 1", {"a": 1, "b": 1}, False),
        ("not (a eq 1 and b eq 1)", {"a": 1, "b": 0}, True),
        ("not a eq 1 or b eq 1", {"a": 1, "b": 1}, True),
        ("((a eq 1))", {"a": 1}, True),
        ("not not a eq 1", {"a": 1}, True),
    ],
)
def test_precedence_and_parentheses(text: str, record: dict, expected: bool) -> None:
    assert ok(text, record) is expected


def test_string_escaping() -> None:
    node = parse("name eq 'O''Brien'")
    assert evaluate(node, {"name": "O'Brien"})
    assert not evaluate(node, {"name": "O''Brien"})
    assert not evaluate(node, {"name": "OBrien"})


def test_injection_looking_value_is_one_literal() -> None:
    node = parse("name eq 'x'' or 1 eq 1'")
    assert properties(node) == {"name"}
    assert evaluate(node, {"name": "x' or 1 eq 1"})
    assert not evaluate(node, {"name": "x"})
    assert not evaluate(node, {"name": "anything"})


def test_guid_case_insensitive() -> None:
    node = parse("id eq 6F9619FF-8B86-D011-B42D-00C04FC964FF")
    assert evaluate(node, {"id": "6f9619ff-8b86-d011-b42d-00c04fc964ff"})
    assert evaluate(node, {"id": "6F9619FF-8B86-D011-B42D-00C04FC964FF"})
    assert not evaluate(node, {"id": "6f9619ff-8b86-d011-b42d-00c04fc964f0"})
    # only GUIDs are case-insensitive: other 36-character strings compare exactly
    assert not ok(f"name eq '{'A' * 36}'", {"name": "a" * 36})
    assert ok("id ne 6f9619ff-8b86-d011-b42d-00c04fc964ff", {"id": "00000000-0000-0000-0000-000000000000"})


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("modifiedon gt 2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", True),
        ("modifiedon gt 2024-01-01T00:00:00Z", "2023-12-31T23:59:59Z", False),
        ("modifiedon eq 2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00", True),
        # +01:00 midnight is 23:00Z the day before
        ("modifiedon lt 2024-01-01T00:00:00+01:00", "2023-12-31T23:30:00Z", False),
        ("modifiedon lt 2024-01-01T00:00:00+01:00", "2023-12-31T22:59:59.5Z", True),
        ("modifiedon ge 2024-01-01T00:00:00.250Z", "2024-01-01T00:00:00.25Z", True),
        ("modifiedon gt 2024-01-01T00:00:00.250Z", "2024-01-01T00:00:00.2Z", False),
        ("modifiedon le 2024-01-01T00:00Z", "2024-01-01T00:00:00Z", True),
        ("modifiedon gt 2024-01-01T00:00:00Z", "not a date", False),
    ],
)
def test_datetime_against_iso_strings(text: str, value: str, expected: bool) -> None:
    assert ok(text, {"modifiedon": value}) is expected


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("x eq null", {}, True),
        ("x eq null", {"x": None}, True),
        ("x eq null", {"x": 0}, False),
        ("x ne null", {"x": ""}, True),
        ("x ne null", {"x": None}, False),
        ("x gt 1", {"x": None}, False),
        ("x lt 1", {}, False),
        ("x le null", {"x": 1}, False),
        ("x ge null", {"x": None}, False),
        ("not (x gt 1)", {"x": None}, True),
    ],
)
def test_null_comparisons(text: str, record: dict, expected: bool) -> None:
    assert ok(text, record) is expected


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("contains(name, 'ell')", {"name": "Hello"}, True),
        ("contains(name, 'xyz')", {"name": "Hello"}, False),
        ("contains(name, 'a')", {"name": None}, False),
        ("startswith(name, 'He')", {"name": "Hello"}, True),
        ("startswith(name, 'lo')", {"name": "Hello"}, False),
        ("endswith(name, 'lo')", {"name": "Hello"}, True),
        ("endswith(name, 'He')", {"name": "Hello"}, False),
        ("tolower(name) eq 'hello'", {"name": "HeLLo"}, True),
        ("toupper(name) eq 'HELLO'", {"name": "heLLo"}, True),
        ("toupper(name) eq 'hello'", {"name": "hello"}, False),
        ("startswith(tolower(name), 'he')", {"name": "HEllo"}, True),
        ("not contains(name, 'x') and endswith(name, 'o')", {"name": "Hello"}, True),
        ("contains(name, 'ell') eq true", {"name": "Hello"}, True),
        ("contains(name, 'ell') eq false", {"name": "Hello"}, False),
    ],
)
def test_functions(text: str, record: dict, expected: bool) -> None:
    assert ok(text, record) is expected


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("n eq 3", {"n": 3}, True),
        ("n eq 3", {"n": 3.0}, True),
        ("n gt 2.5", {"n": 3}, True),
        ("n gt 2.5", {"n": 2}, False),
        ("n ge -1", {"n": -1}, True),
        ("n lt -1.5", {"n": -1}, False),
        ("flag eq true", {"flag": True}, True),
        ("flag eq true", {"flag": False}, False),
        ("flag eq false", {"flag": False}, True),
        ("flag ne false", {"flag": True}, True),
        ("s gt 'b'", {"s": "c"}, True),
        ("s gt 1", {"s": "c"}, False),  # incomparable types are simply false
        ("1 eq 1", {}, True),
    ],
)
def test_numbers_booleans_strings(text: str, record: dict, expected: bool) -> None:
    assert ok(text, record) is expected


def test_properties_and_compile_filter_allowed() -> None:
    text = "a eq 1 and (contains(b, 'x') or not tolower(c) eq 'y')"
    assert properties(parse(text)) == {"a", "b", "c"}
    assert compile_filter(text, {"a", "b", "c", "d"}) == parse(text)
    with pytest.raises(FilterError, match="'zzz'"):
        compile_filter("a eq 1 or zzz eq 2", {"a"})
    with pytest.raises(FilterError, match="'c'"):
        compile_filter(text, {"a", "b"})
    # literal strings are not properties
    assert compile_filter("a eq 'zzz'", {"a"}) is not None


@pytest.mark.parametrize(
    "text",
    [
        "(a eq 1",
        "a eq 1)",
        "a eq (1",
        "a eq 1 and",
        "a eq 1 or",
        "not",
        "a eq 1 and or b eq 2",
        "'bare'",
        "42",
        "name",
        "frobnicate(name) eq 1",
        "1 eq",
        "eq 1",
        "a eq eq 1",
        "a eq 1 b eq 2",
        "name eq 'unterminated",
        "name eq ’curly’",
        "naïve eq 1",
        "a ≠ 1",
        "a eq 1; drop",
        "contains(name)",
        "tolower(a, b) eq 'x'",
        "a eq 1,",
        "()",
        "a == 1",
    ],
)
def test_malformed_inputs_raise_filter_error(text: str) -> None:
    with pytest.raises(FilterError):
        parse(text)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_filter_matches_everything(text: str) -> None:
    assert parse(text) is None
    assert compile_filter(text, set()) is None
    assert evaluate(parse(text), {}) is True
    assert evaluate(None, {"anything": 1}) is True


@settings(max_examples=200, deadline=None)
@given(s=st.text(), other=st.text() | st.from_regex(r"\A[a-zA-Z]{36}\Z"))
def test_escaped_string_literal_round_trips(s: str, other: str) -> None:
    node = parse(f"name eq '{s.replace(chr(39), chr(39) * 2)}'")
    assert evaluate(node, {"name": s}) is True
    if other != s:
        assert evaluate(node, {"name": other}) is False


def test_date_literals_compare_with_date_values():
    node = parse("startingDate gt 2026-12-02 and startingDate le 2026-12-31")
    assert evaluate(node, {"startingDate": "2026-12-10"})
    assert not evaluate(node, {"startingDate": "2026-12-02"})
    with pytest.raises(FilterError, match="invalid date"):
        parse("startingDate gt 2026-13-40")
