"""Computed values and destination checks (shared/sync/derived.py, shared/sync/checks.py): pure logic."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.sync.checks import ValueRefused, check_bc, check_crm, convert_bc, missing_required
from shared.sync.derived import (
    DerivationFailed,
    compose_person_name,
    decimal_places,
    new_code,
    rate_per_base,
    rates_per_lcy,
    split_person_name,
)

words = st.lists(
    st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=12), min_size=1, max_size=5
)


@given(words)
def test_person_name_survives_the_round_trip(parts):
    name = " ".join(parts)
    first, last = split_person_name(name)
    assert last == parts[-1]  # BC's NameBreakdown: the last word is the surname
    assert compose_person_name(first, last) == name


def test_person_name_edges():
    assert split_person_name("Cher") == ("", "Cher")  # Dataverse requires lastname
    assert split_person_name("  Anna   Maria  Svensson ") == ("Anna Maria", "Svensson")
    assert split_person_name(None) == ("", "")
    assert compose_person_name(None, "Svensson") == "Svensson"


def test_decimal_places():
    assert decimal_places("2:5") == 2 and decimal_places("0") == 0 and decimal_places("12:12") == 10
    assert decimal_places("") == decimal_places(None) == 2  # BC's default amount decimal places, 2:2


def test_new_code_is_unique_and_bounded():
    taken: set[str] = {"AMS"}
    assert new_code("Anna Maria Svensson", taken) == "AMS2"
    assert new_code("Anna Maria Svensson", taken) == "AMS3"
    assert new_code("Bob", taken) == "BOB"
    assert new_code("", taken) == "SP"
    assert len(new_code("x " * 40, set(), length=10)) <= 10


def test_exchange_rates_follow_bc_semantics():
    rows = [
        # 100 EUR = 110.5 USD (LCY): 0.905 EUR per USD
        {"currencyCode": "EUR", "startingDate": "2020-01-01", "exchangeRateAmount": 100,
         "relationalExchangeRateAmount": 110.5, "relationalCurrencyCode": ""},
        {"currencyCode": "EUR", "startingDate": "2024-01-01", "exchangeRateAmount": 100,
         "relationalExchangeRateAmount": 108, "relationalCurrencyCode": ""},
        {"currencyCode": "EUR", "startingDate": "2999-01-01", "exchangeRateAmount": 1,
         "relationalExchangeRateAmount": 1, "relationalCurrencyCode": ""},  # not started yet
        # SEK quoted against EUR: 11 SEK per EUR
        {"currencyCode": "SEK", "startingDate": "2024-01-01", "exchangeRateAmount": 11,
         "relationalExchangeRateAmount": 1, "relationalCurrencyCode": "EUR"},
    ]  # fmt: skip
    per_lcy = rates_per_lcy(rows, today="2025-06-01")
    assert per_lcy["EUR"] == pytest.approx(100 / 108)
    assert per_lcy["SEK"] == pytest.approx(11 * 100 / 108)
    assert rate_per_base("EUR", "USD", "USD", per_lcy) == pytest.approx(0.9259259259)
    assert rate_per_base("USD", "USD", "USD", per_lcy) == 1.0
    # Dataverse's base is EUR while BC's LCY is USD: cross through LCY
    assert rate_per_base("SEK", "EUR", "USD", per_lcy) == pytest.approx(11.0)
    assert rate_per_base("USD", "EUR", "USD", per_lcy) == pytest.approx(1.08)
    with pytest.raises(DerivationFailed, match="GBP"):
        rate_per_base("GBP", "USD", "USD", per_lcy)


class Countries:
    def country_code(self, value):
        return {"us": "US", "united states": "US", "se": "SE"}.get(value.strip().casefold())


def test_bc_values_are_checked_against_the_contract():
    derived = Countries()
    assert convert_bc("customers", "country", "United States", derived) == "US"
    assert convert_bc("customers", "country", "Atlantis", derived) == "Atlantis"
    check_bc("customers", "country", "US", derived)
    with pytest.raises(ValueRefused, match="country/region code") as err:
        check_bc("customers", "country", "Atlantis", derived)
    assert err.value.field == "country"
    with pytest.raises(ValueRefused, match="at most 30"):
        check_bc("customers", "city", "x" * 31, derived)  # Dataverse city holds 80
    with pytest.raises(ValueRefused, match="at most 100"):
        check_bc("customers", "addressLine1", "x" * 250, derived)
    with pytest.raises(ValueRefused, match="not one of"):
        check_bc("contacts", "type", "Robot", derived)
    check_bc("customers", "city", "x" * 30, derived)


def test_crm_values_are_checked_and_negatives_raised_to_the_minimum():
    assert check_crm("products", "price", -12.5) == (0.0, "price below 0")
    assert check_crm("products", "quantityonhand", -3) == (0, "quantityonhand below 0")
    assert check_crm("products", "price", 12.5) == (12.5, None)
    assert check_crm("accounts", "creditlimit", -1)[1] is None  # no minimum published
    with pytest.raises(ValueRefused, match="at most 5"):
        check_crm("transactioncurrencies", "isocurrencycode", "LONGCODE")
    assert missing_required("products", {"productnumber": "1", "name": "n", "defaultuomscheduleid": "x"}) == [
        "defaultuomid",
        "quantitydecimal",
    ]
