"""Random values that satisfy a JSON Schema: the fake model's "schema-valid random" answers.

`SchemaFaker(seed).value(schema)` draws a value for the subset of JSON Schema that tool
input schemas use: type (one or a list), const, enum, anyOf/oneOf, not (a value is drawn
again until it passes), object (required properties always, optional ones with
probability `optional_p`), array (minItems..maxItems), string (minLength, maxLength,
pattern: generated from the regular expression itself), integer and number (minimum,
maximum, exclusive bounds), boolean, null. When a schema gives `examples`, one of them is
taken: that is how a schema hints at content a random string cannot be (a Python file).
Nothing here knows what the fields mean: names, categories, strategies and parameters are
whatever the schema allows.
"""
from __future__ import annotations

import math
import random
import re
import string
from typing import Any

try:  # Python 3.11+
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_REPEAT_EXTRA = 10      # a regex repeat draws at most this many more than its minimum
WORDS = ("trend", "volatility", "regime", "signal", "filter", "momentum", "drawdown", "fee", "window", "entry",
         "exit", "risk", "range", "breakout", "mean", "reversion", "symbol", "bar", "position", "score")
CATEGORY_CHARS = {
    sre_constants.CATEGORY_DIGIT: string.digits,
    sre_constants.CATEGORY_NOT_DIGIT: string.ascii_letters,
    sre_constants.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_constants.CATEGORY_NOT_WORD: " -.,",
    sre_constants.CATEGORY_SPACE: " ",
    sre_constants.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
}


class SchemaError(ValueError):
    """The schema asks for something this faker cannot draw (or nothing can satisfy)."""


class SchemaFaker:
    """Draw values valid against a JSON Schema, from a seeded generator."""

    def __init__(self, seed: int = 0, *, optional_p: float = 0.0, max_tries: int = 50) -> None:
        self.rng = random.Random(seed)
        self.optional_p = optional_p
        self.max_tries = max_tries

    def value(self, schema: Any) -> Any:
        if schema is True or schema == {} or schema is None:
            return self.rng.choice(WORDS)
        for _ in range(self.max_tries):
            candidate = self._draw(schema)
            if "not" not in schema or not matches_not(schema["not"], candidate):
                return candidate
        raise SchemaError(f"no value found for {schema!r} after {self.max_tries} draws")

    def _draw(self, schema: dict[str, Any]) -> Any:
        if schema.get("examples"):
            return self.rng.choice(list(schema["examples"]))
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self.value(self.rng.choice(schema[key]))
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or ["null"]
            kind = self.rng.choice(kinds)
        drawer = {"object": self._object, "array": self._array, "string": self._string, "integer": self._integer,
                  "number": self._number, "boolean": lambda s: self.rng.random() < 0.5, "null": lambda s: None}
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if kind not in drawer:
            raise SchemaError(f"unsupported schema type {kind!r}")
        return drawer[kind](schema)

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        required = set(schema.get("required") or [])
        out = {}
        for name, sub in (schema.get("properties") or {}).items():
            if name in required or self.rng.random() < self.optional_p:
                out[name] = self.value(sub)
        return out

    def _array(self, schema: dict[str, Any]) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", low + 3))
        return [self.value(schema.get("items") or {}) for _ in range(self.rng.randint(low, max(low, high)))]

    def _integer(self, schema: dict[str, Any]) -> int:
        low = math.ceil(schema.get("minimum", -100))
        high = math.floor(schema.get("maximum", 100))
        if "exclusiveMinimum" in schema:
            low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
        if "exclusiveMaximum" in schema:
            high = min(high, math.ceil(schema["exclusiveMaximum"]) - 1)
        if low > high:
            raise SchemaError(f"no integer in [{low}, {high}]")
        return self.rng.randint(int(low), int(high))

    def _number(self, schema: dict[str, Any]) -> float:
        low = float(schema.get("minimum", schema.get("exclusiveMinimum", -100.0)))
        high = float(schema.get("maximum", schema.get("exclusiveMaximum", 100.0)))
        for _ in range(self.max_tries):
            value = round(self.rng.uniform(low, high), 6)
            inside = low <= value <= high and value != schema.get("exclusiveMinimum") \
                and value != schema.get("exclusiveMaximum")
            if inside:
                return value
        raise SchemaError(f"no number in [{low}, {high}]")

    def _string(self, schema: dict[str, Any]) -> str:
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(low, 60)))
        pattern = schema.get("pattern")
        for _ in range(self.max_tries):
            text = self._from_pattern(pattern) if pattern else self._words(low, high)
            if len(text) < low:
                text += self._words(low - len(text), low - len(text) + 10)
            text = text[:high]
            if low <= len(text) and (pattern is None or re.search(pattern, text)):
                return text
        raise SchemaError(f"no string of length {low}..{high} matching {pattern!r}")

    def _words(self, low: int, high: int) -> str:
        target = self.rng.randint(max(low, 1), max(low, 1, min(high, 80)))
        words: list[str] = []
        while len(" ".join(words)) < target:
            words.append(self.rng.choice(WORDS))
        return " ".join(words)

    def _from_pattern(self, pattern: str) -> str:
        anchored = pattern.startswith("^") and pattern.endswith("$")
        body = "".join(self._emit(item) for item in sre_parse.parse(pattern))
        return body if anchored else f"{self._words(3, 20)} {body} {self._words(3, 20)}".strip()

    def _emit(self, item: tuple[Any, Any]) -> str:
        op, arg = item
        if op == sre_constants.LITERAL:
            return chr(arg)
        if op == sre_constants.ANY:
            return self.rng.choice(string.ascii_lowercase)
        if op == sre_constants.IN:
            return self.rng.choice(_charset(arg))
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, sub = arg
            high = min(high, low + MAX_REPEAT_EXTRA)
            return "".join("".join(self._emit(i) for i in sub) for _ in range(self.rng.randint(low, high)))
        if op == sre_constants.SUBPATTERN:
            return "".join(self._emit(i) for i in arg[-1])
        if op == sre_constants.BRANCH:
            return "".join(self._emit(i) for i in self.rng.choice(arg[1]))
        if op == sre_constants.AT:
            return ""
        if op == sre_constants.CATEGORY:
            return self.rng.choice(CATEGORY_CHARS[arg])
        raise SchemaError(f"unsupported regular expression element {op}")


def _charset(items: list[tuple[Any, Any]]) -> str:
    chars = ""
    negate = False
    for op, arg in items:
        if op == sre_constants.NEGATE:
            negate = True
        elif op == sre_constants.LITERAL:
            chars += chr(arg)
        elif op == sre_constants.RANGE:
            chars += "".join(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op == sre_constants.CATEGORY:
            chars += CATEGORY_CHARS[arg]
    if negate:
        chars = "".join(c for c in string.ascii_letters + string.digits + "_" if c not in chars)
    if not chars:
        raise SchemaError("empty character set in pattern")
    return chars


def matches_not(schema: dict[str, Any], value: Any) -> bool:
    """True when `value` matches the (simple) schema under a `not`: enum, const or type."""
    if "enum" in schema and value in schema["enum"]:
        return True
    if "const" in schema and value == schema["const"]:
        return True
    return False
