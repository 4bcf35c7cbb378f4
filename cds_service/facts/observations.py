"""Observations -> Measurements in canonical units, with every unusable result kept and explained.

Counting rule (clinical safety): final, amended and corrected results count; preliminary results
count and are marked; cancelled, entered-in-error, registered and unknown never count. Time is
effectiveDateTime, effectivePeriod.start, effectiveInstant, else issued (the earliest instant of a
partial date). A result for another patient, with an unknown unit, an implausible value, or no time
is not used and is listed with its reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import takewhile

import msgspec

from cds_service.facts.analytes import LOINC, A, Analyte, Catalogue
from cds_service.facts.fhir_time import FhirTime, parse_fhir_time
from cds_service.facts.units import UnitError, normalise
from cds_service.fhir.model import Observation, Quantity, Resource

COUNTING = frozenset({"final", "amended", "corrected"})
PRELIMINARY = "preliminary"


class Measurement(msgspec.Struct, frozen=True):
    """One usable result in the analyte's canonical unit (a msgspec Struct: built thousands of times per call)."""

    analyte: A
    value: Decimal
    time: FhirTime
    observation_id: str
    preliminary: bool
    as_received: str
    conversion_note: str | None = None
    upper_limit: Decimal | None = None  # referenceRange.high in the canonical unit, when given

    @property
    def when(self) -> datetime:
        return self.time.earliest


class SkippedResult(msgspec.Struct, frozen=True):
    analyte: A
    observation_id: str
    reason: str
    time: datetime | None = None
    unreadable: bool = False  # a real result whose value could not be read (unit, comparator, implausible)


@dataclass(frozen=True)
class Measurements:
    by_analyte: Mapping[A, tuple[Measurement, ...]]  # newest first
    skipped: tuple[SkippedResult, ...] = ()
    unreadable: Mapping[A, tuple[datetime, ...]] = field(
        default_factory=dict
    )  # times of unreadable results, newest first

    def newest_unreadable(self, analyte: A, *, now: datetime, window: timedelta) -> datetime | None:
        """The newest result in the window that exists but could not be read (its value is unknown)."""
        times = self.unreadable.get(analyte, ())
        return times[0] if times and times[0] >= now - window else None

    def all(self, analyte: A) -> tuple[Measurement, ...]:
        return self.by_analyte.get(analyte, ())

    def within(self, analyte: A, *, now: datetime, window: timedelta) -> tuple[Measurement, ...]:
        oldest = now - window
        # Newest first: stop at the first value older than the window (criteria call this often).
        return tuple(takewhile(lambda m: m.when >= oldest, self.all(analyte)))

    def latest(self, analyte: A, *, now: datetime, window: timedelta) -> Measurement | None:
        values = self.all(analyte)
        return values[0] if values and values[0].when >= now - window else None

    def latest_any_time(self, analyte: A) -> Measurement | None:
        values = self.all(analyte)
        return values[0] if values else None

    def skipped_for(self, *analytes: A) -> tuple[SkippedResult, ...]:
        wanted = set(analytes)
        return tuple(s for s in self.skipped if s.analyte in wanted)


def extract_measurements(
    resources: Iterable[Resource],
    *,
    patient_id: str | None,
    now: datetime,
    catalogue: Catalogue,
    future_tolerance: timedelta,
) -> Measurements:
    """Usable results by analyte (newest first) and the unusable ones with their reason.

    `future_tolerance`: a result stamped later than this after `now` is a data error, not the newest value."""
    found: defaultdict[A, list[Measurement]] = defaultdict(list)
    skipped: list[SkippedResult] = []
    seen: set[str] = set()
    for resource in resources:
        if not isinstance(resource, Observation):
            continue
        analyte = _analyte_of(resource, catalogue)
        if analyte is None:
            continue
        obs_id = resource.id or "(no id)"
        if resource.id is not None:
            if resource.id in seen:  # the same result reached us through two prefetch keys
                continue
            seen.add(resource.id)
        result = _measurement(
            resource, analyte, catalogue[analyte], obs_id, patient_id=patient_id, latest_allowed=now + future_tolerance
        )
        if isinstance(result, Measurement):
            found[analyte].append(result)
        elif isinstance(result, SkippedResult):
            skipped.append(result)
    ordered = {key: tuple(sorted(values, key=lambda m: m.when, reverse=True)) for key, values in found.items()}
    unreadable: defaultdict[A, list[datetime]] = defaultdict(list)
    for result in skipped:
        if result.unreadable and result.time is not None:
            unreadable[result.analyte].append(result.time)
    return Measurements(
        ordered,
        tuple(skipped),
        {key: tuple(sorted(times, reverse=True)) for key, times in unreadable.items()},
    )


