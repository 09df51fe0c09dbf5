"""The read side of the admin portal: pages of couplings, skipped records, errors and jobs with every
record's number and name on both sides, links that open the records, search by id, number or name,
and the run history of the last days.

Records are resolved in bulk per page: one id-filtered read per side and chunk of ``ID_CHUNK`` ids
(as the engine reads destinations), and each record is read once per page. Which fields hold a
record's number and name comes from the entity catalogue (``shared.contracts``) at run time; an
entity the catalogue does not know, or a read the service refuses, leaves the record as ids only
(``state: "unknown"``); a record the service no longer has is ``state: "missing"``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from azure.core.exceptions import HttpResponseError

from shared.api.errors import ApiError
from shared.api.records import error_filters
from shared.api.ribbon import bc_url
from shared.api.service import mapping_or_404
from shared.connectors.errors import ConnectorError
from shared.connectors.odata import any_of, call, canonical_guid, eq, or_
from shared.contracts import bc_entities, dataverse_tables
from shared.mappings import Mapping
from shared.model.status import Pass
from shared.store.couplings import Coupling, is_continuation
from shared.store.jobs import Job
from shared.store.tables import is_table_token
from shared.sync.records import ID_CHUNK

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

PAGE_DEFAULT, PAGE_MAX = 50, 200
SEARCH_MAX = 50  # records per side a search reads
HISTORY_RUNS = 1000
QUERY_MAX = 100
TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,2000}$")
# Which fields hold a record's number and name, in order of preference (the first the entity has).
BC_NUMBER = ("number", "code")
BC_NAME = ("displayName", "name")
CRM_NUMBER = ("accountnumber", "productnumber", "isocurrencycode", "employeeid", "domainname")
CRM_NAME = ("name", "fullname", "currencyname", "title", "subject")
SYNCED = ("inserted", "modified", "deleted", "coupled", "uncoupled")


# --- request parameters ----------------------------------------------------------------------------
def encode_token(token: dict[str, Any] | None) -> str | None:
    """The storage continuation token as one opaque URL-safe string."""
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    bad = ApiError(400, "InvalidContinuation", "malformed continuation token", "continuation")
    if not TOKEN.match(text):
        raise bad
    try:
        token = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    # A Table Storage token, or the coupling store's (which of a mapping's tables goes on, and its
    # token). Nothing else is passed on.
    if not (is_table_token(token) or is_continuation(token)):
        raise bad
    return token


def _limit(params: dict[str, str], default: int = PAGE_DEFAULT) -> int:
    raw = params.get("limit") or ""
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise ApiError(400, "InvalidLimit", f"limit must be an integer from 1 to {PAGE_MAX}", "limit")
    return int(raw)


def _query(params: dict[str, str]) -> str:
    q = (params.get("q") or "").strip()
    if len(q) > QUERY_MAX or any(ord(ch) < 32 for ch in q):
        raise ApiError(400, "InvalidQuery", f"q must be at most {QUERY_MAX} printable characters", "q")
    return q


def _flag(params: dict[str, str], name: str) -> bool | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if value not in ("true", "false"):
        raise ApiError(400, "InvalidQuery", f"{name} must be true or false", name)
    return value == "true"


def _paged(fetch, token: dict[str, Any] | None, limit: int) -> tuple[list, dict[str, Any] | None]:
    """A filtered table query may answer an empty page with a continuation: read on (a few pages).
    A token storage refuses is the caller's malformed token."""
    given = token
    try:
        items, token = fetch(limit, token)
        for _ in range(10):
            if items or not token:
                break
            items, token = fetch(limit, token)
    except (ValueError, TypeError, KeyError, HttpResponseError):
        if given is None:
            raise
        raise ApiError(400, "InvalidContinuation", "malformed continuation token", "continuation") from None
    return items, token


# --- record names and links ------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """Where one side of a mapping keeps a record's id, number and name (None: unknown entity)."""

    key: str
    number: str | None
    name: str | None
    logical_name: str | None = None


def _first(candidates: Iterable[str], present: Iterable[str]) -> str | None:
    names = set(present)
    return next((c for c in candidates if c in names), None)


