"""One test per synchronization rule (README "Synchronization rules"), against the emulators over HTTP and
Azurite."""

from __future__ import annotations

import uuid

import pytest

from shared.sync.records import PageSync, bc_create_id, crm_create_id

CUR_EUR = "a0000000-0000-4000-8000-000000000001"
CUR_SEK = "a0000000-0000-4000-8000-000000000002"


def gid() -> str:
    return str(uuid.uuid4())


def customer(number: str, name: str, **extra) -> dict:
    return {
        "id": gid(),
        "number": number,
        "displayName": name,
        "type": "Company",
        "email": f"{number.lower()}@example.com",
        "phoneNumber": "+1 555 0100",
        "city": "Seattle",
        "creditLimit": 1000,
        "blocked": " ",
        **extra,
    }


def account(name: str, **extra) -> dict:
    return {"accountid": gid(), "name": name, "customertypecode": 3, "statecode": 0, **extra}


def rate(code: str, amount: float, relational: float, start: str = "2024-01-01") -> dict:
    """A BC exchange rate: ``amount`` units of ``code`` = ``relational`` units of LCY (USD here)."""
    return {
        "id": gid(),
        "currencyCode": code,
        "startingDate": start,
        "exchangeRateAmount": amount,
        "relationalCurrencyCode": "",
        "relationalExchangeRateAmount": relational,
    }


def seed_currencies(h) -> None:
    h.bc.seed(
        {
            "currencies": [
                {"id": CUR_EUR, "code": "EUR", "displayName": "Euro", "symbol": "€"},
                {"id": CUR_SEK, "code": "SEK", "displayName": "Swedish krona", "symbol": "kr"},
            ],
            "currencyExchangeRates": [rate("EUR", 100, 108), rate("SEK", 1000, 95)],
        }
    )


def set_mapping(h, name: str, **changes) -> None:
    m = h.ctx.mappings.by_name()[name]
    h.ctx.mappings.replace(m.model_copy(update=changes))


def customers_by_number(h) -> dict:
    return {c["number"]: c for c in h.bc.records("customers")}


def accounts_by_name(h) -> dict:
    return {a["name"]: a for a in h.dv.records("accounts")}


