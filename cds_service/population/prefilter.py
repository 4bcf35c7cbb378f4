"""The conservative pre-filter: which patients could get a card at all, decided from a light scan.

Why it is safe (the argument; `tests/test_population_prefilter.py` checks it against the rules themselves):
the card depends only on the record, and for a patient with **no coded underlying disease or finding**
(`classify_concept` of every Condition, whatever its status, is empty) the rules can give a card only if
1. a ferritin ≥ 500 ng/mL lies in the lab window (the "suggestive" threshold, and below the trial's and
   HScore's ferritin items), or
2. the HScore can reach its cutoff at its lowest value: known immunosuppression (counted as present) plus,
   for each item, the most points any in-window value of it could give.
Every other set needs what such a patient cannot have: HLH-2004 needs 5 of 8 items and without coded
splenomegaly or hemophagocytosis (NK activity and sCD25 are never read) at most 4 are possible; the trial's
path without sJIA needs ferritin > 2,000; the 2016 criteria, MS score and ferritin/ESR apply only to coded
sJIA/Still's, the sepsis features only to coded sepsis (which also needs ferritin > 2,000).
Patients with any coded underlying disease or finding are always candidates.

Each value is read with the facts layer's own unit conversion and plausibility check (`normalise`), and a
value counts for every window its possible times touch; a time that cannot be read makes it count for
every window. A candidate is then evaluated in full by the same rule code as the hook; a non-candidate gets
no card. The thresholds are the rule modules' own constants, so a changed threshold moves the filter too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from cds_service.facts.analytes import ANALYTE_BY_LOINC, CATALOGUE, A, Conversion
from cds_service.facts.conditions import classify_concept
from cds_service.facts.fhir_time import parse_fhir_time
from cds_service.facts.observations import COUNTING, FUTURE_TOLERANCE, LOINC, PRELIMINARY
from cds_service.facts.units import UCUM, UnitError, normalise
from cds_service.fhir.model import CodeableConcept, Condition, Quantity
from cds_service.population.light import FastQuantity, LightObservation
from cds_service.rules.mas import hscore
from cds_service.rules.mas.screen import SUGGESTIVE_FERRITIN

# Items of the bound: an event says "this value could give `points` to `item` in any window it touches".
FERRITIN = "ferritin"  # suggestive on its own (points unused)
TEMPERATURE = "temperature"
CYTOPENIA_ITEMS = {A.HEMOGLOBIN: "hemoglobin", A.WBC: "wbc", A.PLATELETS: "platelets"}
TRIGLYCERIDES = "triglycerides"
FIBRINOGEN = "fibrinogen"
AST = "ast"
WATCHED = frozenset({A.FERRITIN, A.TEMPERATURE, A.TRIGLYCERIDES, A.FIBRINOGEN, A.AST, *CYTOPENIA_ITEMS})
SLACK = timedelta(seconds=1)
COUNTED_STATUSES = frozenset({*COUNTING, PRELIMINARY})


@dataclass(frozen=True)
class Event:
    item: str
    points: Decimal
    earliest: float | None  # POSIX seconds; None: the time could not be read (counts for every window)
    latest: float | None


def observation_event(observation: LightObservation) -> Event | None:
    """What this result could contribute to the bound, or None when it cannot contribute."""
    analyte = _analyte_of(observation)
    if analyte is None or analyte not in WATCHED:
        return None
    status = observation.status
    if status not in COUNTING and status != PRELIMINARY:
        return None  # the facts layer never counts it
    quantity = observation.valueQuantity
    if quantity is None or observation.dataAbsentReason is not None:
        return None
    try:
        value = normalise(CATALOGUE[analyte], quantity).value
    except UnitError:
        return None  # unknown unit, censored or implausible: the facts layer does not use it either
    item, points = _contribution(analyte, value)
    if item is None:
        return None
    earliest, latest = _times(observation)
    return Event(item, points, earliest, latest)


def _analyte_of(observation: LightObservation) -> A | None:
    return _analyte_of_concept(observation.code)


def _contribution(analyte: A, value: Decimal) -> tuple[str | None, Decimal]:
    if analyte is A.FERRITIN:
        return (FERRITIN, Decimal(0)) if value >= SUGGESTIVE_FERRITIN else (None, Decimal(0))
    if analyte is A.TEMPERATURE:
        points = _banded_upper(value, hscore.TEMPERATURE)
        return (TEMPERATURE, points) if points else (None, points)
    if analyte is A.TRIGLYCERIDES:
        points = _banded_upper(value, hscore.TRIGLYCERIDES)
        return (TRIGLYCERIDES, points) if points else (None, points)
    if analyte is A.FIBRINOGEN:
        return (FIBRINOGEN, hscore.POINTS_FIBRINOGEN) if value <= hscore.FIBRINOGEN_MAX else (None, Decimal(0))
    if analyte is A.AST:
        return (AST, hscore.POINTS_AST) if value >= hscore.AST_MIN else (None, Decimal(0))
    lineage = CYTOPENIA_ITEMS[analyte]
    return (lineage, Decimal(1)) if value <= hscore.CYTOPENIA[lineage] else (None, Decimal(0))


def _banded_upper(value: Decimal, bands: Sequence[tuple[Decimal | None, int]]) -> Decimal:
    """The points of the value's band (the band edges of the HScore table, read inclusively upward)."""
    (first, low), (second, mid), (_, high) = bands
    assert first is not None and second is not None
    if value < first:
        return Decimal(low)
    if value <= second:
        return Decimal(mid)
    return Decimal(high)


