"""Dataverse Web API v9.2 emulator (entity sets of the default mappings), over SQLite.

Speaks the wire contract the connector relies on: `$select/$filter/$orderby/$top/$count`, paging with
`Prefer: odata.maxpagesize` and `@odata.nextLink`, `$batch` of GETs, change tracking
(`Prefer: odata.track-changes`, delta links, `$deletedEntity` rows), PATCH-to-key upsert with
If-Match / If-None-Match, lookups via `@odata.bind` read back as `_x_value`,
UpsertMultiple/CreateMultiple/UpdateMultiple (all or nothing, ≤ 1000), WhoAmI, and Dataverse's error codes.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulator_kit import (
    Clock,
    Emulator,
    ODataError,
    ServiceError,
    Store,
    compile_filter,
    json_columns,
    order_clause,
)
from shared.mappings.entities import CRM_ENTITIES

SEED_USER = "11111111-1111-1111-1111-111111111111"
BUSINESS_UNIT = "22222222-2222-2222-2222-222222222222"
ORGANIZATION = "33333333-3333-3333-3333-333333333333"
NOT_FOUND, DUPLICATE, BAD = "0x80040217", "0x80040237", "0x80060888"
KEY = re.compile(r"^\(([0-9a-fA-F-]{36})\)$")
POLYMORPHIC = {
    "parentcustomerid_account": ("parentcustomerid", "accounts"),
    "parentcustomerid_contact": ("parentcustomerid", "contacts"),
}
SERVER_FIELDS = ("createdon", "modifiedon", "versionnumber", "_createdby_value", "_modifiedby_value")


class DataverseError(ServiceError):
    pass


class Dataverse(Emulator):
    name = "dataverse"
    error_codes = {"unauthorized": "0x8004a101", "throttled": "0x80072322", "server": "0x80040216"}

    def __init__(self, port: int, authority: str, ca: str, db: str = ":memory:"):
        self.org = f"http://127.0.0.1:{port}"
        super().__init__(authority, ca, audience=self.org, concurrency=52)
        self.sets = CRM_ENTITIES
        self.store = Store(list(self.sets), db)
        self.clock = Clock()
        self.columns = {
            name: json_columns(sorted(e.all_fields() | {"fullname"}), e.key) for name, e in self.sets.items()
        }
        self.app_users: dict[str, str] = {}

    def reset(self) -> None:
        self.store.reset()
        self.app_users = {}

    # --- errors & helpers ------------------------------------------------------------------------------
    def error(self, status: int, code: str, message: str, headers=None) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )

    def kind(self, request: Request) -> str:
        path = request.url.path
        if "Microsoft.Dynamics.CRM." in path:
            return "bulk"
        if path.endswith("$batch"):
            return "batch"
        return super().kind(request)

    def user_for(self, request: Request) -> str:
        """The application user of the calling app (created on first sight, like an app user in Dataverse)."""
        claims = request.scope.get("state", {}).get("claims", {})
        appid = claims.get("appid") or claims.get("azp") or "unknown"
        if appid not in self.app_users:
            user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"appuser:{appid}"))
            self.app_users[appid] = user_id
            if self.store.get("systemusers", user_id) is None:
                self._write(
                    "systemusers",
                    user_id,
                    {
                        "fullname": "# sync integration",
                        "applicationid": appid,
                        "accessmode": 4,
                        "isdisabled": False,
                        "islicensed": False,
                        "azureactivedirectoryobjectid": claims.get("oid"),
                    },
                    SEED_USER,
                    create_only=True,
                )
        return self.app_users[appid]

    def _shape(self, entity_set: str, data: dict[str, Any]) -> dict[str, Any]:
        e = self.sets[entity_set]
        out = {"@odata.etag": f'W/"{data["versionnumber"]}"', **data}
        out[e.key] = data[e.key]
        return out

    def _apply(self, entity_set: str, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
        """Validate a write body and merge it into the record (lookups via @odata.bind)."""
        e = self.sets[entity_set]
        record = dict(current or {})
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                lookup, target = POLYMORPHIC.get(nav) or next(
                    ((attr, t) for attr, (n, t) in e.lookups.items() if n == nav), (None, None)
                )
                if lookup is None or lookup not in e.lookups:
                    raise DataverseError(
                        400,
                        BAD,
                        f"An undeclared property '{nav}' which only has property "
                        "annotations in the payload but no property value was found.",
                    )
                if value is None:
                    record[f"_{lookup}_value"] = None
                    continue
                match = re.fullmatch(rf"/?{target}\(([0-9a-fA-F-]{{36}})\)", str(value))
                if not match:
                    raise DataverseError(400, BAD, f"Invalid @odata.bind value {value!r} for {nav}.")
                ref = match.group(1).lower()
                if self.store.get(target, ref) is None:
                    raise DataverseError(404, NOT_FOUND, f"{target[:-1]} With Id = {ref} Does Not Exist")
                record[f"_{lookup}_value"] = ref
                continue
            if name not in e.fields and name not in ("statecode", "statuscode"):
                raise DataverseError(
                    400,
                    BAD,
                    f"The property '{name}' does not exist on type "
                    f"'Microsoft.Dynamics.CRM.{e.logical_name}'.",
                )
            record[name] = value
        record.setdefault("statecode", 0)
        record.setdefault("statuscode", 1 if record["statecode"] == 0 else 2)
        if entity_set == "contacts":
            record["fullname"] = " ".join(p for p in (record.get("firstname"), record.get("lastname")) if p)
        return record

    def _write(self, entity_set, key, body, user, *, create_only=False, update_only=False, etag=None):
        """Upsert semantics of PATCH to a key; returns (record, created)."""
        key = key.lower()
        current = self.store.get(entity_set, key)
        if current is None and update_only:
            raise DataverseError(404, NOT_FOUND, f"{entity_set} With Id = {key} Does Not Exist")
        if current is not None and create_only:
            raise DataverseError(412, DUPLICATE, "A record with matching key values already exists.")
        if current is not None and etag not in (None, "*") and etag != f'W/"{current["versionnumber"]}"':
            raise DataverseError(
                412,
                "0x80060882",
                "The version of the existing record doesn't match the RowVersion property provided.",
            )
        record = self._apply(entity_set, current, body)
        now, version = self.clock.now(), self.store.next_version()
        record.update(
            {
                self.sets[entity_set].key: key,
                "modifiedon": now,
                "versionnumber": version,
                "_modifiedby_value": user,
            }
        )
        if current is None:
            record.update({"createdon": now, "_createdby_value": user})
            if "ownerid" in self.sets[entity_set].lookups and not record.get("_ownerid_value"):
                record["_ownerid_value"] = user  # like Dataverse: the creating user owns the record
        self.store.put(entity_set, key, record, version=version)
        return record, current is None

    # --- routes --------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/api/data/v9.2/WhoAmI", self.whoami),
            Route("/api/data/v9.2/WhoAmI()", self.whoami),
            Route("/api/data/v9.2/$batch", self.batch, methods=["POST"]),
            Route("/api/data/v9.2/{target:path}", self.dispatch, methods=["GET", "POST", "PATCH", "DELETE"]),
        ]

    async def whoami(self, request: Request) -> Response:
        with self.lock:
            user = self.user_for(request)
        return JSONResponse({"BusinessUnitId": BUSINESS_UNIT, "UserId": user, "OrganizationId": ORGANIZATION})

    async def dispatch(self, request: Request) -> Response:
        target = request.path_params["target"]
        match = re.fullmatch(r"([a-z]+)(\([^)]*\))?(/Microsoft\.Dynamics\.CRM\.(\w+))?", target)
        if not match or match.group(1) not in self.sets:
            return self.error(
                404, "0x80060888", f"Resource not found for the segment '{target.split('(')[0]}'."
            )
        entity_set, key_part, action = match.group(1), match.group(2), match.group(4)
        key = None
        if key_part:
            key_match = KEY.match(key_part)
            if not key_match:
                return self.error(400, BAD, f"Bad Request - Error in query syntax: invalid key {key_part}")
            key = key_match.group(1).lower()
        try:
            body = None
            if request.method in ("POST", "PATCH"):
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self.error(400, BAD, "The request body is not valid JSON.")
                if not isinstance(body, dict):
                    return self.error(400, BAD, "The request body must be a JSON object.")
            with self.lock:
                user = self.user_for(request)
                if action:
                    return self.bulk(entity_set, action, body or {}, user, request)
                if request.method == "GET":
                    return self.read(request, entity_set, key)
                if request.method == "POST" and key is None:
                    new_key = str(body.get(self.sets[entity_set].key) or uuid.uuid4()).lower()
                    record, _ = self._write(entity_set, new_key, body, user, create_only=True)
                    return self._written(request, entity_set, record, 201)
                if request.method == "PATCH" and key:
                    record, created = self._write(
                        entity_set,
                        key,
                        body,
                        user,
                        create_only=request.headers.get("if-none-match") == "*",
                        update_only=request.headers.get("if-match") is not None,
                        etag=request.headers.get("if-match"),
                    )
                    return self._written(request, entity_set, record, 201 if created else 200)
                if request.method == "DELETE" and key:
                    if not self.store.delete(entity_set, key):
                        raise DataverseError(404, NOT_FOUND, f"{entity_set} With Id = {key} Does Not Exist")
                    return Response(status_code=204)
            return self.error(405, BAD, "Method not allowed for this resource.")
        except DataverseError as exc:
            return self.error(exc.status, exc.code, exc.message)
        except ODataError as exc:
            return self.error(exc.status, BAD, exc.message)

    async def batch(self, request: Request) -> Response:
        """`$batch` of GET requests (multipart/mixed). Without `Prefer: odata.continue-on-error` the batch
        stops at the first failed request, as Dataverse does. Change sets (writes) are not emulated."""
        found = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
        if not request.headers.get("content-type", "").startswith("multipart/mixed") or not found:
            return self.error(
                400, BAD, "A $batch request needs Content-Type multipart/mixed with a boundary."
            )
        text = (await request.body()).decode("utf-8", "replace").replace("\r\n", "\n")
        delimiter = f"--{found.group(1)}"
        parts = [p for p in text.split(delimiter)[1:] if not p.startswith("--")]
        if len(parts) > 1000:
            return self.error(400, BAD, "The number of requests in a batch cannot exceed 1000.")
        go_on = "odata.continue-on-error" in request.headers.get("prefer", "")
        answers = []
        with self.lock:
            self.user_for(request)
            for part in parts:
                status, body = self._batch_get(part.strip("\n"))
                answers.append((status, body))
                if status >= 400 and not go_on:
                    break
        boundary = f"batchresponse_{uuid.uuid4()}"
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found"}
        out = []
        for status, body in answers:
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"HTTP/1.1 {status} {reasons.get(status, '')}\r\n"
                "Content-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n"
                f"{json.dumps(body)}\r\n"
            )
        out.append(f"--{boundary}--\r\n")
        return Response("".join(out), media_type=f"multipart/mixed; boundary={boundary}")

    def _batch_get(self, part: str) -> tuple[int, Any]:
        _, _, http = part.partition("\n\n")
        head = http.split("\n\n", 1)[0].split("\n")
        request_line = head[0].split()
        if len(request_line) < 2 or request_line[0] != "GET":
            return 400, {
                "error": {"code": BAD, "message": "This emulator's $batch accepts GET requests only."}
            }
        headers = [tuple(h.split(":", 1)) for h in head[1:] if ":" in h]
        url = request_line[1].split("/api/data/v9.2/", 1)[-1]
        path, _, query = url.partition("?")
        match = re.fullmatch(r"([a-z]+)(?:\(([0-9a-fA-F-]{36})\))?", path)
        if not match or match.group(1) not in self.sets:
            return 404, {"error": {"code": BAD, "message": f"Resource not found for the segment '{path}'."}}
        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/api/data/v9.2/{path}",
            "query_string": query.encode(),
            "headers": [(k.strip().lower().encode(), v.strip().encode()) for k, v in headers],
        }
        try:
            response = self.read(Request(scope), match.group(1), (match.group(2) or "").lower() or None)
        except DataverseError as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}
        except ODataError as exc:
            return exc.status, {"error": {"code": BAD, "message": exc.message}}
        return response.status_code, json.loads(response.body)

    def _written(
        self, request: Request, entity_set: str, record: dict[str, Any], created_status: int
    ) -> Response:
        key = record[self.sets[entity_set].key]
        headers = {"OData-EntityId": f"{self.org}/api/data/v9.2/{entity_set}({key})"}
        if "return=representation" in request.headers.get("prefer", ""):
            return JSONResponse(self._shape(entity_set, record), status_code=created_status, headers=headers)
        return Response(status_code=204, headers=headers)

    def read(self, request: Request, entity_set: str, key: str | None) -> Response:
        params = request.query_params
        select = [s for s in params.get("$select", "").split(",") if s]
        columns = self.columns[entity_set]
        unknown = [s for s in select if s not in columns]
        if unknown:
            raise ODataError(
                f"Could not find a property named '{unknown[0]}' on type "
                f"'Microsoft.Dynamics.CRM.{self.sets[entity_set].logical_name}'."
            )
        if key:
            record = self.store.get(entity_set, key)
            if record is None:
                raise DataverseError(404, NOT_FOUND, f"{entity_set} With Id = {key} Does Not Exist")
            return JSONResponse(self._project(entity_set, record, select))
        prefer = request.headers.get("prefer", "")
        size_match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = min(int(size_match.group(1)), 5000) if size_match else 5000
        if "odata.track-changes" in prefer or "$deltatoken" in params or "$trackstate" in params:
            return self.changes(entity_set, params, select, size)
        where, args = compile_filter(params.get("$filter"), columns)
        order = order_clause(params.get("$orderby"), columns)
        top = int(params["$top"]) if params.get("$top", "").isdigit() else None
        state = _token(params.get("$skiptoken"))
        limit = min(size, top - state.get("n", 0)) if top else size
        rows = self.store.query(
            entity_set,
            where,
            args,
            after=None if order else state.get("after"),
            order=order,
            offset=state.get("offset", 0) if order else 0,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        body: dict[str, Any] = {"@odata.context": f"{self.org}/api/data/v9.2/$metadata#{entity_set}"}
        if "$count" in params and params["$count"] == "true":
            body["@odata.count"] = min(self.store.count(entity_set, where, args), 5000)
        body["value"] = [self._project(entity_set, r, select) for r in rows]
        if more:
            seen = state.get("n", 0) + len(rows)
            nxt = {"n": seen}
            if order:
                nxt["offset"] = state.get("offset", 0) + len(rows)
            else:
                nxt["after"] = rows[-1][self.sets[entity_set].key]
            body["@odata.nextLink"] = self._link(entity_set, params, {"$skiptoken": _encode(nxt)})
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if size_match else None
        return JSONResponse(body, headers=headers)

    def changes(self, entity_set: str, params, select: list[str], size: int) -> Response:
        """Change tracking: initial sync (all rows) or changes since a delta token, then a new delta link."""
        if params.get("$filter") or params.get("$orderby"):
            raise ODataError("Change tracking does not support $filter or $orderby.")
        if "$deltatoken" in params:
            try:
                since = int(params["$deltatoken"].split("!")[0])
            except ValueError:
                raise DataverseError(
                    400, "0x80044352", "The delta token is invalid or has expired."
                ) from None
        else:
            since = 0
        state = _token(params.get("$skiptoken"))
        upto = state.get("upto", self.store.version)
        rows = self.store.query(
            entity_set,
            "1=1",
            [],
            after=state.get("after"),
            limit=size + 1,
            min_version=since,
            max_version=upto,
        )
        body: dict[str, Any] = {"@odata.context": f"{self.org}/api/data/v9.2/$metadata#{entity_set}"}
        value = [self._project(entity_set, r, select) for r in rows[:size]]
        if len(rows) > size:
            nxt = {"upto": upto, "after": rows[size - 1][self.sets[entity_set].key]}
            extra = {"$skiptoken": _encode(nxt)}
            if since:
                extra["$deltatoken"] = str(since)
            body["value"] = value
            body["@odata.nextLink"] = self._link(entity_set, {"$select": params.get("$select", "")}, extra)
            return JSONResponse(body)
        if since:
            context = f"{self.org}/api/data/v9.2/$metadata#{entity_set}/$deletedEntity"
            value += [
                {"@odata.context": context, "id": k, "reason": "deleted"}
                for k in self.store.deleted_since(entity_set, since, upto)
            ]
        body["value"] = value
        body["@odata.deltaLink"] = self._link(
            entity_set,
            {"$select": params.get("$select", "")},
            {"$deltatoken": f"{upto}!{uuid.uuid4().hex[:8]}"},
        )
        return JSONResponse(body)

    def _project(self, entity_set: str, record: dict[str, Any], select: list[str]) -> dict[str, Any]:
        shaped = self._shape(entity_set, record)
        if not select:
            return shaped
        keep = set(select) | {self.sets[entity_set].key, "@odata.etag"}
        return {k: v for k, v in shaped.items() if k in keep}

    def _link(self, entity_set: str, params, extra: dict[str, str]) -> str:
        query = {k: v for k, v in dict(params).items() if v and k not in ("$skiptoken", "$deltatoken")}
        query.update(extra)
        return f"{self.org}/api/data/v9.2/{entity_set}?{urlencode(query)}"

    def bulk(
        self, entity_set: str, action: str, body: dict[str, Any], user: str, request: Request
    ) -> Response:
        if action not in ("UpsertMultiple", "CreateMultiple", "UpdateMultiple") or request.method != "POST":
            return self.error(404, BAD, f"Resource not found for the segment '{action}'.")
        targets = body.get("Targets")
        if not isinstance(targets, list) or not targets:
            raise DataverseError(400, BAD, "Targets must be a non-empty array.")
        if len(targets) > 1000:
            raise DataverseError(400, "0x80040203", "The number of records exceeds the limit of 1000.")
        key_name = self.sets[entity_set].key
        # All or nothing, like the real operations: validate every target before writing any.
        self.store.db.execute("SAVEPOINT bulk")
        ids = []
        try:
            for i, target in enumerate(targets):
                key = str(
                    target.get(key_name) or (uuid.uuid4() if action == "CreateMultiple" else "")
                ).lower()
                if not key:
                    raise DataverseError(400, BAD, f"Targets[{i}]: {key_name} is required for {action}.")
                fields = {k: v for k, v in target.items() if k != key_name}
                try:
                    self._write(
                        entity_set,
                        key,
                        fields,
                        user,
                        create_only=action == "CreateMultiple",
                        update_only=action == "UpdateMultiple",
                    )
                except DataverseError as exc:
                    raise DataverseError(
                        exc.status, exc.code, f"Targets[{i}] ({key}): {exc.message}"
                    ) from None
                ids.append(key)
        except Exception:
            self.store.db.execute("ROLLBACK TO bulk")
            self.store.db.execute("RELEASE bulk")
            raise
        self.store.db.execute("RELEASE bulk")
        return JSONResponse({"Ids": ids})

    # --- admin -------------------------------------------------------------------------------------------
    def seed(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        counts = {}
        for entity_set, rows in data.items():
            if entity_set not in self.sets:
                raise KeyError(entity_set)
            key_name = self.sets[entity_set].key
            for row in rows:
                key = str(row.get(key_name) or uuid.uuid4()).lower()
                fields = {k: v for k, v in row.items() if k != key_name and k not in SERVER_FIELDS}
                self._write(entity_set, key, fields, SEED_USER)
            counts[entity_set] = len(rows)
        return counts

    def records(self, entity: str) -> list[dict[str, Any]]:
        if entity not in self.sets:
            raise KeyError(entity)
        return [self._shape(entity, r) for r in self.store.query(entity, "1=1", [], limit=10**9)]


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _token(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        return json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        raise ODataError("The skip token is invalid.") from None
