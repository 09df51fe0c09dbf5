"""Local option sets of a Dataverse table (an account's payment terms, freight terms), served to the engine
as if they were an entity set, so an option mapping is an ordinary mapping with couplings.

BC's own integration keeps "CRM Option Mapping" rows (a BC record <-> an option value); here an option is a
record ``{"optionid", "value", "label"}`` of the pseudo entity set ``<entity set>.<attribute>``, e.g.
``accounts.paymenttermscode``.

- Read: the attribute's metadata with its options, ``EntityDefinitions(LogicalName='account')/Attributes(
  LogicalName='paymenttermscode')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet``
  ([query metadata](https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api)).
- Create: the unbound ``InsertOptionValue`` action
  ([reference](https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/insertoptionvalue)),
  with the id the engine chose in ``ExternalValue`` ("the name of a value as it exists in an external
  source") and a value derived from that id, so a retried or doubled create finds its option instead of
  making a twin (a taken value is refused by Dataverse; the next free one is tried).
- Update of a label: ``UpdateOptionValue`` with ``MergeLabels``
  ([reference](https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/updateoptionvalue)).

An option that was not created by the sync (the table's own options) gets a stable id made from its value.
Dataverse has no change tracking for metadata: every read returns every option (a few dozen at most).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shared.connectors.errors import ConnectorError, Duplicate, NotFound
from shared.connectors.odata import literal
from shared.connectors.results import RecordResult
from shared.odata_filter import evaluate, parse

KEY = "optionid"
LANGUAGE = 1033
# Values of options made by a solution publisher start at its prefix times 10,000; 10000 is the default
# publisher's prefix (https://learn.microsoft.com/power-apps/maker/data-platform/create-solution-publisher).
FIRST_VALUE, SPAN = 100_000_000, 10_000
MAX_PROBES = 20


@dataclass(frozen=True)
class OptionSetRef:
    entity_set: str
    entity: str  # table logical name
    attribute: str

    @property
    def name(self) -> str:
        return f"{self.entity_set}.{self.attribute}"


OPTION_SETS: dict[str, OptionSetRef] = {
    ref.name: ref
    for ref in (
        OptionSetRef("accounts", "account", "paymenttermscode"),
        OptionSetRef("accounts", "account", "address1_freighttermscode"),
    )
}


def is_option_set(entity_set: str) -> bool:
    return entity_set in OPTION_SETS


def option_id(ref: OptionSetRef, value: int, external: str | None = None) -> str:
    """The option's record id: the id the sync gave it (its ExternalValue), else one made from its value."""
    if external:
        try:
            return str(uuid.UUID(external))
        except ValueError:
            pass
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bc-dataverse-sync/option/{ref.name}/{int(value)}"))


def label_text(label: Any) -> str:
    """A Label complex type -> its text in the user's language (else the first localized one)."""
    if not isinstance(label, dict):
        return ""
    user = label.get("UserLocalizedLabel") or {}
    if user.get("Label"):
        return str(user["Label"])
    for localized in label.get("LocalizedLabels") or []:
        if localized.get("Label"):
            return str(localized["Label"])
    return ""


def _label(text: str) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": LANGUAGE}]}


def preferred_value(record_id: str, taken: set[int]) -> int | None:
    """The value a new option with this id takes: derived from the id, probing past values in use."""
    start = uuid.UUID(record_id).int % SPAN
    for i in range(MAX_PROBES):
        value = FIRST_VALUE + (start + i) % SPAN
        if value not in taken:
            return value
    return None


