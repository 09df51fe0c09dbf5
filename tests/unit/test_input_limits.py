"""Input limits as pure functions: JSON nesting, filter nesting and datetimes, error ids."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.api.errors import MAX_JSON_DEPTH, ApiError, json_depth, parse_json_body
from shared.odata_filter import MAX_DEPTH, FilterError, parse
from shared.store.errors import SyncError, parse_error_id

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:', max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=20,
)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_json_depth_ignores_brackets_inside_strings(value):
    assert json_depth(json.dumps(value)) == depth(value)


@pytest.mark.parametrize("n", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 2000, 100_000])
def test_nesting_beyond_the_limit_is_400(n):
    raw = ('{"a":' + "[" * (n - 1) + "]" * (n - 1) + "}").encode()
    if n <= MAX_JSON_DEPTH:
        assert parse_json_body(raw) == json.loads(raw)
    else:
        with pytest.raises(ApiError) as refused:
            parse_json_body(raw)
        assert refused.value.status == 400 and refused.value.code == "NestedTooDeep"


@given(st.binary(max_size=300))
def test_any_bytes_give_an_object_or_a_4xx(raw):
    try:
        assert isinstance(parse_json_body(raw), dict)
    except ApiError as exc:
        assert 400 <= exc.status < 500


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "a eq 1" + ")" * (MAX_DEPTH + 1),
        "not " * (MAX_DEPTH + 1) + "a eq 1",
        "tolower(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1) + " eq 'x'",
        "(" * 5000,
        "a gt 2024-02-30T00:00:00Z",
        "a gt 2024-01-01T25:00:00Z",
    ],
)
def test_deep_or_invalid_filters_are_filter_errors(text):
    with pytest.raises(FilterError):
        parse(text)


def test_filters_at_the_depth_limit_still_parse():
    assert parse("(" * MAX_DEPTH + "a eq 1" + ")" * MAX_DEPTH) is not None
    assert parse("not " * MAX_DEPTH + "a eq 1") is not None


@given(st.text(max_size=80))
def test_error_ids_parse_or_raise_value_error(text):
    try:
        run_id, row_key = parse_error_id(text)
    except ValueError:
        return
    assert "/" not in row_key and "#" not in row_key and "?" not in row_key


def test_a_real_error_id_round_trips():
    e = SyncError("1234567890123-abcdef", "CUSTOMER", "to_crm", "0a1b", None, "boom")
    assert parse_error_id(e.error_id) == ("1234567890123-abcdef", "CUSTOMER|to_crm|0a1b")