def _times(observation: LightObservation) -> tuple[float | None, float | None]:
    """The span of every time the result carries (any of them may be the one the facts layer reads)."""
    texts = [observation.effectiveDateTime, observation.effectiveInstant, observation.issued]
    if observation.effectivePeriod is not None:
        texts += [observation.effectivePeriod.start, observation.effectivePeriod.end]
    stamps: list[float] = []
    for text in texts:
        if not text:
            continue
        parsed = parse_fhir_time(text)
        if parsed is None:
            return None, None
        stamps += [parsed.earliest.timestamp(), parsed.latest.timestamp()]
    if not stamps:
        return None, None
    return min(stamps), max(stamps)


def condition_makes_candidate(condition: Condition) -> bool:
    """Any coded underlying disease or finding (status ignored: conservative)."""
    diseases, findings = classify_concept(condition.code)
    return bool(diseases or findings)


@dataclass(frozen=True)
class Windows:
    lab: timedelta
    temperature: timedelta


def is_candidate(events: Iterable[Event], as_of: datetime, windows: Windows) -> bool:
    """Could a patient without coded underlying disease or finding get a card as of this time?"""
    moment = as_of.timestamp()
    newest = moment + (FUTURE_TOLERANCE + SLACK).total_seconds()
    lab_oldest = moment - (windows.lab + SLACK).total_seconds()
    temperature_oldest = moment - (windows.temperature + SLACK).total_seconds()
    best: dict[str, Decimal] = {}
    for event in events:
        oldest = temperature_oldest if event.item == TEMPERATURE else lab_oldest
        if (
            event.earliest is not None
            and event.latest is not None
            and (event.earliest > newest or event.latest < oldest)
        ):
            continue
        if event.item == FERRITIN:
            return True
        if event.points > best.get(event.item, Decimal(0)):
            best[event.item] = event.points
    lineages = sum(1 for item in CYTOPENIA_ITEMS.values() if item in best)
    bound = (
        hscore.POINTS_IMMUNOSUPPRESSION
        + best.get(TEMPERATURE, Decimal(0))
        + hscore.POINTS_CYTOPENIA[lineages]
        + best.get(TRIGLYCERIDES, Decimal(0))
        + best.get(FIBRINOGEN, Decimal(0))
        + best.get(AST, Decimal(0))
    )
    return bound >= hscore.CUTOFF


# --- The fast first look (most results are normal and stop here) --------------------------------------------

_UP = {
    A.FERRITIN: SUGGESTIVE_FERRITIN,
    A.TEMPERATURE: hscore.TEMPERATURE[0][0],
    A.TRIGLYCERIDES: hscore.TRIGLYCERIDES[0][0],
    A.AST: hscore.AST_MIN,
}
_DOWN = {A.FIBRINOGEN: hscore.FIBRINOGEN_MAX, **{a: hscore.CYTOPENIA[item] for a, item in CYTOPENIA_ITEMS.items()}}
_CACHE_MAX = 50_000
EXACT = "exact"
IGNORED = "ignored"