def _analyte_of(observation: Observation, catalogue: Catalogue) -> A | None:
    if observation.code is None:
        return None
    for coding in observation.code.coding:
        if coding.system == LOINC and coding.code in catalogue.by_code:
            return catalogue.by_code[coding.code]
    return None


def _measurement(
    observation: Observation,
    analyte: A,
    definition: Analyte,
    obs_id: str,
    *,
    patient_id: str | None,
    latest_allowed: datetime,
) -> Measurement | SkippedResult | None:
    """A Measurement, or the skipped result with its reason.

    Not results at all (cancelled, entered-in-error, not final, another patient's, no value, no time, future):
    skipped and never counted. A real result whose value cannot be read (unknown unit, comparator, implausible
    value) is skipped *and marked unreadable*: when it is the newest, the analyte's current value is unknown."""

    def skip(reason: str, time: datetime | None = None, unreadable: bool = False) -> SkippedResult:
        return SkippedResult(analyte, obs_id, reason, time, unreadable)

    status = observation.status or "(none)"
    if status in ("cancelled", "entered-in-error"):
        return skip(f"status {status}: never counted")
    if status not in COUNTING and status != PRELIMINARY:
        return skip(f"status {status}: not a result")
    if patient_id is not None and not _is_about(observation, patient_id):
        return skip("belongs to another patient")
    if observation.dataAbsentReason is not None or observation.valueQuantity is None:
        return skip("no numeric value")
    time = _time_of(observation)
    if time is None:
        return skip("no usable time (effective[x] or issued, with a time zone)")
    if time.earliest > latest_allowed:
        return skip("dated in the future")
    try:
        normalised = normalise(definition, observation.valueQuantity)
    except UnitError as error:
        return skip(str(error), time.earliest, unreadable=True)
    return Measurement(
        analyte=analyte,
        value=normalised.value,
        time=time,
        observation_id=obs_id,
        preliminary=status == PRELIMINARY,
        as_received=_as_received(observation.valueQuantity),
        conversion_note=normalised.conversion_note,
        upper_limit=_upper_limit(observation, definition),
    )


def _is_about(observation: Observation, patient_id: str) -> bool:
    reference = observation.subject.reference if observation.subject else None
    if not reference:
        return True  # searched by patient; an absent subject is not evidence of another patient
    return reference.rstrip("/").split("/")[-2:] == ["Patient", patient_id]


def _time_of(observation: Observation) -> FhirTime | None:
    candidates = (
        observation.effectiveDateTime,
        observation.effectivePeriod.start if observation.effectivePeriod else None,
        observation.effectivePeriod.end if observation.effectivePeriod else None,
        observation.effectiveInstant,
        observation.issued,
    )
    for candidate in candidates:
        if candidate:
            return parse_fhir_time(candidate)
    return None


def _upper_limit(observation: Observation, definition: Analyte) -> Decimal | None:
    for reference_range in observation.referenceRange:
        if reference_range.high is not None:
            try:
                return normalise(definition, reference_range.high).value
            except UnitError:
                return None
    return None


def _as_received(quantity: Quantity) -> str:
    return f"{quantity.value} {quantity.unit or quantity.code or ''}".rstrip()
