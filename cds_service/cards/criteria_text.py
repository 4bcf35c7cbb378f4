"""Criteria definitions and results in words: the one place that writes a threshold, a count or a points table.

Every text is generated from the rule pack's definitions (value and unit as the source states them, the
canonical conversion next to it), so the app, the worklist and the rule book can never disagree with the rules.
"""

from __future__ import annotations

from datetime import tzinfo

from cds_service.cards import wording
from cds_service.facts.analytes import Catalogue
from cds_service.rules.mas.common import ItemResult, PreconditionResult, SetResult, Status
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
    LinearTerm,
    PointsBand,
    Precondition,
    RatioItem,
    ScoreItem,
    TrendItem,
    UnreadableItem,
)

n = wording.number


def criterion(definition: Item | ScoreItem | LinearTerm, catalogue: Catalogue, trend_min_change_percent: str) -> str:
    """The item's rule, e.g. "> 684 ng/mL", "≥ 3 mmol/L (265.71 mg/dL)", "2 of 3", "< 38.4 °C: 0; …"."""
    if isinstance(definition, LabItem):
        analyte = catalogue[definition.analytes[0]]
        text = wording.threshold(definition.threshold, analyte)
        if definition.uln_multiple is not None:
            text += f", or {SYMBOL_GT} {n(definition.uln_multiple)} × ULN"
        if definition.infants is not None:
            infant = definition.infants
            text += f" ({wording.threshold(infant.threshold, analyte)} under {infant.under_age_days} days of age)"
        return text
    if isinstance(definition, FindingItem):
        return "present (coded)"
    if isinstance(definition, UnreadableItem):
        return definition.asks
    if isinstance(definition, TrendItem):
        sign = "+" if definition.direction == "rising" else "−"
        return f"{sign}{trend_min_change_percent} % or more in the window"
    if isinstance(definition, RatioItem):
        return f"{wording.SYMBOL[definition.op]} {n(definition.value)}"
    if isinstance(definition, Group):
        return group_rule(definition)
    if isinstance(definition, BandsScoreItem):
        return "; ".join(_band(band, definition.unit) for band in definition.bands)
    if isinstance(definition, IfScoreItem):
        return f"{criterion(definition.item, catalogue, trend_min_change_percent)}: {n(definition.points)} points"
    if isinstance(definition, ImmunosuppressionScoreItem):
        return f"yes: {n(definition.points)} points"
    if isinstance(definition, CountScoreItem):
        pairs = ", ".join(f"{count}: {n(points)}" for count, points in enumerate(definition.points_by_count))
        return f"points by number present ({pairs})"
    return f"× {wording.exact(definition.coefficient)}" + (
        f" per {wording.unit(definition.unit)}" if definition.unit else ""
    )


SYMBOL_GT = ">"


def group_rule(group: Group) -> str:
    if group.kind == "any":
        return "any of"
    if group.kind == "all":
        return "all of"
    return f"{group.k} of {len(group.items)}"


def _band(band: PointsBand, unit_code: str) -> str:
    unit = wording.unit(unit_code)
    if band.low is None and band.high is not None:
        return f"< {n(band.high.value)} {unit}: {n(band.points)}"
    if band.high is None and band.low is not None:
        return f"> {n(band.low.value)} {unit}: {n(band.points)}"
    assert band.low is not None and band.high is not None
    return f"{n(band.low.value)}–{n(band.high.value)} {unit}: {n(band.points)}"


def precondition(definition: Precondition, diagnoses: dict[str, str]) -> str:
    if definition.diagnosis:
        return "known " + " or ".join(diagnoses[d.value] for d in definition.diagnosis)
    if definition.no_diagnosis:
        return "no " + " or ".join(diagnoses[d.value] for d in definition.no_diagnosis) + " coded"
    if definition.min_age_years is not None:
        return f"age {definition.min_age_years} years or older" + (" (adult)" if definition.adult_age else "")
    assert definition.febrile is not None
    return f"febrile: maximum temperature {wording.threshold(definition.febrile)}"


def value(result: ItemResult, catalogue: Catalogue) -> str | None:
    """What the item was decided on, in words (None when nothing was read)."""
    if result.evidence is not None:
        return result.evidence.text
    if isinstance(result.definition, RatioItem) and result.value is not None:
        top, bottom = result.measurements
        return (
            f"{n(result.value)} ({wording.measured(top, catalogue[top.analyte])} ÷ "
            f"{wording.measured(bottom, catalogue[bottom.analyte])})"
        )
    if isinstance(result.definition, TrendItem) and result.value is not None:
        newest, oldest = result.measurements
        analyte = catalogue[newest.analyte]
        hours = int((newest.when - oldest.when).total_seconds() // 3600)
        sign = "+" if result.value >= 0 else "−"
        return (
            f"{wording.measured(oldest, analyte)} → {wording.measured(newest, analyte)} "
            f"({sign}{wording.percent(result.value)} % in {hours} h)"
        )
    if result.measurements:
        measurement = result.measurements[0]
        return wording.measured(measurement, catalogue[measurement.analyte])
    return None


def set_summary(result: SetResult) -> str:
    definition = result.definition
    if result.score is not None:
        low, high = result.score
        shown = n(low) if low == high else f"{n(low)} to {n(high)}"
        assert definition.score is not None
        summary = f"score {shown} (cutoff {wording.SYMBOL[definition.score.op]} {n(definition.score.cutoff)})"
        for interpretation in definition.score.interpretation:
            if (interpretation.at_most is not None and high <= interpretation.at_most) or (
                interpretation.at_least is not None and low >= interpretation.at_least
            ):
                summary += f"; {interpretation.text}"
        return summary
    if definition.score is not None:
        return "score not computed: a laboratory term is missing"
    tree = result.result
    if tree is None or not isinstance(tree.definition, Group):
        return wording.STATUS_WORD[result.criteria_outcome]
    parts = tree.parts
    met = sum(p.status is Status.MET for p in parts)
    unknown = sum(p.status is Status.UNKNOWN for p in parts)
    return f"{tree.label} ({group_rule(tree.definition)}): {met} met, {unknown} unknown of {len(parts)}"


def applicability(result: SetResult, diagnoses: dict[str, str]) -> str:
    if not result.population:
        return "all patients"
    return "; ".join(
        f"{precondition(p.definition, diagnoses)}: {wording.STATUS_WORD[p.status]}" for p in result.population
    )


def population_rows(result: SetResult, diagnoses: dict[str, str], zone: tzinfo) -> list[dict[str, object]]:
    return [_population_row(p, diagnoses, zone) for p in result.population]


def _population_row(p: PreconditionResult, diagnoses: dict[str, str], zone: tzinfo) -> dict[str, object]:
    shown = p.evidence.text if p.evidence else None
    if p.measurement is not None:
        shown = f"{n(p.measurement.value)} °C"
    return {
        "condition": precondition(p.definition, diagnoses),
        "status": wording.STATUS_WORD[p.status],
        "value": shown,
        "time": wording.local(p.measurement.when, zone) if p.measurement else None,
        "citation": p.definition.citation,
    }


def set_header(definition: CriteriaSet) -> str:
    return f"{definition.name} ({definition.version})"
