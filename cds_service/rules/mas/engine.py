"""Evaluate a criteria set definition (from the rule pack) against one patient's inputs. Pure: no I/O, no words.

Every comparison uses the threshold as converted into the analyte's canonical unit through the same catalogue as
the value; the population gate comes first and is three-valued too (a set whose population is unknown can be at
most "unknown").
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal

from cds_service.facts.analytes import Catalogue
from cds_service.facts.observations import Measurement
from cds_service.rules.mas.common import (
    Inputs,
    ItemResult,
    PreconditionResult,
    Reason,
    SetResult,
    Status,
    all_of,
    count_status,
)
from cds_service.rules.mas.definitions import (
    BandsScoreItem,
    CountScoreItem,
    CriteriaSet,
    FindingItem,
    IfScoreItem,
    ImmunosuppressionScoreItem,
    Item,
    LabItem,
    LinearTerm,
    Op,
    Precondition,
    RatioItem,
    Score,
    ScoreItem,
    Threshold,
    TrendItem,
    UnreadableItem,
)

OPS: dict[Op, Callable[[Decimal, Decimal], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
ZERO = Decimal(0)


def compare(value: Decimal, threshold: Threshold) -> bool:
    return OPS[threshold.op](value, threshold.canonical)


def evaluate_set(definition: CriteriaSet, inputs: Inputs, catalogue: Catalogue) -> SetResult:
    population = tuple(_precondition(p, inputs) for p in definition.population)
    applicability = all_of([p.status for p in population])
    result: ItemResult | None = None
    items: tuple[ItemResult, ...] = ()
    score: tuple[Decimal, Decimal] | None = None
    if definition.rule is not None:
        result = evaluate_item(definition.rule, inputs, catalogue)
        criteria_outcome = result.status
    else:
        assert definition.score is not None
        items, score, criteria_outcome = _score(definition.score, inputs, catalogue)
    outcome = criteria_outcome
    if applicability is not Status.MET and outcome is Status.MET:
        outcome = Status.UNKNOWN  # the numbers fit, but it is not known that the set applies
    notes = tuple(
        note.text
        for note in definition.notes
        if inputs.context.has(note.when) and not (note.unless is not None and inputs.context.has(note.unless))
    )
    return SetResult(definition, population, applicability, criteria_outcome, outcome, result, items, score, notes)


def _precondition(definition: Precondition, inputs: Inputs) -> PreconditionResult:
    context = inputs.context
    if definition.diagnosis:
        found = next((context.underlying[d] for d in definition.diagnosis if context.has(d)), None)
        return PreconditionResult(definition, Status.MET if found else Status.NOT_MET, evidence=found)
    if definition.no_diagnosis:
        found = next((context.underlying[d] for d in definition.no_diagnosis if context.has(d)), None)
        return PreconditionResult(definition, Status.NOT_MET if found else Status.MET, evidence=found)
    if definition.min_age_years is not None:
        age = inputs.age
        if age is None:
            return PreconditionResult(definition, Status.UNKNOWN)
        if age.low >= definition.min_age_years:
            return PreconditionResult(definition, Status.MET)
        if age.high < definition.min_age_years:
            return PreconditionResult(definition, Status.NOT_MET)
        return PreconditionResult(definition, Status.UNKNOWN)
    assert definition.febrile is not None
    temperature, uncertain = inputs.max_temperature_state()
    status = _maximum_status(temperature, uncertain, definition.febrile)
    return PreconditionResult(definition, status, measurement=temperature)


def _maximum_status(highest: Measurement | None, uncertain: bool, threshold: Threshold) -> Status:
    """A maximum against a threshold when an unreadable value in the window might be higher: a readable value
    already above the threshold decides; otherwise the maximum is unknown."""
    if highest is not None and compare(highest.value, threshold):
        return Status.MET
    if highest is None or (uncertain and threshold.op in (">", ">=")):
        return Status.UNKNOWN
    return Status.NOT_MET


# --- items ------------------------------------------------------------------------------------------------------
def evaluate_item(item: Item, inputs: Inputs, catalogue: Catalogue) -> ItemResult:
    if isinstance(item, LabItem):
        return _lab(item, inputs)
    if isinstance(item, FindingItem):
        evidence = inputs.context.findings.get(item.finding)
        if evidence is None:
            return ItemResult(item, Status.UNKNOWN, reason=Reason.NOT_CODED)
        return ItemResult(item, Status.MET, evidence=evidence)
    if isinstance(item, UnreadableItem):
        return ItemResult(item, Status.UNKNOWN, reason=Reason.UNREADABLE)
    if isinstance(item, TrendItem):
        return _trend(item, inputs)
    if isinstance(item, RatioItem):
        return _ratio(item, inputs, catalogue)
    parts = tuple(evaluate_item(part, inputs, catalogue) for part in item.items)
    return ItemResult(item, count_status([p.status for p in parts], item.k), parts=parts)


def _reading(item: LabItem | BandsScoreItem, inputs: Inputs) -> tuple[Measurement | None, bool]:
    """The value the item reads, and whether an unreadable result leaves it uncertain (see Inputs)."""
    if item.reading == "max":
        return inputs.max_temperature_state()
    analytes = item.analytes if isinstance(item, LabItem) else (item.analyte,)
    return inputs.latest_state(analytes)


def _lab(item: LabItem, inputs: Inputs) -> ItemResult:
    measurement, uncertain = _reading(item, inputs)
    if item.reading == "max" and uncertain:
        status = _maximum_status(measurement, uncertain, item.threshold)
        shown = (measurement,) if measurement else ()
        reason = Reason.UNREADABLE_RESULT if status is Status.UNKNOWN else None
        return ItemResult(item, status, shown, threshold=item.threshold, reason=reason)
    if uncertain:
        return ItemResult(item, Status.UNKNOWN, reason=Reason.UNREADABLE_RESULT)
    if measurement is None:
        return ItemResult(item, Status.UNKNOWN, reason=Reason.NO_RESULT)
    threshold = item.threshold
    met = compare(measurement.value, threshold)
    reason = None
    if item.infants is not None:
        infant = item.infants
        days = inputs.age_days
        if days is not None and days[1] < infant.under_age_days:  # every possible age is under the limit
            threshold = infant.threshold
            met = compare(measurement.value, threshold)
        elif (days is None or days[0] < infant.under_age_days) and met != compare(measurement.value, infant.threshold):
            # Between the two thresholds and the age may be under the limit: which one applies cannot be told.
            return ItemResult(item, Status.UNKNOWN, (measurement,), reason=Reason.INFANT_AGE_UNKNOWN)
    upper = measurement.upper_limit
    if (
        not met
        and item.uln_multiple is not None
        and upper is not None
        and measurement.value > item.uln_multiple * upper
    ):
        met, reason = True, Reason.ABOVE_ULN
    return ItemResult(item, Status.MET if met else Status.NOT_MET, (measurement,), threshold=threshold, reason=reason)


def _trend(item: TrendItem, inputs: Inputs) -> ItemResult:
    series = inputs.series(item.analyte)
    if len(series) < 2 or series[-1].value == 0:
        return ItemResult(item, Status.UNKNOWN, reason=Reason.FEW_VALUES)
    newest, oldest = series[0], series[-1]
    change = (newest.value - oldest.value) / oldest.value
    met = change >= inputs.trend_min_change if item.direction == "rising" else change <= -inputs.trend_min_change
    return ItemResult(item, Status.MET if met else Status.NOT_MET, (newest, oldest), value=change)


def _ratio(item: RatioItem, inputs: Inputs, catalogue: Catalogue) -> ItemResult:
    numerator, denominator = inputs.lab(item.numerator), inputs.lab(item.denominator)
    if numerator is None or denominator is None:
        return ItemResult(item, Status.UNKNOWN, reason=Reason.NO_RESULT)
    bottom = catalogue[item.denominator].from_canonical(denominator.value, item.denominator_unit)
    top = catalogue[item.numerator].from_canonical(numerator.value, item.numerator_unit)
    if bottom == 0:
        # "top / bottom > c" is "top > c × bottom": with 0 below the line any positive top is above any cutoff
        # (an ESR of 0 is exactly the fibrinogen consumption the ratio looks for).
        met = OPS[item.op](top, item.value * bottom)
        status = Status.MET if met else Status.NOT_MET
        return ItemResult(item, status, (numerator, denominator), reason=Reason.DENOMINATOR_ZERO)
    ratio = top / bottom
    met = OPS[item.op](ratio, item.value)
    return ItemResult(item, Status.MET if met else Status.NOT_MET, (numerator, denominator), value=ratio)


# --- scores -----------------------------------------------------------------------------------------------------
def _score(
    score: Score, inputs: Inputs, catalogue: Catalogue
) -> tuple[tuple[ItemResult, ...], tuple[Decimal, Decimal] | None, Status]:
    if score.terms:
        results = tuple(_term(term, inputs, catalogue) for term in score.terms)
    else:
        results = tuple(_score_item(item, inputs, catalogue) for item in score.items)
    if any(r.reason is Reason.MISSING_TERM for r in results):
        return results, None, Status.UNKNOWN
    low = sum((r.points[0] for r in results if r.points), ZERO)
    high = sum((r.points[1] for r in results if r.points), ZERO)
    return results, (low, high), score_status(low, high, score.op, score.cutoff)


def score_status(low: Decimal, high: Decimal, op: Op, cutoff: Decimal) -> Status:
    """A score known only as a range: met when every possible value meets the cutoff, not met when none does."""
    compare_to = OPS[op]
    at_least = op in (">", ">=")
    best, worst = (high, low) if at_least else (low, high)
    if compare_to(worst, cutoff):
        return Status.MET
    if not compare_to(best, cutoff):
        return Status.NOT_MET
    return Status.UNKNOWN


def _points_status(low: Decimal, high: Decimal) -> Status:
    if low > 0:
        return Status.MET
    if high == 0:
        return Status.NOT_MET
    return Status.UNKNOWN


def _score_item(item: ScoreItem, inputs: Inputs, catalogue: Catalogue) -> ItemResult:
    if isinstance(item, BandsScoreItem):
        measurement, uncertain = _reading(item, inputs)
        points = [band.points for band in item.bands]
        if measurement is None or (uncertain and item.reading != "max"):
            reason = Reason.UNREADABLE_RESULT if uncertain else Reason.NO_RESULT
            return ItemResult(item, Status.UNKNOWN, points=(min(points), max(points)), reason=reason)
        band = next(band for band in item.bands if band.contains(measurement.value))
        if uncertain:  # a maximum that an unreadable value might raise: from this band's points up
            higher = [b.points for b in item.bands if b.low is not None and b.low.canonical >= measurement.value]
            top = max([band.points, *higher])
            return ItemResult(
                item,
                _points_status(band.points, top),
                (measurement,),
                points=(band.points, top),
                reason=Reason.UNREADABLE_RESULT if top != band.points else None,
            )
        return ItemResult(
            item, _points_status(band.points, band.points), (measurement,), points=(band.points, band.points)
        )
    if isinstance(item, IfScoreItem):
        inner = evaluate_item(item.item, inputs, catalogue)
        if inner.status is Status.UNKNOWN:
            return ItemResult(item, Status.UNKNOWN, parts=(inner,), points=(ZERO, item.points), reason=inner.reason)
        won = item.points if inner.status is Status.MET else ZERO
        return ItemResult(item, inner.status, inner.measurements, inner.evidence, (inner,), (won, won))
    if isinstance(item, ImmunosuppressionScoreItem):
        known = inputs.context.immunosuppression
        if known is None:
            return ItemResult(item, Status.UNKNOWN, points=(ZERO, item.points))
        had = item.points if known else ZERO
        return ItemResult(item, Status.MET if known else Status.NOT_MET, points=(had, had))
    assert isinstance(item, CountScoreItem)
    parts = tuple(evaluate_item(part, inputs, catalogue) for part in item.items)
    met = sum(p.status is Status.MET for p in parts)
    unknown = sum(p.status is Status.UNKNOWN for p in parts)
    possible = item.points_by_count[met : met + unknown + 1]
    low, high = min(possible), max(possible)
    return ItemResult(item, _points_status(low, high), parts=parts, points=(low, high))


def _term(term: LinearTerm, inputs: Inputs, catalogue: Catalogue) -> ItemResult:
    if term.analyte is not None:
        measurement = inputs.lab(term.analyte)
        if measurement is None:
            return ItemResult(term, Status.UNKNOWN, reason=Reason.MISSING_TERM)
        assert term.unit is not None
        contribution = term.coefficient * catalogue[term.analyte].from_canonical(measurement.value, term.unit)
        return ItemResult(term, Status.MET, (measurement,), points=(contribution, contribution), value=contribution)
    possible = sorted((ZERO, term.coefficient))
    if term.finding is not None:
        evidence = inputs.context.findings.get(term.finding)
        if evidence is not None:
            return ItemResult(term, Status.MET, evidence=evidence, points=(term.coefficient, term.coefficient))
        return ItemResult(term, Status.UNKNOWN, points=(possible[0], possible[1]), reason=Reason.NOT_CODED)
    return ItemResult(term, Status.UNKNOWN, points=(possible[0], possible[1]), reason=Reason.NEVER_READ)
