"""Lookups through the related mapping's couplings at scale: a value that is not coupled is read by its id,
never by reading the related mapping again (shared/sync/lookups.py); one coupled a moment ago is found."""

from __future__ import annotations

import dataclasses
import uuid

from shared.sync.lookups import LookupResolver


def gid() -> str:
    return str(uuid.uuid4())


def customer(number: str, name: str, **extra) -> dict:
    return {"id": gid(), "number": number, "displayName": name, "type": "Company", "blocked": " ", **extra}


def person(name: str, company_number: str) -> dict:
    return {
        "id": gid(),
        "type": "Person",
        "displayName": name,
        "email": f"{name.replace(' ', '.').lower()}@example.com",
        "companyNumber": company_number,
    }


def used(run: dict, mapping: str, key: str) -> int:
    return next(j for j in run["jobs"] if j["mapping"] == mapping).get("usage", {}).get(key, 0)


def test_uncoupled_parent_is_read_by_id_not_by_reloading_the_related_mapping(harness, monkeypatch):
    h = harness
    h.bc.seed({"customers": [customer("C70", "Open Co"), customer("C71", "Held Co", blocked="All")]})
    h.run("full", ["CUSTOMER"])
    company = {c["displayName"]: c["number"] for c in h.bc.records("contacts") if c["type"] == "Company"}
    people = [person(f"Open Person{i}", company["Open Co"]) for i in range(4)]
    people += [person(f"Held Person{i}", company["Held Co"]) for i in range(4)]
    h.bc.seed({"contacts": people})
    # Two contacts per slice: every slice but one meets a contact whose company is not coupled.
    monkeypatch.setattr(h.ctx, "settings", dataclasses.replace(h.ctx.settings, slice_max_records=2))
    LookupResolver._cache.clear()  # a cold worker: the CUSTOMER index is read once
    run = h.run("full", ["CONTACT"])

    job = next(j for j in run["jobs"] if j["mapping"] == "CONTACT")
    assert job["to_crm"]["inserted"] == 4
    assert job["to_crm"]["failed"] == 4
    errors = h.ctx.errors.list(run_id=run["run_id"])
    assert {e.message.split(":")[0] for e in errors} == {"lookup failed"}
    assert used(run, "CONTACT", "lookup_index_loads") == 1
    # One read per uncoupled customer and slice (each slice is a new resolver), not per contact.
    assert 1 <= used(run, "CONTACT", "lookup_point_reads") <= 4

    # The held customer is coupled now (unblocked, synced): its contacts find it without a reload.
    held = next(c for c in h.bc.records("customers") if c["number"] == "C71")
    h.bc.seed({"customers": [{"id": held["id"], "blocked": " "}]})
    h.run("modified", ["CUSTOMER"])
    assert h.ctx.couplings.get("CUSTOMER", bc_id=held["id"]) is not None
    # The retry phase pages through all four failed contacts, two per slice.
    run = h.run("modified", ["CONTACT"])
    assert used(run, "CONTACT", "lookup_index_loads") == 0
    names = {c.get("fullname") for c in h.dv.records("contacts")}
    assert {f"Held Person{i}" for i in range(4)} <= names
