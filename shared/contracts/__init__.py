"""What the app knows of the two services' published contracts: entities, fields, limits, messages.

``bc.json`` and ``dataverse.json`` are copied from Microsoft's API reference pages and BC's AL
source (each entity names its page). The engine reads them to check values before it sends them
(lengths, enums, relations, required fields, which bulk messages a table supports); the devstack
emulators enforce the same files, so the local services and the checks cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
STANDARD_API = "v2.0"

__all__ = [
    "BcEntity",
    "DataverseTable",
    "Property",
    "STANDARD_API",
    "bc_contract",
    "bc_entities",
    "dataverse_contract",
    "dataverse_tables",
]


@dataclass(frozen=True)
class Property:
    name: str
    type: str
    read_only: bool = False
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    required: bool = False
    relation: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    targets: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class BcEntity:
    name: str
    api: str  # "v2.0" or the project's own API page root (publisher/group/version)
    methods: tuple[str, ...]
    properties: dict[str, Property]
    url: str
    also_custom: str | None = None  # the project's API page serves the same entity (older BC versions)
    bound_to: tuple[str, ...] = ()

    @property
    def standard(self) -> bool:
        return self.api == STANDARD_API

    def writable(self) -> set[str]:
        return {p.name for p in self.properties.values() if not p.read_only}


@dataclass(frozen=True)
class DataverseTable:
    logical_name: str
    entity_set: str
    messages: frozenset[str]
    properties: dict[str, Property]
    required_on_create: tuple[str, ...]
    bind: dict[str, str] = field(default_factory=dict)
    url: str = ""

    @property
    def key(self) -> str:
        return f"{self.logical_name}id"

    def supports(self, message: str) -> bool:
        return message in self.messages


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _property(name: str, raw: dict[str, Any], required: bool) -> Property:
    enum = raw.get("enum")
    if isinstance(enum, dict):
        enum = list(enum)
    return Property(
        name=name,
        type=raw["type"],
        read_only=bool(raw.get("read_only")),
        max_length=raw.get("max_length"),
        enum=tuple(enum) if enum else None,
        required=required,
        relation=raw.get("relation"),
        minimum=_number(raw.get("min")),
        maximum=_number(raw.get("max")),
        targets=tuple(raw.get("targets") or ()),
        note=raw.get("note"),
    )


@cache
def bc_contract() -> dict[str, Any]:
    return json.loads((HERE / "bc.json").read_text(encoding="utf-8"))


@cache
def dataverse_contract() -> dict[str, Any]:
    return json.loads((HERE / "dataverse.json").read_text(encoding="utf-8"))


@cache
def bc_entities() -> dict[str, BcEntity]:
    """BC entity sets by name (``customers``, ``salespeoplePurchasers``, ``resources`` …)."""
    out = {}
    for name, raw in bc_contract()["entities"].items():
        props = {p: _property(p, v, bool(v.get("required_on_create"))) for p, v in raw["properties"].items()}
        out[name] = BcEntity(
            name=name,
            api=raw["api"],
            methods=tuple(raw["methods"]),
            properties=props,
            url=raw["url"],
            also_custom=raw.get("also_custom"),
            bound_to=tuple(raw.get("bound_to") or ()),
        )
    return out


@cache
def dataverse_tables() -> dict[str, DataverseTable]:
    """Dataverse tables by entity set name (``accounts``, ``transactioncurrencies`` …)."""
    out = {}
    for logical, raw in dataverse_contract()["tables"].items():
        required = tuple(raw.get("required_on_create") or ())
        props = {p: _property(p, v, p in required) for p, v in raw["properties"].items()}
        out[raw["entity_set"]] = DataverseTable(
            logical_name=logical,
            entity_set=raw["entity_set"],
            messages=frozenset(raw.get("messages") or ()),
            properties=props,
            required_on_create=required,
            bind=dict(raw.get("bind") or {}),
            url=raw["url"],
        )
    return out
