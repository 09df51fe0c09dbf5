"""Typed settings from the environment: the one place the app reads configuration.

Every setting the app reads is declared in ``SETTINGS`` (name, default, description, secret flag).
The README's configuration table, ``local.settings.sample.json`` and the Bicep template's app
settings are checked against this list by tests, so a new setting must be added here first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from shared.errors import SyncServiceError


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    description: str
    secret: bool = False
    # Settings Azure sets itself (or that only exist locally) need no entry in the Bicep template.
    azure_managed: bool = False


SETTINGS: tuple[Setting, ...] = (
    # Storage: a connection string locally, identity-based (DefaultAzureCredential) in Azure.
    Setting(
        "AzureWebJobsStorage",
        None,
        "Storage connection string (Azurite locally). Leave unset in Azure and use the identity settings.",
        secret=True,
        azure_managed=True,
    ),
    Setting(
        "AzureWebJobsStorage__accountName",
        None,
        "Storage account name for identity-based access (Azure). Used when AzureWebJobsStorage is unset.",
    ),
    Setting(
        "AzureWebJobsStorage__clientId",
        None,
        "Client id of a user-assigned identity for storage; empty = system-assigned identity.",
        azure_managed=True,
    ),
    # Schedule
    Setting(
        "SYNC_SCHEDULE",
        "0 */30 * * * *",
        "NCRONTAB (6 fields, seconds first) of the scheduled modified sync.",
    ),
    # Entra ID app registration used for both services (client credentials).
    Setting("ENTRA_TENANT_ID", None, "Directory (tenant) id of the app registration."),
    Setting("ENTRA_CLIENT_ID", None, "Application (client) id of the app registration."),
    Setting(
        "ENTRA_CLIENT_SECRET",
        None,
        "Client secret (a Key Vault reference in Azure). Either this or the certificate.",
        secret=True,
    ),
    Setting(
        "ENTRA_CLIENT_CERTIFICATE_PATH",
        "",
        "Path to a PEM file with the certificate and private key, instead of a secret.",
    ),
    Setting(
        "ENTRA_AUTHORITY_HOST",
        "https://login.microsoftonline.com",
        "Token authority host; devstack points it at the local authority.",
    ),
    Setting(
        "ENTRA_CA_BUNDLE",
        "",
        "Extra CA bundle trusted for the token authority only (devstack's generated CA). Empty = system CAs.",
    ),
    # Dataverse
    Setting("DATAVERSE_URL", None, "Environment URL, e.g. https://contoso.crm4.dynamics.com."),
    Setting("DATAVERSE_SCOPE", "", "OAuth scope; empty = <DATAVERSE_URL>/.default."),
    Setting("DATAVERSE_PAGE_SIZE", "5000", "Records per page read (odata.maxpagesize, max 5000)."),
    Setting(
        "DATAVERSE_BULK_SIZE", "1000", "Records per UpsertMultiple/CreateMultiple/UpdateMultiple (max 1000)."
    ),
    Setting("DATAVERSE_MAX_CONCURRENCY", "52", "Concurrent requests per process (service limit 52)."),
    Setting(
        "DATAVERSE_APP_URL",
        "",
        "Base URL of the model-driven app the portal links records to (main.aspx); empty = DATAVERSE_URL.",
    ),
    # Business Central
    Setting("BC_API_URL", "https://api.businesscentral.dynamics.com", "Business Central API host."),
    Setting("BC_TENANT_ID", "", "BC tenant (Entra tenant id); empty = ENTRA_TENANT_ID."),
    Setting("BC_ENVIRONMENT", "production", "BC environment name."),
    Setting("BC_COMPANY_ID", "", "Company id (GUID); empty = the first company the API lists."),
    Setting("BC_SCOPE", "https://api.businesscentral.dynamics.com/.default", "OAuth scope for BC."),
    Setting("BC_PAGE_SIZE", "5000", "Records per page read (odata.maxpagesize)."),
    Setting("BC_BATCH_SIZE", "100", "Operations per JSON $batch request (max 100)."),
    Setting("BC_MAX_CONCURRENCY", "5", "Concurrent requests per process (service limit 5)."),
    Setting(
        "BC_API_ROOTS",
        "",
        "API root per BC entity beyond standard v2.0, e.g. resources=bcsync/crm/v1.0 (the project's API page,"
        " see bc-extension/); an entity v2.0 lacks and not listed here leaves its mapping not configured.",
    ),
    Setting(
        "BC_WEB_CLIENT_URL",
        "https://businesscentral.dynamics.com",
        "BC web client base URL; the CRM ribbon button redirects there.",
    ),
    # HTTP behaviour shared by both connectors
    Setting("HTTP_TIMEOUT_SECONDS", "60", "Timeout of one HTTP request to BC or Dataverse."),
    Setting(
        "HTTP_MAX_ATTEMPTS", "8", "Attempts per request before a typed error (429/5xx/connection errors)."
    ),
    Setting("HTTP_MAX_RETRY_SECONDS", "300", "Upper bound of the total time spent retrying one request."),
    # Engine
    Setting("SLICE_MAX_RECORDS", "5000", "Source records processed by one queue message (one slice)."),
    Setting("LEASE_SECONDS", "600", "How long a run holds a mapping between slices (then the sweeper may)."),
    Setting("SLICE_CLAIM_SECONDS", "120", "How long one slice may run before another worker may redo it."),
    Setting(
        "STORAGE_TABLE_PREFIX",
        "",
        "Prefix for the app's table names (lets tests share one storage account).",
        azure_managed=True,
    ),
    # Limits
    Setting(
        "RETENTION_DAYS",
        "90",
        "Runs, their jobs and errors older than this many days are deleted by the daily retention timer.",
    ),
    Setting(
        "RATE_LIMIT_WINDOW_SECONDS", "60", "Length of the fixed window the two rate limits below count in."
    ),
    Setting(
        "RATE_LIMIT_RUN_STARTS",
        "30",
        "Run starts (full, modified, one mapping) per caller and window; more answer 429. 0 = no limit.",
    ),
    Setting(
        "RATE_LIMIT_DRY_RUNS",
        "10",
        "Dry runs (full-sync dry runs, match requests) per caller and window; more answer 429. 0 = no limit.",
    ),
    # Portal and ribbon authentication (in addition to function keys)
    Setting(
        "PORTAL_AUTH_MODE", "function_key", "function_key, or entra to also require an Entra ID bearer token."
    ),
    Setting(
        "PORTAL_AUTH_AUDIENCE",
        "",
        "Accepted audiences of Entra tokens (entra mode), comma-separated: the API's App ID URI and/or "
        "client id; empty = ENTRA_CLIENT_ID.",
    ),
    Setting(
        "PORTAL_AUTH_ISSUER",
        "",
        "Accepted v2.0 token issuer; empty = authority + tenant + /v2.0 (v1.0: sts.windows.net/<tenant>/).",
    ),
    # Telemetry (shared/telemetry.py): off unless one of these is set
    Setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "",
        "Application Insights connection string: traces, metrics and logs through the Azure Monitor "
        "OpenTelemetry distro. Empty = telemetry off (unless one of the two below is set).",
    ),
    Setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "Local: send traces and metrics to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318).",
        azure_managed=True,
    ),
    Setting("TELEMETRY_CONSOLE", "", "Local: 1 = print spans and metrics to stderr.", azure_managed=True),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(SyncServiceError, RuntimeError):
    """A required setting is missing or has an invalid value."""


def _get(env: Mapping[str, str], name: str) -> str:
    spec = _BY_NAME[name]
    value = env.get(name)
    if value is None or value == "":
        if spec.default is None:
            return ""
        return spec.default
    return value


def _int(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


_API_ROOT = re.compile(r"^(v2\.0|[A-Za-z0-9]+/[A-Za-z0-9]+/v[0-9]+\.[0-9]+)$")


def _api_roots(raw: str) -> dict[str, str]:
    """``entity=publisher/group/version`` pairs, comma separated (v2.0 for the standard root)."""
    roots: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        entity, sep, root = (x.strip() for x in item.partition("="))
        if not sep or not entity or not _API_ROOT.match(root):
            raise SettingsError(
                f"BC_API_ROOTS: {item!r} is not entity=publisher/group/version (or entity=v2.0)"
            )
        roots[entity] = root
    return roots


@dataclass(frozen=True)
class StorageSettings:
    connection_string: str
    account_name: str
    client_id: str

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    sync_schedule: str
    tenant_id: str
    client_id: str
    client_secret: str
    client_certificate_path: str
    authority_host: str
    ca_bundle: str
    dataverse_url: str
    dataverse_scope: str
    dataverse_page_size: int
    dataverse_bulk_size: int
    dataverse_max_concurrency: int
    dataverse_app_url: str
    bc_api_url: str
    bc_tenant_id: str
    bc_environment: str
    bc_company_id: str
    bc_scope: str
    bc_page_size: int
    bc_batch_size: int
    bc_max_concurrency: int
    bc_api_roots: dict[str, str]
    bc_web_client_url: str
    http_timeout_seconds: int
    http_max_attempts: int
    http_max_retry_seconds: int
    slice_max_records: int
    lease_seconds: int
    slice_claim_seconds: int
    table_prefix: str
    retention_days: int
    rate_limit_window_seconds: int
    rate_limit_run_starts: int
    rate_limit_dry_runs: int
    portal_auth_mode: str
    portal_auth_audience: str
    portal_auth_issuer: str
    telemetry_connection_string: str
    otlp_endpoint: str
    telemetry_console: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        storage = StorageSettings(
            connection_string=_get(env, "AzureWebJobsStorage"),
            account_name=_get(env, "AzureWebJobsStorage__accountName"),
            client_id=_get(env, "AzureWebJobsStorage__clientId"),
        )
        if not storage.connection_string and not storage.account_name:
            raise SettingsError(
                "Set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName"
            )
        tenant = _get(env, "ENTRA_TENANT_ID")
        dataverse_url = _get(env, "DATAVERSE_URL").rstrip("/")
        mode = _get(env, "PORTAL_AUTH_MODE")
        if mode not in ("function_key", "entra"):
            raise SettingsError(f"PORTAL_AUTH_MODE must be function_key or entra, got {mode!r}")
        return cls(
            storage=storage,
            sync_schedule=_get(env, "SYNC_SCHEDULE"),
            tenant_id=tenant,
            client_id=_get(env, "ENTRA_CLIENT_ID"),
            client_secret=_get(env, "ENTRA_CLIENT_SECRET"),
            client_certificate_path=_get(env, "ENTRA_CLIENT_CERTIFICATE_PATH"),
            authority_host=_get(env, "ENTRA_AUTHORITY_HOST").rstrip("/"),
            ca_bundle=_get(env, "ENTRA_CA_BUNDLE"),
            dataverse_url=dataverse_url,
            dataverse_scope=_get(env, "DATAVERSE_SCOPE")
            or (f"{dataverse_url}/.default" if dataverse_url else ""),
            dataverse_page_size=_int(env, "DATAVERSE_PAGE_SIZE", 1, 5000),
            dataverse_bulk_size=_int(env, "DATAVERSE_BULK_SIZE", 1, 1000),
            dataverse_max_concurrency=_int(env, "DATAVERSE_MAX_CONCURRENCY", 1, 52),
            dataverse_app_url=_get(env, "DATAVERSE_APP_URL").rstrip("/") or dataverse_url,
            bc_api_url=_get(env, "BC_API_URL").rstrip("/"),
            bc_tenant_id=_get(env, "BC_TENANT_ID") or tenant,
            bc_environment=_get(env, "BC_ENVIRONMENT"),
            bc_company_id=_get(env, "BC_COMPANY_ID"),
            bc_scope=_get(env, "BC_SCOPE"),
            bc_page_size=_int(env, "BC_PAGE_SIZE", 1, 20000),
            bc_batch_size=_int(env, "BC_BATCH_SIZE", 1, 100),
            bc_max_concurrency=_int(env, "BC_MAX_CONCURRENCY", 1, 5),
            bc_api_roots=_api_roots(_get(env, "BC_API_ROOTS")),
            bc_web_client_url=_get(env, "BC_WEB_CLIENT_URL").rstrip("/"),
            http_timeout_seconds=_int(env, "HTTP_TIMEOUT_SECONDS", 1, 600),
            http_max_attempts=_int(env, "HTTP_MAX_ATTEMPTS", 1, 50),
            http_max_retry_seconds=_int(env, "HTTP_MAX_RETRY_SECONDS", 1, 3600),
            slice_max_records=_int(env, "SLICE_MAX_RECORDS", 1, 100000),
            lease_seconds=_int(env, "LEASE_SECONDS", 10, 86400),
            slice_claim_seconds=_int(env, "SLICE_CLAIM_SECONDS", 5, 3600),
            table_prefix=_get(env, "STORAGE_TABLE_PREFIX"),
            retention_days=_int(env, "RETENTION_DAYS", 1, 36500),
            rate_limit_window_seconds=_int(env, "RATE_LIMIT_WINDOW_SECONDS", 1, 86400),
            rate_limit_run_starts=_int(env, "RATE_LIMIT_RUN_STARTS", 0, 100000),
            rate_limit_dry_runs=_int(env, "RATE_LIMIT_DRY_RUNS", 0, 100000),
            portal_auth_mode=mode,
            portal_auth_audience=_get(env, "PORTAL_AUTH_AUDIENCE"),
            portal_auth_issuer=_get(env, "PORTAL_AUTH_ISSUER"),
            telemetry_connection_string=_get(env, "APPLICATIONINSIGHTS_CONNECTION_STRING"),
            otlp_endpoint=_get(env, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            telemetry_console=_get(env, "TELEMETRY_CONSOLE").lower() in ("1", "true", "yes"),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once (the Functions host sets app settings before import)."""
    return Settings.from_env()
