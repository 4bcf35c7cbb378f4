"""The full MAS work-up as one JSON document (the SMART app renders it) and the worklist row (population
screening writes it): the same evaluation the patient-view card is built from, presented without the
card's space limits.

Contract (kept stable for the app and the population writers; times are ISO 8601 in the given zone):
{
  "patientId": str, "asOf": str, "timezone": str,
  "decision": {"indicator": "critical" | "warning" | null, "summary": str | null, "setsMet": [set key, ...]},
  "sets": [SET, ...], "trends": SET,
  "series": [{"analyte": str, "name": str, "unit": str,
              "points": [{"time": str, "value": float, "source": str, "preliminary": bool}],
              "thresholds": [{"value": float, "label": str, "set": str}]}],
  "missing": [str, ...], "notUsed": [{"source": str, "analyte": str, "reason": str}],
  "dose": {"calculated": bool, "perDoseMg": float | null, "intervalHours": int | null, "perDayMg": float | null,
           "lines": [str, ...]}
}
SET = {"key", "name", "version", "citation", "applicable": bool, "applicability", "validated": bool,
       "outcome": "met" | "not met" | "unknown", "summary", "score": {"low": float, "high": float} | null,
       "notes": [str], "criteria": [{"key", "label", "status", "value", "time", "threshold", "source", "note",
                                     "points": {"low": float, "high": float} | null, "depth": int}],
       "population": [{"condition", "status", "value", "time", "citation"}], "assumptions": [str],
       "role": "validated" | "adjunct" | "display", "setting": str}
Criteria are the set's item tree, depth-first: a group ("2 of 3") is followed by its items at depth + 1.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from cds_service.cards import criteria_text, wording
from cds_service.cards.mas_cards import DecisiveValue, decisive_values, mas_summary
from cds_service.evaluation.mas import MasEvaluation
from cds_service.facts.analytes import A
from cds_service.rules.dosing.calculator import ProtocolDose
from cds_service.rules.mas.common import ItemResult, SetResult, Status
from cds_service.rules.mas.definitions import (
    BandsScoreItem,
    CountScoreItem,
    CriteriaSet,
    Group,
    IfScoreItem,
    Item,
    LabItem,
    Op,
    Threshold,
)
from cds_service.rules.mas.screen import MasAssessment

CHARTED = (A.FERRITIN, A.PLATELETS, A.FIBRINOGEN, A.AST, A.ALT, A.TRIGLYCERIDES, A.TEMPERATURE)


def explain(evaluation: MasEvaluation, *, timezone: tzinfo, timezone_name: str) -> dict[str, Any]:
    assessment = evaluation.assessment
    indicator = evaluation.indicator
    pack = evaluation.rules.pack
    window_start = evaluation.now - evaluation.inputs.lab_window
    catalogue = pack.catalogue
    sets = [s for s in assessment.sets if s.definition.role != "display"]
    display = [s for s in assessment.sets if s.definition.role == "display"]
    return {
        "patientId": evaluation.patient_id,
        "asOf": _time(evaluation.now, timezone),
        "timezone": timezone_name,
        "rulePack": pack.identity(),
        "decision": {
            "indicator": indicator,
            "summary": mas_summary(evaluation) if indicator else None,
            "setsMet": [s.key for s in assessment.met_sets],
        },
        "sets": [_set(s, evaluation, timezone) for s in sets],
        "trends": _set(display[0], evaluation, timezone) if display else None,
        "series": [
            {
                "analyte": analyte.value,
                "name": catalogue[analyte].name,
                "unit": catalogue[analyte].display_unit,
                "points": [
                    {
                        "time": _time(m.when, timezone),
                        "value": float(m.value),
                        "source": f"Observation/{m.observation_id}",
                        "preliminary": m.preliminary,
                    }
                    for m in reversed(evaluation.inputs.measurements.all(analyte))
                    if window_start <= m.when
                ],
                "thresholds": [
                    {
                        "value": float(limit.canonical),
                        "label": f"{definition.short_name}: {wording.chart_threshold(limit, catalogue[analyte])}",
                        "set": definition.key,
                    }
                    for definition, limit in chart_thresholds(_not_excluded(assessment), analyte)
                ],
            }
            for analyte in CHARTED
        ],
        "missing": [group.label for group in assessment.missing_workup],
        "notUsed": [
            {"source": f"Observation/{s.observation_id}", "analyte": catalogue[s.analyte].name, "reason": s.reason}
            for s in assessment.skipped
        ],
        "dose": _dose(evaluation),
    }


def _not_excluded(assessment: MasAssessment) -> tuple[CriteriaSet, ...]:
    """The sets that apply to this patient or may (their population is met or unknown): a chart shows no line of a
    set that cannot apply (the sJIA criteria for an adult with sepsis)."""
    return tuple(r.definition for r in assessment.sets if r.applicability is not Status.NOT_MET)


def chart_thresholds(sets: tuple[CriteriaSet, ...], analyte: A) -> list[tuple[CriteriaSet, Threshold]]:
    """Every threshold a criteria set applies to this analyte (lines on its chart), once per set and value."""
    found: list[tuple[CriteriaSet, Threshold]] = []
    seen: set[tuple[str, object]] = set()
    for definition in sets:
        if definition.role == "display":
            continue
        for limit in _thresholds(definition, analyte):
            key = (definition.key, limit.canonical)
            if key not in seen:
                seen.add(key)
                found.append((definition, limit))
    return found


def _thresholds(definition: CriteriaSet, analyte: A) -> list[Threshold]:
    limits: list[Threshold] = []
    stack: list[Item] = [definition.rule] if definition.rule is not None else []
    if definition.score is not None:
        for score_item in definition.score.items:
            if isinstance(score_item, IfScoreItem):
                stack.append(score_item.item)
            elif isinstance(score_item, CountScoreItem):
                stack.extend(score_item.items)
            elif isinstance(score_item, BandsScoreItem) and score_item.analyte is analyte:
                # Each band's lower edge: where the points change, read upwards ("≥ 2,000", "> 6,000").
                for band in score_item.bands:
                    if band.low is not None:
                        op: Op = ">=" if band.low.inclusive else ">"
                        limits.append(Threshold(op, band.low.value, score_item.unit, band.low.canonical))
    while stack:
        item = stack.pop()
        if isinstance(item, Group):
            stack.extend(item.items)
        elif isinstance(item, LabItem) and analyte in item.analytes:
            limits.append(item.threshold)
    return limits


class ScreenRow:
    """One worklist row: who would get which card, why, and on which values."""

    def __init__(
        self,
        patient_id: str,
        indicator: str | None,
        summary: str | None,
        sets_met: tuple[str, ...],
        decisive: tuple[DecisiveValue, ...],
    ) -> None:
        self.patient_id = patient_id
        self.indicator = indicator
        self.summary = summary
        self.sets_met = sets_met
        self.decisive = decisive

    def __repr__(self) -> str:
        return f"ScreenRow({self.patient_id!r}, {self.indicator!r}, sets_met={self.sets_met!r})"


def screen_row(evaluation: MasEvaluation) -> ScreenRow:
    indicator = evaluation.indicator
    assessment: MasAssessment = evaluation.assessment
    return ScreenRow(
        patient_id=evaluation.patient_id,
        indicator=indicator,
        summary=mas_summary(evaluation) if indicator else None,
        sets_met=tuple(s.key for s in assessment.met_sets),
        decisive=tuple(decisive_values(evaluation)) if indicator else (),
    )


def _set(result: SetResult, evaluation: MasEvaluation, timezone: tzinfo) -> dict[str, Any]:
    definition = result.definition
    pack = evaluation.rules.pack
    diagnoses = {key.value: named.name for key, named in pack.conditions.underlying.items()}
    rows: list[dict[str, Any]] = []
    if result.result is not None:
        _rows(result.result, 0, rows, evaluation, timezone)
    for item in result.items:
        _rows(item, 0, rows, evaluation, timezone)
    return {
        "key": definition.key,
        "name": definition.name,
        "version": definition.version,
        "citation": definition.citation,
        "url": definition.url,
        "role": definition.role,
        "setting": definition.setting,
        "applicable": result.applicable,
        "applicability": criteria_text.applicability(result, diagnoses),
        "population": criteria_text.population_rows(result, diagnoses, timezone),
        "validated": definition.validated,
        "outcome": result.outcome.value,
        "summary": criteria_text.set_summary(result),
        "score": {"low": float(result.score[0]), "high": float(result.score[1])} if result.score else None,
        "notes": list(result.notes),
        "assumptions": list(definition.assumptions),
        "criteria": rows,
    }


def _rows(
    item: ItemResult, depth: int, rows: list[dict[str, Any]], evaluation: MasEvaluation, timezone: tzinfo
) -> None:
    catalogue = evaluation.rules.pack.catalogue
    trend = wording.number(evaluation.inputs.trend_min_change * 100)
    measurement = item.measurements[0] if item.measurements else None
    rows.append(
        {
            "key": item.key,
            "label": item.label,
            "status": item.status.value,
            "value": criteria_text.value(item, catalogue),
            "time": _time(measurement.when, timezone) if measurement else None,
            "threshold": criteria_text.criterion(item.definition, catalogue, trend),
            "source": _source(item),
            "note": wording.REASON_WORDS[item.reason] if item.reason else None,
            "points": {"low": float(item.points[0]), "high": float(item.points[1])} if item.points else None,
            "depth": depth,
        }
    )
    if item.parts and not isinstance(item.definition, IfScoreItem):
        for part in item.parts:
            _rows(part, depth + 1, rows, evaluation, timezone)


def _source(item: ItemResult) -> str | None:
    if item.evidence is not None:
        return item.evidence.resource
    if item.measurements:
        return ", ".join(f"Observation/{m.observation_id}" for m in item.measurements)
    return None


def _dose(evaluation: MasEvaluation) -> dict[str, Any]:
    dose = evaluation.plan.dose
    if isinstance(dose, ProtocolDose):
        return {
            "calculated": True,
            "perDoseMg": float(dose.per_dose_mg),
            "intervalHours": dose.interval_hours,
            "perDayMg": float(dose.per_day_mg),
            "lines": list(dose.reasoning),
        }
    return {
        "calculated": False,
        "perDoseMg": None,
        "intervalHours": None,
        "perDayMg": None,
        "lines": [f"Not calculated: {dose.reason}; needs {dose.needed}."],
    }


def _time(moment: datetime, timezone: tzinfo) -> str:
    return moment.astimezone(timezone).isoformat(timespec="minutes")


__all__ = ["DecisiveValue", "ScreenRow", "Status", "explain", "screen_row"]
