"""Business Central API v2.0 emulator (customers, contacts, items, currencies, units, salespeople,
resources), over SQLite via devstack.emulator_kit.

Base `/v2.0/<tenant>/<environment>/api/v2.0/`: `companies`, `companies(<id>)`,
`companies(<id>)/<entity>`, `companies(<id>)/<entity>(<id>)`, JSON `$batch`. Behaviour checked
against BC's docs and public reports:
- `id` (SystemId) is assigned by the server; a client `id` on POST is refused (read-only field);
  the admin seed may set it. Number series when `number`/`code` is omitted (C00010, CT000010, 1000,
  R0010, SP0010); a duplicate number/code is 400 `Internal_EntityWithSameKeyExists`.
- `@odata.etag` is `W/"<base64 of version;modified time>"` (opaque, changes on every write).
  PATCH/DELETE without If-Match: 400 `BadRequest_InvalidToken` (what BC answers); `*` matches any;
  a stale ETag: 409 `Request_EntityChanged`; a missing record: 404 `Internal_RecordNotFound`.
- Paging: 20000 per page unless `Prefer: odata.maxpagesize=N` (answered with Preference-Applied);
  `@odata.nextLink` carries `$skiptoken` (keyset on id when unordered, offset with `$orderby`/`$skip`).
- `$batch` ≤ 100 operations, each independent; `Isolation: snapshot` makes it all-or-nothing.
- 401 `Authentication_InvalidCredentials` for a missing/invalid token or a token of another tenant.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
from shared.mappings.entities import BC_ENTITIES

AUDIENCE = "https://api.businesscentral.dynamics.com"
DEFAULT_COMPANY = {
    "id": "c0c0c0c0-0000-4000-8000-000000000001",
    "name": "CRONUS",
    "displayName": "CRONUS Inc.",
}
SERIES = {
    "customers": ("number", "C", 10, 5),
    "contacts": ("number", "CT", 10, 6),
    "items": ("number", "", 1000, 4),
    "resources": ("number", "R", 10, 4),
    "salespeople": ("code", "SP", 10, 4),
}
KEY_FIELD = {e: ("code" if "code" in f and e != "customers" else "number") for e, f in BC_ENTITIES.items()}
DEFAULTS = {
    "customers": {
        "type": "Company",
        "blocked": " ",
        "creditLimit": 0,
        "currencyId": None,
        "currencyCode": "",
    },
    "contacts": {"type": "Person", "companyNumber": "", "companyName": ""},
    "items": {"type": "Inventory", "blocked": False, "unitPrice": 0, "unitCost": 0, "inventory": 0},
    "resources": {"type": "Person", "blocked": False, "unitPrice": 0, "unitCost": 0},
    "salespeople": {"blocked": False},
}
GUID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"


class BcError(ServiceError):
    pass


class BusinessCentral(Emulator):
    name = "bc"
    error_codes = {
        "unauthorized": "Authentication_InvalidCredentials",
        "throttled": "Application_TooManyRequests",
        "server": "InternalServerError",
    }

    def __init__(
        self, port: int, authority: str, ca: str, tenant: str, environment: str, db: str = ":memory:"
    ):
        super().__init__(authority, ca, audience=AUDIENCE, concurrency=5)
        self.tenant, self.environment = tenant, environment
        self.base = f"http://127.0.0.1:{port}/v2.0/{tenant}/{environment}/api/v2.0"
        self.store = Store(["companies", *BC_ENTITIES], db)
        self.clock = Clock()
        self.columns = {
            e: json_columns([*fields, "lastModifiedDateTime"], "id") for e, fields in BC_ENTITIES.items()
        }
        self.reset()

    def reset(self) -> None:
        self.store.reset()
        # Expression indexes matching the kit's column expressions: number/code lookups (series,
        # duplicates, contact links) and lastModifiedDateTime filters stay O(log n) at 100k records.
        for entity, fields in BC_ENTITIES.items():
            for field in {KEY_FIELD[entity], "lastModifiedDateTime"} | ({"code"} & set(fields)):
                self.store.db.execute(
                    f'CREATE INDEX IF NOT EXISTS "{entity}_{field}" ON "{entity}"'
                    f"(json_extract(data, '$.\"{field}\"'))"
                )
        self.series: dict[tuple[str, str], int] = {}
        self.store.put("companies", DEFAULT_COMPANY["id"], DEFAULT_COMPANY)

    def kind(self, request: Request) -> str:
        return "batch" if request.url.path.endswith("$batch") else super().kind(request)

    # --- records ---------------------------------------------------------------------------------------
    def etag(self, record: dict[str, Any]) -> str:
        token = base64.b64encode(f"{record['_version']};{record['lastModifiedDateTime']}".encode()).decode()
        return f'W/"{token}"'

    def shape(self, record: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
        out = {"@odata.etag": self.etag(record)}
        out.update({k: v for k, v in record.items() if not k.startswith("_")})
        if select:
            out = {k: v for k, v in out.items() if k in select or k in ("id", "@odata.etag")}
        return out

    def _next_number(self, company: str, entity: str) -> str:
        field, prefix, start, width = SERIES[entity]
        n = self.series.get((company, entity), start)
        while True:
            candidate = f"{prefix}{n:0{width}d}"
            n += 1
            if not self._find(company, entity, field, candidate):
                self.series[(company, entity)] = n
                return candidate

    def _find(self, company: str, entity: str, field: str, value: Any) -> dict[str, Any] | None:
        rows = self.store.query(
            entity, f"json_extract(data, '$.\"{field}\"') = ?", [value], part=company, limit=1
        )
        return rows[0] if rows else None

    def _link_fields(self, company: str, entity: str, record: dict[str, Any], body: dict[str, Any]) -> None:
        """Keep code/id pairs consistent, like BC's API pages do."""
        if entity == "customers":
            if body.get("currencyId"):
                currency = self.store.get("currencies", str(body["currencyId"]).lower())
                if currency is None:
                    raise BcError(
                        400, "BadRequest_NotFound", f"The currency {body['currencyId']} does not exist."
                    )
                record["currencyCode"] = currency["code"]
            elif "currencyCode" in body:
                currency = (
                    self._find(company, "currencies", "code", body["currencyCode"])
                    if body["currencyCode"]
                    else None
                )
                record["currencyId"] = currency["id"] if currency else None
            elif "currencyId" in body:
                record["currencyCode"] = ""
        if entity == "contacts" and "companyNumber" in body:
            customer = (
                self._find(company, "customers", "number", body["companyNumber"])
                if body["companyNumber"]
                else None
            )
            record["companyName"] = customer["displayName"] if customer else ""
        if entity in ("items", "resources"):
            if body.get("baseUnitOfMeasureId"):
                unit = self.store.get("unitsOfMeasure", str(body["baseUnitOfMeasureId"]).lower())
                if unit is None:
                    raise BcError(
                        400, "BadRequest_NotFound", f"The unit {body['baseUnitOfMeasureId']} does not exist."
                    )
                record["baseUnitOfMeasureCode"] = unit["code"]
            elif body.get("baseUnitOfMeasureCode"):
                unit = self._find(company, "unitsOfMeasure", "code", body["baseUnitOfMeasureCode"])
                record["baseUnitOfMeasureId"] = unit["id"] if unit else None

    def write(
        self, company: str, entity: str, body: dict[str, Any], current: dict[str, Any] | None
    ) -> dict[str, Any]:
        allowed = set(BC_ENTITIES[entity])
        record = (
            dict(current)
            if current
            else {"id": str(body.get("id") or uuid.uuid4()).lower(), **DEFAULTS.get(entity, {})}
        )
        for name, value in body.items():
            if name in ("id", "@odata.etag", "lastModifiedDateTime"):
                continue
            if name not in allowed:
                raise BcError(
                    400,
                    "BadRequest_PropertyNotFound",
                    f"The property '{name}' does not exist on type 'Microsoft.NAV.{entity[:-1]}'.",
                )
            # Real BC writes the blank enum member as "_x0020_" and accepts it back.
            record[name] = " " if name == "blocked" and value == "_x0020_" else value
        key_field = KEY_FIELD[entity]
        if not record.get(key_field):
            if entity not in SERIES:
                raise BcError(400, "BadRequest_RequiredField", f"{key_field} must have a value.")
            record[key_field] = self._next_number(company, entity)
        twin = self._find(company, entity, key_field, record[key_field])
        if twin is not None and twin["id"] != record["id"]:
            raise BcError(
                400,
                "Internal_EntityWithSameKeyExists",
                f"The record in table {entity} already exists. Identification fields and values: "
                f"{key_field}='{record[key_field]}'",
            )
        self._link_fields(company, entity, record, body)
        record["lastModifiedDateTime"] = self.clock.now()
        record["_version"] = self.store.next_version()
        self.store.put(entity, record["id"], record, part=company, version=record["_version"])
        if entity == "customers" and current and current.get("displayName") != record.get("displayName"):
            for contact in self.store.query(
                "contacts",
                "json_extract(data, '$.companyNumber') = ?",
                [record["number"]],
                part=company,
                limit=10**9,
            ):
                contact["companyName"] = record.get("displayName") or ""
                self.store.put("contacts", contact["id"], contact, part=company, version=contact["_version"])
        return record

    # --- routing ---------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        prefix = "/v2.0/{tenant}/{environment}/api/v2.0"
        return [
            Route(prefix + "/$batch", self.batch_route, methods=["POST"]),
            Route(prefix + "/{path:path}", self.route, methods=["GET", "POST", "PATCH", "DELETE"]),
        ]

    def _check_target(self, request: Request) -> None:
        claims = request.scope.get("state", {}).get("claims", {})
        if (
            request.path_params["tenant"] != claims.get("tid")
            or request.path_params["environment"] != self.environment
        ):
            raise BcError(
                401,
                "Authentication_InvalidCredentials",
                "The server has rejected the client credentials (tenant or environment of the URL).",
            )

    async def route(self, request: Request) -> Response:
        try:
            self._check_target(request)
            body = None
            if request.method in ("POST", "PATCH"):
                try:
                    body = json.loads(await request.body() or b"{}")
                except ValueError:
                    raise BcError(
                        400, "BadRequest_InvalidRequestBody", "The request body is not valid JSON."
                    ) from None
            with self.lock:
                status, payload, headers = self.handle(
                    request.method,
                    request.path_params["path"],
                    dict(request.query_params),
                    dict(request.headers),
                    body,
                )
        except BcError as exc:
            return self.error(exc.status, exc.code, exc.message)
        except ODataError as exc:
            return self.error(exc.status, "BadRequest", exc.message)
        if payload is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(payload, status_code=status, headers=headers)

    def handle(self, method: str, path: str, params: dict, headers: dict, body: Any):
        headers = {k.lower(): v for k, v in headers.items()}
        if body is not None and not isinstance(body, dict):
            raise BcError(400, "BadRequest_InvalidRequestBody", "The request body must be a JSON object.")
        if path == "companies":
            if method != "GET":
                raise BcError(405, "BadRequest_MethodNotAllowed", "Companies are read-only.")
            rows = self.store.query("companies", "1=1", [], limit=1000)
            return 200, {"value": rows}, None
        match = re.fullmatch(rf"companies\({GUID}\)(?:/(\w+)(?:\({GUID}\))?)?", path)
        if not match:
            raise BcError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches '{path}'.")
        company, entity, key = match.group(1).lower(), match.group(2), match.group(3)
        if self.store.get("companies", company) is None:
            raise BcError(404, "Internal_CompanyNotFound", f"The company {company} does not exist.")
        if entity is None:
            return 200, self.store.get("companies", company), None
        if entity not in BC_ENTITIES:
            raise BcError(404, "BadRequest_NotFound", f"Resource not found for the segment '{entity}'.")
        key = key.lower() if key else None
        current = self.store.get(entity, key) if key else None
        if key and current is None:
            raise BcError(404, "Internal_RecordNotFound", f"The {entity} record {key} does not exist.")
        if method == "GET":
            if current:
                return 200, self.shape(current, _select(params)), None
            size = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
            applied = {"Preference-Applied": f"odata.maxpagesize={size.group(1)}"} if size else None
            return 200, self.list(company, entity, params, headers), applied
        if method == "POST" and not key:
            if (body or {}).get("id"):
                # The API pages declare id (SystemId) read-only: only the server assigns it.
                raise BcError(400, "BadRequest", "The property 'id' is read-only and cannot be set.")
            record = self.write(company, entity, body or {}, None)
            return 201, self.shape(record), {"ETag": self.etag(record)}
        if method in ("PATCH", "DELETE") and key:
            expected = headers.get("if-match")
            if not expected:
                # What real BC answers when If-Match is missing (not 428).
                raise BcError(
                    400,
                    "BadRequest_InvalidToken",
                    "Could not validate the client concurrency token required by the service. "
                    "Please provide a valid token in the client request.",
                )
            if expected != "*" and expected != self.etag(current):
                raise BcError(409, "Request_EntityChanged", "Another user has already changed the record.")
            if method == "DELETE":
                self.store.delete(entity, key, company)
                return 204, None, None
            record = self.write(company, entity, body or {}, current)
            return 200, self.shape(record), {"ETag": self.etag(record)}
        raise BcError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")

    def list(self, company: str, entity: str, params: dict, headers: dict) -> dict[str, Any]:
        columns = self.columns[entity]
        select = _select(params)
        unknown = [s for s in select if s not in columns]
        if unknown:
            raise ODataError(f"Could not find a property named '{unknown[0]}'.")
        where, args = compile_filter(params.get("$filter"), columns)
        order = order_clause(params.get("$orderby"), columns)
        size_match = re.search(r"odata\.maxpagesize=(\d+)", headers.get("prefer", ""))
        size = min(int(size_match.group(1)), 20000) if size_match else 20000
        state = _token(params.get("$skiptoken"))
        skip = _count_option(params, "$skip") or 0
        top = _count_option(params, "$top")
        taken = state.get("n", 0)
        limit = min(size, top - taken) if top is not None else size
        rows = self.store.query(
            entity,
            where,
            args,
            part=company,
            after=None if (order or skip) else state.get("after"),
            order=order,
            offset=(skip + state.get("offset", 0)) if (order or skip) else 0,
            limit=max(limit, 0) + 1,
        )
        more = len(rows) > limit
        rows = rows[: max(limit, 0)]
        body: dict[str, Any] = {"@odata.context": f"{self.base}/$metadata#companies({company})/{entity}"}
        body["value"] = [self.shape(r, select) for r in rows]
        if params.get("$count") == "true":
            body["@odata.count"] = self.store.count(entity, where, args, part=company)
        if more:
            nxt: dict[str, Any] = {"n": taken + len(rows)}
            if order or skip:
                nxt["offset"] = state.get("offset", 0) + len(rows)
            else:
                nxt["after"] = rows[-1]["id"]
            query = {k: v for k, v in params.items() if k != "$skiptoken"}
            query["$skiptoken"] = base64.urlsafe_b64encode(json.dumps(nxt).encode()).decode()
            # Real BC writes `$skiptoken` unescaped in its nextLink.
            link = urlencode(query, safe="$")
            body["@odata.nextLink"] = f"{self.base}/companies({company})/{entity}?{link}"
        return body

    async def batch_route(self, request: Request) -> Response:
        try:
            self._check_target(request)
            payload = json.loads(await request.body() or b"{}")
        except BcError as exc:
            return self.error(exc.status, exc.code, exc.message)
        except ValueError:
            return self.error(400, "BadRequest_InvalidRequestBody", "The request body is not valid JSON.")
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            return self.error(400, "BadRequest", "A $batch body needs a non-empty 'requests' array.")
        if len(requests) > 100:
            return self.error(
                400, "BadRequest_BatchLimit", "The batch request exceeds the limit of 100 operations."
            )
        # `Isolation: snapshot` makes the batch one transaction: any failed operation undoes them all.
        snapshot = request.headers.get("isolation", "").lower() == "snapshot"
        with self.lock:
            if snapshot:
                self.store.db.execute("SAVEPOINT batch")
                series = dict(self.series)
            failed = True
            try:
                responses = [self._batch_op(op, n) for n, op in enumerate(requests)]
                failed = any(r["status"] >= 400 for r in responses)
            finally:
                if snapshot:
                    if failed:
                        self.store.db.execute("ROLLBACK TO batch")
                        self.series = series
                    self.store.db.execute("RELEASE batch")
        return JSONResponse({"responses": responses})

    def _batch_op(self, op: Any, n: int) -> dict[str, Any]:
        if not isinstance(op, dict):
            op = {}
        op_id = op.get("id", str(n))
        url = str(op.get("url", ""))
        if "/api/v2.0/" in url:  # absolute URLs are allowed too
            url = url.split("/api/v2.0/", 1)[1]
        path, _, query = url.lstrip("/").partition("?")
        try:
            status, body, headers = self.handle(
                str(op.get("method", "GET")).upper(),
                path,
                dict(parse_qsl(query, keep_blank_values=True)),
                op.get("headers") or {},
                op.get("body"),
            )
        except BcError as exc:
            status, headers, body = exc.status, None, {"error": {"code": exc.code, "message": exc.message}}
        except ODataError as exc:
            status, headers, body = 400, None, {"error": {"code": "BadRequest", "message": exc.message}}
        answer: dict[str, Any] = {"id": op_id, "status": status, "headers": headers or {}}
        if body is not None:
            answer["body"] = body
        return answer

    # --- admin -------------------------------------------------------------------------------------------
    def seed(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        counts = {}
        # Referenced records first, so links (currency, unit, company number) resolve.
        order = [
            "companies",
            "currencies",
            "unitsOfMeasure",
            "salespeople",
            "customers",
            "contacts",
            "items",
            "resources",
        ]
        for entity in sorted(data, key=lambda e: order.index(e) if e in order else 99):
            rows = data[entity]
            if entity == "companies":
                for row in rows:
                    self.store.put("companies", str(row["id"]).lower(), {**row, "id": str(row["id"]).lower()})
            elif entity not in BC_ENTITIES:
                raise KeyError(entity)
            else:
                for row in rows:
                    company = str(row.get("companyId") or DEFAULT_COMPANY["id"]).lower()
                    fields = {k: v for k, v in row.items() if k != "companyId"}
                    current = self.store.get(entity, str(row["id"]).lower()) if row.get("id") else None
                    self.write(company, entity, fields, current)
            counts[entity] = len(rows)
        return counts

    def records(self, entity: str) -> list[dict[str, Any]]:
        if entity == "companies":
            return self.store.query("companies", "1=1", [], limit=10**9)
        if entity not in BC_ENTITIES:
            raise KeyError(entity)
        return [self.shape(r) for r in self.store.query(entity, "1=1", [], limit=10**9)]


def _select(params: dict) -> list[str]:
    return [s for s in str(params.get("$select") or "").split(",") if s]


def _count_option(params: dict, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not str(value).isdigit():
        raise ODataError(f"Invalid value for {name}: '{value}' is not a non-negative integer.")
    return int(value)


def _token(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        return json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        raise ODataError("The skip token is invalid.") from None
