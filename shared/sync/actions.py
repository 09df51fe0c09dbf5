"""Record-level actions on couplings whose record was deleted on one side (BC's "CRM Skipped Records"
page: find deleted couplings, restore records, delete records)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.mappings import Mapping
from shared.model.status import Pass, Result
from shared.store.couplings import Coupling
from shared.sync.records import Outcome, PageSync

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

PAGE = 100  # couplings checked per call (two reads by id per page)


@dataclass
class Broken:
    coupling: Coupling
    missing: Literal["bc", "crm", "both"]

    def api(self) -> dict[str, Any]:
        return {"bc_id": self.coupling.bc_id, "crm_id": self.coupling.crm_id, "missing": self.missing}


def _reader(ctx: SyncContext, m: Mapping, sync_pass: str, run_id: str) -> PageSync:
    return PageSync(ctx, m, sync_pass, run_id=run_id, create_uncoupled=True)


def find_broken(
    ctx: SyncContext, m: Mapping, couplings: list[Coupling], run_id: str = "check"
) -> list[Broken]:
    """The couplings among ``couplings`` whose BC or Dataverse record no longer exists."""
    if not couplings:
        return []
    bc = _reader(ctx, m, Pass.TO_CRM, run_id).fetch_source([c.bc_id for c in couplings])
    crm = _reader(ctx, m, Pass.FROM_CRM, run_id).fetch_source([c.crm_id for c in couplings])
    out = []
    for c in couplings:
        gone = [side for side, found in (("bc", c.bc_id in bc), ("crm", c.crm_id in crm)) if not found]
        if gone:
            out.append(Broken(c, "both" if len(gone) == 2 else gone[0]))  # type: ignore[arg-type]
    return out


def broken_page(ctx: SyncContext, m: Mapping, continuation: str | None) -> tuple[list[Broken], str | None]:
    """One page of the mapping's couplings checked; the broken ones and the next page's token."""
    page, token = ctx.couplings.list(m.name, page_size=PAGE, continuation=continuation)
    return find_broken(ctx, m, page), token


def repair(
    ctx: SyncContext, m: Mapping, broken: list[Broken], action: Literal["restore", "delete"], run_id: str
) -> list[Outcome]:
    """``restore``: re-create the deleted record from the surviving one and couple them again (only
    where the mapping syncs toward the deleted side). ``delete``: delete the surviving record and the
    coupling. A coupling with both records gone is just removed."""
    outcomes: list[Outcome] = []
    for b in broken:
        c = b.coupling
        survivor_side = "crm" if b.missing == "bc" else "bc"
        survivor_id = c.crm_id if survivor_side == "crm" else c.bc_id
        toward = Pass.FROM_CRM if survivor_side == "crm" else Pass.TO_CRM
        if b.missing == "both":
            ctx.couplings.delete(c)
            outcomes.append(Outcome(c.bc_id, Result.UNCOUPLED, c.crm_id, "both records were deleted"))
            continue
        if action == "restore":
            if not m.allows(toward):
                side = "Business Central" if b.missing == "bc" else "Dataverse"
                message = f"{m.name} does not sync toward {side}"
                outcomes.append(Outcome(survivor_id, Result.FAILED, None, message))
                continue
            ctx.couplings.delete(c)
            page = _reader(ctx, m, toward, run_id)
            survivor = page.fetch_source([survivor_id]).get(survivor_id)
            if survivor is None:
                outcomes.append(Outcome(survivor_id, Result.FAILED, None, "the surviving record is gone too"))
                continue
            page.create([survivor], restore=True)
            if page.result.errors:
                ctx.errors.add_many(page.result.errors)
            outcomes += page.result.outcomes
        else:
            if survivor_side == "bc":
                ctx.bc.delete(m.bc_entity, survivor_id)
            else:
                ctx.dataverse.delete(m.crm_entity, survivor_id)
            ctx.couplings.delete(c)
            outcomes.append(Outcome(survivor_id, Result.DELETED, None, "deleted with its coupling"))
    return outcomes
