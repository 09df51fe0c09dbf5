"""What to do with one coupled record in one pass: a pure function of hashes and comparisons.

The caller (``PageSync._sync_coupled``) reads both records, translates the source's values and
describes every flowing field as a ``FieldView``; ``decide`` says whether the record is in conflict,
which fields to write, and which hashes the coupling keeps. Hashes are of the values last synced,
per field and side: a side's field "changed" when its value hashes differently from what was stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

UpdatePolicy = Literal["None", "SendUpdateToIntegration", "GetUpdateFromIntegration"]
Side = Literal["bc", "crm"]


@dataclass(frozen=True)
class FieldView:
    """One field that flows in this pass, for one coupled record."""

    key: str
    bidirectional: bool
    src_hash: str  # the source's value now
    stored_src: str | None  # the source's value at the last sync (None: never synced from this side)
    dst_hash: str  # the destination's value now
    stored_dst: str | None
    src_changed: bool  # changed at the source since the last sync (or the caller forces a re-check)
    writable: bool = True  # the source value translated (a keep-if-empty lookup that resolves to nothing: no)
    differs: bool = True  # the translated source value differs from the destination's
    write_hash: str | None = None  # hash of the translated source value (what a write leaves behind)

    @property
    def dst_changed(self) -> bool:
        return self.stored_dst is not None and self.dst_hash != self.stored_dst


class Verdict(StrEnum):
    CONFLICT = "conflict"  # policy None: the record fails with an update-conflict error
    WRITE = "write"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    conflicts: tuple[str, ...] = ()  # keys of the fields in conflict
    writes: frozenset[str] = frozenset()
    src_hashes: dict[str, str] = field(default_factory=dict)  # to merge into the source side's hashes
    dst_hashes: dict[str, str | None] = field(default_factory=dict)  # the destination side's, whole


def conflicts_of(fields: list[FieldView], whole: bool) -> list[str]:
    """Per field: changed on both sides to different values. Per record (BC): any source field moved
    and any destination field changed to a value the source does not have."""
    if whole:
        moved = [f.key for f in fields if f.stored_src is not None and f.src_hash != f.stored_src]
        other = any(f.dst_changed and f.writable and f.differs for f in fields)
        return moved if moved and other else []
    return [
        f.key
        for f in fields
        if f.src_changed and f.dst_changed and f.bidirectional and f.writable and f.differs
    ]


def decide(
    fields: list[FieldView],
    stored_dst: dict[str, str | None],
    *,
    policy: UpdatePolicy,
    whole: bool,
    dst_side: Side,
) -> Decision:
    """``stored_dst``: all the destination side's stored hashes (also of fields of the other pass)."""
    conflicts = conflicts_of(fields, whole)
    keep: set[str] = set()  # destination values that stay although the source changed them
    overwrite: set[str] = set()  # destination edits the source's values replace
    if conflicts:
        if policy == "None":
            return Decision(Verdict.CONFLICT, tuple(conflicts))
        winner: Side = "bc" if policy == "SendUpdateToIntegration" else "crm"
        if winner == dst_side:  # the destination's values stay; they flow back in their own pass
            keep = {f.key for f in fields} if whole else set(conflicts)
        elif whole:  # the source's record wins as a whole, its unchanged fields too
            overwrite = {f.key for f in fields if f.dst_changed}
    writes = frozenset(
        f.key
        for f in fields
        if f.writable and f.differs and (f.src_changed or f.key in overwrite) and f.key not in keep
    )
    # Source: its values now are synced — unless the destination wins the whole record, whose pass then
    # finds the source changed and overwrites it. Destination: what it will hold; its edits we neither
    # overwrote nor kept keep their old hash, so they still flow the other way.
    src_hashes = {} if whole and keep else {f.key: f.src_hash for f in fields}
    dst_hashes = dict(stored_dst)
    for f in fields:
        if f.key in writes:
            dst_hashes[f.key] = f.write_hash
        elif not f.dst_changed and f.key not in keep:
            dst_hashes[f.key] = f.dst_hash
    return Decision(
        Verdict.WRITE if writes else Verdict.UNCHANGED, tuple(conflicts), writes, src_hashes, dst_hashes
    )
