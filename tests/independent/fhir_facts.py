"""Read the facts the criteria need out of one patient's FHIR R4 resources (Patient, Observation, Condition,
MedicationRequest), applying the product's published conventions on time windows, statuses and usable values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from tests.independent.units import (
    ANALYTES,
    FEVER_TEMPERATURE_LOINC,
    LOINC,
    UCUM,
    Measure,
    normalise,
    to_celsius,
)

LAB_WINDOW = timedelta(hours=72)
TEMPERATURE_WINDOW = timedelta(hours=24)
FUTURE_TOLERANCE = timedelta(minutes=10)
COUNTING_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_zoned_time(text: object) -> datetime | None:
    """A FHIR dateTime/instant with a time and a zone; anything else (a date, no zone) is unusable."""
    if not isinstance(text, str) or not _INSTANT.match(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def observation_time(resource: dict[str, Any]) -> datetime | None:
    """effectiveDateTime, else effectivePeriod.start, else effectiveInstant, else issued: the first one present
    decides; when it has no zone (or no time) the result has no usable time."""
    period = resource.get("effectivePeriod")
    candidates = (
        resource.get("effectiveDateTime"),
        period.get("start") if isinstance(period, dict) else None,
        resource.get("effectiveInstant"),
        resource.get("issued"),
    )
    for candidate in candidates:
        if candidate is not None:
            return parse_zoned_time(candidate)
    return None


def codings(concept: object) -> list[tuple[str, str]]:
    if not isinstance(concept, dict):
        return []
    found: list[tuple[str, str]] = []
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("system"), str) and isinstance(coding.get("code"), str):
            found.append((coding["system"], coding["code"]))
    return found


def _quantity(raw: object, analyte_key: str) -> Measure | None:
    """A usable quantity: numeric value, no comparator, a UCUM unit the analyte knows."""
    if not isinstance(raw, dict) or raw.get("comparator") is not None:
        return None
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if raw.get("system") != UCUM or not isinstance(raw.get("code"), str):
        return None
    return normalise(ANALYTES[analyte_key], Fraction(repr(value)), raw["code"])


def _temperature(raw: object) -> Fraction | None:
    if not isinstance(raw, dict) or raw.get("comparator") is not None:
        return None
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if raw.get("system") != UCUM or not isinstance(raw.get("code"), str):
        return None
    return to_celsius(Fraction(repr(value)), raw["code"])


@dataclass(frozen=True)
class LabResult:
    time: datetime
    measure: Measure | None  # None: the latest result exists but its value is unusable
    upper_limit_of_normal: Measure | None


@dataclass(frozen=True)
class TemperatureRange:
    """Maximum body temperature (Celsius) in the window as bounds: `highest_known` is the largest usable value;
    `open_above` is true when some counted measurement was unusable, so the true maximum may be higher."""

    highest_known: Fraction | None
    open_above: bool

    @property
    def any_counted(self) -> bool:
        return self.highest_known is not None or self.open_above


@dataclass(frozen=True)
class ConditionFact:
    codes: tuple[tuple[str, str], ...]
    clinical_status: str | None
    verification_status: str | None


@dataclass(frozen=True)
class MedicationFact:
    status: str | None
    authored: datetime | None
    codes: tuple[tuple[str, str], ...]
    names: tuple[str, ...]
    has_reference_only: bool


@dataclass
class Facts:
    now: datetime
    birth_bounds: tuple[date, date] | None = None
    labs: dict[str, LabResult] = field(default_factory=dict)
    temperature: TemperatureRange = TemperatureRange(None, False)
    conditions: list[ConditionFact] = field(default_factory=list)
    medications: list[MedicationFact] = field(default_factory=list)

    def lab(self, key: str) -> Measure | None:
        result = self.labs.get(key)
        return result.measure if result is not None else None


def _belongs(resource: dict[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject")
    if isinstance(subject, dict) and isinstance(subject.get("reference"), str):
        reference: str = subject["reference"]
        target = f"Patient/{patient_id}"
        return reference == target or reference.endswith("/" + target)
    return True


def _birth_bounds(text: object) -> tuple[date, date] | None:
    if not isinstance(text, str):
        return None
    match = _PARTIAL_DATE.match(text)
    if match is None:
        return None
    year = int(match.group(1))
    if match.group(2) is None:
        return date(year, 1, 1), date(year, 12, 31)
    month = int(match.group(2))
    if match.group(3) is None:
        first = date(year, month, 1)
        following = date(year + (month == 12), month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    day = date(year, month, int(match.group(3)))
    return day, day


def _status_code(concept: object) -> str | None:
    """clinicalStatus / verificationStatus code (their code systems are fixed by FHIR, so the code alone decides)."""
    if isinstance(concept, dict):
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return None


def _medication(resource: dict[str, Any]) -> MedicationFact:
    concept = resource.get("medicationCodeableConcept")
    names: list[str] = []
    if isinstance(concept, dict):
        if isinstance(concept.get("text"), str):
            names.append(concept["text"])
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                names.append(coding["display"])
    authored = resource.get("authoredOn")
    return MedicationFact(
        status=resource.get("status") if isinstance(resource.get("status"), str) else None,
        authored=parse_zoned_time(authored),
        codes=tuple(codings(concept)),
        names=tuple(names),
        has_reference_only=concept is None and resource.get("medicationReference") is not None,
    )


def read_facts(resources: list[dict[str, Any]], patient_id: str, now: datetime) -> Facts:
    facts = Facts(now=now)
    lab_candidates: dict[str, list[tuple[datetime, int, dict[str, Any]]]] = {}
    temperatures: list[Fraction | None] = []
    for position, resource in enumerate(resources):
        kind = resource.get("resourceType")
        if kind == "Patient":
            if resource.get("id") == patient_id:
                facts.birth_bounds = _birth_bounds(resource.get("birthDate"))
            continue
        if not _belongs(resource, patient_id):
            continue
        if kind == "Condition":
            facts.conditions.append(
                ConditionFact(
                    codes=tuple(codings(resource.get("code"))),
                    clinical_status=_status_code(resource.get("clinicalStatus")),
                    verification_status=_status_code(resource.get("verificationStatus")),
                )
            )
        elif kind == "MedicationRequest":
            facts.medications.append(_medication(resource))
        elif kind == "Observation":
            if resource.get("status") not in COUNTING_OBSERVATION_STATUSES:
                continue
            when = observation_time(resource)
            if when is None or when > now + FUTURE_TOLERANCE:
                continue
            loinc_codes = {code for system, code in codings(resource.get("code")) if system == LOINC}
            if loinc_codes & FEVER_TEMPERATURE_LOINC:
                if when >= now - TEMPERATURE_WINDOW:
                    temperatures.append(_temperature(resource.get("valueQuantity")))
                continue
            if when < now - LAB_WINDOW:
                continue
            for analyte in ANALYTES.values():
                if loinc_codes & analyte.loinc:
                    lab_candidates.setdefault(analyte.key, []).append((when, position, resource))
    for key, candidates in lab_candidates.items():
        when, _, latest = max(candidates, key=lambda item: (item[0], item[1]))
        facts.labs[key] = LabResult(
            time=when,
            measure=_quantity(latest.get("valueQuantity"), key),
            upper_limit_of_normal=_upper_limit(latest, key),
        )
    usable = [value for value in temperatures if value is not None]
    facts.temperature = TemperatureRange(
        highest_known=max(usable) if usable else None,
        open_above=any(value is None for value in temperatures),
    )
    return facts


def _upper_limit(resource: dict[str, Any], key: str) -> Measure | None:
    for reference_range in resource.get("referenceRange") or []:
        if isinstance(reference_range, dict) and reference_range.get("high") is not None:
            return _quantity(reference_range["high"], key)
    return None
