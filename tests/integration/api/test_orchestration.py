"""Runs through the host over HTTP: full sync of the demo data, dependency order, decisions, modified
sync, concurrent starts, crash of a worker process. Tests in this module share one stack, in order."""

from __future__ import annotations

import collections
import os
import signal
import time
from datetime import datetime

from shared.mappings import SEED_ORDER


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_full_sync_of_demo_data_couples_every_eligible_record_once(api):
    run_id = api.start(after_full_sync="ask")
    # A second full sync while the first holds the mappings is refused and starts nothing.
    second = api.http.post("/api/sync/full", json={})
    assert second.status_code == 409 and second.json()["error"]["code"] == "RunInProgress"
    run = api.wait(run_id)
    assert run["status"] == "AwaitingDecision", run
    assert [j["mapping"] for j in run["jobs"]] == SEED_ORDER
    # The demo data holds records the other side refuses (per-record errors): those jobs finish with errors.
    assert {j["status"] for j in run["jobs"]} <= {"Succeeded", "FinishedWithErrors"}, run["jobs"]
    assert any(j["status"] == "FinishedWithErrors" for j in run["jobs"])
    jobs = {j["mapping"]: j for j in run["jobs"]}
    for job in run["jobs"]:  # never before its dependencies finished
        for dep in job["depends_on"]:
            assert ts(job["started_at"]) >= ts(jobs[dep]["finished_at"]), (job["mapping"], dep)
    # No duplicates: account numbers and product numbers are unique on the CRM side.
    numbers = [a["accountnumber"] for a in api.records("dataverse", "accounts") if a.get("accountnumber")]
    assert [n for n, c in collections.Counter(numbers).items() if c > 1] == []
    products = [p["productnumber"] for p in api.records("dataverse", "products") if p.get("productnumber")]
    assert [n for n, c in collections.Counter(products).items() if c > 1] == []
    # Every eligible BC customer is coupled exactly once (10 % of them were matched to existing twins).
    customers = [c for c in api.records("bc", "customers") if c["blocked"] != "All"]
    couplings = api.http.get("/api/mappings/CUSTOMER/couplings", params={"continuation": ""}).json()
    seen = set()
    token = None
    while True:
        page = api.http.get(
            "/api/mappings/CUSTOMER/couplings", params={"continuation": token} if token else {}
        )
        body = page.json()
        seen |= {c["bc_id"] for c in body["value"]}
        token = body["continuation"]
        if not token:
            break
    assert {c["id"] for c in customers} <= seen
    assert couplings["value"]
    customer_job = jobs["CUSTOMER"]
    assert customer_job["to_crm"]["coupled"] >= 15  # the demo data's deliberate twins were matched
    # Each job reports what it used: both services were read, and every new coupling is two table rows.
    new_couplings = sum(customer_job[p][k] for p in ("to_crm", "from_crm") for k in ("inserted", "coupled"))
    assert customer_job["usage"]["table_entity_ops"] >= 2 * new_couplings > 0
    assert customer_job["usage"]["table_requests"] < customer_job["usage"]["table_entity_ops"]  # batched
    for job in run["jobs"]:
        assert job["usage"]["bc_requests"] > 0 and job["usage"]["dataverse_requests"] > 0, job


