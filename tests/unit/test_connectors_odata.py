"""OData literals and conditions: values can never change the shape of a query."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.connectors.errors import (
    Conflict,
    Duplicate,
    NotFound,
    PreconditionFailed,
    Throttled,
    Transient,
    parse_error,
)
from shared.connectors.http import retry_after_seconds
from shared.connectors.odata import and_, any_of, cmp, eq, guid, literal, or_


def test_quotes_stay_inside_one_literal():
    text = eq("name", "x' or 1 eq 1")
    assert text == "name eq 'x'' or 1 eq 1'"
    # Exactly one literal: stripping the doubled quotes leaves one opening and one closing quote.
    assert text.split(" eq ", 1)[1].replace("''", "").count("'") == 2


def test_literals_of_every_kind():
    assert literal(None) == "null"
    assert literal(True) == "true" and literal(False) == "false"
    assert literal(42) == "42" and literal(1.5) == "1.5"
    assert literal("") == "''"
    g = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert literal(g) == str(g)
    assert literal(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))) == "2024-01-01T00:00:00.000Z"
    assert literal(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000Z"


@pytest.mark.parametrize("bad", [datetime(2024, 1, 1), float("nan"), float("inf"), object(), [1]])
def test_values_without_a_safe_literal_are_rejected(bad):
    with pytest.raises(ValueError):
        literal(bad)


@pytest.mark.parametrize("bad", ["", "not-a-guid", "1) or (1 eq 1", "12345678-1234-5678-1234-56781234567x"])
def test_bad_guids_are_rejected_before_sending(bad):
    with pytest.raises(ValueError):
        guid(bad)
    with pytest.raises(ValueError):
        any_of("accountid", [str(uuid.uuid4()), bad])


def test_guid_normalizes():
    g = "{12345678-1234-5678-1234-567812345678}"
    assert guid(g.upper()) == "12345678-1234-5678-1234-567812345678"


@pytest.mark.parametrize("field", ["", "name eq 'x' or name", "a/b", "x)"])
def test_field_names_are_checked(field):
    with pytest.raises(ValueError):
        eq(field, "v")


def test_conditions_compose_with_parentheses():
    assert cmp("creditlimit", "ge", 10) == "creditlimit ge 10"
    with pytest.raises(ValueError):
        cmp("creditlimit", "eq 1 or x", 10)
    text = and_(eq("statecode", 0), or_(eq("name", "a'b"), eq("name", "c")), "")
    assert text == "(statecode eq 0) and ((name eq 'a''b') or (name eq 'c'))"
    assert and_(eq("a", 1)) == "a eq 1"


def test_error_bodies_of_both_services_are_typed():
    dv_dup = parse_error("dataverse", 412, {"error": {"code": "0x80040237", "message": "dup"}})
    assert isinstance(dv_dup, Duplicate) and dv_dup.code == "0x80040237" and dv_dup.message == "dup"
    bc_dup = parse_error("bc", 400, {"error": {"code": "Internal_EntityWithSameKeyExists", "message": "m"}})
    assert isinstance(bc_dup, Duplicate)
    assert isinstance(parse_error("bc", 409, {"error": {"code": "Request_EntityChanged"}}), Conflict)
    assert isinstance(parse_error("dataverse", 412, {"error": {"code": "0x80060882"}}), PreconditionFailed)
    assert isinstance(parse_error("dataverse", 404, {"error": {"code": "0x80040217"}}), NotFound)
    assert isinstance(parse_error("bc", 429, "slow down"), Throttled)
    err = parse_error("bc", 502, "<html>bad gateway</html>")
    assert isinstance(err, Transient) and err.status == 502 and "bad gateway" in err.message


def test_retry_after_in_seconds_or_http_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0  # in the past: no wait
    future = (datetime.now(UTC) + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 100 < retry_after_seconds(future) <= 120
