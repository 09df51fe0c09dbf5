"""The portal message files (same keys, no empty values, same placeholders) and language negotiation."""

import json
import re

import pytest

from functions.portal import LANGUAGES, ROOT, negotiate, render


def load(code: str) -> dict[str, str]:
    return json.loads((ROOT / "i18n" / f"{code}.json").read_text("utf-8"))


def test_all_languages_have_the_same_keys_and_no_empty_values() -> None:
    english = load("en")
    assert len(english) > 50
    for code in LANGUAGES:
        messages = load(code)
        assert set(messages) == set(english), code
        assert all(isinstance(v, str) and v.strip() for v in messages.values()), code


def test_placeholders_are_the_same_in_every_language() -> None:
    english = load("en")
    for code in LANGUAGES:
        for key, text in load(code).items():
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", english[key])), (
                code,
                key,
            )


def test_the_seeds_terms_are_used() -> None:
    assert load("sv")["col.onlyCoupled"] == "Synka endast kopplade poster"
    assert load("nl")["action.runFull"] == "Volledige synchronisatie uitvoeren"
    assert load("fr")["nav.jobs"] == "Projets de synchronisation d'intégration"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("sv-SE,sv;q=0.9,en;q=0.8", "sv"),
        ("de-DE, nl;q=0.7, fr;q=0.9", "fr"),
        ("en-NZ", "en"),
        ("fr-CA;q=0, nl", "nl"),
        ("de", "en"),
        ("nl;q=bogus, sv;q=0.5", "sv"),
    ],
)
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_render_inlines_everything_and_carries_the_nonce() -> None:
    html = render("nl", "N0NCE")
    assert '<html lang="nl">' in html
    assert html.count('nonce="N0NCE"') == 3
    assert "{{" not in html
    assert "Volledige synchronisatie uitvoeren" in html


def test_every_message_the_page_uses_exists() -> None:
    english = load("en")
    script = (ROOT / "app.js").read_text("utf-8")
    used = set(re.findall(r"\bt\(\"([\w.]+)\"", script)) | set(
        re.findall(r'data-i18n="([\w.]+)"', (ROOT / "index.html").read_text("utf-8"))
    )
    # Keys built at run time: a prefix and one of a known set of values.
    families = {
        "status.": [
            "Pending",
            "Waiting",
            "Running",
            "AwaitingDecision",
            "Succeeded",
            "NotConfigured",
            "Failed",
            "Cancelled",
        ],
        "kind.": ["full", "modified", "mapping", "records"],
        "trigger.": ["api", "portal", "timer", "ribbon"],
        "fields.": ["bc", "crm", "direction", "constant", "lookup", "priority", "clear"],
        "fielddir.": ["Bidirectional", "ToIntegrationTable", "FromIntegrationTable"],
        "result.": ["success", "failed", "skipped"],
        "outcome.": [
            "coupled",
            "no_match",
            "ambiguous",
            "created",
            "failed",
            "inserted",
            "modified",
            "unchanged",
        ],
        "syncdir.": ["recommended", "to_crm", "from_crm"],
        "couple.": ["findBc", "findCrm", "pickBc", "pickCrm"],
    }
    keys = {k for k in used if not k.endswith(".")}
    keys |= {prefix + value for prefix, values in families.items() for value in values}
    assert sorted(keys - set(english)) == []


def test_render_carries_the_field_catalogue() -> None:
    html = render("en", "N")
    data = json.loads(
        re.search(r'id="portal-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert "displayName" in data["catalogue"]["bc"]["customers"]
    assert "accountnumber" in data["catalogue"]["crm"]["accounts"]


def test_every_state_counter_and_recommendation_has_a_label() -> None:
    from shared.model.status import COUNTERS, JobStatus, Recommendation, ReviewStatus, RunStatus

    english = load("en")
    keys = {f"status.{s}" for s in (*RunStatus, *JobStatus)}
    keys |= {f"counter.{c}" for c in COUNTERS} | {f"rec.{r}" for r in Recommendation}
    keys |= {f"review.status.{s}" for s in ReviewStatus if s} | {"review.status.none"}
    assert keys - set(english) == set()
