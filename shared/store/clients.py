"""Storage clients for tables and queues: connection string locally, managed identity in Azure.

The one code path that turns settings into Table/Queue service clients. Queue messages are
base64-encoded, as the Functions queue extension expects by default.
"""

from __future__ import annotations

from functools import lru_cache

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared import usage
from shared.settings import StorageSettings, get_settings


def _credential(storage: StorageSettings):
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=storage.client_id or None)


POOL_CONNECTIONS = 32  # the coupling store runs up to 16 reads at once, and slices run side by side


class _TableTransport(RequestsTransport):
    """requests' default pool keeps 10 connections per host: more concurrent requests open connections
    that are then thrown away ("Connection pool is full"), and a connection reused just as the server
    closes it answers a reset."""

    def _init_session(self, session: requests.Session) -> None:
        super()._init_session(session)
        for adapter in session.adapters.values():
            adapter.init_poolmanager(POOL_CONNECTIONS, POOL_CONNECTIONS)


def _table_transport() -> RequestsTransport:
    """A transport that ignores the environment (``use_env_settings``: proxy and CA-bundle variables,
    ``~/.netrc``): with it, requests looks for ``~/.netrc`` and stats the CA bundle path on every request,
    ~6 % of a worker's CPU samples in a full sync (py-spy). Table Storage needs neither: the SDK signs
    each request and verifies TLS against the default trust store."""
    return _TableTransport(use_env_settings=False)


def table_service(storage: StorageSettings | None = None, **options) -> TableServiceClient:
    """``options`` go to the SDK client (e.g. ``retry_total``, ``connection_timeout``)."""
    storage = storage or get_settings().storage
    options.setdefault("raw_request_hook", usage.table_request_hook)
    options.setdefault("transport", _table_transport())
    if storage.uses_identity:
        url = f"https://{storage.account_name}.table.core.windows.net"
        return TableServiceClient(endpoint=url, credential=_credential(storage), **options)
    return TableServiceClient.from_connection_string(storage.connection_string, **options)


def queue_service(storage: StorageSettings | None = None, **options) -> QueueServiceClient:
    storage = storage or get_settings().storage
    policies = {
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": TextBase64DecodePolicy(),
        **options,
    }
    if storage.uses_identity:
        url = f"https://{storage.account_name}.queue.core.windows.net"
        return QueueServiceClient(account_url=url, credential=_credential(storage), **policies)
    return QueueServiceClient.from_connection_string(storage.connection_string, **policies)


@lru_cache(maxsize=8)
def _cached_table_service() -> TableServiceClient:
    return table_service()


@lru_cache(maxsize=8)
def _cached_queue_service() -> QueueServiceClient:
    return queue_service()


def queue(name: str) -> QueueClient:
    """A client for one queue of the app's storage account (process-wide service client).

    The encode/decode policies are passed again here: ``get_queue_client`` does not inherit them.
    """
    return _cached_queue_service().get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
    )


def shared_queue_service() -> QueueServiceClient:
    """The process-wide queue service client."""
    return _cached_queue_service()


def shared_table_service() -> TableServiceClient:
    """The process-wide table service client (connection pool reused across invocations)."""
    return _cached_table_service()