def bc_shape(entity: str) -> Shape | None:
    found = bc_entities().get(entity)
    if found is None:
        return None
    return Shape("id", _first(BC_NUMBER, found.properties), _first(BC_NAME, found.properties))


def crm_shape(entity_set: str) -> Shape | None:
    found = dataverse_tables().get(entity_set)
    if found is None:
        return None
    props = found.properties
    return Shape(found.key, _first(CRM_NUMBER, props), _first(CRM_NAME, props), found.logical_name)


def crm_url(app_url: str, logical_name: str, record_id: str) -> str | None:
    """The model-driven app form of a record. ``app_url`` is the environment URL or an app's
    ``…/main.aspx?appid=…`` (https://learn.microsoft.com/power-apps/developer/model-driven-apps/
    open-forms-views-dialogs-reports-url)."""
    if not app_url:
        return None
    parts = urlsplit(app_url)
    path = parts.path if parts.path.endswith("/main.aspx") else parts.path.rstrip("/") + "/main.aspx"
    record = urlencode({"pagetype": "entityrecord", "etn": logical_name, "id": record_id})
    return urlunsplit((parts.scheme, parts.netloc, path, f"{parts.query}&{record}".lstrip("&"), ""))


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


class Resolver:
    """Numbers, names and links of the records shown on one page, read in bulk and once each."""

    def __init__(self, ctx: SyncContext):
        self.ctx = ctx
        self.wanted: dict[tuple[str, str], set[str]] = {}
        self.mappings: dict[str, Mapping] = {}
        self.found: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.failed: set[tuple[str, str]] = set()  # (mapping, side) that could not be read

    def want(self, m: Mapping, side: str, record_id: str | None) -> None:
        if record_id and canonical_guid(record_id):
            self.mappings[m.name] = m
            self.wanted.setdefault((m.name, side), set()).add(record_id.lower())

    def add(self, m: Mapping, side: str, record: dict[str, Any]) -> None:
        """A record already read (a search result): no second read."""
        shape = bc_shape(m.bc_entity) if side == "bc" else crm_shape(m.crm_entity)
        if shape and record.get(shape.key):
            self.mappings[m.name] = m
            self.found[(m.name, side, str(record[shape.key]).lower())] = self._describe(
                m, side, shape, record
            )

    def resolve(self) -> None:
        for (name, side), ids in self.wanted.items():
            m = self.mappings[name]
            todo = sorted(i for i in ids if (name, side, i) not in self.found)
            shape = bc_shape(m.bc_entity) if side == "bc" else crm_shape(m.crm_entity)
            if shape is None or not todo:
                if shape is None:
                    self.failed.add((name, side))
                continue
            try:
                for record in self._read(m, side, shape, todo):
                    key = (name, side, str(record[shape.key]).lower())
                    self.found[key] = self._describe(m, side, shape, record)
            except ConnectorError:
                self.failed.add((name, side))  # e.g. a custom API page not installed: ids only
        self.wanted.clear()

    def _read(self, m: Mapping, side: str, shape: Shape, ids: list[str]) -> Iterable[dict[str, Any]]:
        for i in range(0, len(ids), ID_CHUNK):
            chunk = ids[i : i + ID_CHUNK]
            if side == "bc":
                yield from self.ctx.bc.get_page(m.bc_entity, filter=any_of("id", chunk)).records
            else:
                select = [f for f in (shape.key, shape.number, shape.name) if f]
                page = self.ctx.dataverse.get_page(
                    m.crm_entity, filter=any_of(shape.key, chunk), select=select
                )
                yield from page.records

    def _describe(self, m: Mapping, side: str, shape: Shape, record: dict[str, Any]) -> dict[str, Any]:
        record_id = str(record[shape.key]).lower()
        # The catalogue's field first; another usual one when the service answered without it.
        numbers = [shape.number, *(BC_NUMBER if side == "bc" else CRM_NUMBER)]
        names = [shape.name, *(BC_NAME if side == "bc" else CRM_NAME)]
        out = {
            "id": record_id,
            "number": next((_text(record[f]) for f in numbers if f and _text(record.get(f))), None),
            "name": next((_text(record[f]) for f in names if f and _text(record.get(f))), None),
            "state": "found",
            "url": None,
        }
        if side == "bc":
            try:
                out["url"] = bc_url(self.ctx, m, record)
            except (KeyError, ConnectorError):
                out["url"] = None  # no web client page known for this entity
        elif shape.logical_name:
            out["url"] = crm_url(self.ctx.settings.dataverse_app_url, shape.logical_name, record_id)
        return out

    def get(self, m: Mapping | None, side: str, record_id: str | None) -> dict[str, Any] | None:
        if not record_id:
            return None
        if m is None or not canonical_guid(record_id):
            return {"id": record_id, "number": None, "name": None, "state": "unknown", "url": None}
        key = (m.name, side, record_id.lower())
        if key in self.found:
            return self.found[key]
        state = "unknown" if (m.name, side) in self.failed else "missing"
        return {"id": record_id.lower(), "number": None, "name": None, "state": state, "url": None}


