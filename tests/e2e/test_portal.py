"""The admin portal in Debian's Chromium against the whole devstack (Azurite, idp, emulators, host)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack.start(tmp_path_factory.mktemp("stack"), data="demo", records=20) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, stack: Stack) -> Iterator:
    context = browser.new_context(locale="en-NZ", extra_http_headers={"Accept-Language": "en-NZ,en;q=0.9"})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    yield page
    context.close()
    # A 400 the page shows inline (a rejected edit) is logged by the browser itself; anything else fails.
    assert [e for e in console_errors if "status of 400" not in e] == []


def open_portal(page, stack: Stack, hash_: str = "") -> None:
    page.goto(f"{stack.endpoints['host']}/api/portal?code={stack.function_key}{hash_}")
    page.wait_for_selector("main h2")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


def test_portal_needs_the_key_and_sends_security_headers(stack: Stack) -> None:
    base = f"{stack.endpoints['host']}/api/portal"
    assert httpx.get(base).status_code == 401
    resp = httpx.get(base, params={"code": stack.function_key}, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert resp.status_code == 200
    csp = resp.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}"' in resp.text and "unsafe-inline" not in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert '<html lang="fr">' in resp.text
    assert stack.function_key not in resp.text


def test_key_is_removed_from_the_address_bar_and_overview_renders(page, stack: Stack) -> None:
    open_portal(page, stack)
    assert "code=" not in page.url
    page.get_by_role("heading", name="Connection health").wait_for()
    page.locator("text=Storage: reachable").wait_for()
    shot(page, "overview")


def test_bad_filter_shows_the_server_error_inline(page, stack: Stack) -> None:
    open_portal(page, stack, "#mappings")
    row = page.locator("tr[data-mapping='CUSTOMER']")
    row.get_by_role("button", name="Edit").click()
    page.get_by_label("Table filter", exact=True).fill("displayName eq 'unterminated")
    page.get_by_role("button", name="Save").click()
    alert = page.locator("#edit-error")
    playwright_api.expect(alert).to_contain_text("bc_filter")
    assert page.get_by_label("Table filter", exact=True).get_attribute("aria-invalid") == "true"
    shot(page, "mappings-error")


def test_language_switch_translates_the_page(page, stack: Stack) -> None:
    open_portal(page, stack, "#mappings")
    page.get_by_label("Language").select_option("sv")
    page.get_by_role("heading", name="Tabellmappningar för integrering", level=2).wait_for()
    assert page.locator("html").get_attribute("lang") == "sv"
    page.locator("th", has_text="Synka endast kopplade poster").wait_for()
    shot(page, "mappings-sv")
    page.get_by_label("Språk").select_option("nl")
    page.get_by_role("heading", name="Toewijzingen van integratietabellen", level=2).wait_for()
    page.get_by_label("Taal").select_option("fr")
    page.get_by_role("heading", name="Mappages de table d'intégration", level=2).wait_for()


def test_full_sync_from_the_review_page(page, stack: Stack) -> None:
    key = {"x-functions-key": stack.function_key}
    host = stack.endpoints["host"]
    open_portal(page, stack, "#review")
    page.on("dialog", lambda d: d.accept())
    # Each line shows the server's recommendation (BC's "Initial Synch Recommendation").
    lines = httpx.get(f"{host}/api/review", headers=key, timeout=60).json()["value"]
    labels = {
        "FullSynchronization": "Full Synchronization",
        "CoupleRecords": "Couple Records",
        "NoRecordsFound": "No Records Found",
    }
    for line in lines:
        row = page.locator(f"#review-table tr[data-mapping='{line['mapping']}']")
        playwright_api.expect(row.locator("td.recommendation")).to_contain_text(
            labels[line["recommendation"]]
        )
    page.get_by_role("button", name="Analyse (dry run)").click()
    page.locator(
        "#review-table tr[data-mapping='CUSTOMER'] td.dry",
        has_text=re.compile("Succeeded|Finished with errors"),
    ).wait_for(timeout=120_000)
    # The dry run is a run of its own: Start is enabled again once all of it has ended.
    page.wait_for_selector("#start-full:not([disabled])", timeout=120_000)
    shot(page, "review-dry-run")
    page.get_by_role("button", name="Start", exact=True).click()
    page.locator("#decision").wait_for(timeout=180_000)
    # Every job reached 100 % before the run asked for the decision.
    bars = page.locator("#review-progress progress")
    assert bars.count() == 9  # one per default mapping
    assert all(bars.nth(i).get_attribute("value") == "100" for i in range(bars.count()))
    # Nothing on the mappings changed before the answer: the full sync ran on a per-run override.
    mappings = httpx.get(f"{host}/api/mappings", headers=key).json()["value"]
    assert all(m["sync_only_coupled"] for m in mappings)
    shot(page, "review-decision")
    page.get_by_role("button", name="No — keep the previous setting").click()
    page.locator("#run-status", has_text=re.compile("^(Succeeded|Finished with errors)$")).wait_for(
        timeout=60_000
    )
    page.locator("#decision-outcome", has_text="Synch. Only Coupled Records stays on.").wait_for()
    mappings = httpx.get(f"{host}/api/mappings", headers=key).json()["value"]
    assert all(m["sync_only_coupled"] for m in mappings)  # "restore" left the flag on
    customer = page.locator("#review-progress tr[data-mapping='CUSTOMER']")
    assert re.search(r"(inserted|coupled): [1-9]", customer.inner_text())
    # Per direction, the line shows how the last full synchronization went (as the server reports it).
    names = {"Success": "Success", "Error": "Error", "InProcess": "In Process"}
    after = {
        x["mapping"]: x for x in httpx.get(f"{host}/api/review", headers=key, timeout=60).json()["value"]
    }
    for name, line in after.items():
        for side in ("to_crm", "from_crm"):
            value = line["last_full_sync"].get(side)
            cell = page.locator(f"#review-table tr[data-mapping='{name}'] td.{side}")
            if value:
                playwright_api.expect(cell).to_contain_text(names[value])
                failed = cell.locator(".unfavorable") if value == "Error" else cell.locator(".favorable")
                if value in ("Success", "Error"):
                    assert failed.count() == 1
    assert after["CUSTOMER"]["last_full_sync"]["to_crm"] in ("Success", "Error")
    shot(page, "review-done")
    page.get_by_role("link", name="Integration Synchronization Jobs").click()
    page.locator("main h2", has_text="Integration Synchronization Jobs").wait_for()
    page.locator("main table").first.wait_for()  # the runs list (the run's jobs table may follow)
    shot(page, "jobs")
    page.get_by_role("link", name="Errors and skipped records").click()
    page.locator("main h2", has_text="Errors and skipped records").wait_for()
    shot(page, "errors")
    page.get_by_role("link", name="Couplings").click()
    ready(page, "couplings")
    page.get_by_label("Mapping").select_option("CUSTOMER")
    page.get_by_role("button", name="Search").click()
    page.locator("main table tbody tr").first.wait_for()
    shot(page, "couplings")


# --- daily work: names, paging, record actions, the field-mapping editor, layout and accessibility ---
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
GUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
PAGES = ["overview", "mappings", "review", "jobs", "errors", "couplings"]


class Http:
    """The HTTP API of the stack, for arranging data and checking what the portal did."""

    def __init__(self, stack: Stack):
        self.base = f"{stack.endpoints['host']}/api"
        self.headers = {"x-functions-key": stack.function_key}

    def get(self, path: str, **params) -> dict:
        resp = httpx.get(self.base + path, params=params, headers=self.headers, timeout=60)
        resp.raise_for_status()
        return resp.json()

    def send(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return httpx.request(method, self.base + path, json=body, headers=self.headers, timeout=120)


@pytest.fixture(scope="module")
def http(stack: Stack) -> Http:
    return Http(stack)


@pytest.fixture(scope="module")
def synced(http: Http) -> Http:
    """A finished full synchronization that created counterparts for every uncoupled record.

    The review's Start follows the recommendations (Couple Records only couples matches), so the
    record tests get a plain full synchronization of their own; "restore" leaves the flags as they were.
    """
    import time

    deadline = time.monotonic() + 300
    run_id = None
    while run_id is None:
        resp = http.send("POST", "/sync/full", {"after_full_sync": "restore"})
        if resp.status_code in (200, 201, 202):
            run_id = resp.json()["run_id"]
        else:  # another run holds the mappings: wait for it
            assert resp.status_code == 409, resp.text
            assert time.monotonic() < deadline, "no full synchronization could start"
            time.sleep(1)
    while (status := http.get(f"/runs/{run_id}")["status"]) in ("Pending", "Running"):
        assert time.monotonic() < deadline, "the full synchronization did not finish"
        time.sleep(1)
    assert status in ("Succeeded", "FinishedWithErrors"), status
    return http


def ready(page, name: str) -> None:
    page.wait_for_selector(f"main[data-ready='{name}']")


def open_page(page, stack: Stack, name: str) -> None:
    open_portal(page, stack, f"#{name}")
    ready(page, name)


def fully_named(record: dict) -> bool:
    return record["state"] == "found" and bool(record["number"] or record["name"])


def pair(http: Http, mapping: str = "CUSTOMER", skip: int = 0) -> dict:
    """A coupling whose records are named on both sides."""
    found = [
        c
        for c in http.get(f"/browse/mappings/{mapping}/couplings", limit=50)["value"]
        if fully_named(c["bc"]) and fully_named(c["crm"]) and not c["skipped"]
    ]
    assert len(found) > skip, f"{mapping} has too few named couplings"
    return found[skip]


def label(record: dict) -> str:
    return " · ".join(x for x in (record["number"], record["name"]) if x)


def status_text(page, selector: str, pattern: str) -> str:
    box = page.locator(selector)
    playwright_api.expect(box).to_contain_text(re.compile(pattern))
    return box.inner_text()


def test_couplings_are_listed_by_default_with_names_links_and_paging(
    page, stack: Stack, synced: Http
) -> None:
    open_page(page, stack, "couplings")
    page.get_by_label("Mapping", exact=True).select_option("CUSTOMER")
    page.locator("#couplings-list[data-mapping='CUSTOMER']").wait_for()
    rows = page.locator("#couplings-list tbody tr")
    rows.first.wait_for()
    first = rows.first
    bc_cell, crm_cell = first.locator("td").nth(0), first.locator("td").nth(1)
    # Number and name, not a GUID, on both sides; the links open BC's card page and the Dataverse form.
    assert not GUID.search(bc_cell.inner_text()) and not GUID.search(crm_cell.inner_text())
    bc_id, crm_id = first.get_attribute("data-bc-id"), first.get_attribute("data-crm-id")
    coupling = synced.get("/browse/mappings/CUSTOMER/couplings", q=bc_id)["value"][0]
    assert label(coupling["bc"]) in bc_cell.inner_text() and label(coupling["crm"]) in crm_cell.inner_text()
    bc_link = bc_cell.locator("a").get_attribute("href")
    crm_link = crm_cell.locator("a").get_attribute("href")
    assert bc_link.startswith("https://businesscentral.dynamics.com/") and "page=21" in bc_link
    assert "main.aspx?" in crm_link and "etn=account" in crm_link and f"id={crm_id}" in crm_link
    # Search by number finds the coupling; by part of the name as well.
    page.get_by_label("Number, name or id").fill(coupling["bc"]["number"])
    page.get_by_role("button", name="Search").click()
    playwright_api.expect(rows.first).to_have_attribute("data-bc-id", bc_id)
    page.get_by_label("Number, name or id").fill("")
    page.get_by_role("button", name="Search").click()
    # Continuation paging: 25 a page, Next follows the token, Previous comes back.
    total = len(synced.get("/browse/mappings/CUSTOMER/couplings", limit=200)["value"])
    if total > 25:
        playwright_api.expect(rows).to_have_count(25)
        page.get_by_role("button", name="Next").click()
        page.locator("#couplings-list .pager", has_text="Page 2").wait_for()
        playwright_api.expect(rows).to_have_count(min(25, total - 25))
        page.get_by_role("button", name="Previous").click()
        page.locator("#couplings-list .pager", has_text="Page 1").wait_for()
    shot(page, "couplings-names")


def test_record_actions_sync_now_retry_restore_uncouple(page, stack: Stack, synced: Http) -> None:
    from shared.connectors.dataverse import DataverseClient
    from shared.settings import Settings

    page.on("dialog", lambda d: d.accept())
    assert synced.send("PATCH", "/mappings/CUSTOMER", {"deletion_conflict": "None"}).status_code == 200
    target = pair(synced)
    bc, crm = target["bc"], target["crm"]
    # The Dataverse record goes away behind the portal's back.
    DataverseClient(Settings.from_env(stack.settings())).delete("accounts", crm["id"])
    open_page(page, stack, "couplings")
    page.get_by_label("Mapping", exact=True).select_option("CUSTOMER")
    page.get_by_label("Number, name or id").fill(bc["number"])
    page.get_by_role("button", name="Search").click()
    row = page.locator(f"#couplings-list tr[data-bc-id='{bc['id']}']")
    playwright_api.expect(row.locator("td").nth(1)).to_contain_text("no longer exists")
    # Synchronize now, twice, in the chosen direction: the same failure twice skips the record.
    for _ in range(2):
        row.get_by_label(re.compile("Synchronization direction")).select_option("to_crm")
        row.get_by_role("button", name="Synchronize Now").click()
        status_text(page, "#couplings-msg", "failed")
        page.locator("#couplings-msg").evaluate("e => e.textContent = ''")
    shot(page, "couplings-sync-now")
    assert synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"][0]["skipped"] is True

    open_page(page, stack, "errors")
    page.get_by_label("Mapping", exact=True).first.select_option("CUSTOMER")
    error_row = page.locator("#errors-list tbody tr", has_text=label(bc)).first
    error_row.wait_for()
    assert not GUID.search(error_row.locator("td").nth(2).inner_text())
    # The error's coupling is skipped: its row offers Restore (the answer names both records).
    playwright_api.expect(error_row.get_by_role("button", name="Restore skipped record")).to_have_count(1)
    error_row.get_by_role("button", name="Retry").click()
    status_text(page, "#errors-msg", "Done")
    skipped_row = page.locator("#skipped-list tbody tr", has_text=label(bc))
    page.locator("#s-mapping").select_option("CUSTOMER")
    skipped_row.wait_for()
    shot(page, "errors-skipped")
    skipped_row.get_by_role("button", name="Restore skipped record").click()
    status_text(page, "#errors-msg", "1 skipped record")
    playwright_api.expect(skipped_row).to_have_count(0)
    assert synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"][0]["skipped"] is False

    # Uncouple from the errors list: the coupling is gone, the BC record stays.
    error_row = page.locator("#errors-list tbody tr", has_text=label(bc)).first
    playwright_api.expect(error_row.get_by_role("button", name="Restore skipped record")).to_have_count(0)
    error_row.get_by_role("button", name="Delete coupling").click()
    status_text(page, "#errors-msg", "1 coupling")
    assert synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"] == []
    # Uncoupled now: the error stays listed, with nothing left to restore or uncouple.
    playwright_api.expect(error_row.get_by_role("button", name="Delete coupling")).to_have_count(0)
    shot(page, "errors-uncoupled")


def test_synchronize_now_from_dataverse(page, stack: Stack, synced: Http) -> None:
    target = pair(synced, skip=3)
    open_page(page, stack, "couplings")
    page.get_by_label("Mapping", exact=True).select_option("CUSTOMER")
    page.get_by_label("Number, name or id").fill(target["bc"]["id"])
    page.get_by_role("button", name="Search").click()
    row = page.locator(f"#couplings-list tr[data-bc-id='{target['bc_id']}']")
    row.get_by_label(re.compile("Synchronization direction")).select_option("from_crm")
    row.get_by_role("button", name="Synchronize Now").click()
    text = status_text(page, "#couplings-msg", "Done")
    assert "failed" not in text
    run = synced.get("/runs", limit=1)["value"][0]
    assert run["kind"] == "records" and run["trigger"] in ("api", "portal") and run["status"] == "Succeeded"


def test_uncouple_match_dry_run_set_up_coupling_and_match(page, stack: Stack, synced: Http) -> None:
    page.on("dialog", lambda d: d.accept())
    target = pair(synced, skip=1)
    bc, crm = target["bc"], target["crm"]
    open_page(page, stack, "couplings")
    page.get_by_label("Mapping", exact=True).select_option("CUSTOMER")
    page.get_by_label("Number, name or id").fill(bc["id"])
    page.get_by_role("button", name="Search").click()
    row = page.locator(f"#couplings-list tr[data-bc-id='{bc['id']}']")
    row.get_by_role("button", name="Delete coupling").click()
    status_text(page, "#couplings-msg", "1 coupling")
    assert synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"] == []

    page.get_by_role("button", name="Match-based coupling (dry run)").click()
    status_text(page, "#couplings-msg", r"coupled \d")
    assert synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"] == []  # a dry run

    # Set up the coupling again by finding both records by name and number.
    page.get_by_label("Find a Business Central record").fill(bc["name"] or bc["number"])
    page.locator("#find-bc-btn").click()
    page.get_by_label("Business Central record to couple").select_option(bc["id"])
    page.get_by_label("Find a Dataverse record").fill(crm["number"] or crm["name"])
    page.locator("#find-crm-btn").click()
    page.get_by_label("Dataverse record to couple").select_option(crm["id"])
    shot(page, "couplings-set-up")
    page.locator("#couple-btn").click()
    status_text(page, "#couplings-msg", "coupled")
    again = synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"]
    assert [c["crm_id"] for c in again] == [crm["id"]]

    # Uncouple once more and let match-based coupling find the pair (same values in the match fields).
    synced.send("DELETE", "/mappings/CUSTOMER/couplings", {"bc_ids": [bc["id"]]}).raise_for_status()
    page.get_by_role("button", name="Match-based coupling", exact=True).click()
    text = status_text(page, "#couplings-msg", r"coupled \d")
    coupled = int(re.search(r"coupled (\d+)", text).group(1))
    assert coupled >= 1
    assert synced.get("/browse/mappings/CUSTOMER/couplings", q=bc["id"])["value"] != []
    shot(page, "couplings-match")


def test_field_mapping_editor(page, stack: Stack, synced: Http) -> None:
    dialogs: list[str] = []

    def answer(d) -> None:
        dialogs.append(d.message)
        d.dismiss() if len(dialogs) == 1 else d.accept()

    page.on("dialog", answer)
    before = synced.get("/mappings/CUSTOMER")
    open_page(page, stack, "mappings")
    page.locator("tr[data-mapping='CUSTOMER']").get_by_role("button", name="Edit").click()
    editor = page.locator("#edit-form")
    rows = editor.locator("tr[data-field-row]")
    playwright_api.expect(rows).to_have_count(len(before["fields"]))

    # Bad input: an unknown Dataverse field. The API's error appears at that input; nothing is saved.
    page.get_by_role("button", name="Add field").click()
    new = rows.last
    new.get_by_label(re.compile("^Integration field")).fill("nosuchfield")
    new.get_by_label(re.compile("^Field \\(Business Central\\)")).fill("displayName")
    page.get_by_role("button", name="Save").click()
    alert = page.locator("#edit-error")
    playwright_api.expect(alert).to_contain_text("nosuchfield")
    playwright_api.expect(new.get_by_label(re.compile("^Integration field"))).to_have_attribute(
        "aria-invalid", "true"
    )
    shot(page, "field-editor-error")
    assert synced.get("/mappings/CUSTOMER")["fields"] == before["fields"]

    # One field removed and its Dataverse field written by a constant instead (to Dataverse only); a
    # match priority; clear on failed lookup on a lookup field; one more dependency.
    plain = next(
        i for i, f in enumerate(before["fields"]) if f.get("bc") and f.get("crm") and not f.get("lookup")
    )
    lookups = [i for i, f in enumerate(before["fields"]) if f.get("lookup")]
    removed_at = next(
        i
        for i, f in enumerate(before["fields"])
        if f.get("bc") and f.get("crm") and not f.get("lookup") and not f.get("match_priority") and i != plain
    )
    removed = before["fields"][removed_at]
    new.get_by_label(re.compile("^Field \\(Business Central\\)")).fill("")
    new.get_by_label(re.compile("^Integration field")).fill(removed["crm"])
    new.get_by_label(re.compile("^Direction")).select_option("ToIntegrationTable")
    new.get_by_label(re.compile("^Constant")).fill("portal test")
    rows.nth(plain).get_by_label(re.compile("^Match priority")).fill("9")
    if lookups:
        rows.nth(lookups[0]).get_by_label(re.compile("^Clear on failed lookup")).check()
    mappings = synced.get("/mappings")["value"]
    extra = next(
        (
            m["name"]
            for m in mappings
            if m["name"] not in ("CUSTOMER", *before["depends_on"]) and not m["depends_on"]
        ),
        None,
    )
    if extra:
        editor.locator("fieldset.deps").get_by_label(extra).check()
    rows.nth(removed_at).get_by_role("button", name="Remove").click()
    shot(page, "field-editor")
    page.get_by_role("button", name="Save").click()
    page.locator("#mappings-msg:not(:empty), #edit-error:not(:empty)").first.wait_for()
    assert page.locator("#edit-form").count() == 0, page.locator("#edit-error").inner_text()
    page.locator("#mappings-msg", has_text="Mapping CUSTOMER saved.").wait_for()
    after = synced.get("/mappings/CUSTOMER")
    assert len(after["fields"]) == len(before["fields"])  # one added, one removed
    assert removed not in after["fields"]
    added = next(f for f in after["fields"] if f.get("crm") == removed["crm"])
    assert (
        added["constant"] == "portal test"
        and added["direction"] == "ToIntegrationTable"
        and not added.get("bc")
    )
    assert (
        next(f for f in after["fields"] if f["crm"] == before["fields"][plain]["crm"])["match_priority"] == 9
    )
    if lookups:
        crm = before["fields"][lookups[0]]["crm"]
        assert next(f for f in after["fields"] if f["crm"] == crm)["clear_on_fail"] is True
    if extra:
        assert extra in after["depends_on"]

    # Reset asks first: dismissed, nothing changes; accepted, the defaults are back.
    page.get_by_role("button", name="Reset to default mappings").click()
    page.locator("#mappings-msg", has_text="Nothing was reset.").wait_for()
    assert synced.get("/mappings/CUSTOMER")["fields"] == after["fields"]
    page.get_by_role("button", name="Reset to default mappings").click()
    page.locator("#mappings-msg", has_text="Default mappings restored.").wait_for()
    assert len(dialogs) == 2
    assert synced.get("/mappings/CUSTOMER")["fields"] != after["fields"]


def test_run_history_picture(page, stack: Stack, synced: Http) -> None:
    open_page(page, stack, "overview")
    chart = page.locator("#history svg").first
    chart.wait_for()
    history = synced.get("/browse/history")["value"]
    runs = [p for p in history if not p["dry_run"]]
    assert page.locator("#history svg rect.synced").count() == sum(1 for p in runs if p["synced"])
    assert page.locator("#history svg rect.duration").count() == sum(1 for p in runs if p["duration_seconds"])
    assert "runs in the last 30 days" in chart.locator("desc").text_content()
    page.get_by_label("Language").select_option("fr")
    ready(page, "overview")
    page.locator("#history figcaption", has_text="Enregistrements par exécution").wait_for()
    shot(page, "overview-history-fr")
    page.get_by_label("Langue").select_option("en")


def test_keyboard_reaches_the_actions(page, stack: Stack) -> None:
    open_page(page, stack, "couplings")
    page.locator("#lang").focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")  # skips to the content and stays on the page
    assert page.evaluate("document.activeElement.id") == "main" and page.url.endswith("#couplings")
    page.locator("#lang").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#overview"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    ready(page, "mappings")
    page.locator("tr[data-mapping] button", has_text="Edit").first.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "edit-direction"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "edit-bc_filter"


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_fits_and_has_no_serious_accessibility_violations(
    browser, stack: Stack, synced: Http, width: int
) -> None:
    # axe.min.js is injected as a script tag, which the portal's CSP refuses unless bypassed for the test.
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True, locale="en-NZ")
    page = context.new_page()
    try:
        for name in PAGES:
            open_page(page, stack, name)
            if name == "mappings":
                page.locator("tr[data-mapping] button", has_text="Edit").first.click()
            if name == "couplings":
                page.locator("#couplings-list tbody tr").first.wait_for()
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            serious = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == [], (name, width, serious)
            # Nothing wider than the screen: tables scroll or become cards, the actions stay in view.
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
            if name == "mappings" and width == 1280:
                rights = page.eval_on_selector_all(
                    "table.mappings td.actions", "els => els.map(e => e.getBoundingClientRect().right)"
                )
                assert rights and max(rights) <= width
            shot(page, f"{name}-{width}")
    finally:
        context.close()


def test_names_are_read_in_bulk_and_paging_visits_every_coupling_once(stack: Stack, synced: Http) -> None:
    everything = synced.get("/browse/mappings/CUSTOMER/couplings", limit=200)["value"]
    assert everything and everything[0]["bc"]["state"] == "found"
    seen, token = [], None
    while True:
        page = synced.get(
            "/browse/mappings/CUSTOMER/couplings", limit=7, **({"continuation": token} if token else {})
        )
        assert len(page["value"]) <= 7
        seen += [c["bc_id"] for c in page["value"]]
        token = page["continuation"]
        if not token:
            break
    assert sorted(seen) == sorted(c["bc_id"] for c in everything) and len(set(seen)) == len(seen)
    # One page of up to 50 couplings: one id-filtered read on each side (BC may add its company lookup).
    for side in ("bc", "dataverse"):
        httpx.post(f"{stack.endpoints[side]['admin']}/stats/reset").raise_for_status()
    shown = synced.get("/browse/mappings/CUSTOMER/couplings", limit=50)["value"]
    assert len(shown) == min(50, len(everything))
    bc = httpx.get(f"{stack.endpoints['bc']['admin']}/stats").json()
    dv = httpx.get(f"{stack.endpoints['dataverse']['admin']}/stats").json()
    assert dv.get("total") == 1, dv
    assert 1 <= bc.get("total", 0) <= 2, bc


def test_a_page_left_while_loading_never_writes_into_the_next(page, stack: Stack, synced: Http) -> None:
    open_page(page, stack, "overview")
    for name in ("errors", "couplings", "jobs", "errors", "couplings"):  # no waiting in between
        page.evaluate(f"location.hash = '#{name}'")
    ready(page, "couplings")
    page.locator("#couplings-list tbody tr").first.wait_for()
    assert page.locator("main h2").count() == 1
    assert page.locator("#errors-list, #skipped-list, #jobs-box").count() == 0


def test_a_mapping_with_failed_records_shows_error_and_restarts(page, stack: Stack, synced: Http) -> None:
    # The demo data holds records the other side refuses: their mapping's last full sync reads Error.
    lines = synced.get("/review")["value"]
    failed = [
        x
        for x in lines
        if "Error" in (x["last_full_sync"].get("to_crm"), x["last_full_sync"].get("from_crm"))
    ]
    assert failed, "the demo data's full synchronization recorded no failed record"
    name = failed[0]["mapping"]
    before = failed[0]["last_full_sync"]["run_id"]
    open_page(page, stack, "review")
    row = page.locator(f"#review-table tr[data-mapping='{name}']")
    assert row.locator(".review-status.unfavorable", has_text="Error").count() >= 1
    # Lines without an error offer no Restart.
    for line in lines:
        if line not in failed:
            assert (
                page.locator(f"#review-table tr[data-mapping='{line['mapping']}'] button.restart").count()
                == 0
            )
    shot(page, "review-error")
    row.get_by_role("button", name="Restart").click()
    # A restart is a full synchronization of its own: it asks the same question at its end.
    page.locator("#decision").wait_for(timeout=120_000)
    page.get_by_role("button", name="No — keep the previous setting").click()
    page.locator("#run-status", has_text=re.compile("^(Succeeded|Finished with errors)$")).wait_for(
        timeout=120_000
    )
    after = {x["mapping"]: x for x in synced.get("/review")["value"]}[name]["last_full_sync"]
    assert after["run_id"] != before  # the restart is the mapping's last full synchronization now
    run = synced.get(f"/runs/{after['run_id']}")
    assert run["kind"] == "mapping" and [j["mapping"] for j in run["jobs"]] == [name]
    # The run's jobs name the outcome of the job whose records failed.
    job = next(j for j in synced.get(f"/runs/{before}")["jobs"] if j["mapping"] == name)
    assert job["status"] in ("FinishedWithErrors", "Failed")
    text = {"FinishedWithErrors": "Finished with errors", "Failed": "Failed"}[job["status"]]
    open_portal(page, stack, f"#jobs/{before}")
    cell = page.locator(f"#jobs-box tr[data-mapping='{name}'] td").first
    playwright_api.expect(cell).to_have_text(text)


def test_deleted_couplings_are_found_and_restored_and_restore_all_answers(
    page, stack: Stack, synced: Http
) -> None:
    import uuid

    from shared.settings import StorageSettings
    from shared.store.clients import table_service
    from shared.store.couplings import Coupling, CouplingStore
    from shared.store.tables import Tables

    admin = stack.endpoints["bc"]["admin"]
    httpx.post(
        f"{admin}/seed", json={"customers": [{"displayName": "Lost twin", "blocked": " "}]}
    ).raise_for_status()
    lost = next(
        c for c in httpx.get(f"{admin}/records/customers").json()["value"] if c["displayName"] == "Lost twin"
    )
    storage = StorageSettings(stack.endpoints["storage_connection_string"], "", "")
    store = CouplingStore(Tables(table_service(storage), prefix=""))
    store.create_many([Coupling("CUSTOMER", lost["id"], str(uuid.uuid4()))])  # its Dataverse record is gone
    open_page(page, stack, "couplings")
    page.get_by_label("Mapping", exact=True).select_option("CUSTOMER")
    page.get_by_role("button", name="Find Deleted Couplings").click()
    row = page.locator(f"#broken-list tr[data-bc-id='{lost['id']}']")
    row.get_by_role("button", name="Restore Record").click()
    status_text(page, "#couplings-msg", "inserted 1")
    restored = store.get("CUSTOMER", bc_id=lost["id"])
    assert restored is not None
    accounts = httpx.get(f"{stack.endpoints['dataverse']['admin']}/records/accounts").json()["value"]
    assert [a for a in accounts if a["accountid"] == restored.crm_id]
    page.get_by_role("button", name="Restore All").click()
    status_text(page, "#couplings-msg", r"\d")
