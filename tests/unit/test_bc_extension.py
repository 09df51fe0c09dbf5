"""The AL source in bc-extension/ against the sync's BC contract (shared/contracts/bc.json).

The AL compiler does not run here, so these checks read the .al text: the API route of each page,
its field names (every contract property exposed, nothing more), which fields are read-only, the
table field behind each property, and that app.json's id ranges hold every object id. A renamed or
dropped field fails `check_page`; the mutation tests prove it does.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.contracts import bc_contract, bc_entities

ROOT = Path(__file__).resolve().parents[2] / "bc-extension"
SRC = ROOT / "src"

# entity set -> (file, source table, table field or page variable behind each property)
PAGES = {
    "resources": (
        "ResourcesAPI.Page.al",
        "Resource",
        {
            "id": "Rec.SystemId",
            "number": 'Rec."No."',
            "displayName": "Rec.Name",
            "type": "Rec.Type",
            "baseUnitOfMeasureCode": "BaseUnitOfMeasureCode",
            "unitPrice": 'Rec."Unit Price"',
            "unitCost": 'Rec."Unit Cost"',
            "blocked": "Rec.Blocked",
            "lastModifiedDateTime": "Rec.SystemModifiedAt",
        },
    ),
    "salespeoplePurchasers": (
        "SalespeopleAPI.Page.al",
        '"Salesperson/Purchaser"',
        {
            "id": "Rec.SystemId",
            "code": 'Rec."Code"',
            "displayName": "Rec.Name",
            "email": 'Rec."E-Mail"',
            "email2": 'Rec."E-Mail 2"',
            "phoneNo": 'Rec."Phone No."',
            "jobTitle": 'Rec."Job Title"',
            "commisionPercent": 'Rec."Commission %"',
            "privacyBlocked": 'Rec."Privacy Blocked"',
            "blocked": "Rec.Blocked",
            "lastModifiedDateTime": "Rec.SystemModifiedAt",
        },
    ),
}


# --- a small reader for the parts of AL these checks need ----------------------------------------------
def _strip_comments(text: str) -> str:
    """Blank out // and /* */ comments (not inside 'strings'), keeping offsets."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = text.find("'", i + 1)
            while j != -1 and j + 1 < n and text[j + 1] == "'":  # '' is an escaped quote
                j = text.find("'", j + 2)
            i = n if j == -1 else j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            out[i:j] = " " * (j - i)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out[i:j] = [ch if ch == "\n" else " " for ch in text[i:j]]
            i = j
        else:
            i += 1
    return "".join(out)


def _block(text: str, start: int) -> tuple[int, int]:
    """The span of the {...} block that opens at or after `start` (braces in 'strings' ignored)."""
    i = text.index("{", start)
    depth, j, quoted = 0, i, False
    while j < len(text):
        c = text[j]
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "{":
            depth += 1
        elif not quoted and c == "}":
            depth -= 1
            if depth == 0:
                return i, j + 1
        j += 1
    raise ValueError("unbalanced braces")


@dataclass
class Field:
    name: str
    source: str
    properties: dict[str, str]
    body: str


@dataclass
class Page:
    object_id: int
    object_name: str
    properties: dict[str, str]
    fields: list[Field] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    body: str = ""


PROPERTY = re.compile(r"^\s*(\w+)\s*=\s*(.+?)\s*;\s*$", re.M)
FIELD = re.compile(r"\bfield\(\s*(\w+)\s*;\s*([^)]*?)\s*\)")
VARIABLE = re.compile(r"^\s*(\w+)\s*:\s*((?:'[^']*'|[^;'])+?)\s*;\s*$", re.M)


def _top_level(text: str) -> str:
    """The text of a block with its nested {...} blocks removed."""
    out, depth = [], 0
    for c in text:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def parse_page(text: str) -> Page:
    text = _strip_comments(text)
    head = re.search(r'\bpage\s+(\d+)\s+"([^"]+)"', text, re.I)
    assert head, "no page object"
    start, end = _block(text, head.end())
    body = text[start + 1 : end - 1]
    props = {k: v.strip("'") for k, v in PROPERTY.findall(_top_level(body))}
    page = Page(int(head.group(1)), head.group(2), props, body=body)
    for m in FIELD.finditer(body):
        f_start, f_end = _block(body, m.end())
        inner = body[f_start + 1 : f_end - 1]
        page.fields.append(
            Field(m.group(1), m.group(2), {k: v for k, v in PROPERTY.findall(_top_level(inner))}, inner)
        )
    # page-level variables: the last top-level `var` section of the page
    var_at = [m.end() for m in re.finditer(r"^\s{4}var\s*$", body, re.M)]
    if var_at:
        section = body[var_at[-1] :]
        section = section[: re.search(r"^\s{4}(local\s+)?procedure\b|\Z", section, re.M).start()]
        page.variables = dict(VARIABLE.findall(section))
    return page


