"""Both emulators held against the project's contract files (shared/contracts/*.json).

Every rule in the contracts becomes one probe over HTTP: each BC entity's methods, read-only
properties, max lengths, enums, required-on-create properties and relations; each Dataverse table's
required-on-create columns, max lengths, option values, numeric ranges, read-only columns and
supported bulk messages. A probe asserts the documented refusal (status and error code) and, where
the rule has one, the acceptance at the limit — so an emulator that stops enforcing a rule, or
enforces one the contract does not have, fails here. Every BC error code seen must be a documented
one (limits.documented_error_codes).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest

from shared.connectors.auth import TokenProvider
from shared.contracts import STANDARD_API, bc_contract, bc_entities, dataverse_tables
from shared.settings import Settings
from tests.integration.conftest import Admin

COMPANY = "c0c0c0c0-0000-4000-8000-000000000001"
BC = bc_entities()
DV = dataverse_tables()
CUSTOM_ROOT = bc_contract()["custom_api_root"]
DOCUMENTED = {c.split(" ")[0] for c in bc_contract()["limits"]["documented_error_codes"]}
LOOKUPS = ("Lookup", "Owner", "Customer")
SERVER_MAINTAINED = {"lastModifiedDateTime", "modifiedon", "versionnumber"}
_counter = itertools.count(1)


def unique(length: int | None, prefix: str = "K") -> str:
    text = f"{prefix}{next(_counter):05d}"
    return text[-length:] if length and len(text) > length else text


# --- clients ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clients(services):
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", **services["env"]})
    tokens = TokenProvider(settings)
    env = services["env"]
    bc = httpx.Client(
        base_url=f"{env['BC_API_URL']}/v2.0/{env['ENTRA_TENANT_ID']}/production/api",
        headers={"Authorization": f"Bearer {tokens.token(settings.bc_scope)}"},
        timeout=30,
    )
    dv = httpx.Client(
        base_url=f"{env['DATAVERSE_URL']}/api/data/v9.2",
        headers={"Authorization": f"Bearer {tokens.token(settings.dataverse_scope)}"},
        timeout=30,
    )
    yield bc, dv, Admin(services["bc_admin"]), Admin(services["dv_admin"])
    bc.close()
    dv.close()


@pytest.fixture
def bc(clients):
    client, _, admin, _ = clients
    admin.reset()
    return client, admin


@pytest.fixture
def dv(clients):
    _, client, _, admin = clients
    admin.reset()
    return client, admin


# --- BC ----------------------------------------------------------------------------------------------
def bc_url(entity: str) -> str:
    root = STANDARD_API if BC[entity].standard else CUSTOM_ROOT
    return f"{root}/companies({COMPANY})/{entity}"


def bc_error(answer: httpx.Response, status: int, code: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] in DOCUMENTED, f"undocumented BC error code {error['code']}"
    if code:
        assert error["code"] == code, error


def bc_base(client: httpx.Client, entity: str) -> dict[str, Any]:
    """A minimal valid POST body: required properties, and a unique number/code."""
    body: dict[str, Any] = {}
    for p in BC[entity].properties.values():
        if p.read_only:
            continue
        if p.required or (p.name in ("number", "code") and p.max_length):
            body[p.name] = unique(p.max_length, "B" if p.name != "code" else "C")
    return body


def bc_value(entity: str, name: str) -> Any:
    p = BC[entity].properties[name]
    if p.enum:
        return p.enum[-1]
    return {
        "decimal": 1,
        "boolean": True,
        "GUID": str(uuid.uuid4()),
        "date": "2026-01-01",
        "datetime": "2026-01-01T00:00:00Z",
        "int64": 1,
    }.get(p.type, "x")


def bc_rules(kind: str) -> list[tuple[str, str]]:
    out = []
    for entity, e in BC.items():
        writable = "POST" in e.methods
        for name, p in e.properties.items():
            if kind == "read_only" and p.read_only and writable and name != "id":
                out.append((entity, name))
            if kind == "max_length" and p.max_length and writable and not p.read_only:
                out.append((entity, name))
            if kind == "enum" and p.enum and writable and not p.read_only:
                out.append((entity, name))
            if kind == "required" and p.required and writable:
                out.append((entity, name))
            if kind == "relation" and p.relation and writable and not p.read_only:
                out.append((entity, name))
    return out


@pytest.mark.parametrize(
    ("entity", "method"), [(n, m) for n in BC for m in ("GET", "POST", "PATCH", "DELETE")]
)
def test_bc_methods(bc, entity, method):
    client, _ = bc
    url = "v2.0/companies" if entity == "companies" else bc_url(entity)
    allowed = method in BC[entity].methods
    if method == "GET":
        assert (client.get(url).status_code == 200) == allowed
        return
    if method == "POST":
        answer = client.post(url, json=bc_base(client, entity))
        if allowed:
            assert answer.status_code == 201, answer.text
        else:
            bc_error(answer, 405, "BadRequest_MethodNotAllowed")
        return
    if entity == "companies":
        return  # companies(<id>) is read-only: no key-level writes to probe beyond POST
    if allowed:
        if "POST" in BC[entity].methods:
            created = client.post(url, json=bc_base(client, entity)).raise_for_status().json()
        else:
            created = client.get(url).json()["value"][0]  # companyInformation: one row per company
        answer = client.request(
            method,
            f"{url}({created['id']})",
            headers={"If-Match": "*"},
            json={} if method == "PATCH" else None,
        )
        assert answer.status_code in (200, 204), answer.text
    else:
        answer = client.request(
            method,
            f"{url}({uuid.uuid4()})",
            headers={"If-Match": "*"},
            json={} if method == "PATCH" else None,
        )
        bc_error(answer, 405, "BadRequest_MethodNotAllowed")


@pytest.mark.parametrize("entity", [n for n, e in BC.items() if "POST" in e.methods])
def test_bc_unknown_property(bc, entity):
    client, _ = bc
    bc_error(
        client.post(bc_url(entity), json={**bc_base(client, entity), "noSuchProperty": 1}), 400, "BadRequest"
    )


@pytest.mark.parametrize(("entity", "name"), bc_rules("read_only"))
def test_bc_read_only(bc, entity, name):
    client, _ = bc
    answer = client.post(bc_url(entity), json={**bc_base(client, entity), name: bc_value(entity, name)})
    bc_error(answer, 400, "BadRequest_InvalidOperation")


@pytest.mark.parametrize(("entity", "name"), bc_rules("max_length"))
def test_bc_max_length(bc, entity, name):
    client, _ = bc
    p = BC[entity].properties[name]
    body = bc_base(client, entity)
    too_long = client.post(
        bc_url(entity), json={**body, name: unique(None, "L").ljust(p.max_length + 1, "x")}
    )
    bc_error(too_long, 400, "Application_StringExceededLength")
    if not p.relation:
        at_limit = client.post(
            bc_url(entity), json={**body, name: unique(None, "M").ljust(p.max_length, "x")}
        )
        assert at_limit.status_code == 201, at_limit.text


@pytest.mark.parametrize(("entity", "name"), bc_rules("enum"))
def test_bc_enum(bc, entity, name):
    client, _ = bc
    p = BC[entity].properties[name]
    bc_error(client.post(bc_url(entity), json={**bc_base(client, entity), name: "NoSuchMember"}), 400)
    for member in p.enum:
        answer = client.post(bc_url(entity), json={**bc_base(client, entity), name: member})
        assert answer.status_code == 201, (member, answer.text)
        assert answer.json()[name] == member


@pytest.mark.parametrize(("entity", "name"), bc_rules("required"))
def test_bc_required_on_create(bc, entity, name):
    client, _ = bc
    body = {k: v for k, v in bc_base(client, entity).items() if k != name}
    bc_error(client.post(bc_url(entity), json=body), 400)


@pytest.mark.parametrize(("entity", "name"), bc_rules("relation"))
def test_bc_relation(bc, entity, name):
    client, _ = bc
    p = BC[entity].properties[name]
    target, _, rest = p.relation.partition(".")
    field, _, only = rest.partition(" where type = ")
    bogus = str(uuid.uuid4()) if p.type == "GUID" else "NOPE9"
    bc_error(
        client.post(bc_url(entity), json={**bc_base(client, entity), name: bogus}),
        400,
        "Internal_InvalidTableRelation",
    )
    # An existing target is accepted.
    target_body = bc_base(client, target) | ({"type": only.strip()} if only else {})
    if target == "countriesRegions":
        target_body["code"] = unique(10, "Q")
    made = client.post(bc_url(target), json=target_body)
    assert made.status_code == 201, made.text
    accepted = client.post(bc_url(entity), json={**bc_base(client, entity), name: made.json()[field.strip()]})
    assert accepted.status_code == 201, accepted.text


def test_bc_entity_sets_per_root(bc):
    client, _ = bc
    for entity, e in BC.items():
        if entity == "companies":
            continue
        standard = client.get(f"v2.0/companies({COMPANY})/{entity}").status_code
        custom = client.get(f"{CUSTOM_ROOT}/companies({COMPANY})/{entity}").status_code
        assert (standard == 200) == e.standard, entity
        assert (custom == 200) == (CUSTOM_ROOT in (e.api, e.also_custom)), entity


# --- Dataverse ---------------------------------------------------------------------------------------
def dv_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code, answer.text


def dv_make(client: httpx.Client, entity_set: str) -> str:
    """Create a valid record (and the records its required lookups need); returns its id."""
    answer = client.post(
        f"/{entity_set}", json=dv_base(client, entity_set), headers={"Prefer": "return=representation"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()[DV[entity_set].key]


def dv_base(client: httpx.Client, entity_set: str) -> dict[str, Any]:
    t = DV[entity_set]
    by_logical = {x.logical_name: s for s, x in DV.items()}
    body: dict[str, Any] = {}
    for name in t.required_on_create:
        p = t.properties[name]
        if p.type in LOOKUPS:
            target = by_logical[p.targets[0]]
            body[f"{t.bind.get(name, name)}@odata.bind"] = f"/{target}({dv_make(client, target)})"
        elif p.type in ("String", "Memo"):
            body[name] = unique(p.max_length, "D")
        elif p.enum:
            body[name] = int(p.enum[0])
        elif p.type in ("Integer", "Decimal", "Money", "BigInt"):
            body[name] = p.minimum if p.minimum is not None and p.minimum > 0 else (p.minimum or 1)
            body[name] = 1 if p.type != "Integer" and body[name] < 1 else body[name]
        elif p.type == "Boolean":
            body[name] = False
    return body


def creatable() -> list[str]:
    return [s for s, t in DV.items() if "Create" in t.messages]


def dv_rules(kind: str) -> list[tuple[str, str]]:
    out = []
    for entity_set in creatable():
        t = DV[entity_set]
        for name, p in t.properties.items():
            if p.type in LOOKUPS or name == t.key:
                continue
            if kind == "max_length" and p.max_length and not p.read_only:
                out.append((entity_set, name))
            if kind == "enum" and p.enum and not p.read_only:
                out.append((entity_set, name))
            if kind == "range" and (p.minimum is not None or p.maximum is not None) and not p.read_only:
                out.append((entity_set, name))
            if kind == "read_only" and p.read_only and name not in SERVER_MAINTAINED:
                out.append((entity_set, name))
        if kind == "required":
            out += [(entity_set, name) for name in t.required_on_create]
    return out


@pytest.mark.parametrize(("entity_set", "name"), dv_rules("required"))
def test_dv_required_on_create(dv, entity_set, name):
    client, _ = dv
    t = DV[entity_set]
    body = dv_base(client, entity_set)
    without = {k: v for k, v in body.items() if k not in (name, f"{t.bind.get(name, name)}@odata.bind")}
    dv_error(client.post(f"/{entity_set}", json=without), 400, "0x80044331")
    assert client.post(f"/{entity_set}", json=body).status_code == 204


@pytest.mark.parametrize(("entity_set", "name"), dv_rules("max_length"))
def test_dv_max_length(dv, entity_set, name):
    client, _ = dv
    p = DV[entity_set].properties[name]
    body = dv_base(client, entity_set)
    dv_error(client.post(f"/{entity_set}", json={**body, name: "x" * (p.max_length + 1)}), 400, "0x80044331")
    at_limit = unique(p.max_length, "M").ljust(p.max_length, "x")
    assert client.post(f"/{entity_set}", json={**body, name: at_limit}).status_code == 204


@pytest.mark.parametrize(("entity_set", "name"), dv_rules("enum"))
def test_dv_option_values(dv, entity_set, name):
    client, _ = dv
    body = dv_base(client, entity_set)
    answer = client.post(f"/{entity_set}", json={**body, name: 987654})
    assert answer.status_code == 400 and answer.json()["error"]["code"] in ("0x80044331", "0x80040203")
    if DV[entity_set].properties[name].type == "Picklist":
        for value in DV[entity_set].properties[name].enum:
            assert (
                client.post(
                    f"/{entity_set}", json={**dv_base(client, entity_set), name: int(value)}
                ).status_code
                == 204
            )


@pytest.mark.parametrize(("entity_set", "name"), dv_rules("range"))
def test_dv_numeric_range(dv, entity_set, name):
    client, _ = dv
    p = DV[entity_set].properties[name]
    body = dv_base(client, entity_set)
    integer = p.type in ("Integer", "BigInt")
    if p.minimum is not None:
        below = p.minimum - 1
        dv_error(client.post(f"/{entity_set}", json={**body, name: below}), 400, "0x80044331")
        at_min = int(p.minimum) if integer else p.minimum
        assert (
            client.post(f"/{entity_set}", json={**dv_base(client, entity_set), name: at_min}).status_code
            == 204
        )
    if p.maximum is not None:
        above = p.maximum + 1
        dv_error(
            client.post(f"/{entity_set}", json={**dv_base(client, entity_set), name: above}),
            400,
            "0x80044331",
        )


@pytest.mark.parametrize(("entity_set", "name"), dv_rules("read_only"))
def test_dv_read_only(dv, entity_set, name):
    client, _ = dv
    value = True if DV[entity_set].properties[name].type == "Boolean" else "x"
    dv_error(
        client.post(f"/{entity_set}", json={**dv_base(client, entity_set), name: value}), 400, "0x80060888"
    )


@pytest.mark.parametrize("entity_set", creatable())
def test_dv_unknown_property(dv, entity_set):
    client, _ = dv
    answer = client.post(f"/{entity_set}", json={**dv_base(client, entity_set), "nosuchcolumn": 1})
    dv_error(answer, 400, "0x80060888")
    logical = DV[entity_set].logical_name
    assert answer.json()["error"]["message"] == (
        f"Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.{logical}'."
    )


@pytest.mark.parametrize(
    ("entity_set", "message"),
    [(s, m) for s in creatable() for m in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")],
)
def test_dv_bulk_messages(dv, entity_set, message):
    client, _ = dv
    t = DV[entity_set]
    target = {"@odata.type": f"Microsoft.Dynamics.CRM.{t.logical_name}", **dv_base(client, entity_set)}
    if message == "UpdateMultiple":
        target = {"@odata.type": target["@odata.type"], t.key: dv_make(client, entity_set)}
    elif message == "UpsertMultiple":
        target[t.key] = str(uuid.uuid4())
    answer = client.post(f"/{entity_set}/Microsoft.Dynamics.CRM.{message}", json={"Targets": [target]})
    if t.supports(message):
        assert answer.status_code in (200, 204), answer.text
    else:
        dv_error(answer, 400, "0x80040800")
        assert (
            f"The '{message}' method does not support entities of type '{t.logical_name}'"
            in (answer.json()["error"]["message"])
        )


def test_bc_fault_and_auth_answers_use_documented_codes(bc, services):
    client, admin = bc
    url = f"v2.0/companies({COMPANY})/customers"
    bc_error(httpx.get(f"{client.base_url}/{url}"), 401, "Authentication_InvalidCredentials")
    try:
        admin.faults(throttle={"requests": 0, "window_s": 60})
        bc_error(client.get(url), 429)
        admin.faults(throttle=None, error_rate=1.0, status=503)
        bc_error(client.get(url), 503)
    finally:
        admin.faults()