# --- couplings and skipped records -----------------------------------------------------------------
def _coupling_json(c: Coupling, m: Mapping, names: Resolver) -> dict[str, Any]:
    return {**c.api(), "bc": names.get(m, "bc", c.bc_id), "crm": names.get(m, "crm", c.crm_id)}


def search_side(ctx: SyncContext, m: Mapping, side: str, q: str) -> list[dict[str, Any]]:
    """Records of one side whose number starts with ``q`` or whose name contains it (at most
    ``SEARCH_MAX``); [] when the entity is unknown or the service refuses the query."""
    shape = bc_shape(m.bc_entity) if side == "bc" else crm_shape(m.crm_entity)
    if shape is None:
        return []
    terms = []
    if shape.number:
        terms.append(call("startswith", shape.number, q))
    if shape.name:
        terms.append(call("contains", shape.name, q))
    if not terms:
        return []
    try:
        if side == "bc":
            page = ctx.bc.get_page(m.bc_entity, filter=or_(*terms), page_size=SEARCH_MAX)
        else:
            select = [f for f in (shape.key, shape.number, shape.name) if f]
            page = ctx.dataverse.get_page(
                m.crm_entity, filter=or_(*terms), select=select, page_size=SEARCH_MAX
            )
    except ConnectorError:
        return []
    return page.records[:SEARCH_MAX]


def list_couplings(ctx: SyncContext, name: str, params: dict[str, str]) -> dict[str, Any]:
    """A page of a mapping's couplings (all, or only skipped ones), or the couplings found by ``q``:
    a GUID of either side, or a number/name searched on both sides."""
    m = mapping_or_404(ctx, name)
    q, skipped, limit = _query(params), _flag(params, "skipped"), _limit(params)
    token = decode_token(params.get("continuation"))
    names = Resolver(ctx)
    if q:
        found: dict[str, Coupling] = {}
        guid = canonical_guid(q)
        if guid:
            for side in ("bc_id", "crm_id"):
                c = ctx.couplings.get(m.name, **{side: guid})
                if c:
                    found[c.bc_id] = c
        else:
            for side in ("bc", "crm"):
                shape = bc_shape(m.bc_entity) if side == "bc" else crm_shape(m.crm_entity)
                records = search_side(ctx, m, side, q)
                for r in records:
                    names.add(m, side, r)
                ids = [str(r[shape.key]) for r in records] if shape else []
                by = ctx.couplings.by_bc if side == "bc" else ctx.couplings.by_crm
                for c in by(m.name, ids).values():
                    found[c.bc_id] = c
        items = [c for c in found.values() if skipped is None or c.skipped == skipped]
        next_token = None
    else:
        where = eq("skipped", skipped) if skipped is not None else None

        def fetch(n: int, t: dict[str, Any] | None):
            page, raw = ctx.couplings.list(
                m.name, where=where, page_size=n, continuation=json.dumps(t) if t else None
            )
            return page, json.loads(raw) if raw else None

        items, next_token = _paged(fetch, token, limit)
    for c in items:
        names.want(m, "bc", c.bc_id)
        names.want(m, "crm", c.crm_id)
    names.resolve()
    return {"value": [_coupling_json(c, m, names) for c in items], "continuation": encode_token(next_token)}


