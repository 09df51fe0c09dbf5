"""The query builder against our own filter parser: whatever the value, it parses back as one literal of
the intended comparison (no value can add a condition), and the production filters are built by it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.connectors.odata import (
    RESERVED,
    and_,
    any_of,
    call,
    canonical_guid,
    cmp,
    eq,
    or_,
    since,
    timestamp,
)
from shared.odata_filter import Call, Compare, Literal, Logical, Prop, evaluate, parse
from shared.store.tables import iso
from shared.sync.probe import _rates_since

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
    lambda n: n not in RESERVED and n not in ("contains", "startswith", "endswith", "tolower", "toupper")
)
# Any text, and text made of the grammar's own characters (quotes, parentheses, keywords) so that an
# escaping mistake is found in every run.
values = st.text() | st.text(alphabet=st.sampled_from(list("'(), eqandort1")))
aware = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


@given(field=names, value=values)
def test_any_string_is_one_literal(field, value):
    assert parse(eq(field, value)) == Compare("eq", Prop(field), Literal(value))
    assert evaluate(parse(eq(field, value)), {field: value})
    assert not evaluate(parse(eq(field, value)), {field: value + "x"})


@given(a=values, b=values)
def test_composed_conditions_keep_their_shape(a, b):
    text = and_(eq("name", a), or_(eq("city", b), cmp("creditlimit", "ge", 10)))
    assert parse(text) == Logical(
        "and",
        Compare("eq", Prop("name"), Literal(a)),
        Logical(
            "or", Compare("eq", Prop("city"), Literal(b)), Compare("ge", Prop("creditlimit"), Literal(10))
        ),
    )


@given(function=st.sampled_from(["startswith", "contains", "endswith"]), value=values)
def test_function_arguments_are_literals(function, value):
    assert parse(call(function, "displayName", value)) == Call(
        function, (Prop("displayName"), Literal(value))
    )


@given(value=st.one_of(st.integers(-(2**53), 2**53), st.booleans(), st.none()))
def test_numbers_booleans_and_null(value):
    assert parse(eq("x", value)) == Compare("eq", Prop("x"), Literal(value))


@given(when=aware)
def test_a_stored_watermark_keeps_its_precision(when):
    # iso() is how watermarks are stored: microseconds when there are any, 'Z' for UTC.
    text = since("lastModifiedDateTime", iso(when))
    assert text == f"lastModifiedDateTime ge {iso(when)}"
    assert parse(text) == Compare("ge", Prop("lastModifiedDateTime"), Literal(when))


@given(when=aware)
def test_a_datetime_is_sent_in_utc_milliseconds(when):
    node = parse(cmp("modifiedon", "lt", when))
    assert node.right == Literal(when.replace(microsecond=when.microsecond // 1000 * 1000))


@given(day=st.dates())
def test_dates_are_edm_date_literals(day):
    assert parse(cmp("startingDate", "gt", day)) == Compare("gt", Prop("startingDate"), Literal(day))


@given(ids=st.lists(st.uuids(), min_size=1, max_size=20), other=st.uuids())
def test_any_of_matches_exactly_the_listed_ids(ids, other):
    assume(other not in ids)
    node = parse(any_of("accountid", [str(i).upper() for i in ids]))
    assert all(evaluate(node, {"accountid": str(i)}) for i in ids)
    assert not evaluate(node, {"accountid": str(other)})


@pytest.mark.parametrize(
    "bad",
    [
        "2024-01-01T00:00:00Z or 1 eq 1",
        "2024-01-01T00:00:00Z) or (true",
        "2024-13-01T00:00:00Z",
        "2024-01-01T25:00:00Z",
        "2024-01-01",
        "2024-01-01T00:00:00",  # no offset: ambiguous
        "",
        None,
        "'2024-01-01T00:00:00Z'",
    ],
)
def test_a_timestamp_that_is_not_one_is_refused(bad):
    with pytest.raises(ValueError):
        timestamp(bad)
    with pytest.raises(ValueError):
        since("modifiedon", bad)


def test_timestamps_of_both_services_are_accepted_as_written():
    for text in ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123Z", "2024-01-01T00:00:00.1234567Z",
                 "2024-01-01T02:00:00+02:00"):  # fmt: skip
        assert timestamp(text) == text
    assert (
        timestamp(datetime(2024, 1, 1, 2, tzinfo=UTC) + timedelta(microseconds=5))
        == "2024-01-01T02:00:00.000Z"
    )


@pytest.mark.parametrize("field", ["true", "and", "not", "ge", "null", "1abc", "a²", "é", "a b", "a)", None])
def test_field_names_are_ascii_identifiers_and_not_grammar_words(field):
    with pytest.raises(ValueError):
        eq(field, 1)
    with pytest.raises(ValueError):
        any_of(field, [str(uuid.uuid4())])


@pytest.mark.parametrize("bad", [("substringof", "x"), ("startswith", 1), ("contains", None)])
def test_only_string_functions_with_string_values(bad):
    function, value = bad
    with pytest.raises(ValueError):
        call(function, "name", value)


def test_canonical_guid_accepts_the_8_4_4_4_12_form_only():
    g = "12345678-ABCD-5678-1234-567812345678"
    assert canonical_guid(g) == g.lower()
    for bad in (
        "{12345678-1234-5678-1234-567812345678}",
        "12345678123456781234567812345678",
        "x" * 36,
        None,
        5,
    ):
        assert canonical_guid(bad) is None


def test_the_exchange_rate_probe_filter_is_built_from_literals():
    node = parse(_rates_since("2026-12-02T10:00:00.123456Z").query["$filter"])
    assert isinstance(node, Logical) and node.op == "or"
    assert node.left == Compare(
        "ge", Prop("lastModifiedDateTime"), Literal(datetime(2026, 12, 2, 10, 0, 0, 123456, UTC))
    )
    started = node.right
    assert started.op == "and" and started.left == Compare(
        "gt", Prop("startingDate"), Literal(date(2026, 12, 2))
    )
    assert started.right.op == "le" and isinstance(started.right.right.value, date)
    with pytest.raises(ValueError):
        _rates_since("2026-12-02' or 1 eq 1")
