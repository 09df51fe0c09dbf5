"""Rate limits of the HTTP API: run starts and dry runs per caller (RATE_LIMIT_* settings).

The caller is set by the HTTP layer for each request (the token's subject in entra mode, else a
digest of the function key); the counters live in Table Storage (shared.store.limits).
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from shared.api.errors import ApiError
from shared.store.limits import RateLimited, RateLimiter

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

RUN_STARTS = "run_starts"
DRY_RUNS = "dry_runs"
current_caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="internal")


def check(ctx: SyncContext, bucket: str) -> None:
    """Count this request against the caller's limit; 429 ApiError (with Retry-After) past it."""
    s = ctx.settings
    limit = s.rate_limit_run_starts if bucket == RUN_STARTS else s.rate_limit_dry_runs
    try:
        RateLimiter(ctx.tables).hit(bucket, current_caller.get(), limit, s.rate_limit_window_seconds)
    except RateLimited as exc:
        raise ApiError(429, "TooManyRequests", str(exc), retry_after=exc.retry_after) from None
