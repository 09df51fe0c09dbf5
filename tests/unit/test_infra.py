"""Offline checks of infra/ (Bicep + azd): no Bicep compiler can run here, so a small reader of our own
template checks the rules that matter (settings coverage, secrets, TLS, identity, roles)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ROLES = {
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}


def strip_comments(src: str) -> str:
    """Drop // and /* */ comments outside single-quoted strings (Bicep has no double-quoted strings)."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("'''", i):
            end = src.index("'''", i + 3) + 3
            out.append(src[i:end])
            i = end
        elif src[i] == "'":
            j = i + 1
            while src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            i = src.index("*/", i) + 2
        else:
            out.append(src[i])
            i += 1
    return "".join(out)


def balanced_block(text: str, start: int) -> str:
    """The {...} or [...] block opening at or after ``start`` (strings are skipped)."""
    open_at = min(p for p in (text.find("{", start), text.find("[", start)) if p >= 0)
    pairs = {"{": "}", "[": "]"}
    stack, i = [], open_at
    while i < len(text):
        c = text[i]
        if c == "'":
            i = text.index("'", i + 1)
        elif c in pairs:
            stack.append(pairs[c])
        elif c in "}]":
            assert stack.pop() == c, f"mismatched {c} at {i}"
            if not stack:
                return text[open_at : i + 1]
        i += 1
    raise AssertionError("unterminated block")


def top_level_props(block: str) -> dict[str, str]:
    """Property name -> raw value text for the direct children of an object block."""
    props: dict[str, str] = {}
    inner = block[1:-1]
    depth, i = 0, 0
    line_start = True
    while i < len(inner):
        c = inner[i]
        if depth == 0 and line_start:
            m = re.match(r"\s*'?([A-Za-z_$][\w$.-]*)'?\s*:\s*", inner[i:])
            if m:
                name, j = m.group(1), i + m.end()
                nested = inner[j] in "{["
                value = balanced_block(inner, j) if nested else inner[j:].split("\n", 1)[0].strip()
                props[name] = value
                i = j + len(value)
                continue
        if c == "'":
            i = inner.index("'", i + 1)
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        line_start = c == "\n" or (line_start and c in " \t\r")
        i += 1
    return props


class Bicep:
    def __init__(self, path: Path):
        self.path = path
        self.text = strip_comments(path.read_text())

    def resources(self, type_prefix: str) -> list[tuple[str, dict[str, str]]]:
        """(symbolic name, top-level properties) of each resource whose type starts with the prefix."""
        found = []
        for m in re.finditer(r"\bresource\s+(\w+)\s+'([^'@]+)(?:@[^']+)?'\s*(?:existing\s*)?=", self.text):
            if m.group(2).startswith(type_prefix):
                found.append((m.group(1), top_level_props(balanced_block(self.text, m.end()))))
        return found

    def one(self, type_prefix: str) -> dict[str, str]:
        found = [props for _, props in self.resources(type_prefix) if "properties" in props]
        assert len(found) == 1, f"{self.path.name}: expected one {type_prefix}, found {len(found)}"
        return found[0]


def bicep(rel: str) -> Bicep:
    return Bicep(INFRA / rel)


def all_bicep() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def app_settings() -> dict[str, str]:
    api = bicep("app/api.bicep")
    configs = [
        p
        for _, p in api.resources("config")
        if p.get("name") == "'appsettings'"  # the child resource of the site
    ]
    assert len(configs) == 1, "one appsettings config resource"
    return top_level_props(configs[0]["properties"])


@pytest.mark.parametrize("path", all_bicep(), ids=lambda p: str(p.relative_to(INFRA)))
def test_braces_balanced_and_modules_exist(path: Path):
    text = strip_comments(path.read_text())
    stack = []
    pairs = {"(": ")", "{": "}", "[": "]"}
    i = 0
    while i < len(text):
        c = text[i]
        if c == "'":
            i = text.index("'", i + 1)
        elif c in pairs:
            stack.append(pairs[c])
        elif c in ")}]":
            assert stack and stack.pop() == c, f"{path.name}: unbalanced {c} at offset {i}"
        i += 1
    assert not stack, f"{path.name}: unclosed {stack}"
    for m in re.finditer(r"\bmodule\s+\w+\s+'([^']+)'", text):
        assert (path.parent / m.group(1)).is_file(), f"{path.name}: module {m.group(1)} missing"


