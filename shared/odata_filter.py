"""A small OData v4 ``$filter`` parser and evaluator for mapping filters.

Mapping filters (the BC "table filter" and the CRM "integration table filter") are validated when a
mapping is saved and evaluated locally on records that come from Dataverse change tracking (which
does not accept ``$filter``). Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses, string
literals with ``''`` escaping, numbers, ``true false null``, GUIDs, ISO dates and datetimes, and
``contains/startswith/endswith/tolower/toupper``. Anything else raises ``FilterError``.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.errors import InvalidInput

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
MAX_DEPTH = 32  # nested parentheses, ``not`` and function calls; deeper input is refused, not recursed into
FUNCTIONS = {"contains": 2, "startswith": 2, "endswith": 2, "tolower": 1, "toupper": 1}

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
    |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})(?![\w:.-])
    |(?P<number>-?\d+(?:\.\d+)?)(?![\w.])
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class FilterError(InvalidInput):
    """The filter text is not a supported OData filter (message says where)."""


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Prop:
    name: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    operand: Any


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def nested(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"filter nests deeper than {MAX_DEPTH} levels at position {pos}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of filter")
        self.i += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "name" and token[1] in words:
            self.i += 1
            return token[1]
        return None

    def expect(self, punct: str) -> None:
        kind, value, pos = self.take()
        if kind != "punct" or value != punct:
            raise FilterError(f"expected {punct!r} at position {pos}, found {value!r}")

    def parse(self):
        node = self.or_expr()
        token = self.peek()
        if token is not None:
            raise FilterError(f"unexpected {token[1]!r} at position {token[2]}")
        return node

    def or_expr(self):
        node = self.and_expr()
        while self.keyword("or"):
            node = Logical("or", node, self.and_expr())
        return node

    def and_expr(self):
        node = self.not_expr()
        while self.keyword("and"):
            node = Logical("and", node, self.not_expr())
        return node

    def not_expr(self):
        token = self.peek()
        if self.keyword("not"):
            self.nested(token[2])
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self):
        left = self.operand()
        op = self.keyword(*COMPARISONS)
        if op is None:
            if isinstance(left, Call) and left.name in ("contains", "startswith", "endswith"):
                return left
            if isinstance(left, Literal | Prop) or not isinstance(left, Compare | Logical | Not):
                token = self.peek()
                where = f"at position {token[2]}" if token else "at the end"
                raise FilterError(f"expected a comparison operator ({', '.join(COMPARISONS)}) {where}")
            return left
        return Compare(op, left, self.operand())

    def operand(self):
        kind, value, pos = self.take()
        if kind == "punct" and value == "(":
            self.nested(pos)
            node = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return node
        if kind == "string":
            return Literal(value[1:-1].replace("''", "'"))
        if kind == "guid":
            return Literal(value.lower())
        if kind == "datetime":
            try:
                return Literal(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                raise FilterError(f"invalid datetime {value!r} at position {pos}") from None
        if kind == "date":  # Edm.Date (e.g. BC startingDate)
            try:
                return Literal(date.fromisoformat(value))
            except ValueError:
                raise FilterError(f"invalid date {value!r} at position {pos}") from None
        if kind == "number":
            return Literal(float(value) if "." in value else int(value))
        if kind == "name":
            if value in ("true", "false"):
                return Literal(value == "true")
            if value == "null":
                return Literal(None)
            if value in FUNCTIONS:
                self.expect("(")
                self.nested(pos)
                args = [self.operand()]
                while self.peek() and self.peek()[1] == ",":
                    self.take()
                    args.append(self.operand())
                self.expect(")")
                self.depth -= 1
                if len(args) != FUNCTIONS[value]:
                    raise FilterError(f"{value}() takes {FUNCTIONS[value]} argument(s)")
                return Call(value, tuple(args))
            if value in COMPARISONS or value in ("and", "or", "not"):
                raise FilterError(f"unexpected keyword {value!r} at position {pos}")
            return Prop(value)
        raise FilterError(f"unexpected {value!r} at position {pos}")


def parse(text: str):
    """Parse filter text into an AST; empty text means "no filter" (None)."""
    if not text or not text.strip():
        return None
    return _Parser(text).parse()


def properties(node) -> set[str]:
    """Names of the properties a filter refers to (to validate them against an entity's fields)."""
    if node is None or isinstance(node, Literal):
        return set()
    if isinstance(node, Prop):
        return {node.name}
    if isinstance(node, Call):
        return set().union(*(properties(a) for a in node.args))
    if isinstance(node, Not):
        return properties(node.operand)
    return properties(node.left) | properties(node.right)


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    """Make record values comparable with literals (datetimes arrive as strings, GUIDs any case)."""
    if isinstance(b, datetime) and isinstance(a, str):
        with contextlib.suppress(ValueError):
            a = datetime.fromisoformat(a.replace("Z", "+00:00"))
    elif isinstance(a, datetime) and isinstance(b, str):
        return tuple(reversed(_coerce(b, a)))
    elif isinstance(b, date) and not isinstance(b, datetime) and isinstance(a, str):
        with contextlib.suppress(ValueError):
            a = date.fromisoformat(a[:10])
    elif isinstance(a, date) and not isinstance(a, datetime) and isinstance(b, str):
        return tuple(reversed(_coerce(b, a)))
    if isinstance(a, str) and isinstance(b, str) and _GUID.fullmatch(a) and _GUID.fullmatch(b):
        a, b = a.lower(), b.lower()
    return a, b


def _value(node, record: dict) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Prop):
        return record.get(node.name)
    if isinstance(node, Call):
        args = [_value(a, record) for a in node.args]
        if node.name == "tolower":
            return args[0].lower() if isinstance(args[0], str) else args[0]
        if node.name == "toupper":
            return args[0].upper() if isinstance(args[0], str) else args[0]
        haystack, needle = (a if isinstance(a, str) else "" for a in args)
        return {"contains": needle in haystack, "startswith": haystack.startswith(needle)}.get(
            node.name, haystack.endswith(needle)
        )
    return evaluate(node, record)


def evaluate(node, record: dict) -> bool:
    """True when ``record`` satisfies the filter (None = no filter)."""
    if node is None:
        return True
    if isinstance(node, Logical):
        if node.op == "and":
            return evaluate(node.left, record) and evaluate(node.right, record)
        return evaluate(node.left, record) or evaluate(node.right, record)
    if isinstance(node, Not):
        return not evaluate(node.operand, record)
    if isinstance(node, Call):
        return bool(_value(node, record))
    if isinstance(node, Compare):
        a, b = _coerce(_value(node.left, record), _value(node.right, record))
        if node.op == "eq":
            return a == b
        if node.op == "ne":
            return a != b
        if a is None or b is None:
            return False  # OData: ordering comparisons with null are false
        try:
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[node.op]
        except TypeError:
            return False
    return bool(_value(node, record))


def compile_filter(text: str, allowed: set[str] | None = None):
    """Parse and check property names; raise FilterError naming an unknown property."""
    node = parse(text)
    if allowed is not None:
        unknown = sorted(properties(node) - allowed)
        if unknown:
            raise FilterError(f"unknown field {unknown[0]!r} in filter")
    return node