def search_records(ctx: SyncContext, name: str, params: dict[str, str]) -> dict[str, Any]:
    """Records of one side matching ``q`` (GUID, number prefix or part of the name), each with the
    record it is coupled to, if any: what the portal offers when setting up a coupling."""
    m = mapping_or_404(ctx, name)
    side = params.get("side") or ""
    if side not in ("bc", "crm"):
        raise ApiError(400, "InvalidQuery", "side must be bc or crm", "side")
    q = _query(params)
    if not q:
        raise ApiError(400, "InvalidQuery", "give q: an id, a number or part of a name", "q")
    names = Resolver(ctx)
    guid = canonical_guid(q)
    if guid:
        names.want(m, side, guid)
        ids = [guid]
    else:
        shape = bc_shape(m.bc_entity) if side == "bc" else crm_shape(m.crm_entity)
        records = search_side(ctx, m, side, q)
        for r in records:
            names.add(m, side, r)
        ids = [str(r[shape.key]).lower() for r in records] if shape else []
    names.resolve()
    coupled = (ctx.couplings.by_bc if side == "bc" else ctx.couplings.by_crm)(m.name, ids)
    other = "crm" if side == "bc" else "bc"
    value = []
    for i in ids:
        record = names.get(m, side, i)
        if record is None or record["state"] == "missing":
            continue
        c = coupled.get(i)
        value.append({**record, "coupled_to": (c.crm_id if side == "bc" else c.bc_id) if c else None})
    return {"value": value, "side": side, "other": other}


# --- errors and jobs -------------------------------------------------------------------------------
def list_errors(ctx: SyncContext, params: dict[str, str]) -> dict[str, Any]:
    """A page of synchronization errors (newest run first) with the records of both sides named."""
    run_id, mapping = error_filters(ctx, params)
    limit, token = _limit(params), decode_token(params.get("continuation"))
    items, next_token = _paged(lambda n, t: ctx.errors.page(run_id, mapping, n, t), token, limit)
    mappings = ctx.mappings.by_name()
    sides: list[tuple[Any, Mapping | None, str | None, str | None]] = []
    for e in items:
        bc_id, crm_id = (
            (e.destination_id, e.source_id)
            if e.sync_pass == Pass.FROM_CRM
            else (e.source_id, e.destination_id)
        )
        if e.sync_pass not in (Pass.TO_CRM, Pass.FROM_CRM):
            bc_id = crm_id = None  # a job-level error names no record
        sides.append((e, mappings.get(e.mapping), bc_id, crm_id))
    # The records' couplings now (one bulk read per mapping and side): what Restore/Uncouple can act on.
    coupled: dict[tuple[str, str, str], Coupling] = {}
    for m in {m.name: m for _, m, _, _ in sides if m}.values():
        for side, by in (("bc", ctx.couplings.by_bc), ("crm", ctx.couplings.by_crm)):
            ids = {(b if side == "bc" else c) for _, mm, b, c in sides if mm is m} - {None}
            for i, c in by(m.name, sorted(i for i in ids if canonical_guid(i))).items():
                coupled[(m.name, side, i)] = c
    names = Resolver(ctx)
    rows = []
    for e, m, bc_id, crm_id in sides:
        c = None
        if m:
            c = coupled.get((m.name, "bc", (bc_id or "").lower())) or coupled.get(
                (m.name, "crm", (crm_id or "").lower())
            )
            if c:
                bc_id, crm_id = c.bc_id, c.crm_id
            names.want(m, "bc", bc_id)
            names.want(m, "crm", crm_id)
        rows.append((e, m, bc_id, crm_id, c))
    names.resolve()
    value = [
        {
            **e.api(),
            "bc": names.get(m, "bc", bc_id),
            "crm": names.get(m, "crm", crm_id),
            "coupling": {"skipped": c.skipped, "last_result": c.last_result} if c else None,
        }
        for e, m, bc_id, crm_id, c in rows
    ]
    return {"value": value, "continuation": encode_token(next_token)}