def check_page(text: str, entity_set: str) -> list[str]:
    """Every difference between a page's text and the contract of `entity_set`; empty when they agree."""
    entity = bc_entities()[entity_set]
    _, table, sources = PAGES[entity_set]
    page = parse_page(text)
    problems: list[str] = []
    route = "/".join(page.properties.get(k, "?") for k in ("APIPublisher", "APIGroup", "APIVersion"))
    expected_route = entity.api if not entity.standard else entity.also_custom
    if route != expected_route:
        problems.append(f"route {route} != contract {expected_route}")
    if route != bc_contract()["custom_api_root"]:
        problems.append(f"route {route} != custom_api_root {bc_contract()['custom_api_root']}")
    expected = {
        "PageType": "API",
        "EntitySetName": entity_set,
        "SourceTable": table,
        "ODataKeyFields": "SystemId",
        "DelayedInsert": "true",
    }
    for key, value in expected.items():
        if page.properties.get(key) != value:
            problems.append(f"{key} is {page.properties.get(key)!r}, expected {value!r}")
    names = [f.name for f in page.fields]
    if len(names) != len(set(names)):
        problems.append(f"duplicate fields: {sorted(n for n in names if names.count(n) > 1)}")
    missing, extra = set(entity.properties) - set(names), set(names) - set(entity.properties)
    if missing:
        problems.append(f"contract properties not on the page: {sorted(missing)}")
    if extra:
        problems.append(f"page fields not in the contract: {sorted(extra)}")
    for f in page.fields:
        prop = entity.properties.get(f.name)
        if prop is None:
            continue
        if sources.get(f.name) != f.source:
            problems.append(f"{f.name} is bound to {f.source}, expected {sources.get(f.name)}")
        editable = f.properties.get("Editable", "true").lower()
        if f.name == "id":
            # read-only in the contract, but a POST may carry it: the page must say Editable = true
            if f.properties.get("Editable", "").lower() != "true":
                problems.append("id must be Editable = true so a POST can carry the client's id")
        elif prop.read_only and editable != "false":
            problems.append(f"{f.name} is read-only in the contract but editable on the page")
        elif not prop.read_only and editable == "false":
            problems.append(f"{f.name} is writable in the contract but Editable = false on the page")
        declared = page.variables.get(f.source)
        if declared is not None and prop.max_length is not None:
            length = re.search(r"\[(\d+)\]", declared)
            if not length or int(length.group(1)) != prop.max_length:
                problems.append(f"{f.name} variable is {declared}, contract max length {prop.max_length}")
    if not re.search(r"\bRec\.Insert\(\s*true\s*,\s*true\s*\)", page.body, re.I):
        problems.append("OnInsertRecord must insert with Rec.Insert(true, true) to keep a client-supplied id")
    return problems


def _source(entity_set: str) -> str:
    return (SRC / PAGES[entity_set][0]).read_text(encoding="utf-8")


# --- the pages against the contract ---------------------------------------------------------------------
@pytest.mark.parametrize("entity_set", sorted(PAGES))
def test_page_matches_the_contract(entity_set):
    assert check_page(_source(entity_set), entity_set) == []


def test_contract_points_at_these_sources():
    entities = bc_entities()
    assert not entities["resources"].standard and entities["resources"].api == "bcsync/crm/v1.0"
    assert entities["salespeoplePurchasers"].also_custom == "bcsync/crm/v1.0"
    raw = bc_contract()["entities"]
    assert (ROOT.parent / raw["resources"]["source_code"]).is_file()
    assert any("SalespeopleAPI.Page.al" in note for note in raw["salespeoplePurchasers"]["notes"])