def test_every_setting_the_code_reads_is_set():
    required = {s.name for s in SETTINGS if not s.azure_managed}
    assert len(required) > 20  # read from shared.settings, not a hand-kept list
    missing = required - set(app_settings())
    assert not missing, f"app settings missing from infra/app/api.bicep: {sorted(missing)}"


def test_secrets_are_key_vault_references():
    settings = app_settings()
    for s in SETTINGS:
        if s.secret and s.name in settings:
            assert settings[s.name].startswith("'@Microsoft.KeyVault("), f"{s.name} must be a KV reference"
    # The secure parameter reaches only the Key Vault secret, never an app setting.
    main = bicep("main.bicep").text
    secure = re.findall(r"@secure\(\)\s*(?:@\w+\([^)]*\)\s*)*param\s+(\w+)", main)
    assert secure == ["entraClientSecret"]
    assert "secretValue: entraClientSecret" in main
    assert main.count("entraClientSecret") == 2  # declaration + the Key Vault module


def test_function_app_hardening_and_identity():
    site = bicep("app/api.bicep").one("Microsoft.Web/sites")
    assert top_level_props(site["identity"])["type"] == "'SystemAssigned'"
    props = top_level_props(site["properties"])
    assert props["httpsOnly"] == "true"
    config = top_level_props(props["siteConfig"])
    assert config["minTlsVersion"] == "'1.2'"
    assert config["ftpsState"] in ("'Disabled'", "'FtpsOnly'")
    flex = top_level_props(props["functionAppConfig"])
    runtime = top_level_props(flex["runtime"])
    assert (runtime["name"], runtime["version"]) == ("'python'", "'3.11'")
    auth = top_level_props(top_level_props(top_level_props(flex["deployment"])["storage"])["authentication"])
    assert auth["type"] == "'SystemAssignedIdentity'"
    plan = bicep("app/api.bicep").one("Microsoft.Web/serverfarms")
    assert top_level_props(plan["sku"])["tier"] == "'FlexConsumption'"
    settings = app_settings()
    assert "AzureWebJobsStorage" not in settings  # no connection string: identity only
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"


def test_storage_hardening():
    props = top_level_props(
        bicep("core/storage/storage-account.bicep").one("Microsoft.Storage")["properties"]
    )
    assert props["allowSharedKeyAccess"] == "false"
    assert props["allowBlobPublicAccess"] == "false"
    assert props["minimumTlsVersion"] == "'TLS1_2'"
    assert props["supportsHttpsTrafficOnly"] == "true"


def test_role_assignments_for_the_app_identity():
    assignments = {}
    for path in all_bicep():
        for name, res in Bicep(path).resources("Microsoft.Authorization/roleAssignments"):
            props = top_level_props(res["properties"])
            assert props["principalType"] == "'ServicePrincipal'", name
            assignments[props["roleDefinitionId"]] = props["principalId"]
    for role, guid in ROLES.items():
        hits = [rid for rid in assignments if f"'{guid}'" in rid and "roleDefinitions" in rid]
        assert hits, f"no role assignment for {role} ({guid})"
    main = bicep("main.bicep").text
    assert "principalId: api.outputs.identityPrincipalId" in main


def test_azure_yaml_and_parameters():
    text = (ROOT / "azure.yaml").read_text()
    service = re.search(r"^services:\n  (\w+):\n((?:    .*\n)+)", text, re.M)
    assert service, "azure.yaml needs a service"
    body = dict(re.findall(r"^    (\w+):\s*(\S+)", service.group(2), re.M))
    assert body == {"project": ".", "language": "python", "host": "function"}
    assert (ROOT / body["project"] / "host.json").is_file()
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = set(re.findall(r"^param\s+(\w+)", bicep("main.bicep").text, re.M))
    assert set(params) <= declared
    required = {m.group(1) for m in re.finditer(r"^param\s+(\w+)\s+\w+\s*$", bicep("main.bicep").text, re.M)}
    assert required <= set(params), f"required params without azd mapping: {required - set(params)}"
    for name, spec in params.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", spec["value"]), f"{name} must map an azd env var"