def _job_json(j: Job) -> dict[str, Any]:
    return {"run_id": j.run_id, **j.api()}


def list_jobs(ctx: SyncContext, params: dict[str, str]) -> dict[str, Any]:
    """A page of the integration synchronization jobs of all runs, newest first."""
    limit, token = _limit(params), decode_token(params.get("continuation"))
    items, next_token = _paged(lambda n, t: ctx.jobs.page(n, t), token, limit)
    return {"value": [_job_json(j) for j in items], "continuation": encode_token(next_token)}


# --- run history -----------------------------------------------------------------------------------
def _message_counts(message: str | None) -> dict[str, int]:
    """Counts of a record-level run (its message reads "inserted: 2, failed: 1")."""
    counts: dict[str, int] = {}
    for part in (message or "").split(","):
        key, _, value = part.strip().partition(": ")
        if value.isdigit():
            counts[key] = int(value)
    return counts


def _seconds(started: str | None, finished: str | None) -> float | None:
    from shared.store.tables import parse_iso

    try:
        a, b = parse_iso(started), parse_iso(finished)
    except ValueError:
        return None
    return round((b - a).total_seconds(), 3) if a and b else None


def history(ctx: SyncContext, params: dict[str, str]) -> dict[str, Any]:
    """Per run of the last ``days`` (1–90, default 30), oldest first: records synced (inserted,
    modified, deleted, coupled, uncoupled), records failed and the duration. Two range queries."""
    raw = params.get("days") or "30"
    if not raw.isdigit() or not 1 <= int(raw) <= 90:
        raise ApiError(400, "InvalidQuery", "days must be an integer from 1 to 90", "days")
    days = int(raw)
    runs = ctx.runs.since(int(time.time() * 1000) - days * 86_400_000, HISTORY_RUNS)
    jobs: dict[str, list[Job]] = {}
    if runs:
        for j in ctx.jobs.between(runs[0].run_id, runs[-1].run_id):
            jobs.setdefault(j.run_id, []).append(j)
    value = []
    for r in reversed(runs):
        own = jobs.get(r.run_id, [])
        if own:
            synced = sum(j.counters[p].get(k, 0) for j in own for p in j.counters for k in SYNCED)
            failed = sum(j.counters[p].get("failed", 0) for j in own for p in j.counters)
        else:
            counts = _message_counts(r.message)
            synced = sum(counts.get(k, 0) for k in SYNCED)
            failed = counts.get("failed", 0)
        value.append(
            {
                "run_id": r.run_id,
                "kind": r.kind,
                "status": r.status,
                "dry_run": r.dry_run,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "duration_seconds": _seconds(r.started_at, r.finished_at),
                "synced": synced,
                "failed": failed,
            }
        )
    return {"value": value, "days": days, "truncated": len(runs) >= HISTORY_RUNS}


# --- OpenAPI of these routes (merged into shared/api/openapi.py) -------------------------------------
def _param(name: str, schema: dict[str, Any], required: bool = False, where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema}


_RECORD = {
    "type": ["object", "null"],
    "required": ["id", "number", "name", "state", "url"],
    "properties": {
        "id": {"type": "string"},
        "number": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
        "state": {"enum": ["found", "missing", "unknown"]},
        "url": {"type": ["string", "null"]},
    },
}
_PAGE_PARAMS = [
    _param("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}),
    _param("continuation", {"type": "string", "pattern": TOKEN.pattern}),
]
_NAME = _param("name", {"type": "string", "pattern": r"^[A-Z0-9][A-Z0-9 _-]{0,63}$"}, True, "path")
_PRINTABLE = r"^[^\x00-\x1f]*$"  # _query refuses control characters
_NOT_BLANK = r"^[^\x00-\x1f]*[^\s\x00-\x1f\x85][^\x00-\x1f]*$"  # a search needs something to look for
_Q = _param("q", {"type": "string", "maxLength": QUERY_MAX, "pattern": _PRINTABLE})


def _page_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["value", "continuation"],
        "properties": {
            "value": {"type": "array", "items": item},
            "continuation": {"type": ["string", "null"], "pattern": TOKEN.pattern},
        },
    }


