"""Everything one invocation needs: stores, connectors (created lazily), mappings."""

from __future__ import annotations

import threading
from functools import cached_property

from shared.settings import Settings, get_settings
from shared.store.couplings import CouplingStore
from shared.store.errors import ErrorStore
from shared.store.jobs import JobStore
from shared.store.mapping_defs import MappingStore
from shared.store.mapping_state import MappingStateStore
from shared.store.planned import PlannedCouplings
from shared.store.runs import RunStore
from shared.store.tables import Tables
from shared.sync.derived import Derived
from shared.sync.lookups import LookupResolver
from shared.sync.matching import MatchIndex


class SyncContext:
    _matchers: dict[tuple, MatchIndex] = {}
    _matchers_lock = threading.Lock()

    def __init__(
        self, settings: Settings | None = None, tables: Tables | None = None, dataverse=None, bc=None
    ):
        self.settings = settings or get_settings()
        self.tables = tables or Tables(prefix=self.settings.table_prefix)
        self.couplings = CouplingStore(self.tables)
        self.states = MappingStateStore(self.tables)
        self.runs = RunStore(self.tables)
        self.jobs = JobStore(self.tables)
        self.errors = ErrorStore(self.tables)
        self.mappings = MappingStore(self.tables)
        self.planned = PlannedCouplings(self.tables)
        if dataverse is not None:
            self.__dict__["dataverse"] = dataverse
        if bc is not None:
            self.__dict__["bc"] = bc

    @cached_property
    def dataverse(self):
        from shared.connectors.dataverse import DataverseClient

        return DataverseClient(self.settings)

    @cached_property
    def bc(self):
        from shared.connectors.bc import BcClient

        return BcClient(self.settings)

    @cached_property
    def derived(self) -> Derived:
        return Derived(self)

    @cached_property
    def lookups(self) -> LookupResolver:
        return LookupResolver(self.couplings, self.tables.prefix, self.derived)

    def matcher(self, mapping, sync_pass: str, run_id: str) -> MatchIndex:
        """One destination index per (run, mapping, pass) and process."""
        key = (self.tables.prefix, run_id, mapping.name, sync_pass)
        with self._matchers_lock:
            if key not in self._matchers:
                # Keep only the current run's indexes: they can be large.
                for old in [k for k in self._matchers if k[1] != run_id]:
                    del self._matchers[old]
                self._matchers[key] = MatchIndex(self, mapping, sync_pass)
            return self._matchers[key]

    def drop_matcher(self, mapping_name: str, sync_pass: str, run_id: str) -> None:
        """A pass is done: its destination index (up to tens of MB) is not needed any more."""
        with self._matchers_lock:
            self._matchers.pop((self.tables.prefix, run_id, mapping_name, sync_pass), None)

    def new_slice(self) -> None:
        """Lookup indexes and reference data may be reloaded once per slice (a related record may have just
        been coupled or created)."""
        self.__dict__.pop("lookups", None)
        self.__dict__.pop("derived", None)
