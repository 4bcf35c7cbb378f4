"""An in-memory FHIR R4 store with the search subset prefetch templates use (CDS Hooks 2.0 §Prefetch
template: read, search by reference/token/date, `_count`, `_sort`). Used to build prefetch for fixture
requests and behind the sandbox FHIR server, so both answer exactly as a FHIR server would."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cds_service.facts.fhir_time import parse_fhir_time

SEARCHABLE = ("Observation", "Condition", "MedicationRequest", "Patient", "Medication")
DEFAULT_PAGE_SIZE = 50
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


class SearchError(ValueError):
    """An unsupported search; the FHIR server answers 400 with an OperationOutcome."""


@dataclass
class FhirStore:
    resources: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def of(cls, resources: Iterable[dict[str, Any]]) -> FhirStore:
        return cls({(r["resourceType"], r["id"]): r for r in resources})

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get((resource_type, resource_id))

    def search(self, resource_type: str, params: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """All matches, sorted when asked; `_count` limits the result (the first page)."""
        matches, count, _ = self._search(resource_type, params)
        return matches[:count] if count is not None else matches

    def search_page(self, resource_type: str, params: list[tuple[str, str]], *, base_url: str) -> dict[str, Any]:
        """One page of a search as a searchset Bundle with `self`/`next` links (offset paging)."""
        matches, count, offset = self._search(resource_type, params)
        size = count if count is not None else DEFAULT_PAGE_SIZE
        page = matches[offset : offset + size]
        kept = [(k, v) for k, v in params if k != "_getpagesoffset"]
        links = [{"relation": "self", "url": _url(base_url, resource_type, [*kept, ("_getpagesoffset", str(offset))])}]
        if offset + size < len(matches):
            links.append(
                {
                    "relation": "next",
                    "url": _url(base_url, resource_type, [*kept, ("_getpagesoffset", str(offset + size))]),
                }
            )
        return searchset(page, total=len(matches), links=links)

    def _search(
        self, resource_type: str, params: Iterable[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], int | None, int]:
        if resource_type not in SEARCHABLE:
            raise SearchError(f"search on {resource_type} is not supported")
        matches = [r for (kind, _), r in self.resources.items() if kind == resource_type]
        count: int | None = None
        offset = 0
        sort: str | None = None
        for name, value in params:
            if name == "_count":
                count = _non_negative(name, value)
            elif name == "_getpagesoffset":
                offset = _non_negative(name, value)
            elif name == "_sort":
                sort = value
            elif name == "_format":
                continue
            else:
                matches = [r for r in matches if _matches(r, name, value)]
        if sort is not None:
            matches = _sorted(matches, sort)
        return matches, count, offset

    def query(self, relative_url: str) -> dict[str, Any] | None:
        """Answer a prefetch-style relative URL: a resource for a read, a searchset for a search."""
        parts = urlsplit(relative_url)
        path = parts.path.strip("/").split("/")
        if len(path) == 2:
            return self.read(path[0], path[1])
        if len(path) != 1:
            raise SearchError(f"unsupported URL {relative_url}")
        found = self.search(path[0], parse_qsl(parts.query, keep_blank_values=True))
        return searchset(found)


def searchset(
    resources: list[dict[str, Any]],
    *,
    total: int | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources) if total is None else total,
    }
    if links:
        bundle["link"] = links
    if resources:
        bundle["entry"] = [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources
        ]
    return bundle


def _matches(resource: Mapping[str, Any], name: str, value: str) -> bool:
    if name in ("patient", "subject"):
        target = value.split("/")[-1]
        reference = (resource.get("subject") or {}).get("reference", "")
        return bool(reference) and reference.split("/")[-1] == target
    if name == "_id":
        return resource.get("id") in value.split(",")
    if name == "code":
        return _token_match(resource.get("code"), value) or _token_match(
            resource.get("medicationCodeableConcept"), value
        )
    if name == "category":
        return any(_token_match(c, value) for c in resource.get("category", []))
    if name == "status":
        return resource.get("status") in value.split(",")
    if name == "clinical-status":
        return _token_match(resource.get("clinicalStatus"), value)
    if name == "date":
        return _date_match(_date_of(resource), value)
    if name == "intent":
        return resource.get("intent") in value.split(",")
    raise SearchError(f"search parameter '{name}' is not supported")


def _token_match(concept: Mapping[str, Any] | None, value: str) -> bool:
    if not concept:
        return False
    for option in value.split(","):
        system, bar, code = option.rpartition("|")
        for coding in concept.get("coding", []):
            if coding.get("code") == code and (not bar or not system or coding.get("system") == system):
                return True
    return False


def _date_of(resource: Mapping[str, Any]) -> str | None:
    period = resource.get("effectivePeriod") or {}
    return (
        resource.get("effectiveDateTime")
        or period.get("start")
        or resource.get("effectiveInstant")
        or resource.get("issued")
        or resource.get("authoredOn")
        or resource.get("recordedDate")
        or resource.get("onsetDateTime")
    )


def _date_match(stamp: str | None, value: str) -> bool:
    moment = parse_fhir_time(stamp)
    if moment is None:
        return False
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    bound = parse_fhir_time(value[2:] if value[:2] in DATE_PREFIXES else value)
    if bound is None:
        raise SearchError(f"bad date '{value}'")
    return {
        "eq": bound.earliest <= moment.earliest <= bound.latest,
        "ne": not bound.earliest <= moment.earliest <= bound.latest,
        "gt": moment.earliest > bound.latest,
        "ge": moment.earliest >= bound.earliest,
        "lt": moment.earliest < bound.earliest,
        "le": moment.earliest <= bound.latest,
    }[prefix]


def _sorted(resources: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    descending = sort.startswith("-")
    if sort.lstrip("-") != "date":
        raise SearchError(f"_sort={sort} is not supported")

    def key(resource: dict[str, Any]) -> str:
        moment = parse_fhir_time(_date_of(resource))
        return moment.earliest.isoformat() if moment else ""

    return sorted(resources, key=key, reverse=descending)


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit():
        raise SearchError(f"{name} must be a non-negative integer")
    return int(value)


def _url(base_url: str, resource_type: str, params: list[tuple[str, str]]) -> str:
    return f"{base_url.rstrip('/')}/{resource_type}?{urlencode(params)}"
