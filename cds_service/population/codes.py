"""What an export must contain for the rules: resource types and `_typeFilter` queries.

ONE function derives them, from the prefetch templates of the hooks (hooks/mas-screen.json): the same
queries the hook's prefetch asks an EHR for, without the patient parameter and paging. When the code
lists move into a rule pack, only this function has to be re-pointed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from cds_service.settings import PROJECT_ROOT

SCREEN_SERVICE = "mas-screen"
NOT_FILTERS = frozenset({"patient", "subject", "_sort", "_count"})


@dataclass(frozen=True)
class ExportRequest:
    types: tuple[str, ...]  # _type
    type_filters: tuple[str, ...]  # _typeFilter, e.g. "Observation?code=http://loinc.org|2276-4,..."


def export_request(hooks_dir: Path | None = None) -> ExportRequest:
    """The export the screen needs, from the prefetch templates of the mas-screen service."""
    document = json.loads(((hooks_dir or PROJECT_ROOT / "hooks") / f"{SCREEN_SERVICE}.json").read_text())
    types: list[str] = []
    filters: dict[str, list[str]] = {}
    unfiltered: set[str] = set()
    for template in document["prefetch"].values():
        kind, _, query = template.partition("?")
        kind = kind.split("/")[0]
        if kind not in types:
            types.append(kind)
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in NOT_FILTERS]
        if kept:
            filters.setdefault(kind, []).append(f"{kind}?{urlencode(kept, safe='|,:/')}")
        else:
            unfiltered.add(kind)
    # A type also fetched without a filter (e.g. Patient by id) must not be narrowed by another query.
    type_filters = tuple(q for kind, queries in filters.items() if kind not in unfiltered for q in queries)
    return ExportRequest(tuple(types), type_filters)
