"""The two sides of a mapping, and the run row of a record action (couple and sync, create, sync
selected, match, retry, repair, the ribbon): created when the action starts, ended from its outcomes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.mappings import Mapping
from shared.model.status import Pass, Result, RunKind, RunStatus
from shared.store.runs import Run, new_run_id
from shared.store.tables import iso, now
from shared.sync.records import Outcome, PageSync

if TYPE_CHECKING:
    from shared.sync.context import SyncContext


class Side(StrEnum):
    """A mapping's two services; the values are the prefixes of the API's ``bc_id`` / ``crm_id``."""

    BC = "bc"
    CRM = "crm"

    @classmethod
    def source_of(cls, sync_pass: Pass | str) -> Side:
        """The side a pass reads from."""
        return cls.BC if sync_pass == Pass.TO_CRM else cls.CRM

    @property
    def outward(self) -> Pass:
        """The pass whose source is this side."""
        return Pass.TO_CRM if self is Side.BC else Pass.FROM_CRM

    @property
    def other(self) -> Side:
        return Side.CRM if self is Side.BC else Side.BC

    @property
    def id_key(self) -> str:
        return f"{self}_id"

    @property
    def service(self) -> str:
        return "Business Central" if self is Side.BC else "Dataverse"


def run_status(outcomes: list[Outcome]) -> RunStatus:
    """Failed when every record failed, FinishedWithErrors when some did, else Succeeded."""
    failed = sum(1 for o in outcomes if o.result == Result.FAILED)
    if failed and failed == len(outcomes):
        return RunStatus.FAILED
    return RunStatus.FINISHED_WITH_ERRORS if failed else RunStatus.SUCCEEDED


def run_message(outcomes: list[Outcome]) -> str:
    """The outcomes counted by result, e.g. ``coupled: 2, failed: 1``."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(Counter(str(o.result) for o in outcomes).items()))


@dataclass
class RecordRun:
    """A running record action: what it did so far, and how it ends."""

    ctx: SyncContext
    run: Run
    outcomes: list[Outcome] = field(default_factory=list)
    failed: bool = False  # set by fail(): the action did not do what it was for
    failure: str | None = None  # and why, when known

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def page(self, m: Mapping, sync_pass: Pass, **options) -> PageSync:
        """A page of this run; records not coupled are left alone unless ``create_uncoupled``."""
        options.setdefault("create_uncoupled", False)
        return PageSync(self.ctx, m, sync_pass, run_id=self.run_id, **options)

    def record(self, page: PageSync) -> list[Outcome]:
        """Keep a page's errors and count its outcomes; they are returned for the answer."""
        if page.result.errors:
            self.ctx.errors.add_many(page.result.errors)
        self.outcomes += page.result.outcomes
        return page.result.outcomes

    def fail(self, message: str | None) -> None:
        self.failed, self.failure = True, message

    def end(self) -> None:
        def mutate(r: Run) -> None:
            r.finished_at = iso(now())
            if self.failed:
                r.status, r.message = RunStatus.FAILED, self.failure
            else:
                r.status, r.message = run_status(self.outcomes), run_message(self.outcomes)

        self.ctx.runs.update(self.run_id, mutate)


@contextmanager
def record_run(ctx: SyncContext, m: Mapping, trigger: str) -> Iterator[RecordRun]:
    """A ``records`` run of ``m`` around a record action; an exception ends it Failed (and goes on)."""
    run = ctx.runs.create(Run(new_run_id(), RunKind.RECORDS, trigger, [m.name], status=RunStatus.RUNNING))
    recording = RecordRun(ctx, run)
    try:
        yield recording
    except BaseException as exc:
        recording.fail(str(exc) or type(exc).__name__)
        recording.end()
        raise
    recording.end()
