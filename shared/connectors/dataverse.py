"""Dataverse Web API v9.2 client: paging, change tracking, CRUD with upsert semantics, bulk writes.

Bulk writes use CreateMultiple/UpdateMultiple/UpsertMultiple where the table supports them
(shared/contracts/dataverse.json ``messages``, from each table's reference page) and one request per
record elsewhere; a refused bulk request is bisected to name the records it refused.
"""

from __future__ import annotations

import email.parser
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared import usage
from shared.connectors.auth import TokenProvider
from shared.connectors.errors import ConnectorError, Duplicate, NotFound, PreconditionFailed
from shared.connectors.http import Connector, ServiceClient
from shared.connectors.odata import guid, query_params
from shared.connectors.option_sets import OptionSets, is_option_set
from shared.connectors.results import ChangesPage, Page, RecordResult, iter_pages
from shared.contracts import dataverse_tables
from shared.settings import Settings, get_settings

# One request per record in place of a bulk message: an update must not create, a create not update.
CONDITIONS = {"UpdateMultiple": {"If-Match": "*"}, "CreateMultiple": {"If-None-Match": "*"}}


class DataverseClient(Connector):
    def __init__(
        self,
        settings: Settings | None = None,
        tokens: TokenProvider | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.settings = settings or get_settings()
        self.base = f"{self.settings.dataverse_url}/api/data/v9.2"
        self.http = ServiceClient(
            "dataverse",
            self.settings,
            self.settings.dataverse_scope,
            self.settings.dataverse_max_concurrency,
            tokens,
            headers={"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"},
            transport=transport,
        )
        self._whoami: str | None = None
        self.option_sets = OptionSets(self)  # option mappings: an option set read as an entity set

    # --- reads ------------------------------------------------------------------------------------
    def get_page(
        self,
        entity_set: str,
        *,
        select: list[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        page_size: int | None = None,
        next_link: str | None = None,
    ) -> Page:
        if is_option_set(entity_set):
            return Page(self.option_sets.page(entity_set, filter))
        size = min(page_size or self.settings.dataverse_page_size, 5000)
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        if next_link:
            response = self.http.request("GET", next_link, kind="read", headers=headers)
        else:
            params = query_params(select, filter, orderby)
            response = self.http.request(
                "GET", f"{self.base}/{entity_set}", kind="read", headers=headers, params=params
            )
        body = response.json()
        return Page(body.get("value", []), body.get("@odata.nextLink"))

    def iter_records(self, entity_set: str, **query: Any) -> Iterator[dict[str, Any]]:
        return iter_pages(self.get_page, entity_set, **query)

    def get_changes(
        self, entity_set: str, *, select: list[str] | None = None, link: str | None = None
    ) -> ChangesPage:
        """One page of changes: start tracking (``link`` None) or follow a nextLink / deltaLink.

        Raises BadRequest when change tracking is not enabled for the table.
        """
        if is_option_set(entity_set):  # metadata has no change tracking: every option, every time
            return ChangesPage(self.option_sets.page(entity_set))
        size = min(self.settings.dataverse_page_size, 5000)
        headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={size}"}
        if link:
            response = self.http.request("GET", link, kind="read", headers=headers)
        else:
            params = query_params(select)
            response = self.http.request(
                "GET", f"{self.base}/{entity_set}", kind="read", headers=headers, params=params
            )
        body = response.json()
        records, deleted = [], []
        for row in body.get("value", []):
            if (
                str(row.get("@odata.context", "")).endswith("$deletedEntity")
                or row.get("reason") == "deleted"
            ):
                deleted.append(row["id"])
            else:
                records.append(row)
        return ChangesPage(records, deleted, body.get("@odata.nextLink"), body.get("@odata.deltaLink"))

    def batch_get(self, requests: list[tuple[str, dict[str, str]]]) -> list[tuple[int, Any]]:
        """Several GETs in one ``$batch`` (multipart/mixed, continue on error): (status, JSON body) each.

        A request is (URL — relative to the API root, or a link the API returned — and its headers).
        """
        if not requests:
            return []
        boundary = f"batch_{uuid.uuid4().hex}"
        parts = []
        for url, headers in requests:
            url = url if url.startswith("http") else f"{self.base}/{url}"
            lines = [f"GET {url} HTTP/1.1", "Accept: application/json"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            parts.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                + "\r\n".join(lines)
                + "\r\n\r\n"
            )
        body = "".join(parts) + f"--{boundary}--\r\n"
        response = self.http.request(
            "POST",
            f"{self.base}/$batch",
            kind="batch",
            content=body.encode("utf-8"),
            headers={
                "Content-Type": f"multipart/mixed; boundary={boundary}",
                "Prefer": "odata.continue-on-error",
            },
        )
        answers = _batch_responses(response.headers.get("content-type", ""), response.content)
        if len(answers) != len(requests):
            raise ConnectorError(
                "dataverse", response.status_code, None, f"$batch answered {len(answers)} of {len(requests)}"
            )
        return answers

    def get(self, entity_set: str, id: str, select: list[str] | None = None) -> dict[str, Any] | None:
        if is_option_set(entity_set):
            return self.option_sets.get(entity_set, id)
        params = {"$select": ",".join(select)} if select else None
        try:
            return self.http.request("GET", self._key_url(entity_set, id), kind="read", params=params).json()
        except NotFound:
            return None

    def organization(self) -> dict[str, Any]:
        """The organization row: base currency (``_basecurrencyid_value``), change-tracking expiry."""
        select = "organizationid,_basecurrencyid_value,expirechangetrackingindays"
        rows = self.http.request("GET", f"{self.base}/organizations", kind="read",
                                 params={"$select": select}).json().get("value", [])  # fmt: skip
        return rows[0] if rows else {}

    def whoami(self) -> str:
        """The integration (application) user's systemuserid: our own writes carry it as modifier."""
        if self._whoami is None:
            self._whoami = (
                self.http.request("GET", f"{self.base}/WhoAmI", kind="read").json()["UserId"].lower()
            )
        return self._whoami

    # --- single writes ------------------------------------------------------------------------------
    def _key_url(self, entity_set: str, id: str) -> str:
        return f"{self.base}/{entity_set}({guid(id)})"

    def create(self, entity_set: str, id: str, body: dict[str, Any]) -> None:
        """Create with a caller-chosen id (PATCH upsert, create only): a retry cannot make a twin."""
        try:
            self.http.request("PATCH", self._key_url(entity_set, id), kind="write", json=body,
                              headers={"If-None-Match": "*"})  # fmt: skip
        except PreconditionFailed as exc:
            raise Duplicate(exc.service, exc.status, exc.code, f"{entity_set}({id}) already exists") from None

    def update(self, entity_set: str, id: str, body: dict[str, Any], etag: str | None = None) -> None:
        """Update only the given fields; with ``etag`` a concurrent change raises PreconditionFailed."""
        self.http.request("PATCH", self._key_url(entity_set, id), kind="write", json=body,
                          headers={"If-Match": etag or "*"})  # fmt: skip

    def delete(self, entity_set: str, id: str) -> None:
        self.http.request("DELETE", self._key_url(entity_set, id), kind="write")

    @staticmethod
    def bind(entity_set: str, id: str) -> str:
        return f"/{entity_set}({guid(id)})"

    # --- bulk writes ---------------------------------------------------------------------------------
    def _bulk(self, action: str, entity_set: str, logical_name: str, records: list[dict[str, Any]]):
        if is_option_set(entity_set):
            return self.option_sets.write(action, entity_set, records)
        table = dataverse_tables().get(entity_set)
        if table is not None and not table.supports(action):
            return self._one_by_one(action, entity_set, f"{logical_name}id", records)
        size = self.settings.dataverse_bulk_size
        key = f"{logical_name}id"
        chunks = [list(range(i, min(i + size, len(records)))) for i in range(0, len(records), size)]

        def send(indexes: list[int]) -> list[RecordResult]:
            return self._bulk_chunk(action, entity_set, logical_name, key, records, indexes)

        workers = max(1, min(len(chunks), self.settings.dataverse_max_concurrency, 4))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [r for chunk in pool.map(usage.carry(send), chunks) for r in chunk]
        return sorted(results, key=lambda r: r.index)

    def _bulk_chunk(self, action, entity_set, logical_name, key, records, indexes) -> list[RecordResult]:
        """One request for the chunk; when it fails (all-or-nothing), bisect to isolate the bad records."""
        targets = [{"@odata.type": f"Microsoft.Dynamics.CRM.{logical_name}", **records[i]} for i in indexes]
        url = f"{self.base}/{entity_set}/Microsoft.Dynamics.CRM.{action}"
        try:
            self.http.request("POST", url, kind="bulk", json={"Targets": targets})
            return [RecordResult(i, records[i].get(key), True) for i in indexes]
        except ConnectorError as exc:
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                raise  # not about the records: let the slice fail and be retried
            if len(indexes) == 1:
                return [RecordResult(indexes[0], records[indexes[0]].get(key), False, exc)]
        half = len(indexes) // 2
        return self._bulk_chunk(
            action, entity_set, logical_name, key, records, indexes[:half]
        ) + self._bulk_chunk(action, entity_set, logical_name, key, records, indexes[half:])

    def _one_by_one(self, action: str, entity_set: str, key: str, records: list[dict[str, Any]]):
        """Tables without the bulk message (transactioncurrency, uom: see their reference pages) get one
        request per record — a PATCH upsert or update (If-Match: *) by id, a POST for a create without
        one — a few at a time."""

        def send(i: int) -> RecordResult:
            record = records[i]
            body = {k: v for k, v in record.items() if k != key}
            try:
                if action == "CreateMultiple" and not record.get(key):
                    self.http.request("POST", f"{self.base}/{entity_set}", kind="write", json=body)
                else:
                    url = self._key_url(entity_set, record[key])
                    headers = CONDITIONS.get(action, {})
                    self.http.request("PATCH", url, kind="write", json=body, headers=headers)
            except ConnectorError as exc:
                if exc.status is None or exc.status >= 500 or exc.status == 429:
                    raise
                return RecordResult(i, record.get(key), False, exc)
            return RecordResult(i, record.get(key), True)

        workers = max(1, min(len(records), self.settings.dataverse_max_concurrency, 4))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(usage.carry(send), range(len(records))))

    def upsert_multiple(
        self, entity_set: str, logical_name: str, records: list[dict[str, Any]]
    ) -> list[RecordResult]:
        return self._bulk("UpsertMultiple", entity_set, logical_name, records) if records else []

    def create_multiple(
        self, entity_set: str, logical_name: str, records: list[dict[str, Any]]
    ) -> list[RecordResult]:
        return self._bulk("CreateMultiple", entity_set, logical_name, records) if records else []

    def update_multiple(
        self, entity_set: str, logical_name: str, records: list[dict[str, Any]]
    ) -> list[RecordResult]:
        return self._bulk("UpdateMultiple", entity_set, logical_name, records) if records else []


def _batch_responses(content_type: str, content: bytes) -> list[tuple[int, Any]]:
    """The parts of a multipart/mixed $batch response, each an HTTP response: (status, JSON body or None)."""
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + content
    )
    out = []
    for part in message.get_payload() if message.is_multipart() else []:
        raw = part.get_payload(decode=True) or b""
        head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        status = int(head.split(b"\n", 1)[0].split()[1])
        out.append((status, json.loads(body) if body.strip() else None))
    return out