def test_decision_keep_then_restore_changes_only_coupled_flag_as_promised(api):
    runs = api.http.get("/api/runs", params={"limit": 1}).json()["value"]
    run_id = runs[0]["run_id"]
    # The full sync ran on a per-run override: the stored flag is unchanged until the decision.
    assert api.http.get("/api/mappings/CUSTOMER").json()["sync_only_coupled"] is True
    # Meanwhile a scheduled sync leaves a new uncoupled record alone (counted as left out).
    api.seed("bc", {"customers": [{"displayName": "While waiting", "blocked": " "}]})
    waiting = api.wait(api.start("/api/sync/modified", mappings=["CUSTOMER"]))
    assert api.job(waiting, "CUSTOMER")["to_crm"]["left_out"] == 1, waiting
    assert not [a for a in api.records("dataverse", "accounts") if a["name"] == "While waiting"]
    answer = api.http.post(f"/api/runs/{run_id}/decision", json={"keep_sync_all_records": True})
    assert answer.status_code == 200 and answer.json()["status"] == "FinishedWithErrors", answer.json()
    assert api.http.get("/api/mappings/CUSTOMER").json()["sync_only_coupled"] is False
    created = api.wait(api.start("/api/sync/modified", mappings=["CUSTOMER"]))
    assert api.job(created, "CUSTOMER")["to_crm"]["inserted"] == 1, created
    again = api.http.post(f"/api/runs/{run_id}/decision", json={"keep_sync_all_records": False})
    assert again.status_code == 409
    # A full sync answered "restore" up front leaves the flag as it was.
    api.http.patch("/api/mappings/CURRENCY", json={"sync_only_coupled": True}).raise_for_status()
    run = api.wait(api.start(mappings=["CURRENCY"], after_full_sync="restore"))
    assert run["status"] == "Succeeded"
    assert api.http.get("/api/mappings/CURRENCY").json()["sync_only_coupled"] is True


def test_modified_sync_carries_exactly_the_edits_made_on_both_sides(api):
    customer = next(c for c in api.records("bc", "customers") if c["blocked"] != "All")
    account = next(
        a
        for a in api.records("dataverse", "accounts")
        if a["statecode"] == 0 and a.get("customertypecode") == 3
    )
    api.seed("bc", {"customers": [{"id": customer["id"], "phoneNumber": "+46 8 000 1234"}]})
    api.seed(
        "dataverse", {"accounts": [{"accountid": account["accountid"], "websiteurl": "www.changed.example"}]}
    )
    run = api.wait(api.start("/api/sync/modified"))
    assert run["status"] in ("Succeeded", "FinishedWithErrors"), run  # the demo's refused records retried
    job = api.job(run, "CUSTOMER")
    assert job["to_crm"]["modified"] == 1 and job["from_crm"]["modified"] == 1, job
    assert job["to_crm"]["inserted"] == job["from_crm"]["inserted"] == 0
    coupled = api.http.get("/api/mappings/CUSTOMER/couplings", params={"bc_id": customer["id"]}).json()[
        "value"
    ][0]
    crm = next(a for a in api.records("dataverse", "accounts") if a["accountid"] == coupled["crm_id"])
    assert crm["telephone1"] == "+46 8 000 1234"
    partner = api.http.get("/api/mappings/CUSTOMER/couplings", params={"crm_id": account["accountid"]}).json()
    bc = next(c for c in api.records("bc", "customers") if c["id"] == partner["value"][0]["bc_id"])
    assert bc["website"] == "www.changed.example"
    for other in run["jobs"]:
        if other["mapping"] != "CUSTOMER":
            assert other["to_crm"]["modified"] == other["from_crm"]["modified"] == 0, other


def _requests(client) -> dict:
    stats = client.get("/stats").raise_for_status().json()
    return {k: v for k, v in stats.items() if v and k.split()[0] in ("GET", "POST", "PATCH", "DELETE")}


def test_a_modified_sync_with_nothing_new_costs_one_probe_request_per_api_root(api):
    api.wait(api.start("/api/sync/modified"))  # settle: reads back what the last sync wrote
    for client in (api.bc, api.dv):
        client.post("/stats/reset").raise_for_status()
    run = api.wait(api.start("/api/sync/modified"))
    assert run["status"] == "Succeeded", run
    assert {j["message"] for j in run["jobs"]} == {"no changes since the last sync"}, run["jobs"]
    # One probe $batch per BC API root (v2.0, and the API page that serves resources) and one for Dataverse.
    assert _requests(api.bc) == {"POST batch": 2} and _requests(api.dv) == {"POST batch": 1}
    # One edit on one side wakes exactly the mapping it belongs to.
    customer = next(c for c in api.records("bc", "customers") if c["blocked"] != "All")
    api.seed("bc", {"customers": [{"id": customer["id"], "phoneNumber": "+46 8 000 9999"}]})
    run = api.wait(api.start("/api/sync/modified"))
    busy = [j["mapping"] for j in run["jobs"] if j["message"] != "no changes since the last sync"]
    assert busy == ["CUSTOMER"] and api.job(run, "CUSTOMER")["to_crm"]["modified"] == 1, run["jobs"]


