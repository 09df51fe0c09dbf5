"""Business Central API client: companies, paging, CRUD with ETags, JSON $batch.

Each entity is addressed at its API root: standard ``api/v2.0``, or a custom API page's
``api/<publisher>/<group>/<version>`` (BC_API_ROOTS) for what v2.0 lacks (resources; salespeople
before BC 26.1). Pages are capped at 20,000 records, BC online's largest ``odata.maxpagesize``
(Server-Driven-Paging-in-OData-Web-Services).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from shared import usage
from shared.connectors.auth import TokenProvider
from shared.connectors.errors import (
    ConnectorError,
    NotConfigured,
    NotFound,
    Throttled,
    Transient,
    parse_error,
)
from shared.connectors.http import Connector, ServiceClient, retry_after_seconds
from shared.connectors.odata import guid, query_params
from shared.connectors.results import Page, iter_pages
from shared.contracts import STANDARD_API, bc_entities
from shared.settings import Settings, get_settings


@dataclass
class BatchOp:
    method: str  # POST | PATCH | DELETE | GET
    entity: str
    id: str | None = None
    body: dict[str, Any] | None = None
    etag: str | None = None
    query: dict[str, str] | None = None  # GET: $filter, $select, $top …


@dataclass
class BatchResult:
    status: int
    body: dict[str, Any] | None = None
    error: ConnectorError | None = None


MAX_PAGE_SIZE = 20_000


class BcClient(Connector):
    def __init__(
        self,
        settings: Settings | None = None,
        tokens: TokenProvider | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = settings or get_settings()
        s = self.settings
        tenant, env = quote(s.bc_tenant_id, safe=""), quote(s.bc_environment, safe="")
        self.api_base = f"{s.bc_api_url}/v2.0/{tenant}/{env}/api"
        self.root = f"{self.api_base}/{STANDARD_API}"
        self.http = ServiceClient(
            "bc",
            s,
            s.bc_scope,
            s.bc_max_concurrency,
            tokens,
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self._company: dict[str, Any] | None = None

    # --- companies ---------------------------------------------------------------------------------
    def companies(self) -> list[dict[str, Any]]:
        return self.http.request("GET", f"{self.root}/companies", kind="read").json().get("value", [])

    def _the_company(self) -> dict[str, Any]:
        if self._company is None:
            companies = self.companies()
            wanted = self.settings.bc_company_id.lower()
            chosen = next((c for c in companies if c["id"].lower() == wanted), None) if wanted else None
            if chosen is None and not wanted and companies:
                chosen = companies[0]
            if chosen is None:
                raise NotFound(
                    "bc", 404, "Internal_CompanyNotFound", f"company {wanted or '(any)'} not found"
                )
            self._company = chosen
        return self._company

    @property
    def company_id(self) -> str:
        return self._the_company()["id"]

    def company_name(self) -> str:
        return self._the_company().get("name") or self._the_company().get("displayName") or ""

    def api_root(self, entity: str) -> str | None:
        """The API root (``v2.0`` or publisher/group/version) serving ``entity``; None: not configured."""
        configured = self.settings.bc_api_roots.get(entity)
        if configured:
            return configured
        contract = bc_entities().get(entity)
        return STANDARD_API if contract is None or contract.standard else None

    def configured(self, entity: str) -> bool:
        return self.api_root(entity) is not None

    def _root_url(self, entity: str) -> str:
        root = self.api_root(entity)
        if root is None:
            raise NotConfigured(entity)
        return f"{self.api_base}/{root}"

    def _url(self, entity: str, id: str | None = None) -> str:
        url = f"{self._root_url(entity)}/companies({self.company_id})/{entity}"
        return f"{url}({guid(id)})" if id else url

    # --- reads ---------------------------------------------------------------------------------------
    def get_page(
        self,
        entity: str,
        *,
        filter: str | None = None,
        select: list[str] | None = None,
        orderby: str | None = None,
        page_size: int | None = None,
        next_link: str | None = None,
    ) -> Page:
        size = min(page_size or self.settings.bc_page_size, MAX_PAGE_SIZE)
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        if next_link:
            response = self.http.request("GET", next_link, kind="read", headers=headers)
        else:
            params = query_params(select, filter, orderby)
            try:
                response = self.http.request(
                    "GET", self._url(entity), kind="read", headers=headers, params=params
                )
            except NotFound:
                # The company was found, so a 404 for a whole entity set means this BC has no such
                # endpoint (salespeoplePurchasers before BC 26.1, an API page not published).
                raise NotConfigured(entity) from None
        body = response.json()
        return Page(body.get("value", []), body.get("@odata.nextLink"))

    def iter_records(self, entity: str, **query: Any) -> Iterator[dict[str, Any]]:
        return iter_pages(self.get_page, entity, **query)

    def get(self, entity: str, id: str) -> dict[str, Any] | None:
        try:
            return self.http.request("GET", self._url(entity, id), kind="read").json()
        except NotFound:
            return None

    # --- writes --------------------------------------------------------------------------------------
    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST; a body ``id`` becomes the record's SystemId (API v2.0 accepts it: transition-to-api-v2.0),
        so a repeated create of the same id answers Duplicate instead of making a twin."""
        return self.http.request("POST", self._url(entity), kind="write", json=body).json()

    def company_information(self) -> dict[str, Any]:
        """The company's information; ``currencyCode`` is its local currency (LCY)."""
        url = f"{self.root}/companies({self.company_id})/companyInformation"
        rows = self.http.request("GET", url, kind="read").json().get("value", [])
        return rows[0] if rows else {}

    def update(self, entity: str, id: str, body: dict[str, Any], etag: str = "*") -> dict[str, Any]:
        """PATCH with If-Match: a stale ETag raises Conflict (409 Request_EntityChanged)."""
        return self.http.request("PATCH", self._url(entity, id), kind="write", json=body,
                                 headers={"If-Match": etag}).json()  # fmt: skip

    def delete(self, entity: str, id: str, etag: str = "*") -> None:
        self.http.request("DELETE", self._url(entity, id), kind="write", headers={"If-Match": etag})

    def batch(self, ops: list[BatchOp]) -> list[BatchResult]:
        """JSON $batch in chunks of BC_BATCH_SIZE, chunks in parallel up to the concurrency cap."""
        if not ops:
            return []
        size = self.settings.bc_batch_size
        by_root: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            by_root.setdefault(self._root_url(op.entity), []).append(i)
        chunks = [(root, ix[i : i + size]) for root, ix in by_root.items() for i in range(0, len(ix), size)]
        workers = max(1, min(len(chunks), self.settings.bc_max_concurrency))
        results: list[BatchResult | None] = [None] * len(ops)

        def send(chunk: tuple[str, list[int]]) -> None:
            root, indexes = chunk
            for i, r in zip(indexes, self._batch_chunk(root, [ops[i] for i in indexes]), strict=True):
                results[i] = r

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(usage.carry(send), chunks))
        return results  # type: ignore[return-value]

    def _batch_chunk(self, root: str, ops: list[BatchOp]) -> list[BatchResult]:
        results: list[BatchResult | None] = [None] * len(ops)
        pending = list(range(len(ops)))
        company = f"companies({self.company_id})"
        for attempt in range(1, self.settings.http_max_attempts + 1):
            requests = []
            for i in pending:
                op = ops[i]
                url = f"{company}/{op.entity}" + (f"({guid(op.id)})" if op.id else "")
                if op.query:
                    url += "?" + urlencode(op.query, quote_via=quote)
                headers = {"Content-Type": "application/json"}
                if op.method in ("PATCH", "DELETE"):
                    headers["If-Match"] = op.etag or "*"
                request = {"id": str(i), "method": op.method, "url": url, "headers": headers}
                if op.body is not None:
                    request["body"] = op.body
                requests.append(request)
            response = self.http.request("POST", f"{root}/$batch", kind="batch", json={"requests": requests})
            throttled, wait = [], 0.0
            for answer in response.json().get("responses", []):
                i, status = int(answer["id"]), int(answer["status"])
                body = answer.get("body")
                if 200 <= status < 300:
                    results[i] = BatchResult(status, body if isinstance(body, dict) else None)
                elif status == 429:
                    throttled.append(i)
                    hint = retry_after_seconds((answer.get("headers") or {}).get("Retry-After"))
                    wait = max(wait, hint if hint is not None else 1.0)
                else:
                    results[i] = BatchResult(status, None, parse_error("bc", status, body))
            if not throttled:
                break
            self.http.count("throttled")
            pending = throttled
            if attempt == self.settings.http_max_attempts:
                break  # reported below as throttled; waiting first would only delay that
            # Throttled operations inside a batch are retried on their own (they did not run).
            self.http.count("retries")
            self.http.sleep(wait)
        for i in pending:
            if results[i] is None:
                results[i] = BatchResult(
                    429, None, Throttled("bc", 429, "TooManyRequests", "throttled in $batch")
                )
        # An operation the service did not answer is reported, never dropped: results stay in input order.
        missing = Transient("bc", None, "NoResponse", "no response for this operation in $batch")
        return [r if r is not None else BatchResult(0, None, missing) for r in results]
