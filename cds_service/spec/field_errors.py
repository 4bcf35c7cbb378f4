"""Client-facing messages for request bodies that do not match: which field, what was expected, what came.

msgspec reports a mismatch as text ("Expected `str`, got `int` - at `$.hook`"); `field_issue` turns it into
an Issue whose path is the field's (`hook`, `feedback[0].outcome`) and whose text says what was expected,
in words a client developer can act on. Callers pass their own expectations per path; a path without
one falls back to the JSON type msgspec names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from cds_service.spec.operation_outcome import Issue

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def json_type(value: object) -> str:
    """The JSON type of a decoded value, as the messages name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def join_path(prefix: str, path: str) -> str:
    """`prefix` + a msgspec path (".a.b", "[0].c" or ""), without a leading dot."""
    return f"{prefix}{path}".lstrip(".")


def _type_words(names: str) -> str:
    options = [name.strip() for name in names.split("|")]
    wanted = [option for option in options if option != "null"] or options
    return " or ".join(_TYPE_WORDS.get(option, f"`{option}`") for option in wanted)


def field_issue(
    error: msgspec.ValidationError, *, prefix: str = "", expectations: Mapping[str, str] | None = None
) -> Issue:
    """One Issue for a msgspec validation error, its path under `prefix` (e.g. "feedback[2]")."""
    expected = expectations or {}
    match = _AT.match(str(error))
    what, at = (match.group("what"), match.group("path") or "") if match else (str(error), "")
    missing = _MISSING.match(what)
    if missing:
        path = join_path(prefix, f"{at}.{missing.group('field')}")
        wanted = expected.get(path, "a value")
        return Issue(f"{path}: missing; expected {wanted}", path, "required")
    path = join_path(prefix, at)
    where = path or "request body"
    mismatch = _TYPE.match(what)
    if mismatch:
        wanted = expected.get(path) or _type_words(mismatch.group("expected"))
        got = _type_words(mismatch.group("got"))
        return Issue(f"{where}: expected {wanted}, got {got}", path or None, "structure")
    enum = _ENUM.match(what)
    if enum:
        wanted = expected.get(path, "one of the values the specification lists")
        return Issue(f"{where}: {enum.group('value')} is not allowed; expected {wanted}", path or None, "value")
    return Issue(f"{where}: {what}", path or None, "invalid")
