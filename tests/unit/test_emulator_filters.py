"""The emulators' $filter → SQL compilation (bound parameters only) on a real SQLite store."""

import pytest

from devstack.emulator_kit import ODataError, Store, compile_filter, json_columns


@pytest.fixture
def store():
    s = Store(["things"])
    for key, name in [("1", "Alpha"), ("2", "Alps"), ("3", "Beta"), ("4", "x' or 1 eq 1")]:
        s.put("things", key, {"name": name, "n": int(key)})
    return s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("startswith(name, 'Alp')", ["Alpha", "Alps"]),
        ("endswith(name, 'ta')", ["Beta"]),
        ("contains(name, 'lp') and n gt 1", ["Alps"]),
        ("name eq 'x'' or 1 eq 1'", ["x' or 1 eq 1"]),
        ("not (n le 2) or name eq null", ["Beta", "x' or 1 eq 1"]),
    ],
)
def test_filters(store, text, expected):
    columns = json_columns(["name", "n"], "key")
    where, params = compile_filter(text, columns)
    assert [r["name"] for r in store.query("things", where, params)] == expected


def test_unknown_property_and_bad_syntax_are_odata_errors():
    columns = json_columns(["name"], "key")
    with pytest.raises(ODataError, match="nope"):
        compile_filter("nope eq 1", columns)
    with pytest.raises(ODataError):
        compile_filter("name eq", columns)