def test_a_worker_killed_mid_run_does_not_stop_the_run(api):
    # Enough new records for several slices (SLICE_MAX_RECORDS=100), then SIGKILL one worker mid-run.
    api.seed("bc", {"customers": [{"displayName": f"Kill test {i}", "blocked": " "} for i in range(400)]})
    run_id = api.start("/api/mappings/CUSTOMER/sync", full=True, after_full_sync="keep")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = api.http.get(f"/api/runs/{run_id}").json()["jobs"][0]
        if job["processed"] > 0:
            break
        time.sleep(0.1)
    victim = api.stack.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    run = api.wait(run_id, timeout=300)
    assert run["status"] in ("Succeeded", "FinishedWithErrors"), run  # the demo data's refused records
    names = [a["name"] for a in api.records("dataverse", "accounts") if a["name"].startswith("Kill test")]
    assert len(names) == 400 and len(set(names)) == 400  # all there, none twice


def test_bad_requests_get_clear_errors_and_start_nothing(api):
    before = len(api.http.get("/api/runs", params={"limit": 200}).json()["value"])
    cases = [
        ("post", "/api/sync/full", b"{not json", 400, "MalformedJson"),
        ("post", "/api/sync/full", b'{"mappings": ["NOPE"]}', 400, "UnknownMapping"),
        ("post", "/api/sync/full", b'{"after_full_sync": "maybe"}', 400, "InvalidBody"),
        ("post", "/api/sync/full", b'{"dry_run": "yes"}', 400, "InvalidBody"),
        ("post", "/api/sync/full", b"[1, 2]", 400, "InvalidBody"),
        ("post", "/api/sync/modified", b"x" * 1_100_000, 413, "BodyTooLarge"),
        ("post", "/api/mappings/NOPE/sync", b"{}", 404, "UnknownMapping"),
        ("get", "/api/runs/not-a-run", b"", 400, "InvalidRunId"),
        ("get", "/api/runs/0000000000000-abcdef", b"", 404, "UnknownRun"),
        ("post", "/api/runs/0000000000000-abcdef/decision", b"{}", 400, "InvalidBody"),
        ("get", "/api/runs?limit=0", b"", 400, "InvalidLimit"),
    ]
    for method, path, body, status, code in cases:
        response = api.http.request(method.upper(), path, content=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["code"] == code, (path, response.text)
    assert len(api.http.get("/api/runs", params={"limit": 200}).json()["value"]) == before


def test_mapping_patch_is_validated_and_reset_restores_defaults(api):
    bad = api.http.patch("/api/mappings/CUSTOMER", json={"bc_filter": "blocked eq"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "bc_filter"
    unknown = api.http.patch("/api/mappings/CUSTOMER", json={"crm_filter": "nosuchfield eq 1"})
    assert unknown.status_code == 400 and "nosuchfield" in unknown.json()["error"]["message"]
    cycle = api.http.patch("/api/mappings/CURRENCY", json={"depends_on": ["CUSTOMER"]})
    assert cycle.status_code == 400 and "cycle" in cycle.json()["error"]["message"]
    ok = api.http.patch("/api/mappings/CUSTOMER", json={"update_conflict": "SendUpdateToIntegration"})
    assert ok.status_code == 200 and ok.json()["update_conflict"] == "SendUpdateToIntegration"
    assert api.http.post("/api/mappings/reset").status_code == 200
    assert api.http.get("/api/mappings/CUSTOMER").json()["update_conflict"] == "None"


def test_openapi_document_is_served(api):
    doc = api.http.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/api/sync/full" in doc["paths"]
    assert api.http.get("/api/schedule").json()["schedule"] == "0 */30 * * * *"


def test_logs_of_the_runs_contain_no_secret_and_no_token(api):
    stack = api.stack
    logs = "".join(p.read_text(errors="replace") for p in (stack.state / "logs").glob("*.log"))
    assert "run=" in logs and "outcome=ok" in logs  # the runs above were logged
    assert stack.client_secret not in logs
    assert stack.function_key not in logs
    assert "eyJ" not in logs and "Bearer " not in logs  # no JWT, no Authorization header
