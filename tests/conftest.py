"""Session fixtures shared by all tests: real Azurite on free ports (in memory), torn down after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.azurite import Azurite, start_azurite

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    instance = start_azurite(tmp_path_factory.mktemp("azurite"), in_memory=True)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@pytest.fixture
def unique_name() -> str:
    """A name unique to this test, usable as a table or queue name (letters and digits)."""
    return "t" + uuid.uuid4().hex[:20]


@pytest.fixture
def storage_env(storage_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the app's settings at the test Azurite (for tests that call shared/ directly)."""
    from shared import settings
    from shared.store import clients

    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    for cached in (settings.get_settings, clients._cached_table_service, clients._cached_queue_service):
        cached.cache_clear()
    yield dict(os.environ)
    for cached in (settings.get_settings, clients._cached_table_service, clients._cached_queue_service):
        cached.cache_clear()
