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
    open_portal(page, stack, "#review")
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Analyse (dry run)").click()
    page.locator("#review-table tr[data-mapping='CUSTOMER'] td", has_text="Succeeded").wait_for(
        timeout=120_000
    )
    # The dry run is a run of its own: Start is enabled again once all of it has ended.
    page.wait_for_selector("#start-full:not([disabled])", timeout=120_000)
    shot(page, "review-dry-run")
    page.get_by_role("button", name="Start", exact=True).click()
    page.locator("#decision").wait_for(timeout=180_000)
    # Every job reached 100 % before the run asked for the decision.
    bars = page.locator("#review-progress progress")
    assert bars.count() == 7
    assert all(bars.nth(i).get_attribute("value") == "100" for i in range(bars.count()))
    shot(page, "review-decision")
    page.get_by_role("button", name="No — restore the previous setting").click()
    page.locator("#run-status", has_text="Succeeded").wait_for(timeout=60_000)
    page.locator("#decision-outcome", has_text="Synch. Only Coupled Records was restored.").wait_for()
    key = {"x-functions-key": stack.function_key}
    mappings = httpx.get(f"{stack.endpoints['host']}/api/mappings", headers=key).json()["value"]
    assert all(m["sync_only_coupled"] for m in mappings)  # "restore" put the defaults back
    customer = page.locator("#review-progress tr[data-mapping='CUSTOMER']")
    assert re.search(r"(inserted|coupled): [1-9]", customer.inner_text())
    shot(page, "review-done")
    page.get_by_role("link", name="Integration Synchronization Jobs").click()
    page.locator("main h2", has_text="Integration Synchronization Jobs").wait_for()
    page.locator("main table").first.wait_for()  # the runs list (the run's jobs table may follow)
    shot(page, "jobs")
    page.get_by_role("link", name="Errors and skipped records").click()
    page.locator("main h2", has_text="Errors and skipped records").wait_for()
    shot(page, "errors")
    page.get_by_role("link", name="Couplings").click()
    page.get_by_label("Mapping").select_option("CUSTOMER")
    page.get_by_role("button", name="Search").click()
    page.locator("main table tbody tr").first.wait_for()
    shot(page, "couplings")
