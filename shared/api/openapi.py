"""The OpenAPI 3.1 document of the HTTP API, served at /api/openapi.json; built here only.

tests/unit/test_openapi.py checks it against the app's routes and validates it
(openapi-spec-validator); tests/integration/api/test_openapi_contract.py runs schemathesis with it
against a live local host. Identifiers carry the patterns the handlers check (run ids, mapping
names, GUIDs, error ids), so a request the document allows is one the app takes.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from shared.api import browse, records, service
from shared.mappings.defaults import default_mappings
from shared.model.status import COUNTERS as RESULT_COUNTERS
from shared.model.status import JobStatus, RunKind, RunStatus

COUNTERS = {"type": "object", "properties": {str(k): {"type": "integer"} for k in RESULT_COUNTERS}}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}
JOB = {
    "type": "object",
    "properties": {
        "mapping": {"type": "string"},
        "status": {"enum": [str(s) for s in JobStatus]},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": ["string", "null"]},
        "processed": {"type": "integer"},
        "total_estimate": {"type": ["integer", "null"]},
        "errors": {"type": "integer"},
        "usage": {
            "type": "object",
            "description": "what the job's slices used: bc_requests, dataverse_requests, table_requests, "
            "table_entity_ops (a batch counts once per entity)",
            "additionalProperties": {"type": "integer"},
        },
        "to_crm": {"$ref": "#/components/schemas/Counters"},
        "from_crm": {"$ref": "#/components/schemas/Counters"},
    },
}
RUN = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string"},
        "kind": {"enum": [str(k) for k in RunKind]},
        "trigger": {"enum": ["api", "portal", "timer", "ribbon"]},
        "status": {"enum": [str(s) for s in RunStatus]},
        "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": ["string", "null"]},
        "dry_run": {"type": "boolean"},
        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
    },
}


GUID = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
RUN_ID = {"type": "string", "pattern": service.RUN_ID.pattern}
MAPPING_NAME = {"type": "string", "pattern": service.MAPPING_NAME.pattern}
ERROR_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,1400}$"}  # base64url (shared/store/errors.py)
# Body fields the handlers check beyond their type (records.valid_id, parse_error_id, known mappings).
FIELD_SCHEMAS: dict[str, Any] = {
    "bc_id": GUID,
    "crm_id": GUID,
    "bc_ids": {"type": "array", "items": GUID},
    "crm_ids": {"type": "array", "items": GUID},
    "ids": {"type": "array", "items": ERROR_ID},
}
# Error answers, referenced by code from every operation (components.responses).
ERROR_RESPONSES = {
    "400": ("BadRequest", "invalid input; the error names the field"),
    "401": ("Unauthorized", "missing or wrong function key (entra mode: or no valid Entra ID token)"),
    "403": ("Forbidden", "entra mode: the token lacks the app role (Sync.Admin; the ribbon: Sync.Open)"),
    "404": ("NotFound", "no such run, mapping, record or error"),
    "409": (
        "Conflict",
        "another run holds the mapping, or the run or mapping is not in a state that allows it",
    ),
    "413": ("TooLarge", "the request body is too large"),
    "429": ("TooManyRequests", "too many requests; Retry-After says when to try again"),
    "500": ("InternalError", "unexpected failure (logged)"),
    "502": ("UpstreamError", "Business Central or Dataverse refused or failed"),
}
_schemas: dict[str, Any] = {}  # nested body models (pydantic $defs), hoisted into components.schemas


def _mapping_names() -> list[str]:
    return [m.name for m in default_mappings()]


def _body(model, required: bool = True) -> dict[str, Any]:
    """A pydantic model as a request body; ``required=False`` where the handler takes no body.
    A patch (every property optional) must change something: one property that is not null."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, nested in schema.pop("$defs", {}).items():
        nested.pop("title", None)
        _schemas[name] = nested
    schema.pop("title", None)
    props = schema.get("properties", {})
    for name, extra in FIELD_SCHEMAS.items():
        if name in props:
            props[name] = {**props[name], **extra}
    if "mappings" in props:  # names the run starts: those the app has (UnknownMapping otherwise)
        names = {"type": "string", "enum": _mapping_names()}
        props["mappings"] = {"anyOf": [{"type": "array", "items": names, "maxItems": 100}, {"type": "null"}]}
    if model is service.MappingPatch:  # EmptyPatch otherwise
        schema["anyOf"] = [{"required": [p], "properties": {p: {"not": {"type": "null"}}}} for p in props]
    if "bc_ids" in props and "crm_ids" in props:  # MissingIds: at least one of the two lists
        schema["anyOf"] = [
            {"required": [side], "properties": {side: {"minItems": 1}}} for side in ("bc_ids", "crm_ids")
        ]
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """An optional query parameter (an empty value is none: see _empty_means_absent)."""
    return {"name": name, "in": "query", "required": False, "schema": dict(schema or {"type": "string"})}