class OptionSets:
    """The option-set half of the Dataverse client (``client`` is a DataverseClient)."""

    def __init__(self, client):
        self.client = client

    def _url(self, ref: OptionSetRef) -> str:
        return (
            f"{self.client.base}/EntityDefinitions(LogicalName={literal(ref.entity)})/Attributes("
            f"LogicalName={literal(ref.attribute)})/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        )

    def options(self, entity_set: str) -> list[dict[str, Any]]:
        """Every option as a record, lowest value first; one id appears once (the lowest value keeps it)."""
        ref = OPTION_SETS[entity_set]
        params = {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}
        body = self.client.http.request("GET", self._url(ref), kind="read", params=params).json()
        rows, seen = [], set()
        for option in sorted((body.get("OptionSet") or {}).get("Options") or [], key=lambda o: o["Value"]):
            record_id = option_id(ref, option["Value"], option.get("ExternalValue"))
            if record_id in seen:
                continue
            seen.add(record_id)
            rows.append(
                {KEY: record_id, "value": int(option["Value"]), "label": label_text(option.get("Label"))}
            )
        return rows

    def page(self, entity_set: str, filter: str | None = None) -> list[dict[str, Any]]:
        rows = self.options(entity_set)
        if filter:
            node = parse(filter)
            rows = [r for r in rows if evaluate(node, r)]
        return rows

    def get(self, entity_set: str, id: str) -> dict[str, Any] | None:
        return next((r for r in self.options(entity_set) if r[KEY] == str(id).lower()), None)

    # --- writes -------------------------------------------------------------------------------------
    def write(self, action: str, entity_set: str, records: list[dict[str, Any]]) -> list[Any]:
        """CreateMultiple / UpdateMultiple / UpsertMultiple semantics, one action per option."""
        ref = OPTION_SETS[entity_set]
        current = {r[KEY]: r for r in self.options(entity_set)}
        out = []
        for i, record in enumerate(records):
            record_id = str(record.get(KEY) or "").lower()
            try:
                existing = current.get(record_id)
                if existing is not None and action == "CreateMultiple":
                    raise Duplicate(
                        "dataverse", 412, None, f"option {record_id} of {ref.name} already exists"
                    )
                if existing is None and action == "UpdateMultiple":
                    raise NotFound("dataverse", 404, None, f"option {record_id} of {ref.name} does not exist")
                label = str(record.get("label") or "")
                if existing is None:
                    current[record_id] = self._insert(ref, record_id, label, current)
                elif "label" in record and label != existing["label"]:
                    self._update(ref, existing["value"], label)
                    existing["label"] = label
                out.append(RecordResult(i, record_id, True))
            except ConnectorError as exc:
                if exc.status is None or exc.status >= 500 or exc.status == 429:
                    raise
                out.append(RecordResult(i, record_id, False, exc))
        return out

    def _insert(
        self, ref: OptionSetRef, record_id: str, label: str, current: dict[str, Any]
    ) -> dict[str, Any]:
        if not label:
            raise ConnectorError("dataverse", 400, None, f"a new option of {ref.name} needs a label")
        for _ in range(MAX_PROBES):
            value = preferred_value(record_id, {r["value"] for r in current.values()})
            if value is None:
                break
            body = {
                "EntityLogicalName": ref.entity,
                "AttributeLogicalName": ref.attribute,
                "Value": value,
                "Label": _label(label),
                "ExternalValue": record_id,
            }
            try:
                self.client.http.request(
                    "POST", f"{self.client.base}/InsertOptionValue", kind="write", json=body
                )
                return {KEY: record_id, "value": value, "label": label}
            except ConnectorError as exc:
                if exc.status is None or exc.status >= 500 or exc.status == 429:
                    raise
                # The value was taken meanwhile, maybe by a twin of this very create: look again.
                current.clear()
                current.update({r[KEY]: r for r in self.options(ref.name)})
                if record_id in current:
                    return current[record_id]
                if value not in {r["value"] for r in current.values()}:
                    raise  # refused for another reason than a taken value
        raise ConnectorError("dataverse", 409, None, f"no free option value for {ref.name}")

    def _update(self, ref: OptionSetRef, value: int, label: str) -> None:
        body = {
            "EntityLogicalName": ref.entity,
            "AttributeLogicalName": ref.attribute,
            "Value": value,
            "Label": _label(label),
            "MergeLabels": True,
        }
        self.client.http.request("POST", f"{self.client.base}/UpdateOptionValue", kind="write", json=body)
