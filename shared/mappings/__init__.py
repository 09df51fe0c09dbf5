"""Integration table mappings: model, defaults, validation and dependency order."""

from shared.mappings.defaults import DEFAULT_MAPPINGS, SEED_ORDER, default_mappings
from shared.mappings.model import Direction, FieldMapping, Mapping, Pass
from shared.mappings.validation import MappingError, topological_order, validate_mappings

__all__ = [
    "DEFAULT_MAPPINGS",
    "SEED_ORDER",
    "Direction",
    "FieldMapping",
    "Mapping",
    "MappingError",
    "Pass",
    "default_mappings",
    "topological_order",
    "validate_mappings",
]