def _op(
    summary: str,
    ok: int = 200,
    body=None,
    params: list[dict[str, Any]] | None = None,
    ok_schema=None,
    errors: tuple[str, ...] = (),
    body_required: bool = True,
) -> dict[str, Any]:
    """An operation answering JSON: ``ok``, 400, 401, 500 and the given ``errors`` codes."""
    responses: dict[str, Any] = {
        str(ok): {
            "description": "OK",
            "content": {"application/json": {"schema": ok_schema or {"type": "object"}}},
        }
    }
    for code in sorted({"400", "401", "403", "500", *errors}):
        responses[code] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[code][0]}"}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = _body(body, body_required)
    if params:
        op["parameters"] = params
    return op


def _empty_means_absent(paths: dict[str, Any]) -> dict[str, Any]:
    """Every handler reads an optional query parameter as ``params.get(name) or default``: an empty
    value is no value. Say so in each optional parameter's pattern (whoever described it)."""
    paths = copy.deepcopy(paths)  # parameters may be shared module constants
    for item in paths.values():
        for op in item.values():
            params = op if isinstance(op, list) else op.get("parameters", []) if isinstance(op, dict) else []
            for p in params:
                schema = p.get("schema", {})
                if p.get("in") != "query" or p.get("required") or "pattern" not in schema:
                    continue
                if not re.search(schema["pattern"], ""):
                    schema.pop("format", None)
                    schema["pattern"] = f"^(?:{schema['pattern'].removeprefix('^').removesuffix('$')})?$"
    return paths


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def document() -> dict[str, Any]:
    mapping_name = {**MAPPING_NAME, "examples": _mapping_names()[:3]}
    name, run_id = [_path_param("name", mapping_name)], [_path_param("run_id", RUN_ID)]
    cursor = _query("continuation", {"type": "string", "description": "from the previous page's answer"})
    start = ("409", "429")  # a running run holds a mapping; run starts are rate limited
    records_op = ("404", "409", "502")

    def _mapping_run(summary: str, body) -> dict[str, Any]:
        """A run of one mapping started in the background: 202, or 404 / the start's refusals."""
        return _op(summary, 202, body, errors=("404", *start), body_required=False)

    # unknown mapping, a run holds it, the services' answers
    paths: dict[str, Any] = {
        "/api/health": {
            "get": {
                "summary": "Storage reachability (anonymous)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "healthy",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "503": {"description": "unhealthy (the reason is logged only)"},
                },
            }
        },
        "/api/openapi.json": {"get": _op("This document")},
        "/api/sync/full": {
            "post": _op(
                "Start a full synchronization", 202, service.FullSyncBody, errors=start, body_required=False
            )
        },
        "/api/sync/modified": {
            "post": _op(
                "Synchronize modified records",
                202,
                service.ModifiedSyncBody,
                errors=start,
                body_required=False,
            )
        },
        "/api/schedule": {"get": _op("The sync schedule and the next scheduled run")},
        "/api/review": {
            "get": _op(
                "Full Synchronization Review: per mapping the recommendation (CoupleRecords, "
                "FullSynchronization, NoRecordsFound) and the last full sync's status per direction"
            )
        },
        "/api/runs": {
            "get": _op(
                "Runs, newest first",
                params=[
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}),
                    cursor,
                ],
            )
        },
        "/api/runs/{run_id}": {
            "parameters": run_id,
            "get": _op("One run with its jobs", ok_schema=RUN, errors=("404",)),
        },
        "/api/runs/{run_id}/decision": {
            "parameters": run_id,
            "post": _op(
                "Keep or restore Synch. Only Coupled Records",
                body=service.DecisionBody,
                errors=("404", "409"),
            ),
        },
        "/api/runs/{run_id}/cancel": {
            "parameters": run_id,
            "post": _op("Cancel a run", 202, errors=("404",)),
        },
        "/api/mappings": {"get": _op("Integration table mappings")},
        "/api/mappings/reset": {"post": _op("Restore the default mappings", errors=("409",))},
        "/api/mappings/{name}": {
            "parameters": name,
            "get": _op("One mapping", errors=("404",)),
            "patch": _op(
                "Change a mapping (validated)", body=service.MappingPatch, errors=("404", "409", "502")
            ),
        },
        "/api/mappings/{name}/sync": {
            "parameters": name,
            "post": _mapping_run("Synchronize one mapping (modified or full)", service.MappingSyncBody),
        },
        "/api/mappings/{name}/couplings": {
            "parameters": name,
            "get": _op(
                "Couplings of a mapping (bc_id or crm_id: that one coupling)",
                params=[
                    _query("bc_id", GUID),
                    _query("crm_id", GUID),
                    _query("skipped", {"type": "string", "enum": ["true", "false"]}),
                    cursor,
                ],
                errors=("404",),
            ),
            "post": _op("Couple a BC record with a CRM record", 201, records.CoupleBody, errors=records_op),
            "delete": _op("Remove couplings (records stay)", body=records.IdsBody, errors=records_op),
        },
        "/api/mappings/{name}/records/sync": {
            "parameters": name,
            "post": _op("Synchronize selected records now", body=records.SyncBody, errors=records_op),
        },
        "/api/mappings/{name}/records/create": {
            "parameters": name,
            "post": _op(
                "Create and couple counterparts of selected records", body=records.IdsBody, errors=records_op
            ),
        },
        "/api/mappings/{name}/match": {
            "parameters": name,
            "post": _op(
                "Match-based coupling",
                body=records.MatchBody,
                errors=(*records_op, "429"),
                body_required=False,
            ),
        },
        "/api/mappings/{name}/match/start": {
            "parameters": name,
            "post": _mapping_run(
                "Match-based coupling of the whole mapping as a background run (kind coupling)",
                service.BackgroundJobBody,
            ),
        },
        "/api/mappings/{name}/uncouple/start": {
            "parameters": name,
            "post": _mapping_run(
                "Remove every coupling of the mapping as a background run (kind uncoupling); records stay",
                service.BackgroundJobBody,
            ),
        },
        "/api/mappings/{name}/broken-couplings": {
            "parameters": name,
            "get": _op(
                "One page of couplings checked for a record deleted on either side",
                params=[cursor],
                errors=("404",),
            ),
        },
        "/api/mappings/{name}/broken-couplings/restore": {
            "parameters": name,
            "post": _op(
                "Re-create the deleted record of broken couplings", body=records.IdsBody, errors=records_op
            ),
        },
        "/api/mappings/{name}/broken-couplings/delete": {
            "parameters": name,
            "post": _op(
                "Delete the surviving record of broken couplings", body=records.IdsBody, errors=records_op
            ),
        },
        "/api/mappings/{name}/skipped/restore-all": {
            "parameters": name,
            "post": _op("Restore every skipped record of the mapping", errors=("404",), body_required=False),
        },
        "/api/mappings/{name}/skipped/restore": {
            "parameters": name,
            "post": _op("Restore skipped records", body=records.IdsBody, errors=records_op),
        },
        "/api/errors": {
            "get": _op(
                "Synchronization errors",
                params=[_query("run_id", RUN_ID), _query("mapping", MAPPING_NAME)],
                errors=("404",),
            )
        },
        "/api/errors/retry": {
            "post": _op("Retry the records of selected errors", body=records.RetryBody, errors=records_op)
        },
        "/api/portal": {
            "get": {
                "summary": "The admin portal (HTML; the page reads the function key from ?code=)",
                "responses": {
                    "200": {"description": "the portal page"},
                    "401": {"description": "no key (entra mode: or no valid token)"},
                    "403": {"description": "entra mode: the token lacks the app role Sync.Admin"},
                },
            }
        },
        "/api/crm/open": {
            "get": {
                "summary": "CRM ribbon button: open (and if allowed couple) the BC record",
                "parameters": [
                    {
                        "name": "entity",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z_]{1,64}$"},  # ribbon.py checks it
                    },
                    {"name": "id", "in": "query", "required": True, "schema": GUID},
                ],
                "responses": {
                    "302": {"description": "redirect to the Business Central web client"},
                    "200": {"description": "HTML page explaining why the record cannot be opened"},
                    "503": {"description": "a prefetch of an uncoupled record (Sec-Purpose): declined"},
                    **{
                        c: {"$ref": f"#/components/responses/{ERROR_RESPONSES[c][0]}"}
                        for c in ("400", "401", "403", "404", "500")
                    },
                },
            }
        },
    }
    paths.update(browse.openapi_paths())  # the portal's read side, described next to its code
    paths = _empty_means_absent(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Business Central ⇄ Dataverse sync", "version": "1.0.0"},
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "schemas": {"Counters": COUNTERS, "Job": JOB, "Run": RUN, "Error": ERROR, **_schemas},
            "responses": {
                ref: {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                if code != "401"
                else {"description": text}  # the host answers it, without a body
                for code, (ref, text) in ERROR_RESPONSES.items()
            },
        },
    }