@pytest.mark.parametrize(
    ("entity_set", "before", "after", "expect"),
    [
        ("resources", "field(unitPrice;", "field(unitPrices;", "unitPrices"),
        ("resources", "field(baseUnitOfMeasureCode;", "field(baseUnitOfMeasure;", "baseUnitOfMeasureCode"),
        ("resources", "APIGroup = 'crm';", "APIGroup = 'sync';", "route"),
        ("resources", "EntitySetName = 'resources';", "EntitySetName = 'resource';", "EntitySetName"),
        ("resources", 'field(unitCost; Rec."Unit Cost")', 'field(unitCost; Rec."Unit Price")', "unitCost"),
        ("resources", "BaseUnitOfMeasureCode: Code[10];", "BaseUnitOfMeasureCode: Code[20];", "max length"),
        ("resources", "Rec.Insert(true, true);", "Rec.Insert(true);", "Insert(true, true)"),
        ("salespeoplePurchasers", "field(commisionPercent;", "field(commissionPercent;", "commisionPercent"),
        ("salespeoplePurchasers", "field(email2;", "field(eMail2;", "email2"),
        ("salespeoplePurchasers", "APIVersion = 'v1.0';", "APIVersion = 'v2.0';", "route"),
    ],
)
def test_a_changed_page_is_caught(entity_set, before, after, expect):
    text = _source(entity_set)
    assert before in text
    problems = check_page(text.replace(before, after, 1), entity_set)
    assert any(expect in p for p in problems), problems


@pytest.mark.parametrize("entity_set", sorted(PAGES))
def test_a_dropped_field_or_lost_read_only_is_caught(entity_set):
    text = _source(entity_set)
    dropped = re.sub(r"field\(blocked;[^{]*\{[^}]*\}", "", text, count=1)
    assert any("not on the page" in p and "blocked" in p for p in check_page(dropped, entity_set))
    writable = text.replace("Editable = false;", "", 1)
    assert any("lastModifiedDateTime is read-only" in p for p in check_page(writable, entity_set))


def test_comments_do_not_count_as_fields():
    text = _source("resources").replace(
        "field(blocked;", "// field(blocked;\n                field(blocked;", 1
    )
    assert check_page(text, "resources") == []


# --- app.json and the object ids -------------------------------------------------------------------------
OBJECT = re.compile(r"^\s*(page|table|codeunit|permissionset|query|report|enum)\s+(\d+)\s+", re.M | re.I)


def _objects() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SRC.glob("*.al")):
        for kind, number in OBJECT.findall(_strip_comments(path.read_text(encoding="utf-8"))):
            found.append((kind.lower(), int(number), path.name))
    return found


def test_app_json_is_valid_and_covers_every_object_id():
    app = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    assert uuid.UUID(app["id"])
    assert (app["name"], app["publisher"], app["version"]) == ("BC Dataverse Sync API", "bcsync", "1.0.0.0")
    assert app["dependencies"] == []  # the base and system application only, through "application"
    major = int(app["application"].split(".")[0])
    assert major >= 23 and int(app["platform"].split(".")[0]) >= 23
    # runtime = BC major - 11 up to BC 29 (devenv-choosing-runtime); a newer runtime would not load on BC 23
    assert float(app["runtime"]) <= major - 11
    ranges = [(r["from"], r["to"]) for r in app["idRanges"]]
    objects = _objects()
    assert {kind for kind, _, _ in objects} == {"page", "permissionset"}
    for kind, number, name in objects:
        assert any(lo <= number <= hi for lo, hi in ranges), f"{kind} {number} in {name} is outside {ranges}"
    ids = [(kind, number) for kind, number, _ in objects]
    assert len(ids) == len(set(ids)), "two objects of one type share an id"


def test_permission_set_covers_the_pages_and_their_tables():
    text = _strip_comments((SRC / "BCSyncAPI.PermissionSet.al").read_text(encoding="utf-8"))
    assert re.search(r"Assignable\s*=\s*true", text)
    for file, table, _ in PAGES.values():
        page = parse_page((SRC / file).read_text(encoding="utf-8"))
        assert re.search(rf'\bpage\s+"{re.escape(page.object_name)}"\s*=\s*X\b', text), page.object_name
        assert re.search(rf"\btabledata\s+{re.escape(table)}\s*=\s*RIMD\b", text), table
    assert re.search(r'\btabledata\s+"Resource Unit of Measure"\s*=\s*RIMD\b', text)
