"""Per-caller rate limits: a fixed-window counter row per (limit, caller), shared by every instance.

The rows live in the Runs table under PartitionKey ``limit`` (RowKey ``<bucket>|<caller digest>``);
each hit is an ETag-guarded increment, so concurrent requests on several instances count exactly.
One row per caller and limit is reused window after window: the table does not grow with traffic.
"""

from __future__ import annotations

import time

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.errors import SyncServiceError
from shared.store.tables import RUNS, Tables

PK = "limit"
ATTEMPTS = 50


class RateLimited(SyncServiceError):
    def __init__(self, bucket: str, limit: int, window: int, retry_after: int):
        super().__init__(
            f"more than {limit} {bucket.replace('_', ' ')} in {window} s; retry in {retry_after} s"
        )
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, tables: Tables):
        self.table = tables.client(RUNS)

    def hit(self, bucket: str, caller: str, limit: int, window: int) -> int:
        """Count one request of ``caller`` in the current window; the count, or RateLimited past ``limit``.

        ``limit`` 0 means no limit (nothing is stored).
        """
        if limit <= 0:
            return 0
        key = f"{bucket}|{caller}"
        for _ in range(ATTEMPTS):
            now = int(time.time())
            start = now - now % window
            entity = {"PartitionKey": PK, "RowKey": key, "window_start": start, "count": 1}
            try:
                row = self.table.get_entity(PK, key)
            except ResourceNotFoundError:
                try:
                    self.table.create_entity(entity)
                    return 1
                except ResourceExistsError:
                    continue
            count = int(row.get("count", 0)) + 1 if row.get("window_start") == start else 1
            if count > limit:
                raise RateLimited(bucket, limit, window, max(1, start + window - now))
            try:
                self.table.update_entity(
                    {**entity, "count": count},
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return count
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another request counted first: count again on the fresh row
        # Contention this heavy is itself a flood: refuse rather than let it through uncounted.
        raise RateLimited(bucket, limit, window, 1)