class FastCheck:
    """Says cheaply, in the unit as received, that a value lies clearly on the normal side of every threshold
    of the bound; everything else (near a threshold, an unusual unit) is read exactly by `observation_event`.

    Each unit's conversion is the catalogue's, and is checked once against the facts layer's `normalise`
    before it is trusted; a unit that cannot be checked always goes the exact way."""

    def __init__(self) -> None:
        self._analytes: dict[bytes, A | None] = {}
        self._limits: dict[tuple[A, str | None, str | None, str | None], tuple[bool, float] | str] = {}
        self._raw_limits: dict[tuple[bytes, str | None, str | None, str | None], tuple[bool, float] | str] = {}
        self._decoder = msgspec.json.Decoder(CodeableConcept)

    def analyte(self, raw_code: bytes) -> A | None:
        found = self._analytes.get(raw_code, EXACT)
        if found != EXACT:
            return found  # type: ignore[return-value]
        try:
            concept = self._decoder.decode(raw_code) if raw_code and raw_code != b"null" else None
        except msgspec.DecodeError:
            concept = None
        analyte = _analyte_of_concept(concept)
        if len(self._analytes) < _CACHE_MAX:
            self._analytes[raw_code] = analyte
        return analyte

    def clearly_normal_raw(self, raw_code: bytes, quantity: FastQuantity) -> bool:
        """clearly_normal for a raw code: True also when the code is no analyte the bound watches."""
        key = (raw_code, quantity.system, quantity.code, quantity.unit)
        limit = self._raw_limits.get(key)
        if limit is None:
            analyte = self.analyte(raw_code)
            if analyte is None or analyte not in WATCHED:
                limit = IGNORED
            else:
                limit = _received_limit(analyte, quantity.system, quantity.code, quantity.unit)
            if len(self._raw_limits) < _CACHE_MAX:
                self._raw_limits[key] = limit
        if limit is IGNORED:
            return True
        if isinstance(limit, str):
            return False
        upward, boundary = limit
        value = quantity.value
        if value is None:
            return True
        margin = abs(boundary) * 1e-9 + 1e-12
        return value < boundary - margin if upward else value > boundary + margin

    def clearly_normal(self, analyte: A, value: float, system: str | None, code: str | None, unit: str | None) -> bool:
        key = (analyte, system, code, unit)
        limit = self._limits.get(key)
        if limit is None:
            limit = _received_limit(analyte, system, code, unit)
            if len(self._limits) < _CACHE_MAX:
                self._limits[key] = limit
        if isinstance(limit, str):
            return False
        upward, boundary = limit
        margin = abs(boundary) * 1e-9 + 1e-12
        return value < boundary - margin if upward else value > boundary + margin


def _analyte_of_concept(concept: CodeableConcept | None) -> A | None:
    if concept is None:
        return None
    for coding in concept.coding:
        if coding.system == LOINC and coding.code in ANALYTE_BY_LOINC:
            return ANALYTE_BY_LOINC[coding.code]
    return None


def _received_limit(analyte: A, system: str | None, code: str | None, unit: str | None) -> tuple[bool, float] | str:
    """The bound's threshold in this unit, as (upward, value); EXACT when the unit is not a checked one."""
    definition = CATALOGUE[analyte]
    conversion = _catalogue_conversion(analyte, system, code, unit)
    if conversion is None or conversion.factor <= 0 or conversion.divisor <= 0:
        return EXACT
    probe_canonical = (definition.plausible[0] + definition.plausible[1]) / 2
    probe = probe_canonical * conversion.divisor / conversion.factor - conversion.shift
    try:
        checked = normalise(definition, Quantity(value=probe, unit=unit, system=system, code=code)).value
    except UnitError:
        return EXACT
    if abs(checked - conversion.apply(probe)) > abs(probe_canonical) * Decimal("1e-12") + Decimal("1e-12"):
        return EXACT
    upward = analyte in _UP
    canonical = _UP[analyte] if upward else _DOWN[analyte]
    return upward, float(canonical * conversion.divisor / conversion.factor - conversion.shift)


def _catalogue_conversion(analyte: A, system: str | None, code: str | None, unit: str | None) -> Conversion | None:
    definition = CATALOGUE[analyte]
    spellings = ([code] if system == UCUM and code else []) + ([unit] if unit else [])
    if not spellings:
        return definition.conversions[definition.unit] if definition.unitless_ok else None
    for raw in spellings:
        spelled = raw.strip().replace("µ", "u").replace("μ", "u")
        found = definition.conversions.get(definition.aliases.get(spelled, spelled))
        if found is not None:
            return found
    return None