def _get(summary: str, params: list[dict[str, Any]], schema: dict[str, Any], named: bool = False):
    def error(text: str) -> dict[str, Any]:
        return {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
        "400": error("invalid query; the error names the parameter"),
        "401": {"description": "missing or wrong function key (entra mode: or no valid Entra ID token)"},
        "403": error("entra mode: the token lacks the app role"),
        "500": error("unexpected failure (logged)"),
        "502": error("Business Central or Dataverse failed"),
    }
    if named:
        responses["404"] = error("no such mapping")
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


def openapi_paths() -> dict[str, Any]:
    coupling = {
        "type": "object",
        "properties": {
            "mapping": {"type": "string"},
            "bc_id": {"type": "string"},
            "crm_id": {"type": "string"},
            "last_result": {"type": "string"},
            "skipped": {"type": "boolean"},
            "failures": {"type": "integer"},
            "last_synced_at": {"type": ["string", "null"]},
            "last_error": {"type": ["string", "null"]},
            "bc": _RECORD,
            "crm": _RECORD,
        },
    }
    error = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "run_id": {"type": "string"},
            "mapping": {"type": "string"},
            "pass": {"type": "string"},
            "source_id": {"type": "string"},
            "destination_id": {"type": ["string", "null"]},
            "message": {"type": "string"},
            "code": {"type": ["string", "null"]},
            "time": {"type": ["string", "null"]},
            "bc": _RECORD,
            "crm": _RECORD,
            "coupling": {
                "type": ["object", "null"],
                "properties": {"skipped": {"type": "boolean"}, "last_result": {"type": "string"}},
            },
        },
    }
    job = {"allOf": [{"$ref": "#/components/schemas/Job"}, {"properties": {"run_id": {"type": "string"}}}]}
    found = {"allOf": [_RECORD, {"properties": {"coupled_to": {"type": ["string", "null"]}}}]}
    point = {
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string"},
            "dry_run": {"type": "boolean"},
            "started_at": {"type": ["string", "null"]},
            "finished_at": {"type": ["string", "null"]},
            "duration_seconds": {"type": ["number", "null"]},
            "synced": {"type": "integer"},
            "failed": {"type": "integer"},
        },
    }
    run_id = _param("run_id", {"type": "string", "pattern": r"^\d{13}-[0-9a-f]{6}$"})
    mapping = _param("mapping", {"type": "string", "pattern": r"^[A-Z0-9][A-Z0-9 _-]{0,63}$"})
    return {
        "/api/browse/history": _get(
            "Records synced, failures and duration per run of the last days (oldest first)",
            [_param("days", {"type": "integer", "minimum": 1, "maximum": 90})],
            {
                "type": "object",
                "properties": {
                    "value": {"type": "array", "items": point},
                    "days": {"type": "integer"},
                    "truncated": {"type": "boolean"},
                },
            },
        ),
        "/api/browse/jobs": _get("Jobs of all runs, newest first (paged)", _PAGE_PARAMS, _page_of(job)),
        "/api/browse/errors": _get(
            "Synchronization errors with both records named (paged)",
            [run_id, mapping, *_PAGE_PARAMS],
            _page_of(error),
            named=True,
        ),
        "/api/browse/mappings/{name}/couplings": {
            "parameters": [_NAME],
            **_get(
                "Couplings with both records named: all (paged), skipped only, or found by id/number/name",
                [_Q, _param("skipped", {"enum": ["true", "false"]}), *_PAGE_PARAMS],
                _page_of(coupling),
                named=True,
            ),
        },
        "/api/browse/mappings/{name}/records": {
            "parameters": [_NAME],
            **_get(
                "Records of one side found by id, number or name, with their coupling",
                [
                    _param("side", {"enum": ["bc", "crm"]}, True),
                    _param("q", {**_Q["schema"], "pattern": _NOT_BLANK}, True),
                ],
                {
                    "type": "object",
                    "properties": {
                        "value": {"type": "array", "items": found},
                        "side": {"enum": ["bc", "crm"]},
                        "other": {"enum": ["bc", "crm"]},
                    },
                },
                named=True,
            ),
        },
    }
