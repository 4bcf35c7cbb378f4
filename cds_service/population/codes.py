"""What an export must contain for the rules: resource types and `_typeFilter` queries.

ONE function derives them, from the prefetch templates of the mas-screen hook (hooks/mas-screen.json) with the
rule pack's codes expanded (`{{pack.loinc:...}}`): the same queries the hook's prefetch asks an EHR for,
without the patient parameter and paging. A pack with other codes moves the export with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from cds_service.data_paths import data_dir
from cds_service.registry import load_registry
from cds_service.rulepack import RulePack

SCREEN_SERVICE = "mas-screen"
NOT_FILTERS = frozenset({"patient", "subject", "_sort", "_count"})


@dataclass(frozen=True)
class ExportRequest:
    types: tuple[str, ...]  # _type
    type_filters: tuple[str, ...]  # _typeFilter, e.g. "Observation?code=http://loinc.org|2276-4,..."


def export_request(pack: RulePack | None = None, hooks_dir: Path | None = None) -> ExportRequest:
    """The export the screen needs, from the prefetch templates of the mas-screen service under `pack`
    (default: the product's pack)."""
    service = load_registry(hooks_dir or data_dir("hooks"), pack=pack).get(SCREEN_SERVICE)
    if service is None:
        raise LookupError(f"no {SCREEN_SERVICE} service in the hooks folder")
    types: list[str] = []
    filters: dict[str, list[str]] = {}
    unfiltered: set[str] = set()
    for spec in service.prefetch:
        kind, _, query = spec.template.partition("?")
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
