"""Behaviour that follows BC's own Dynamics 365 Sales integration (README "Synchronization rules"):
run outcomes, counters, record-level conflicts, the Full Synchronization Review's recommendations and
dry runs of dependent mappings. Against the emulators over HTTP and Azurite."""

from __future__ import annotations

import pytest

from shared.model.status import JobStatus, Recommendation, ReviewStatus, RunStatus
from shared.sync import review
from tests.integration.engine.test_engine_rules import (
    account,
    accounts_by_name,
    customer,
    customers_by_number,
    gid,
    set_mapping,
)


def test_a_run_with_failed_records_finishes_with_errors_and_the_review_shows_error(harness):
    h = harness
    # BC refuses a name over 100 characters (an account may have 160): that one record fails.
    h.bc.seed({"customers": [customer("C100", "Fine")]})
    h.dv.seed({"accounts": [account("Too long " + "y" * 111)]})
    set_mapping(h, "CUSTOMER", direction="Bidirectional")
    run = h.run("full", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    assert run["status"] == RunStatus.FINISHED_WITH_ERRORS, run
    assert job["status"] == JobStatus.FINISHED_WITH_ERRORS
    assert job["from_crm"]["failed"] == 1 and job["to_crm"]["failed"] == 0, job
    line = review.review(h.ctx, [h.ctx.mappings.by_name()["CUSTOMER"]])[0]
    assert line.last_run == run["run_id"]
    assert line.status == {"to_crm": ReviewStatus.SUCCESS, "from_crm": ReviewStatus.ERROR}
    # A run without failures still ends Succeeded.
    clean = h.run("full", ["CURRENCY"])
    assert clean["status"] == RunStatus.SUCCEEDED, clean


def test_uncoupled_records_left_out_by_only_coupled_are_not_counted_as_skipped(harness):
    h = harness
    h.run("full", ["CUSTOMER"])
    set_mapping(h, "CUSTOMER", sync_only_coupled=True)
    h.bc.seed({"customers": [customer("C200", "New after the full sync")]})
    job = h.job(h.run("modified", ["CUSTOMER"]), "CUSTOMER")
    assert job["to_crm"]["left_out"] == 1 and job["to_crm"]["skipped"] == 0, job
    assert "New after the full sync" not in accounts_by_name(h)


def test_a_matched_record_gets_one_outcome(harness):
    h = harness
    h.bc.seed({"customers": [customer("C300", "Twin", email="twin@example.com")]})
    h.dv.seed({"accounts": [account("Twin", emailaddress1="twin@example.com", telephone1="+1 555 0199")]})
    run = h.run("full", ["CUSTOMER"])
    job = h.job(run, "CUSTOMER")
    to_crm = {k: v for k, v in job["to_crm"].items() if v}
    assert to_crm == {"coupled": 1}, job  # coupled, and synced after coupling, yet counted once
    assert sum(sum(job[p].values()) for p in ("to_crm", "from_crm")) == job["processed"]
    assert accounts_by_name(h)["Twin"]["telephone1"] == "+1 555 0100"  # BC's values won on coupling


@pytest.mark.parametrize(
    ("policy", "bc_after", "crm_after", "fails"),
    [
        ("None", ("BC name", "+1 555 0100"), ("Original", "+1 555 0177"), True),
        ("SendUpdateToIntegration", ("BC name", "+1 555 0100"), ("BC name", "+1 555 0100"), False),
        ("GetUpdateFromIntegration", ("Original", "+1 555 0177"), ("Original", "+1 555 0177"), False),
    ],
)
def test_record_level_conflict_detection(harness, policy, bc_after, crm_after, fails):
    """BC edits the name, CRM the phone: per field no conflict; per record (as BC) one, whole record."""
    h = harness
    h.bc.seed({"customers": [customer("C400", "Original")]})
    set_mapping(h, "CUSTOMER", direction="Bidirectional")
    h.run("full", ["CUSTOMER"])
    set_mapping(h, "CUSTOMER", conflict_detection="Record", update_conflict=policy)
    bc = customers_by_number(h)["C400"]
    crm = accounts_by_name(h)["Original"]
    h.bc.seed({"customers": [{"id": bc["id"], "displayName": "BC name"}]})
    h.dv.seed({"accounts": [{"accountid": crm["accountid"], "telephone1": "+1 555 0177"}]})
    run = h.run("modified", ["CUSTOMER"])
    new_bc = customers_by_number(h)["C400"]
    new_crm = {a["accountid"]: a for a in h.dv.records("accounts")}[crm["accountid"]]
    assert (new_bc["displayName"], new_bc["phoneNumber"]) == bc_after
    assert (new_crm["name"], new_crm["telephone1"]) == crm_after
    errors = h.ctx.errors.list(run_id=run["run_id"])
    assert any("the record changed on both sides" in e.message for e in errors) is fails


def test_field_level_detection_lets_different_fields_flow_both_ways(harness):
    h = harness
    h.bc.seed({"customers": [customer("C500", "Original")]})
    set_mapping(h, "CUSTOMER", direction="Bidirectional")
    h.run("full", ["CUSTOMER"])
    bc = customers_by_number(h)["C500"]
    crm = accounts_by_name(h)["Original"]
    h.bc.seed({"customers": [{"id": bc["id"], "displayName": "BC name"}]})
    h.dv.seed({"accounts": [{"accountid": crm["accountid"], "telephone1": "+1 555 0177"}]})
    run = h.run("modified", ["CUSTOMER"])
    assert run["status"] == RunStatus.SUCCEEDED, run
    new_bc = customers_by_number(h)["C500"]
    new_crm = {a["accountid"]: a for a in h.dv.records("accounts")}[crm["accountid"]]
    assert (new_bc["displayName"], new_bc["phoneNumber"]) == ("BC name", "+1 555 0177")
    assert (new_crm["name"], new_crm["telephone1"]) == ("BC name", "+1 555 0177")


def test_review_recommends_as_bc_does(harness):
    h = harness
    by_name = h.ctx.mappings.by_name()

    def rec(name: str) -> Recommendation:
        return review.recommend(h.ctx, by_name[name])[0]

    assert rec("CUSTOMER") == Recommendation.NO_RECORDS
    assert rec("SALESPEOPLE") == Recommendation.FULL_SYNC  # always
    h.dv.seed({"accounts": [account("Only in CRM")]})
    assert rec("CUSTOMER") == Recommendation.FULL_SYNC
    h.bc.seed({"customers": [customer("C600", "In BC")]})
    assert rec("CUSTOMER") == Recommendation.COUPLE_RECORDS
    # Dataverse holding only its base currency (exchange rate 1): a full synchronization.
    currencies = [c for c in h.dv.records("transactioncurrencies")]
    expected = Recommendation.FULL_SYNC if len(currencies) == 1 else Recommendation.COUPLE_RECORDS
    assert rec("CURRENCY") == expected


def test_couple_records_couples_and_creates_only_when_the_mapping_says_so(harness):
    h = harness
    h.bc.seed({"customers": [customer("C700", "Pair", email="pair@example.com"), customer("C701", "Alone")]})
    h.dv.seed({"accounts": [account("Pair", emailaddress1="pair@example.com"), account("Lonely")]})
    recs = {"CUSTOMER": Recommendation.COUPLE_RECORDS, "CONTACT": Recommendation.NO_RECORDS}
    run = h.run("full", ["CUSTOMER", "CONTACT"], recommendations=recs)
    job = h.job(run, "CUSTOMER")
    assert job["to_crm"]["coupled"] == 1 and job["to_crm"]["inserted"] == 0, job
    assert job["from_crm"]["inserted"] == 0, job
    assert "Alone" not in accounts_by_name(h) and "Lonely" not in {
        c["displayName"] for c in customers_by_number(h).values()
    }
    contact = h.job(run, "CONTACT")
    assert contact["status"] == JobStatus.SUCCEEDED and "nothing to synchronize" in contact["message"]
    set_mapping(h, "CUSTOMER", create_new_if_no_match=True)
    again = h.job(h.run("full", ["CUSTOMER"], recommendations={"CUSTOMER": "CoupleRecords"}), "CUSTOMER")
    assert again["to_crm"]["inserted"] == 1, again  # "Alone" created in Dataverse
    assert "Alone" in accounts_by_name(h)


def test_a_dry_run_assumes_the_couplings_its_earlier_jobs_would_create(harness):
    """The CONTACT preview resolves a contact's company through the account the CUSTOMER preview would
    create (BC's company contact of the customer), as the real run then does."""
    h = harness
    h.bc.seed({"customers": [customer("C800", "Parent Ltd")]})
    [parent] = [
        c for c in h.bc.records("contacts") if c["type"] == "Company" and c["displayName"] == "Parent Ltd"
    ]
    person = {"type": "Person", "displayName": "Ada Child", "companyNumber": parent["number"]}
    h.bc.seed({"contacts": [{"id": gid(), **person, "email": "ada@parent.test"}]})
    dry = h.run("full", ["CUSTOMER", "CONTACT"], dry_run=True)
    assert h.ctx.couplings.get("CUSTOMER", bc_id=customers_by_number(h)["C800"]["id"]) is None  # dry
    real = h.run("full", ["CUSTOMER", "CONTACT"])
    for mapping in ("CUSTOMER", "CONTACT"):
        d, r = h.job(dry, mapping), h.job(real, mapping)
        for sync_pass in ("to_crm", "from_crm"):
            assert d[sync_pass]["failed"] == r[sync_pass]["failed"], (mapping, d, r)
    assert h.job(dry, "CONTACT")["to_crm"]["inserted"] == h.job(real, "CONTACT")["to_crm"]["inserted"] == 1


def test_an_ambiguous_or_already_coupled_match_falls_through_to_the_next_priority(harness):
    h = harness
    set_mapping(h, "CUSTOMER", direction="Bidirectional")
    h.bc.seed(
        {
            "customers": [
                customer("C901", "Beta", email="beta@example.com"),
                customer("C902", "Gamma", email="gamma@example.com"),
                customer("C903", "Gamma", email="gamma@example.com"),
            ]
        }
    )
    beta = account("Beta", emailaddress1="beta@example.com", accountnumber="C901")
    other = account("Other", emailaddress1="other@example.com", accountnumber="C901")
    gamma = account("Gamma", emailaddress1="gamma@example.com", accountnumber="C902")
    h.dv.seed({"accounts": [beta, other, gamma]})
    h.run("full", ["CUSTOMER"])
    by_number = customers_by_number(h)
    pair = {n: h.ctx.couplings.get("CUSTOMER", bc_id=by_number[n]["id"]) for n in ("C901", "C902", "C903")}
    # Number C901 matches two accounts (ambiguous): name and email, the next priority, pick one.
    assert pair["C901"].crm_id == beta["accountid"]
    assert pair["C902"].crm_id == gamma["accountid"]
    # C903's name and email match Gamma, coupled to C902 already: no match, so a counterpart is created.
    assert pair["C903"] is not None and pair["C903"].crm_id not in (gamma["accountid"], other["accountid"])
