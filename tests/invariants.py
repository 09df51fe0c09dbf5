"""Invariants of a settled sync, checked against both systems and the Couplings table.

For every mapping: each eligible source record is coupled exactly once (or has a recorded failure);
no counterpart is coupled twice; coupled pairs hold equal values in every mapped field; every record
we created is coupled (no orphans, no twins).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.contracts import bc_entities, dataverse_tables
from shared.mappings import FieldMapping, Mapping, default_mappings
from shared.mappings.entities import CRM_ENTITIES
from shared.odata_filter import evaluate, parse
from shared.settings import StorageSettings
from shared.store.clients import table_service
from shared.store.couplings import CouplingStore
from shared.store.tables import Tables
from shared.sync.values import normalize, raw_value

# Values the sync computes rather than copies are checked by what they are computed from, or not at all.
COMPUTED = ("exchange_rate", "or_code", "decimal_places", "base_uom", "new_code")


@dataclass
class Report:
    records_checked: int = 0
    couplings: int = 0
    violations: list[str] = field(default_factory=list)
    failed_records: int = 0
    failure_reasons: Counter = field(default_factory=Counter)  # message shapes (ids, values blanked)

    def failed(self, mapping: str, message: str | None) -> None:
        self.failed_records += 1
        shape = re.sub(r"'[^']*'", "'…'", re.sub(r"[0-9a-fA-F-]{36}", "<id>", message or "?"))
        self.failure_reasons[f"{mapping}: {shape[:160]}"] += 1

    def add(self, message: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(message)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> dict[str, Any]:
        """What was checked and the violations by kind (counted among the first 200 kept)."""
        return {
            "records_checked": self.records_checked,
            "couplings": self.couplings,
            "failed_records": self.failed_records,
            "failure_reasons": dict(self.failure_reasons.most_common(8)),
            "violations": self.violations,
            "duplicates": sum(1 for v in self.violations if "twice" in v or "orphan" in v),
            "lost": sum(1 for v in self.violations if "not coupled and has no recorded failure" in v),
            "differences": sum(1 for v in self.violations if " differ in " in v),
        }


def _records(admin: str, entity: str) -> list[dict[str, Any]]:
    return httpx.get(f"{admin}/records/{entity}", timeout=300).raise_for_status().json()["value"]


def check_stack(endpoints: dict[str, Any], client_id: str, seeded_bc_ids: set[str]) -> Report:
    """``check`` against a running devstack (its storage account, the app user of its client)."""
    storage = StorageSettings(endpoints["storage_connection_string"], "", "")
    tables = Tables(table_service(storage), prefix="")
    users = _records(endpoints["dataverse"]["admin"], "systemusers")
    app_user = next(u["systemuserid"] for u in users if u.get("applicationid") == client_id)
    return check(endpoints, CouplingStore(tables), seeded_bc_ids, app_user)


def check(
    endpoints: dict[str, Any],
    couplings: CouplingStore,
    seeded_bc_ids: set[str],
    app_user: str | None = None,
    mappings: list[Mapping] | None = None,
) -> Report:
    report = Report()
    countries = {
        str(r.get(k) or "").casefold(): r["code"]
        for r in _records(endpoints["bc"]["admin"], "countriesRegions")
        for k in ("code", "displayName")
    }
    coupled_crm: dict[str, set[str]] = {}
    created_crm: dict[str, set[str]] = {}
    for m in mappings or default_mappings():
        crm = CRM_ENTITIES[m.crm_entity]
        bc_rows = {r["id"]: r for r in _records(endpoints["bc"]["admin"], m.bc_entity)}
        crm_rows = {r[crm.key]: r for r in _records(endpoints["dataverse"]["admin"], m.crm_entity)}
        pairs = list(couplings.iter_all(m.name))
        report.couplings += len(pairs)
        by_bc, by_crm = {}, {}
        for c in pairs:
            if c.crm_id in by_crm:
                report.add(f"{m.name}: CRM {c.crm_id} coupled twice")
            by_bc[c.bc_id], by_crm[c.crm_id] = c, c
        failed: set[str] = set()
        for side in ("bc", "crm"):
            ids = couplings.failed_uncoupled(m.name, side, include_skipped=True)
            for row in couplings.failures(m.name, side, ids).values():
                report.failed(m.name, row["message"])
            failed |= set(ids)
        for c in pairs:
            if c.last_result != "success":
                report.failed(m.name, c.last_error)
        sides = []
        if m.allows("to_crm"):
            sides.append(("bc", bc_rows, by_bc, parse(m.bc_filter)))
        if m.allows("from_crm"):
            sides.append(("crm", crm_rows, by_crm, parse(m.crm_filter)))
        for side, rows, coupled, flt in sides:
            for rid, row in rows.items():
                if not evaluate(flt, row):
                    continue
                report.records_checked += 1
                if rid not in coupled and rid not in failed:
                    report.add(
                        f"{m.name}: eligible {side} record {rid} is not coupled and has no recorded failure"
                    )
        bc_filter, crm_filter = parse(m.bc_filter), parse(m.crm_filter)
        for c in pairs:
            b, r = bc_rows.get(c.bc_id), crm_rows.get(c.crm_id)
            if b is None or r is None:
                continue  # a deleted counterpart: the deletion-conflict policy's business
            if c.last_result != "success":
                continue
            # A direction only carries values from a source record inside its table filter (e.g. a blocked
            # BC customer coupled to its CRM twin sends nothing BC→CRM): compare what flows.
            flowing = {
                d
                for d, ok in (("to_crm", evaluate(bc_filter, b)), ("from_crm", evaluate(crm_filter, r)))
                if ok
            }
            for f in m.fields:
                if f.is_constant or not f.bc or not f.crm or f.lookup or f.transform in COMPUTED:
                    continue
                if not any(f.flows(d) and m.allows(d) for d in flowing):
                    continue
                crm_value = normalize(raw_value(m, f, r, "crm"))
                expected = _expected(m, f, b, countries)
                if isinstance(expected, tuple):  # a country: compare as BC codes
                    expected, crm_value = expected[1], countries.get(str(crm_value).casefold(), crm_value)
                if normalize(expected) != normalize(crm_value):
                    report.add(
                        f"{m.name}: {c.bc_id}/{c.crm_id} differ in {f.bc}/{f.crm}: "
                        f"{raw_value(m, f, b, 'bc')!r} vs {raw_value(m, f, r, 'crm')!r}"
                    )
        coupled_crm.setdefault(m.crm_entity, set()).update(by_crm)
        if app_user:
            created_crm[m.crm_entity] = {
                rid for rid, row in crm_rows.items() if row.get("_createdby_value") == app_user
            }
        for rid, row in bc_rows.items():
            # (BC makes records of its own too, e.g. a new customer's company contact: outside the filter)
            if (
                rid not in seeded_bc_ids
                and rid not in by_bc
                and m.allows("from_crm")
                and evaluate(bc_filter, row)
            ):
                report.add(f"{m.name}: BC record {rid} created by the sync is not coupled (orphan/twin)")
    for entity_set, created in created_crm.items():  # products belong to two mappings: check per table
        for rid in sorted(created - coupled_crm.get(entity_set, set())):
            report.add(f"{entity_set}: CRM record {rid} created by the sync is not coupled (orphan/twin)")
    return report


def _expected(m: Mapping, f: FieldMapping, bc_row: dict[str, Any], countries: dict[str, str]) -> Any:
    """What the CRM side holds for a BC value once synced: a blocked item's product is retired (1), a
    negative number is the Dataverse minimum, a country name and its BC code are the same country."""
    value = raw_value(m, f, bc_row, "bc")
    if f.transform == "product_state":
        return normalize(1 if value else 0)
    table = dataverse_tables().get(m.crm_entity)  # an option set (option mapping) has no table contract
    prop = table.properties.get(f.crm) if table is not None else None
    if isinstance(value, int | float) and prop is not None and prop.minimum is not None:
        value = max(value, prop.minimum)
    bc_prop = bc_entities()[m.bc_entity].properties.get(f.bc)
    if bc_prop is not None and bc_prop.relation and bc_prop.relation.startswith("countriesRegions"):
        return ("country", countries.get(str(value or "").casefold(), value))
    return normalize(value)


def counters_add_up(run: dict) -> list[str]:
    """Every record a job read got exactly one outcome: the counters of both directions sum to it."""
    problems = []
    for job in run["jobs"]:
        counted = sum(sum(job[d].values()) for d in ("to_crm", "from_crm"))
        if counted != job["processed"]:
            problems.append(
                f"{run['run_id']}/{job['mapping']}: counters sum to {counted}, {job['processed']} read"
            )
    return problems
