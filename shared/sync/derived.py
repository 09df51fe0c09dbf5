"""Values a mapping computes instead of copying, and the reference data they need.

- person names: BC contacts expose one ``displayName`` (API v2.0 has no first name or surname), Dataverse
  contacts ``firstname`` + ``lastname`` (lastname required, 50 characters). BC splits a name as its
  Contact table's NameBreakdown does (last word = surname); the words before the last go to firstname,
  so ``compose(split(name)) == name`` and a name survives the round trip.
- exchange rates: Dataverse wants units of the currency per unit of *its* base currency; BC keeps
  ``currencyExchangeRates`` against the company's local currency (LCY, ``companyInformation.currencyCode``).
  The rate is BC's latest rate that has started, crossed through LCY when the base currency differs —
  what BC's own integration computes (CRMSynchHelper.GetCRMLCYToFCYExchangeRate), rounded to 1e-10.
- company contacts: a BC contact's ``companyNumber`` is the number of its company *contact*; the
  customer behind it is the company contact's Customer business relation (``contactsInformation``).
- base units: a product needs ``defaultuomid``, the base unit of its unit group (``uoms`` with
  ``isschedulebaseuom``).
- countries: BC ``country`` is a Country/Region code (Code[10], related table); a Dataverse country is
  free text, accepted as a code or as a country's name.
- salesperson codes: a BC salesperson needs a code (no number series); one is made from the initials.
- options: a choice column (an account's payment terms) holds an option's value; the option mappings
  couple BC records with options (shared/connectors/option_sets.py), so a value is translated through the
  option's record id.

Reference data is read once per process and read again, at most once per slice, when a value is missing
(a related record may have been created a moment ago).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

from shared.connectors.odata import eq
from shared.errors import RecordRefused

RATE_PRECISION = 10


class DerivationFailed(RecordRefused):
    """A computed value cannot be computed (missing exchange rate, unknown company contact …)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def split_person_name(name: Any) -> tuple[str, str]:
    """BC ``displayName`` -> (firstname, lastname); one word is the last name (Dataverse requires it)."""
    words = str(name or "").split()
    if not words:
        return "", ""
    return " ".join(words[:-1]), words[-1]


def compose_person_name(first: Any, last: Any) -> str:
    return " ".join(str(v).strip() for v in (first, last) if v and str(v).strip())


def decimal_places(value: Any) -> int:
    """BC ``amountDecimalPlaces`` ("2:2", "2:5", "0") -> the minimum number of decimals, within 0..10;
    blank is BC's default, 2:2."""
    match = re.match(r"\s*(\d+)", str(value or ""))
    return min(int(match.group(1)), 10) if match else 2


