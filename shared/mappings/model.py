"""Integration table mappings: the model (pydantic, so API bodies validate with field-named errors)."""

from __future__ import annotations

import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.model.status import Pass

Direction = Literal["Bidirectional", "ToIntegrationTable", "FromIntegrationTable"]
UpdateConflict = Literal["None", "SendUpdateToIntegration", "GetUpdateFromIntegration"]
DeletionConflict = Literal["None", "RemoveCoupling", "RestoreRecords"]
ConflictDetection = Literal["Field", "Record"]
# Values that are computed rather than copied (shared/sync/derived.py says how each one is computed):
# person_name   BC displayName <-> CRM firstname + lastname (crm names "fullname", which is read-only)
# exchange_rate a currency's rate against the Dataverse base currency, from BC's exchange rates
# or_code       the source value, or the record's code when it is blank (currency symbols)
# decimal_places BC "2:5" style decimal places -> the first number
# base_uom      the base unit (uom) of the unit group the lookup resolved to
# product_state BC blocked -> product statecode/statuscode (Active, or Retired); written after a create
# new_code      a code derived from the source value, sent only when the BC record is created
# option_value  a lookup through an option mapping: the coupled option's value of a choice column
Transform = Literal[
    "person_name",
    "exchange_rate",
    "or_code",
    "decimal_places",
    "base_uom",
    "product_state",
    "new_code",
    "option_value",
]


class FieldMapping(BaseModel):
    """One field pair. ``bc``/``crm`` name the fields; a constant replaces the source side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bc: str | None = None
    crm: str | None = None
    direction: Direction = "Bidirectional"
    constant: Any = None
    # The value is the key of a record of another mapping; translate it through that mapping's couplings.
    lookup: str | None = None
    # Which field of the related BC record the BC value holds (id, code or number).
    bc_lookup_key: str = "id"
    # An unresolved lookup clears the destination value instead of failing the record.
    clear_on_fail: bool = False
    # An empty source lookup leaves the destination alone (e.g. ownerid can never be null).
    keep_if_empty: bool = False
    match_priority: int | None = Field(default=None, ge=1, le=9)
    case_sensitive: bool = False
    # Option-set style value translation, BC value -> CRM value (reversed for CRM -> BC).
    value_map: dict[str, Any] | None = None
    transform: Transform | None = None

    def flows(self, sync_pass: Pass) -> bool:
        """Does this field carry data in the given pass?"""
        if sync_pass == Pass.TO_CRM:
            return self.crm is not None and self.direction in ("Bidirectional", "ToIntegrationTable")
        return self.bc is not None and self.direction in ("Bidirectional", "FromIntegrationTable")

    @property
    def is_constant(self) -> bool:
        return self.constant is not None

    @property
    def key(self) -> str:
        """Stable name of the pair (used in stored hashes and error messages); interned, so the hashes of
        a page's couplings share one string per field."""
        return sys.intern(f"{self.bc or '='}>{self.crm or '='}")


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9 _-]*$")
    bc_entity: str
    crm_entity: str
    direction: Direction
    sync_only_coupled: bool = True
    bc_filter: str = ""
    crm_filter: str = ""
    depends_on: list[str] = Field(default_factory=list)
    update_conflict: UpdateConflict = "None"
    deletion_conflict: DeletionConflict = "None"
    # "Field": a conflict is the same field changed on both sides (others still flow); "Record": as BC,
    # any change on both sides since the last sync is a conflict of the whole record.
    conflict_detection: ConflictDetection = "Field"
    # Match-based coupling (BC's "Synch. After Match-Based Coupling", "Create New in Case of No Match").
    sync_after_coupling: bool = True
    create_new_if_no_match: bool = False
    # The BC field other mappings' lookups may use to refer to this mapping's records (code/number).
    bc_ref_field: str | None = None
    fields: list[FieldMapping]

    def passes(self) -> list[Pass]:
        return {
            "Bidirectional": [Pass.TO_CRM, Pass.FROM_CRM],
            "ToIntegrationTable": [Pass.TO_CRM],
            "FromIntegrationTable": [Pass.FROM_CRM],
        }[self.direction]

    def allows(self, sync_pass: Pass) -> bool:
        return sync_pass in self.passes()

    def match_groups(self) -> list[list[FieldMapping]]:
        """Match fields grouped by priority, lowest number first (all fields of a group must match)."""
        by_priority: dict[int, list[FieldMapping]] = {}
        for f in self.fields:
            if f.match_priority is not None and f.bc and f.crm and not f.is_constant:
                by_priority.setdefault(f.match_priority, []).append(f)
        return [by_priority[p] for p in sorted(by_priority)]

    def lookups(self) -> list[FieldMapping]:
        return [f for f in self.fields if f.lookup]

    @property
    def is_option_mapping(self) -> bool:
        """The CRM side is a table's option set (BC's option mappings, "CRM Option Mapping")."""
        return "." in self.crm_entity

    @property
    def reads_all_records(self) -> bool:
        """A value computed from data outside the record (an exchange rate) can change while the record
        does not: every sync of the mapping reads every record, and the change probe also asks for rates
        changed or started since the last sync."""
        return any(f.transform == "exchange_rate" for f in self.fields)
