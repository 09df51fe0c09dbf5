"""The OpenAPI 3 document of the HTTP API (served at /api/openapi.json; a test checks it against the app)."""

from __future__ import annotations

from typing import Any

from shared.api import browse, records, service

COUNTERS = {
    "type": "object",
    "properties": {
        k: {"type": "integer"}
        for k in ("inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled", "uncoupled")
    },
}
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
        "status": {"enum": ["Pending", "Waiting", "Running", "Succeeded", "Failed", "Cancelled"]},
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
        "kind": {"enum": ["full", "modified", "mapping", "records"]},
        "trigger": {"enum": ["api", "portal", "timer", "ribbon"]},
        "status": {"enum": ["Pending", "Running", "AwaitingDecision", "Succeeded", "Failed", "Cancelled"]},
        "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": ["string", "null"]},
        "dry_run": {"type": "boolean"},
        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
    },
}


def _body(model) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str, ok: int = 200, body=None, params: list[str] | None = None, ok_schema=None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {
                "description": "OK",
                "content": {"application/json": {"schema": ok_schema or {"type": "object"}}},
            },
            "400": {"$ref": "#/components/responses/BadRequest"},
            "401": {"description": "missing or wrong function key"},
        },
    }
    if body is not None:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = [
            {"name": p, "in": "query", "required": False, "schema": {"type": "string"}} for p in params
        ]
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    name, run_id = [_path_param("name")], [_path_param("run_id")]
    paths: dict[str, Any] = {
        "/api/health": {"get": {**_op("Storage and connector reachability"), "security": []}},
        "/api/openapi.json": {"get": _op("This document")},
        "/api/sync/full": {"post": _op("Start a full synchronization", 202, service.FullSyncBody)},
        "/api/sync/modified": {"post": _op("Synchronize modified records", 202, service.ModifiedSyncBody)},
        "/api/schedule": {"get": _op("The sync schedule and the next scheduled run")},
        "/api/runs": {"get": _op("Runs, newest first", params=["limit", "continuation"])},
        "/api/runs/{run_id}": {"parameters": run_id, "get": _op("One run with its jobs", ok_schema=RUN)},
        "/api/runs/{run_id}/decision": {
            "parameters": run_id,
            "post": _op("Keep or restore Synch. Only Coupled Records", body=service.DecisionBody),
        },
        "/api/runs/{run_id}/cancel": {"parameters": run_id, "post": _op("Cancel a run", 202)},
        "/api/mappings": {"get": _op("Integration table mappings")},
        "/api/mappings/reset": {"post": _op("Restore the default mappings")},
        "/api/mappings/{name}": {
            "parameters": name,
            "get": _op("One mapping"),
            "patch": _op("Change a mapping (validated)", body=service.MappingPatch),
        },
        "/api/mappings/{name}/sync": {
            "parameters": name,
            "post": _op("Synchronize one mapping (modified or full)", 202, service.MappingSyncBody),
        },
        "/api/mappings/{name}/couplings": {
            "parameters": name,
            "get": _op("Couplings of a mapping", params=["bc_id", "crm_id", "skipped", "continuation"]),
            "post": _op("Couple a BC record with a CRM record", 201, records.CoupleBody),
            "delete": _op("Remove couplings (records stay)", body=records.IdsBody),
        },
        "/api/mappings/{name}/records/sync": {
            "parameters": name,
            "post": _op("Synchronize selected records now", body=records.SyncBody),
        },
        "/api/mappings/{name}/records/create": {
            "parameters": name,
            "post": _op("Create and couple counterparts of selected records", body=records.IdsBody),
        },
        "/api/mappings/{name}/match": {
            "parameters": name,
            "post": _op("Match-based coupling", body=records.MatchBody),
        },
        "/api/mappings/{name}/skipped/restore": {
            "parameters": name,
            "post": _op("Restore skipped records", body=records.IdsBody),
        },
        "/api/errors": {"get": _op("Synchronization errors", params=["run_id", "mapping"])},
        "/api/errors/retry": {"post": _op("Retry the records of selected errors", body=records.RetryBody)},
        "/api/portal": {
            "get": {
                "summary": "The admin portal (HTML; the page reads the function key from ?code=)",
                "responses": {"200": {"description": "the portal page"}, "401": {"description": "no key"}},
            }
        },
        "/api/crm/open": {
            "get": {
                "summary": "CRM ribbon button: open (and if allowed couple) the BC record",
                "parameters": [
                    {"name": "entity", "in": "query", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "id",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                ],
                "responses": {
                    "302": {"description": "redirect to the Business Central web client"},
                    "200": {"description": "HTML page explaining why the record cannot be opened"},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                },
            }
        },
    }
    paths.update(browse.openapi_paths())  # the portal's read side, described next to its code
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
            "schemas": {"Counters": COUNTERS, "Job": JOB, "Run": RUN, "Error": ERROR},
            "responses": {
                "BadRequest": {
                    "description": "invalid input",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }
