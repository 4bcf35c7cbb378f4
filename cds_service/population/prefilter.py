"""The conservative pre-filter: which patients could get a card at all, decided from a light scan.

It is derived from the rule pack in force (`Prefilter(pack)`), never from constants of its own, so a changed
threshold, band or criteria set moves the filter with it. Why it is safe (`tests/test_population_prefilter.py`
checks it against the rules themselves, with the product's pack and with altered ones):

- A patient with any coded underlying disease or finding (`classify_concept` of any Condition, whatever its
  status) is always a candidate: evaluated in full.
- For every other patient, a criteria set whose population needs a coded diagnosis cannot apply, and every
  finding item is unknown (never met). Ages, fever preconditions and medications are not read: they are
  taken as "may apply" and immunosuppression as present. What remains is an optimistic reading of each
  applicable validated or adjunct set over every value of the look-back window (the longer of the lab and
  temperature windows), whichever value the rules would take as "the" value:
  - a lab item could be met when any value meets its threshold (or the infants' threshold; with an "× upper
    reference limit" alternative, any value reported with a reference range: its limit is the report's);
  - a trend or ratio item could be met when its analytes have values at all;
  - "k of n" could be met when at least k items could be;
  - a points score could reach its cutoff when the sum of each item's most points from any value (or its
    fewest points with no value: the rules score the lowest possible value) reaches it; a score with linear
    terms or a "below" cutoff makes everyone a candidate.
  The pack's warning ferritin threshold is checked on every ferritin value.
A candidate is then evaluated in full by the same rule code as the hook; a non-candidate gets no card.

Each value is read with the facts layer's own unit conversion and plausibility check (`normalise`); a value
that could not move any of the above (the "inert" range of its analyte) is dropped in the scan. A value counts
for every window its possible times touch; a time that cannot be read makes it count for every window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from cds_service.facts.analytes import LOINC, A, Catalogue
from cds_service.facts.conditions import ConditionCodes, classify_concept
from cds_service.facts.fhir_time import parse_fhir_time
from cds_service.facts.observations import COUNTING, PRELIMINARY
from cds_service.facts.units import UnitError, conversion_for, normalise
from cds_service.fhir.model import CodeableConcept, Condition, Quantity
from cds_service.population.light import FastQuantity, LightObservation
from cds_service.rulepack.model import RulePack
from cds_service.rules.mas.definitions import (
    BandsScoreItem,
    CountScoreItem,
    CriteriaSet,
    FindingItem,
    Group,
    IfScoreItem,
    ImmunosuppressionScoreItem,
    Item,
    LabItem,
    RatioItem,
    Score,
    Threshold,
    TrendItem,
    UnreadableItem,
)

SLACK = timedelta(seconds=1)
COUNTED_STATUSES = frozenset({*COUNTING, PRELIMINARY})
ZERO = Decimal(0)


@dataclass(frozen=True)
class Event:
    """One usable value that could matter: the analyte, its canonical value, and the span of its times."""

    analyte: A
    value: Decimal
    earliest: float | None  # POSIX seconds; None: the time could not be read (counts for every window)
    latest: float | None
    ranged: bool = False  # reported with a reference range (an "× upper limit" item may read it)


@dataclass(frozen=True)
class Edge:
    """One side of an analyte's inert range, canonical: a value beyond it (or on it, when inclusive) matters."""

    value: Decimal
    inclusive: bool


@dataclass(frozen=True)
class Relevance:
    """Which values of an analyte could move any reachable rule: above `up`, below `down`, or every value."""

    up: Edge | None = None
    down: Edge | None = None
    every_value: bool = False
    ranged_value: bool = False  # any value with a reference range (an "× upper limit" item)

    def matters(self, value: Decimal, *, ranged: bool = False) -> bool:
        if self.every_value or (ranged and self.ranged_value):
            return True
        up, down = self.up, self.down
        if up is not None and (value > up.value or (value == up.value and up.inclusive)):
            return True
        return down is not None and (value < down.value or (value == down.value and down.inclusive))

    def widened(self, other: Relevance) -> Relevance:
        return Relevance(
            up=_lower_edge(self.up, other.up),
            down=_higher_edge(self.down, other.down),
            every_value=self.every_value or other.every_value,
            ranged_value=self.ranged_value or other.ranged_value,
        )


class Prefilter:
    """The filter for one rule pack. Picklable: the engines send it to their workers with each scan."""

    def __init__(self, pack: RulePack) -> None:
        self.catalogue: Catalogue = pack.catalogue
        self.codes: ConditionCodes = pack.conditions
        parameters = pack.parameters
        self.window = max(parameters.lab_window, parameters.temperature_window) + SLACK
        self.future = parameters.future_tolerance + SLACK
        self.warning_ferritin = pack.decision.warning_ferritin
        # Sets that can decide a card for a patient with no coded diagnosis, less those that can only be met when the
        # warning ferritin is met anyway (the trial's path without sJIA requires ferritin > 2,000): such a patient is
        # a candidate already, so their other items need not be read.
        self.sets = tuple(
            s
            for s in pack.sets
            if s.role != "display"
            and not any(p.diagnosis for p in s.population)
            and not _needs_warning_ferritin(s, self.warning_ferritin)
        )
        self.everyone = any(_unbounded(s.score) for s in self.sets if s.score is not None)
        relevance: dict[A, Relevance] = {}
        _note_threshold(relevance, A.FERRITIN, self.warning_ferritin)
        for definition in self.sets:
            if definition.rule is not None:
                _note_item(relevance, definition.rule)
            if definition.score is not None:
                for score_item in definition.score.items:
                    _note_score_item(relevance, score_item)
        self.relevance: Mapping[A, Relevance] = relevance
        # Most patients have no value that matters: their answer is the same for all of them.
        self.without_values = self.everyone or any(_set_possible(s, Values({}, set())) for s in self.sets)

    # --- per resource -----------------------------------------------------------------------------------------

    def analyte_of(self, concept: CodeableConcept | None) -> A | None:
        if concept is None:
            return None
        for coding in concept.coding:
            if coding.system == LOINC and coding.code is not None and coding.code in self.catalogue.by_code:
                return self.catalogue.by_code[coding.code]
        return None

    def observation_event(self, observation: LightObservation) -> Event | None:
        """What this result could contribute, or None when it cannot move any rule."""
        analyte = self.analyte_of(observation.code)
        relevance = self.relevance.get(analyte) if analyte is not None else None
        if analyte is None or relevance is None:
            return None
        if observation.status not in COUNTED_STATUSES:
            return None  # the facts layer never counts it
        quantity = observation.valueQuantity
        if quantity is None or observation.dataAbsentReason is not None:
            return None
        try:
            value = normalise(self.catalogue[analyte], quantity).value
        except UnitError:
            return None  # unknown unit, censored or implausible: the facts layer does not use it either
        ranged = any(r.high is not None for r in observation.referenceRange)
        if not relevance.matters(value, ranged=ranged):
            return None
        earliest, latest = _times(observation)
        return Event(analyte, value, earliest, latest, ranged)

    def condition_makes_candidate(self, condition: Condition) -> bool:
        """Any coded underlying disease or finding (status ignored: conservative)."""
        diseases, findings = classify_concept(condition.code, self.codes)
        return bool(diseases or findings)

    # --- per patient and time ---------------------------------------------------------------------------------

    def is_candidate(self, events: Iterable[Event], as_of: datetime) -> bool:
        """Could a patient without a coded underlying disease or finding get a card as of this time?"""
        if self.everyone:
            return True
        moment = as_of.timestamp()
        newest = moment + self.future.total_seconds()
        oldest = moment - self.window.total_seconds()
        values: dict[A, list[Decimal]] = {}
        ranged: set[A] = set()
        for event in events:
            if (
                event.earliest is not None
                and event.latest is not None
                and (event.earliest > newest or event.latest < oldest)
            ):
                continue
            values.setdefault(event.analyte, []).append(event.value)
            if event.ranged:
                ranged.add(event.analyte)
        if not values:
            return self.without_values
        if any(_meets(v, self.warning_ferritin) for v in values.get(A.FERRITIN, ())):
            return True
        return any(_set_possible(definition, Values(values, ranged)) for definition in self.sets)

    def fast_check(self) -> FastCheck:
        return FastCheck(self)


# --- which values matter (built once per pack) -------------------------------------------------------------------


def _note(relevance: dict[A, Relevance], analyte: A, found: Relevance) -> None:
    relevance[analyte] = relevance[analyte].widened(found) if analyte in relevance else found


def _note_threshold(relevance: dict[A, Relevance], analyte: A, threshold: Threshold) -> None:
    edge = Edge(threshold.canonical, threshold.op in (">=", "<="))
    _note(relevance, analyte, Relevance(up=edge) if threshold.op in (">", ">=") else Relevance(down=edge))


def _note_item(relevance: dict[A, Relevance], item: Item) -> None:
    if isinstance(item, LabItem):
        for analyte in item.analytes:
            if item.uln_multiple is not None:
                _note(relevance, analyte, Relevance(ranged_value=True))  # the limit is the report's, not ours
            _note_threshold(relevance, analyte, item.threshold)
            if item.infants is not None:
                _note_threshold(relevance, analyte, item.infants.threshold)
    elif isinstance(item, TrendItem):
        _note(relevance, item.analyte, Relevance(every_value=True))
    elif isinstance(item, RatioItem):
        _note(relevance, item.numerator, Relevance(every_value=True))
        _note(relevance, item.denominator, Relevance(every_value=True))
    elif isinstance(item, Group):
        for part in item.items:
            _note_item(relevance, part)


def _note_score_item(relevance: dict[A, Relevance], item: object) -> None:
    if isinstance(item, BandsScoreItem):
        _note(relevance, item.analyte, _band_relevance(item))
    elif isinstance(item, IfScoreItem):
        _note_item(relevance, item.item)
    elif isinstance(item, CountScoreItem):
        for part in item.items:
            _note_item(relevance, part)


def _band_relevance(item: BandsScoreItem) -> Relevance:
    """Values in a band worth more than the fewest points matter (the fewest is what no value scores)."""
    fewest = min(band.points for band in item.bands)
    richer = [band.points > fewest for band in item.bands]
    if not any(richer):
        return Relevance()
    first = richer.index(True)
    last = len(richer) - 1 - richer[::-1].index(True)
    contiguous = all(richer[first : last + 1])
    if contiguous and last == len(richer) - 1 and item.bands[first].low is not None:
        low = item.bands[first].low
        assert low is not None
        return Relevance(up=Edge(low.canonical, low.inclusive))
    if contiguous and first == 0 and item.bands[last].high is not None:
        high = item.bands[last].high
        assert high is not None
        return Relevance(down=Edge(high.canonical, high.inclusive))
    return Relevance(every_value=True)


def _lower_edge(a: Edge | None, b: Edge | None) -> Edge | None:
    if a is None or b is None:
        return a or b
    if a.value != b.value:
        return a if a.value < b.value else b
    return Edge(a.value, a.inclusive or b.inclusive)


def _higher_edge(a: Edge | None, b: Edge | None) -> Edge | None:
    if a is None or b is None:
        return a or b
    if a.value != b.value:
        return a if a.value > b.value else b
    return Edge(a.value, a.inclusive or b.inclusive)


def _needs_warning_ferritin(definition: CriteriaSet, warning: Threshold) -> bool:
    """Is a ferritin at or past the warning threshold necessary for this set to be met (an item every way of
    meeting it needs, whose threshold implies the warning's)?"""
    if definition.score is not None or definition.rule is None:
        return False
    return any(
        isinstance(item, LabItem)
        and item.analytes == (A.FERRITIN,)
        and item.uln_multiple is None
        and item.infants is None
        and _implies(item.threshold, warning)
        for item in _necessary_items(definition.rule)
    )


def _necessary_items(item: Item) -> list[Item]:
    """The item itself, and, through groups that need all their items, every item below."""
    if isinstance(item, Group) and item.k == len(item.items):
        return [item, *(found for part in item.items for found in _necessary_items(part))]
    return [item]


def _implies(threshold: Threshold, warning: Threshold) -> bool:
    """Does meeting `threshold` mean meeting `warning` (both upward, in canonical units)?"""
    if threshold.op not in (">", ">=") or warning.op not in (">", ">="):
        return False
    if threshold.canonical != warning.canonical:
        return threshold.canonical > warning.canonical
    return warning.op == ">=" or threshold.op == ">"


def _unbounded(score: Score) -> bool:
    """A score the bound below cannot follow: linear terms (signed coefficients) or a "below" cutoff."""
    return bool(score.terms) or score.op not in (">", ">=")


# --- could a set be met, optimistically (per patient and time) ----------------------------------------------------


class Values:
    """The values that matter in the window, per analyte, their extremes, and the analytes with a value reported
    with a range."""

    __slots__ = ("by_analyte", "highest", "lowest", "ranged")

    def __init__(self, by_analyte: Mapping[A, Sequence[Decimal]], ranged: set[A]) -> None:
        self.by_analyte = by_analyte
        self.ranged = ranged
        self.highest = {analyte: max(found) for analyte, found in by_analyte.items()}
        self.lowest = {analyte: min(found) for analyte, found in by_analyte.items()}

    def get(self, analyte: A) -> Sequence[Decimal]:
        return self.by_analyte.get(analyte, ())

    def could_meet(self, analyte: A, threshold: Threshold) -> bool:
        """Does any value meet it? An upward threshold is met by some value iff by the highest, and downward by
        the lowest."""
        if analyte not in self.highest:
            return False
        upward = threshold.op in (">", ">=")
        return _meets(self.highest[analyte] if upward else self.lowest[analyte], threshold)


def _meets(value: Decimal, threshold: Threshold) -> bool:
    op, limit = threshold.op, threshold.canonical
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    return value <= limit


def _set_possible(definition: CriteriaSet, values: Values) -> bool:
    if definition.rule is not None and not _item_possible(definition.rule, values):
        return False
    if definition.score is not None:
        bound = sum((_most_points(item, values) for item in definition.score.items), ZERO)
        cutoff = definition.score.cutoff
        return bound >= cutoff if definition.score.op == ">=" else bound > cutoff
    return True


def _item_possible(item: Item, values: Values) -> bool:
    if isinstance(item, LabItem):
        if item.uln_multiple is not None and any(analyte in values.ranged for analyte in item.analytes):
            return True
        infants = item.infants
        return any(
            values.could_meet(analyte, item.threshold)
            or (infants is not None and values.could_meet(analyte, infants.threshold))
            for analyte in item.analytes
        )
    if isinstance(item, FindingItem | UnreadableItem):
        return False  # no coded finding (else the patient is a candidate anyway); unreadable items never meet
    if isinstance(item, TrendItem):
        return len(values.get(item.analyte)) >= 2
    if isinstance(item, RatioItem):
        return bool(values.get(item.numerator)) and bool(values.get(item.denominator))
    need, left = item.k, len(item.items)
    for part in item.items:  # stops as soon as k are possible, or too few are left to reach k
        if need <= 0 or left < need:
            break
        left -= 1
        if _item_possible(part, values):
            need -= 1
    return need <= 0


def _most_points(item: object, values: Values) -> Decimal:
    """The most this item could add to the score's lowest possible value."""
    if isinstance(item, BandsScoreItem):
        points = [band.points for band in item.bands]
        best = min(points)  # no value: the item is unknown and the lowest value takes its fewest points
        for value in values.get(item.analyte):
            band = next((b for b in item.bands if b.contains(value)), None)
            best = max(best, band.points if band is not None else max(points))
        return best
    if isinstance(item, IfScoreItem):
        return max(item.points, ZERO) if _item_possible(item.item, values) else ZERO
    if isinstance(item, ImmunosuppressionScoreItem):
        return max(item.points, ZERO)  # medications are not read: taken as present
    assert isinstance(item, CountScoreItem)
    possible = sum(_item_possible(part, values) for part in item.items)
    return max(item.points_by_count[: possible + 1])


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


# --- The fast first look (most results are normal and stop here) --------------------------------------------

_CACHE_MAX = 50_000
EXACT = "exact"
IGNORED = "ignored"
Limits = tuple[float | None, float | None] | str  # the inert range in the unit as received, or EXACT / IGNORED


class FastCheck:
    """Says cheaply, in the unit as received, that a value lies inside its analyte's inert range; everything
    else (near an edge, an unusual unit) is read exactly by `Prefilter.observation_event`.

    Each unit's conversion is the one `normalise` applies, and is checked once on a probe value against
    `normalise` itself before it is trusted; a unit that cannot be checked always goes the exact way."""

    def __init__(self, prefilter: Prefilter) -> None:
        self._prefilter = prefilter
        self._analytes: dict[bytes, A | None] = {}
        self._limits: dict[tuple[A, str | None, str | None, str | None], Limits] = {}
        self._raw_limits: dict[tuple[bytes, str | None, str | None, str | None], tuple[Limits, bool]] = {}
        self._decoder = msgspec.json.Decoder(CodeableConcept)

    def analyte(self, raw_code: bytes) -> A | None:
        if raw_code in self._analytes:
            return self._analytes[raw_code]
        try:
            concept = self._decoder.decode(raw_code) if raw_code and raw_code != b"null" else None
        except msgspec.DecodeError:
            concept = None
        analyte = self._prefilter.analyte_of(concept)
        if len(self._analytes) < _CACHE_MAX:
            self._analytes[raw_code] = analyte
        return analyte

    def clearly_normal_raw(self, raw_code: bytes, quantity: FastQuantity, *, ranged: bool = False) -> bool:
        """clearly_normal for a raw code: True also when the code is no analyte the rules read. `ranged`: the
        result carries a reference range (then an analyte with an "× upper limit" item is read exactly)."""
        key = (raw_code, quantity.system, quantity.code, quantity.unit)
        found = self._raw_limits.get(key)
        if found is None:
            analyte = self.analyte(raw_code)
            if analyte is None or analyte not in self._prefilter.relevance:
                found = (IGNORED, False)
            else:
                limits = self._received_limits(analyte, quantity.system, quantity.code, quantity.unit)
                found = (limits, self._prefilter.relevance[analyte].ranged_value)
            if len(self._raw_limits) < _CACHE_MAX:
                self._raw_limits[key] = found
        limits, range_matters = found
        if limits is IGNORED:
            return True
        if ranged and range_matters:
            return False
        value = quantity.value
        if value is None:
            return True
        return _inside(value, limits)

    def clearly_normal(
        self,
        analyte: A,
        value: float,
        system: str | None,
        code: str | None,
        unit: str | None,
        *,
        ranged: bool = False,
    ) -> bool:
        if ranged and self._prefilter.relevance[analyte].ranged_value:
            return False
        key = (analyte, system, code, unit)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._received_limits(analyte, system, code, unit)
            if len(self._limits) < _CACHE_MAX:
                self._limits[key] = limits
        return _inside(value, limits)

    def _received_limits(self, analyte: A, system: str | None, code: str | None, unit: str | None) -> Limits:
        """The analyte's inert range in this unit, as (above, below) exclusive floats; EXACT when the unit is not
        a checked one or every value matters."""
        relevance = self._prefilter.relevance[analyte]
        if relevance.every_value:
            return EXACT
        definition = self._prefilter.catalogue[analyte]
        probe_quantity = Quantity(value=Decimal(1), unit=unit, system=system, code=code)
        try:
            conversion = conversion_for(definition, probe_quantity)
        except UnitError:
            return EXACT
        if conversion.factor <= 0 or conversion.divisor <= 0:
            return EXACT
        probe_canonical = (definition.plausible[0] + definition.plausible[1]) / 2
        probe = conversion.invert(probe_canonical)
        try:
            checked = normalise(definition, Quantity(value=probe, unit=unit, system=system, code=code)).value
        except UnitError:
            return EXACT
        if abs(checked - conversion.apply(probe)) > abs(probe_canonical) * Decimal("1e-12") + Decimal("1e-12"):
            return EXACT
        below = float(conversion.invert(relevance.up.value)) if relevance.up is not None else None
        above = float(conversion.invert(relevance.down.value)) if relevance.down is not None else None
        return above, below


def _inside(value: float, limits: Limits) -> bool:
    if isinstance(limits, str):
        return False
    above, below = limits
    if below is not None and not value < below - (abs(below) * 1e-9 + 1e-12):
        return False
    return not (above is not None and not value > above + (abs(above) * 1e-9 + 1e-12))
