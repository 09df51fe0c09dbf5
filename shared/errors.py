"""The service's exception tree. Every exception the app raises on purpose derives from ``SyncServiceError``;
the HTTP layer maps the branches to status codes (``functions/http_util.py``), the engine turns
``RecordRefused`` into a per-record error and lets the rest fail the slice (retried from the queue).

    SyncServiceError
    ├── InvalidInput (ValueError)      bad mapping, filter or name given by a user → 400
    ├── Concurrency                    another writer or run got there first → 409 / retry / re-read
    ├── RecordRefused                  one record cannot be synced (lookup, value, derived data)
    ├── ConnectorError                 BC or Dataverse answered an error (shared.connectors.errors)
    ├── StorageError                   Table Storage refused a transaction
    ├── RateLimited                    a caller went past a limit → 429
    └── SettingsError (RuntimeError)   the configuration cannot work
ApiError (shared.api.errors) is the HTTP answer itself, raised by the API layer only.
"""

from __future__ import annotations


class SyncServiceError(Exception):
    """Root of every exception the service raises on purpose."""


class InvalidInput(SyncServiceError, ValueError):
    """What a user gave cannot be used (a mapping, a filter, a name)."""


class Concurrency(SyncServiceError):
    """Another writer, worker or run got there first."""


class RecordRefused(SyncServiceError):
    """One record cannot be synced as it is; it fails alone with this message."""


class StorageError(SyncServiceError):
    """Table Storage refused an operation."""
