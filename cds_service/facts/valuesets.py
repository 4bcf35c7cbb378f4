"""Value sets (built from the rule pack): codes exact, by prefix for hierarchies, by digits for NDC; free-text words."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Whole words or phrases: no letter or digit may touch either end ("s.c." matches, "sc" in "disc" does not).
_EDGE_BEFORE = r"(?<![A-Za-z0-9])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"


@dataclass(frozen=True)
class ValueSet:
    id: str
    title: str
    exact: frozenset[tuple[str, str]]
    prefixes: Mapping[str, tuple[str, ...]]
    digits: Mapping[str, frozenset[str]]
    words: tuple[str, ...]
    text_pattern: re.Pattern[str] | None

    def contains(self, system: str | None, code: str | None) -> bool:
        if not system or not code:
            return False
        if (system, code) in self.exact:
            return True
        prefixes = self.prefixes.get(system)
        if prefixes and code.startswith(prefixes):
            return True
        digits = self.digits.get(system)
        return digits is not None and re.sub(r"\D", "", code) in digits

    def text_match(self, texts: Iterable[str | None]) -> str | None:
        """The first listed word found in any of the texts (as written there), or None."""
        if self.text_pattern is None:
            return None
        for text in texts:
            if text:
                found = self.text_pattern.search(text)
                if found:
                    return found.group(0)
        return None

    def codes(self, system: str) -> tuple[str, ...]:
        """The exact codes of one system, sorted (for FHIR search queries)."""
        return tuple(sorted(code for code_system, code in self.exact if code_system == system))


def build_value_set(
    id: str,
    title: str,
    *,
    codes: Iterable[tuple[str, str, str]],  # (match: exact | prefix | digits, system, code)
    words: Iterable[str] = (),
) -> ValueSet:
    exact: set[tuple[str, str]] = set()
    prefixes: dict[str, list[str]] = {}
    digits: dict[str, set[str]] = {}
    for match, system, code in codes:
        if match == "exact":
            exact.add((system, code))
        elif match == "prefix":
            prefixes.setdefault(system, []).append(code)
        elif match == "digits":
            digits.setdefault(system, set()).add(re.sub(r"\D", "", code))
        else:
            raise ValueError(f"unknown match mode {match!r}")
    listed = tuple(words)
    pattern = None
    if listed:
        # Longest first, so "sub cut" wins over "sub"; escaped, so "s.c." means the dots.
        alternatives = "|".join(re.escape(word) for word in sorted(listed, key=len, reverse=True))
        pattern = re.compile(f"{_EDGE_BEFORE}(?:{alternatives}){_EDGE_AFTER}", re.IGNORECASE)
    return ValueSet(
        id=id,
        title=title,
        exact=frozenset(exact),
        prefixes={system: tuple(found) for system, found in prefixes.items()},
        digits={system: frozenset(found) for system, found in digits.items()},
        words=listed,
        text_pattern=pattern,
    )