# --- monitoring: alert rules, action group, workbook (names from shared/telemetry.py) ---------------
def _kql_names(query: str) -> set[str]:
    """The telemetry names a query refers to: quoted strings naming a metric, span, event or attribute."""
    return {s for s in re.findall(r'"([a-z_]+(?:\.[a-z_]+)+|event)"', query)}


def _alert_rules() -> list[tuple[str, dict[str, str]]]:
    return bicep("core/monitor/alerts.bicep").resources("Microsoft.Insights/scheduledQueryRules")


def test_alert_rules_query_only_what_the_app_emits():
    from shared import telemetry

    rules = _alert_rules()
    assert {name for name, _ in rules} == {
        "runFailed",
        "poisonMessage",
        "noSuccessfulSync",
        "sustainedThrottling",
    }
    emitted_somewhere = set()
    for name, rule in rules:
        props = top_level_props(rule["properties"])
        assert props["scopes"] == "[applicationInsights.id]", name
        assert "actionGroup.id" in top_level_props(props["actions"])["actionGroups"], name
        [criterion] = re.findall(r"query: '([^']+)'", props["criteria"])
        names = _kql_names(criterion)
        assert names, f"{name}: the query names nothing the app emits"
        unknown = names - telemetry.EMITTED
        assert not unknown, f"{name} queries {sorted(unknown)}, which shared/telemetry.py does not emit"
        emitted_somewhere |= names
    # Each condition the issue asks for is watched.
    assert {telemetry.EVENT_RUN_FINISHED, telemetry.ATTR_FAILED, telemetry.METRIC_POISON} <= emitted_somewhere
    assert {telemetry.METRIC_THROTTLED, telemetry.ATTR_KIND} <= emitted_somewhere
    stale = top_level_props(dict(rules)["noSuccessfulSync"]["properties"])
    assert "ago(${2 * syncIntervalMinutes}m)" in stale["criteria"]  # twice the schedule's period
    throttling = top_level_props(dict(rules)["sustainedThrottling"]["properties"])["criteria"]
    assert "numberOfEvaluationPeriods: 3" in throttling and "minFailingPeriodsToAlert: 3" in throttling


def test_action_group_mails_the_given_address_and_is_wired_in():
    group = bicep("core/monitor/alerts.bicep").one("Microsoft.Insights/actionGroups")
    props = top_level_props(group["properties"])
    text = bicep("core/monitor/alerts.bicep").text
    assert re.search(
        r"emailReceivers: empty\(alertEmail\) \? \[\] : \[\s*\{[^}]*emailAddress: alertEmail", text
    )
    assert len(props["groupShortName"].strip("'")) <= 12  # the service's limit
    main = bicep("main.bicep").text
    assert "module alerts './core/monitor/alerts.bicep'" in main and "alertEmail: alertEmail" in main
    assert "module workbook './core/monitor/workbook.bicep'" in main
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["alertEmail"]["value"].startswith("${ALERT_EMAIL")


def test_workbook_shows_runs_failures_records_and_throttling_from_emitted_names():
    from shared import telemetry

    wb = bicep("core/monitor/workbook.bicep").one("Microsoft.Insights/workbooks")
    props = top_level_props(wb["properties"])
    assert props["serializedData"] == "string(loadJsonContent('workbook.json'))"
    assert props["sourceId"] == "applicationInsights.id"
    items = json.loads((INFRA / "core/monitor/workbook.json").read_text())["items"]
    queries = {i["content"]["title"]: i["content"]["query"] for i in items if i["type"] == 3}
    for title, query in queries.items():
        names = _kql_names(query)
        assert names and not names - telemetry.EMITTED, (title, sorted(names - telemetry.EMITTED))
    used = set().union(*(_kql_names(q) for q in queries.values()))
    for needed in (telemetry.EVENT_RUN_FINISHED, telemetry.SPAN_SLICE, telemetry.METRIC_RECORDS):
        assert needed in used
    assert telemetry.METRIC_THROTTLED in used and telemetry.METRIC_SINCE_SUCCESS in used


def test_kql_name_reader_is_not_blind():
    assert _kql_names('customMetrics | where name == "sync.records" | extend x = 1') == {"sync.records"}
    assert _kql_names('traces | where tostring(customDimensions["event"]) == "sync.nope"') == {
        "event",
        "sync.nope",
    }