def test_full_sync_creates_and_couples_both_ways_then_modified_is_unchanged(harness):
    h = harness
    seed_currencies(h)
    h.bc.seed({"customers": [customer("C100", "Alpha", currencyId=CUR_EUR), customer("C101", "Beta")]})
    h.dv.seed({"accounts": [account("Gamma", emailaddress1="g@example.com")]})
    run = h.run("full", ["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    assert run["status"] == "Succeeded", run
    cust = h.job(run, "CUSTOMER")
    assert cust["to_crm"]["inserted"] == 2 and cust["from_crm"]["inserted"] == 1
    accounts = accounts_by_name(h)
    assert set(accounts) == {"Alpha", "Beta", "Gamma"}
    assert accounts["Alpha"]["accountnumber"] == "C100"
    eur = next(c for c in h.dv.records("transactioncurrencies") if c["isocurrencycode"] == "EUR")
    assert accounts["Alpha"]["_transactioncurrencyid_value"] == eur["transactioncurrencyid"]
    # The deterministic id makes a redone create an update, never a twin.
    alpha_bc = customers_by_number(h)["C100"]
    assert accounts["Alpha"]["accountid"] == crm_create_id("CUSTOMER", alpha_bc["id"])
    assert "Gamma" in {c["displayName"] for c in h.bc.records("customers")}
    h.bc.reset_stats()
    h.dv.reset_stats()
    again = h.run("modified", ["CUSTOMER"])
    job = h.job(again, "CUSTOMER")
    for direction in ("to_crm", "from_crm"):
        assert job[direction]["inserted"] == job[direction]["modified"] == job[direction]["failed"] == 0, job
    assert len(h.dv.records("accounts")) == 3 and len(h.bc.records("customers")) == 3


def test_only_differing_fields_are_written_and_echo_does_not_bounce(harness):
    h = harness
    h.bc.seed({"customers": [customer("C200", "Delta")]})
    h.run("full", ["CUSTOMER"])
    bc = customers_by_number(h)["C200"]
    h.bc.seed({"customers": [{"id": bc["id"], "phoneNumber": "+1 555 0199"}]})
    run = h.run("modified", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    assert job["to_crm"]["modified"] == 1
    assert accounts_by_name(h)["Delta"]["telephone1"] == "+1 555 0199"
    # Our write to CRM shows up in change tracking but is recognised as our own: nothing flows back.
    assert job["from_crm"]["modified"] == 0
    etag = customers_by_number(h)["C200"]["@odata.etag"]
    run = h.run("modified", ["CUSTOMER"])
    assert h.job(run, "CUSTOMER")["to_crm"]["modified"] == 0
    assert h.job(run, "CUSTOMER")["from_crm"]["modified"] == 0
    assert customers_by_number(h)["C200"]["@odata.etag"] == etag  # BC was not written again


@pytest.mark.parametrize(
    ("policy", "expected_name", "fails"),
    [
        ("None", None, True),
        ("SendUpdateToIntegration", "BC name", False),
        ("GetUpdateFromIntegration", "CRM name", False),
    ],
)
def test_update_conflict_resolutions(harness, policy, expected_name, fails):
    h = harness
    h.bc.seed({"customers": [customer("C300", "Original")]})
    h.run("full", ["CUSTOMER"])
    set_mapping(h, "CUSTOMER", update_conflict=policy)
    bc = customers_by_number(h)["C300"]
    crm = accounts_by_name(h)["Original"]
    h.bc.seed({"customers": [{"id": bc["id"], "displayName": "BC name"}]})
    h.dv.seed({"accounts": [{"accountid": crm["accountid"], "name": "CRM name"}]})
    run = h.run("modified", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    bc_name = customers_by_number(h)["C300"]["displayName"]
    crm_name = {a["accountid"]: a for a in h.dv.records("accounts")}[crm["accountid"]]["name"]
    if fails:
        assert job["to_crm"]["failed"] == 1
        errors = h.ctx.errors.list(run_id=run["run_id"])
        assert any("conflict" in e.message for e in errors)
        assert (bc_name, crm_name) == ("BC name", "CRM name")
    else:
        assert bc_name == crm_name == expected_name, (bc_name, crm_name)


@pytest.mark.parametrize("policy", ["None", "RemoveCoupling", "RestoreRecords"])
def test_deletion_conflict_resolutions(harness, policy):
    h = harness
    h.bc.seed({"customers": [customer("C400", "Doomed")]})
    h.run("full", ["CUSTOMER"])
    set_mapping(h, "CUSTOMER", deletion_conflict=policy)
    bc = customers_by_number(h)["C400"]
    crm = accounts_by_name(h)["Doomed"]
    h.ctx.dataverse.delete("accounts", crm["accountid"])
    h.bc.seed({"customers": [{"id": bc["id"], "phoneNumber": "+1 555 0400"}]})
    run = h.run("modified", ["CUSTOMER"])
    coupling = h.ctx.couplings.get("CUSTOMER", bc_id=bc["id"])
    if policy == "None":
        assert h.job(run, "CUSTOMER")["to_crm"]["failed"] + h.job(run, "CUSTOMER")["from_crm"]["failed"] >= 1
        assert coupling is not None
    elif policy == "RemoveCoupling":
        assert coupling is None
        assert "Doomed" not in accounts_by_name(h)
    else:
        assert coupling is not None and coupling.crm_id != ""
        assert accounts_by_name(h)["Doomed"]["telephone1"] == "+1 555 0400"


def test_lookup_missing_fails_or_clears_and_present_binds(harness):
    h = harness
    seed_currencies(h)
    h.bc.seed(
        {
            "salespeoplePurchasers": [
                {"id": gid(), "code": "SP01", "displayName": "Sam Seller", "email": "sam@example.com"}
            ]
        }
    )
    h.bc.seed({"customers": [customer("C500", "Lookup", currencyId=CUR_SEK, salespersonCode="SP01")]})
    # CURRENCY has not run: the currency lookup clears (clear_on_fail) and the owner stays (keep_if_empty).
    run = h.run("full", ["CUSTOMER"])
    assert h.job(run, "CUSTOMER")["to_crm"]["inserted"] == 1
    assert accounts_by_name(h)["Lookup"].get("_transactioncurrencyid_value") in (None, "")
    # Without clear-on-fail the record fails with a lookup error.
    m = h.ctx.mappings.by_name()["CUSTOMER"]
    fields = [
        f.model_copy(update={"clear_on_fail": False}) if f.lookup == "CURRENCY" else f for f in m.fields
    ]
    h.ctx.mappings.replace(m.model_copy(update={"fields": fields}))
    h.bc.seed({"customers": [customer("C501", "Strict", currencyId=CUR_SEK)]})
    run = h.run("modified", ["CUSTOMER"])
    errors = h.ctx.errors.list(run_id=run["run_id"])
    assert any("lookup failed" in e.message for e in errors)
    assert "Strict" not in accounts_by_name(h)
    # Once CURRENCY is coupled the lookup binds.
    h.run("full", ["CURRENCY"])
    run = h.run("modified", ["CUSTOMER"])
    sek = next(c for c in h.dv.records("transactioncurrencies") if c["isocurrencycode"] == "SEK")
    assert accounts_by_name(h)["Strict"]["_transactioncurrencyid_value"] == sek["transactioncurrencyid"]


def test_same_error_twice_puts_the_record_in_skipped_records(harness):
    h = harness
    h.bc.seed({"customers": [customer("C600", "Twice")]})
    h.run("full", ["CUSTOMER"])
    bc = customers_by_number(h)["C600"]
    crm = accounts_by_name(h)["Twice"]
    for i in range(2):
        h.bc.seed({"customers": [{"id": bc["id"], "displayName": f"BC {i}"}]})
        h.dv.seed({"accounts": [{"accountid": crm["accountid"], "name": f"CRM {i}"}]})
        h.run("modified", ["CUSTOMER"])
    coupling = h.ctx.couplings.get("CUSTOMER", bc_id=bc["id"])
    assert coupling.skipped and coupling.failures >= 2
    # A skipped record is left out even when it changes again, until it is restored.
    h.bc.seed({"customers": [{"id": bc["id"], "displayName": "BC again"}]})
    run = h.run("modified", ["CUSTOMER"])
    assert h.job(run, "CUSTOMER")["to_crm"]["skipped"] == 1
    assert {a["accountid"]: a for a in h.dv.records("accounts")}[crm["accountid"]]["name"] == "CRM 1"


def test_ambiguous_match_is_an_error_and_unique_match_couples(harness):
    h = harness
    h.bc.seed({"customers": [customer("C700", "Twin", email="twin@example.com"), customer("C701", "Solo")]})
    h.dv.seed(
        {
            "accounts": [
                account("Twin", emailaddress1="twin@example.com"),
                account("Twin", emailaddress1="TWIN@example.com"),
                account("Solo", accountnumber="C701"),
            ]
        }
    )
    run = h.run("full", ["CUSTOMER"])
    errors = h.ctx.errors.list(run_id=run["run_id"])
    assert any("ambiguous" in e.message for e in errors)
    solo = customers_by_number(h)["C701"]
    coupling = h.ctx.couplings.get("CUSTOMER", bc_id=solo["id"])
    assert coupling is not None
    assert [a["accountid"] for a in h.dv.records("accounts") if a["name"] == "Solo"] == [coupling.crm_id]


def test_filters_are_honored_on_both_sides(harness):
    h = harness
    h.bc.seed({"customers": [customer("C800", "Blocked", blocked="All"), customer("C801", "Open")]})
    h.dv.seed({"accounts": [account("Inactive", statecode=1), account("Vendor", customertypecode=11)]})
    h.run("full", ["CUSTOMER"])
    names = set(accounts_by_name(h))
    assert "Open" in names and "Blocked" not in names
    bc_names = {c["displayName"] for c in h.bc.records("customers")}
    assert "Inactive" not in bc_names and "Vendor" not in bc_names


def test_direction_per_field_is_respected(harness):
    h = harness
    h.bc.seed({"customers": [customer("C900", "Directions", creditLimit=5000)]})
    h.run("full", ["CUSTOMER"])
    crm = accounts_by_name(h)["Directions"]
    # creditlimit and accountnumber flow BC -> CRM only: CRM edits must not reach BC.
    h.dv.seed({"accounts": [{"accountid": crm["accountid"], "creditlimit": 1, "accountnumber": "HACK"}]})
    h.run("modified", ["CUSTOMER"])
    bc = customers_by_number(h)["C900"]
    assert bc["creditLimit"] == 5000


def _crash(*_args, **_kwargs):
    raise RuntimeError("worker killed after the destination write, before the coupling write")


def test_crash_after_destination_write_before_coupling_leaves_no_duplicate(harness, monkeypatch):
    h = harness
    h.bc.seed({"customers": [customer("C950", "Crashy")]})
    records = [c for c in h.bc.records("customers") if c["number"] == "C950"]
    m = h.ctx.mappings.by_name()["CUSTOMER"]
    page = PageSync(h.ctx, m, "to_crm", run_id="crash-run", create_uncoupled=True)

    monkeypatch.setattr(h.ctx.couplings, "create_many", _crash)
    with pytest.raises(RuntimeError):
        page.run(records)
    assert len([a for a in h.dv.records("accounts") if a["name"] == "Crashy"]) == 1
    monkeypatch.undo()
    run = h.run("full", ["CUSTOMER"])
    assert len([a for a in h.dv.records("accounts") if a["name"] == "Crashy"]) == 1
    assert h.ctx.couplings.get("CUSTOMER", bc_id=records[0]["id"]) is not None
    assert run["status"] == "Succeeded"


def test_bc_create_crash_is_not_repeated_the_record_carries_a_deterministic_id(harness, monkeypatch):
    h = harness
    h.dv.seed({"accounts": [account("FromCrm", emailaddress1="fromcrm@example.com")]})
    m = h.ctx.mappings.by_name()["CUSTOMER"]
    records = [a for a in h.dv.records("accounts") if a["name"] == "FromCrm"]
    crm_id = records[0]["accountid"]
    page = PageSync(h.ctx, m, "from_crm", run_id="crash-run", create_uncoupled=True)
    monkeypatch.setattr(h.ctx.couplings, "create_many", _crash)
    with pytest.raises(RuntimeError):
        page.run(records)
    monkeypatch.undo()
    created = [c for c in h.bc.records("customers") if c["displayName"] == "FromCrm"]
    assert [c["id"] for c in created] == [bc_create_id("CUSTOMER", crm_id)]
    # Nothing was written back to CRM: the coupling was never won.
    assert not next(a for a in h.dv.records("accounts") if a["accountid"] == crm_id).get("accountnumber")
    # The slice is redone — without match fields, so it creates again: the create finds the record it
    # made (same id) and couples it.
    from shared.sync.matching import MatchIndex

    no_match = MatchIndex(h.ctx, m, "from_crm", groups=[])
    redo = PageSync(h.ctx, m, "from_crm", run_id="redo", create_uncoupled=True, matcher=no_match).run(records)
    assert [o.result for o in redo.outcomes] == ["inserted"], redo.outcomes
    assert [c["displayName"] for c in h.bc.records("customers")].count("FromCrm") == 1
    coupling = h.ctx.couplings.get("CUSTOMER", crm_id=crm_id)
    assert coupling is not None and coupling.bc_id == created[0]["id"]
    number = next(a for a in h.dv.records("accounts") if a["accountid"] == crm_id)["accountnumber"]
    assert number == created[0]["number"]  # written back once the coupling was won


def test_unresolvable_owner_never_clears_the_bc_salesperson(harness):
    h = harness
    h.bc.seed(
        {
            "salespeoplePurchasers": [
                {"id": gid(), "code": "SP99", "displayName": "Not in CRM", "email": "nobody@example.com"}
            ]
        }
    )
    h.bc.seed({"customers": [customer("C990", "Owned", salespersonCode="SP99")]})
    run = h.run("full", ["SALESPEOPLE", "CUSTOMER"])
    assert run["status"] == "Succeeded"
    # The account is owned by the integration user (no coupled salesperson): that never flows back as "".
    assert customers_by_number(h)["C990"]["salespersonCode"] == "SP99"
    assert h.job(run, "CUSTOMER")["from_crm"]["modified"] == 0


def test_change_probe_skips_only_what_has_nothing_new_and_fails_open(harness, monkeypatch):
    from shared.connectors.errors import Transient
    from shared.sync import probe

    h = harness
    h.bc.seed(
        {
            "currencies": [{"id": gid(), "code": "SEK", "displayName": "Swedish krona"}],
            "currencyExchangeRates": [rate("SEK", 1000, 95)],
        }
    )
    h.bc.seed({"unitsOfMeasure": [{"id": gid(), "code": "BOX", "displayName": "Box"}]})
    run = h.run("full", ["CURRENCY", "UNIT OF MEASURE"])
    assert h.job(run, "CURRENCY")["to_crm"]["inserted"] == 1, run
    mappings = [m for m in h.ctx.mappings.all() if m.name in ("CURRENCY", "UNIT OF MEASURE")]
    assert probe.idle_mappings(h.ctx, mappings) == {"CURRENCY", "UNIT OF MEASURE"}
    unit = next(u for u in h.bc.records("unitsOfMeasure"))
    h.bc.seed({"unitsOfMeasure": [{"id": unit["id"], "displayName": "Renamed unit"}]})
    assert probe.idle_mappings(h.ctx, mappings) == {"CURRENCY"}
    run = h.run("modified", ["CURRENCY", "UNIT OF MEASURE"])
    assert h.job(run, "UNIT OF MEASURE")["to_crm"]["modified"] == 1
    assert h.job(run, "CURRENCY")["message"] == "no changes since the last sync"
    assert probe.idle_mappings(h.ctx, mappings) == {"CURRENCY", "UNIT OF MEASURE"}
    # A new exchange rate wakes CURRENCY although no currency record changed.
    # A later starting date: (currency, starting date) is the key of BC's Currency Exchange Rate table.
    h.bc.seed({"currencyExchangeRates": [rate("SEK", 1000, 90, start="2025-01-01")]})
    assert probe.idle_mappings(h.ctx, mappings) == {"UNIT OF MEASURE"}
    run = h.run("modified", ["CURRENCY", "UNIT OF MEASURE"])
    assert h.job(run, "CURRENCY")["to_crm"]["modified"] == 1, run

    def unreachable(*_args, **_kwargs):
        raise Transient("bc", None, "ConnectError", "connection refused")

    monkeypatch.setattr(h.ctx.bc, "batch", unreachable)
    assert probe.idle_mappings(h.ctx, mappings) == set()  # in doubt, everything runs
    # A mapping never synced has no watermark: it always runs.
    never = [m for m in h.ctx.mappings.all() if m.name == "CUSTOMER"]
    monkeypatch.undo()
    assert probe.idle_mappings(h.ctx, never) == set()


@pytest.mark.parametrize("whole_records", [25_000, 1])
def test_matched_twins_get_the_source_values_whether_the_index_holds_them_whole_or_not(
    harness, monkeypatch, whole_records
):
    from shared.sync import matching

    monkeypatch.setattr(matching, "WHOLE_RECORDS", whole_records)  # 1: the second twin must be read
    h = harness
    numbers = ["C960", "C961", "C962"]
    h.bc.seed({"customers": [customer(n, f"Twin {n}", phoneNumber=f"+1 555 {n[1:]}") for n in numbers]})
    h.dv.seed({"accounts": [account(f"Twin {n}", accountnumber=n, telephone1="+1 000") for n in numbers]})
    h.dv.reset_stats()
    run = h.run("full", ["CUSTOMER"])
    assert h.job(run, "CUSTOMER")["to_crm"]["coupled"] == 3, run
    phones = {a["accountnumber"]: a["telephone1"] for a in h.dv.records("accounts")}
    assert phones == {n: f"+1 555 {n[1:]}" for n in numbers}
    reads = h.dv.stats()["GET read"]  # match index + change tracking (+ the twins not held whole)
    assert reads == (2 if whole_records > 3 else 3), h.dv.stats()


def test_a_job_goes_on_inline_and_a_slice_failing_inline_is_retried_from_the_queue(harness, monkeypatch):
    import dataclasses

    from shared.store import clients, sync_queue
    from shared.store.tables import SYNC_QUEUE
    from shared.sync import orchestrator
    from shared.sync.slices import SliceRunner

    h = harness
    monkeypatch.setattr(h.ctx, "settings", dataclasses.replace(h.ctx.settings, slice_max_records=2))
    h.bc.seed({"customers": [customer(f"C98{i}", f"Inline {i}") for i in range(5)]})
    run = orchestrator.start_run(h.ctx, orchestrator.StartRequest("full", "api", ["CUSTOMER"], "keep"))
    queue = clients.queue(SYNC_QUEUE)
    [first] = [m for m in queue.receive_messages(visibility_timeout=30) if run.run_id in m.content]
    real, calls = SliceRunner.run_slice, []

    def third_slice_dies(self):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker lost its connection mid-slice")
        return real(self)

    monkeypatch.setattr(SliceRunner, "run_slice", third_slice_dies)
    outcome = orchestrator.handle_message(h.ctx, sync_queue.parse(first.content))
    queue.delete_message(first)
    assert outcome == "continued inline; continued inline; failed inline: re-enqueued", outcome
    h.drain(run.run_id)  # the re-enqueued slice, then the rest inline
    assert h.ctx.runs.get(run.run_id).status == "Succeeded"
    inline = [a for a in h.dv.records("accounts") if a["name"].startswith("Inline ")]
    assert sorted(a["name"] for a in inline) == [f"Inline {i}" for i in range(5)]  # once each