def new_code(name: Any, taken: set[str], length: int = 20) -> str:
    """A new code from a name's initials (``Anna Maria Svensson`` -> ``AMS``), unique among ``taken``."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", str(name or "").upper()) if w]
    base = "".join(w[0] for w in words) if len(words) > 1 else (words[0][:3] if words else "SP")
    base = base[: length - 3] or "SP"
    code, n = base, 1
    while code in taken:
        n += 1
        code = f"{base}{n}"
    taken.add(code)
    return code


def rate_per_base(code: str, base: str, lcy: str, per_lcy: dict[str, float]) -> float:
    """Units of ``code`` per unit of ``base``, from rates of each currency per unit of LCY."""
    code, base, lcy = code.upper(), base.upper(), lcy.upper()

    def to_lcy(c: str) -> float:
        if c == lcy:
            return 1.0
        if c not in per_lcy:
            raise DerivationFailed(f"Business Central has no exchange rate for {c} (currencyExchangeRates)")
        return per_lcy[c]

    if code == base:
        return 1.0
    return round(to_lcy(code) / to_lcy(base), RATE_PRECISION)


def rates_per_lcy(rows: list[dict[str, Any]], today: str | None = None) -> dict[str, float]:
    """The current rate of each currency per unit of LCY: the latest row whose startingDate has come."""
    today = today or datetime.now(UTC).date().isoformat()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        code, start = str(row.get("currencyCode") or "").upper(), str(row.get("startingDate") or "")
        if not code or start[:10] > today:
            continue
        if code not in latest or start > str(latest[code].get("startingDate")):
            latest[code] = row
    out: dict[str, float] = {}
    pending = dict(latest)
    for _ in range(3):  # a rate may be relative to another currency: resolve a few levels deep
        for code, row in list(pending.items()):
            amount, relational = row.get("exchangeRateAmount"), row.get("relationalExchangeRateAmount")
            if not amount or not relational:
                pending.pop(code)
                continue
            via = str(row.get("relationalCurrencyCode") or "").upper()
            factor = 1.0 if not via else out.get(via)
            if factor is None:
                continue
            out[code] = float(amount) / float(relational) * factor
            pending.pop(code)
    return out


class _Shared:
    """Reference data cached per process, keyed by storage namespace and what it is."""

    data: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()


class Derived:
    """One slice's view of the reference data (see the module docstring)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.namespace = ctx.tables.prefix
        self._reloaded: set[str] = set()
        self._local: dict[str, Any] = {}

    def _cached(self, what: str, load, refresh: bool = False):
        key = (self.namespace, what)
        if refresh and what not in self._reloaded:
            self._reloaded.add(what)
            value = load()
            with _Shared.lock:
                _Shared.data[key] = value
            return value
        with _Shared.lock:
            value = _Shared.data.get(key)
        if value is None:
            value = load()
            with _Shared.lock:
                _Shared.data[key] = value
        return value

    def _find(self, what: str, load, getter):
        found = getter(self._cached(what, load))
        if found is None:
            found = getter(self._cached(what, load, refresh=True))
        return found

    # --- company contacts ------------------------------------------------------------------------
    def _load_company_contacts(self) -> tuple[dict[str, str], dict[str, str]]:
        by_number, by_customer = {}, {}
        rows = self.ctx.bc.iter_records(
            "contactsInformation",
            filter=eq("relatedType", "Customer"),
            select=["contactNumber", "contactType", "relatedId"],
        )
        for row in rows:
            if row.get("contactType") == "Company" and row.get("relatedId"):
                number, customer = str(row["contactNumber"]), str(row["relatedId"]).lower()
                by_number[number] = customer
                by_customer[customer] = number
        return by_number, by_customer

    def customer_of_company_contact(self, number: str) -> str | None:
        return self._find("company_contacts", self._load_company_contacts, lambda ix: ix[0].get(str(number)))

    def company_contact_of_customer(self, customer_id: str) -> str | None:
        key = customer_id.lower()
        return self._find("company_contacts", self._load_company_contacts, lambda ix: ix[1].get(key))

    # --- exchange rates (read every slice: rates change, and CURRENCY is one small slice) ------------
    def exchange_rate(self, code: Any) -> float:
        if "rates" not in self._local:
            lcy = str(self.ctx.bc.company_information().get("currencyCode") or "")
            if not lcy:
                raise DerivationFailed("Business Central companyInformation has no currencyCode (LCY)")
            per_lcy = rates_per_lcy(list(self.ctx.bc.iter_records("currencyExchangeRates")))
            base_id = self.ctx.dataverse.organization().get("_basecurrencyid_value")
            base = (
                self.ctx.dataverse.get("transactioncurrencies", base_id, ["isocurrencycode"])
                if base_id
                else None
            )
            if not base:
                raise DerivationFailed("the Dataverse organization has no base currency")
            self._local["rates"] = (str(base["isocurrencycode"]), lcy, per_lcy)
        base, lcy, per_lcy = self._local["rates"]
        return rate_per_base(str(code), base, lcy, per_lcy)

    # --- base units of unit groups ------------------------------------------------------------------
    def _load_base_uoms(self) -> dict[str, str]:
        rows = self.ctx.dataverse.iter_records(
            "uoms", filter=eq("isschedulebaseuom", True), select=["uomid", "_uomscheduleid_value"]
        )
        return {str(r["_uomscheduleid_value"]).lower(): str(r["uomid"]).lower() for r in rows}

    def base_uom(self, schedule_id: str) -> str | None:
        key = str(schedule_id).lower()
        return self._find("base_uoms", self._load_base_uoms, lambda ix: ix.get(key))

    # --- options of choice columns ----------------------------------------------------------------------
    def _load_options(self, option_set: str):
        def load() -> tuple[dict[str, int], dict[int, tuple[str, str]]]:
            rows = self.ctx.dataverse.option_sets.options(option_set)
            return {r["optionid"]: r["value"] for r in rows}, {
                r["value"]: (r["optionid"], r["label"]) for r in rows
            }

        return load

    def option_value(self, option_set: str, option_id: str) -> int | None:
        """The value of the option with this record id, None when the option set has no such option."""
        key = str(option_id).lower()
        return self._find(f"options:{option_set}", self._load_options(option_set), lambda ix: ix[0].get(key))

    def option(self, option_set: str, value: Any) -> tuple[str, str] | None:
        """(record id, label) of the option with this value, None when the option set has no such value."""
        try:
            number = int(value)
        except (TypeError, ValueError):
            return None
        return self._find(
            f"options:{option_set}", self._load_options(option_set), lambda ix: ix[1].get(number)
        )

    # --- countries ------------------------------------------------------------------------------------
    def _load_countries(self) -> dict[str, str]:
        out = {}
        for row in self.ctx.bc.iter_records("countriesRegions", select=["code", "displayName"]):
            code = str(row.get("code") or "")
            if code:
                out[code.casefold()] = code
                if row.get("displayName"):
                    out.setdefault(str(row["displayName"]).casefold(), code)
        return out

    def country_code(self, value: Any) -> str | None:
        key = str(value).strip().casefold()
        return self._find("countries", self._load_countries, lambda ix: ix.get(key))

    # --- new codes --------------------------------------------------------------------------------------
    def new_code(self, entity: str, name: Any, length: int) -> str:
        taken = self._local.get(f"codes:{entity}")
        if taken is None:
            rows = self.ctx.bc.iter_records(entity, select=["code"])
            taken = self._local[f"codes:{entity}"] = {str(r.get("code") or "").upper() for r in rows}
        return new_code(name, taken, length)
