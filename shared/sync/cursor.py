"""Where a job is between two slices, typed. Stored as the job's ``cursor`` JSON (same keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shared.store.tables import parse_iso

Phase = Literal["retry", "main"]  # retry: the couplings that failed last time first; main: the source
CrmMode = Literal["restart", "modifiedon"]  # tracking restarted after a refused delta link / no tracking


@dataclass
class Cursor:
    full: bool = False  # a full sync (set when the job is created)
    couple: bool = False  # the review's "couple records" (set when the job is created)
    match_only: bool = False  # a coupling job: coupled records are left as they are, watermarks too
    sync_pass: str | None = None  # None: not started
    phase: Phase = "main"
    link: str | None = None  # the next page of the current pass
    pass_done: bool = False
    max_seen: str | None = None  # the newest modification seen in this pass (the next watermark)
    delta_link: str | None = None  # Dataverse: where change tracking goes on next time
    crm_mode: CrmMode | None = None
    gap_since: str | None = None  # a restarted tracking syncs only what changed since this
    tracking_restarted: bool = False  # say so in the job's log, once
    retry_after: str | None = None  # retry phase: the source id the last retried page ended with

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Cursor:
        return cls(
            full=bool(stored.get("full")),
            couple=bool(stored.get("couple")),
            match_only=bool(stored.get("match_only")),
            sync_pass=stored.get("pass"),
            phase=stored.get("phase", "main"),
            link=stored.get("link"),
            pass_done=bool(stored.get("pass_done")),
            max_seen=stored.get("max_seen"),
            delta_link=stored.get("delta_link"),
            crm_mode=stored.get("mode"),
            gap_since=stored.get("gap_since"),
            tracking_restarted=bool(stored.get("note")),
            retry_after=stored.get("retry_after"),
        )

    def stored(self) -> dict[str, Any]:
        out = {
            "full": self.full,
            "couple": self.couple,
            "match_only": self.match_only,
            "pass": self.sync_pass,
            "phase": self.phase,
            "link": self.link,
            "pass_done": self.pass_done,
            "max_seen": self.max_seen,
            "delta_link": self.delta_link,
            "mode": self.crm_mode,
            "gap_since": self.gap_since,
            "note": self.tracking_restarted,
            "retry_after": self.retry_after,
        }
        return {k: v for k, v in out.items() if v not in (None, False)}

    def start(self, sync_pass: str) -> Cursor:
        """The cursor at the beginning of ``sync_pass``: a modified sync retries failures first."""
        return Cursor(self.full, self.couple, self.match_only, sync_pass, "main" if self.full else "retry")

    def observe(self, stamps: list[str | None]) -> None:
        """Move ``max_seen`` to the newest of ``stamps`` (ISO times; BC's and Dataverse's alike)."""
        seen = [s for s in stamps if s]
        if seen:
            newest = max(seen, key=parse_iso)
            if self.max_seen is None or parse_iso(newest) > parse_iso(self.max_seen):
                self.max_seen = newest
