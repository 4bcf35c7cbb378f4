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
                                     "points": {"low": float, "high": float} | null}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from cds_service.cards.mas_cards import mas_summary
from cds_service.evaluation.mas import MasEvaluation
from cds_service.facts.analytes import CATALOGUE, A
from cds_service.rules.dosing.calculator import ProtocolDose
from cds_service.rules.mas import eular2016, hlh2004, hscore, trial
from cds_service.rules.mas.common import CriterionResult, SetResult, Status

CHARTED = (A.FERRITIN, A.PLATELETS, A.FIBRINOGEN, A.AST, A.ALT, A.TRIGLYCERIDES, A.TEMPERATURE)
# Lines drawn on the charts: (analyte, threshold in the canonical unit, label, set key).
CHART_THRESHOLDS: tuple[tuple[A, Decimal, str, str], ...] = (
    (A.FERRITIN, eular2016.FERRITIN, "2016 EULAR/ACR/PRINTO > 684", eular2016.KEY),
    (A.FERRITIN, trial.FERRITIN, "Trial definition > 2,000", trial.KEY),
    (A.FERRITIN, hlh2004.FERRITIN, "HLH-2004 ≥ 500", hlh2004.KEY),
    (A.PLATELETS, eular2016.PLATELETS, "2016 EULAR/ACR/PRINTO ≤ 181", eular2016.KEY),
    (A.PLATELETS, hlh2004.PLATELETS, "HLH-2004 < 100", hlh2004.KEY),
    (A.FIBRINOGEN, eular2016.FIBRINOGEN, "2016 EULAR/ACR/PRINTO ≤ 360", eular2016.KEY),
    (A.FIBRINOGEN, hlh2004.FIBRINOGEN, "HLH-2004 ≤ 150", hlh2004.KEY),
    (A.AST, eular2016.AST, "2016 EULAR/ACR/PRINTO > 48", eular2016.KEY),
    (A.AST, trial.TRANSAMINASE, "Trial definition > 120", trial.KEY),
    (A.ALT, trial.TRANSAMINASE, "Trial definition > 120", trial.KEY),
    (A.TRIGLYCERIDES, eular2016.TRIGLYCERIDES, "2016 EULAR/ACR/PRINTO > 156", eular2016.KEY),
    (A.TRIGLYCERIDES, trial.TRIGLYCERIDES, "Trial definition > 265", trial.KEY),
    (A.TEMPERATURE, hlh2004.FEVER_CELSIUS, "HLH-2004 fever ≥ 38.5", hlh2004.KEY),
    (A.TEMPERATURE, hscore.TEMPERATURE[0][0] or Decimal(0), "HScore 38.4", hscore.KEY),
)


def explain(evaluation: MasEvaluation, *, timezone: tzinfo, timezone_name: str) -> dict[str, Any]:
    assessment = evaluation.assessment
    indicator = evaluation.indicator
    window_start = evaluation.now - evaluation.inputs.lab_window
    return {
        "patientId": evaluation.patient_id,
        "asOf": _time(evaluation.now, timezone),
        "timezone": timezone_name,
        "decision": {
            "indicator": indicator,
            "summary": mas_summary(evaluation) if indicator else None,
            "setsMet": [s.key for s in assessment.met_sets],
        },
        "sets": [_set(s, timezone) for s in assessment.sets],
        "trends": _set(assessment.trends, timezone),
        "series": [
            {
                "analyte": analyte.value,
                "name": CATALOGUE[analyte].name,
                "unit": CATALOGUE[analyte].display_unit,
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
                    {"value": float(value), "label": label, "set": key}
                    for charted, value, label, key in CHART_THRESHOLDS
                    if charted is analyte
                ],
            }
            for analyte in CHARTED
        ],
        "missing": [CATALOGUE[analyte].name for analyte, _ in assessment.missing_workup],
        "notUsed": [
            {"source": f"Observation/{s.observation_id}", "analyte": CATALOGUE[s.analyte].name, "reason": s.reason}
            for s in assessment.skipped
        ],
        "dose": _dose(evaluation),
    }


@dataclass(frozen=True)
class DecisiveValue:
    label: str
    value: str  # with its unit, e.g. "8,450 ng/mL"
    time: datetime | None  # UTC
    source: str | None


@dataclass(frozen=True)
class ScreenRow:
    """One worklist row: who would get which card, why, and on which values."""

    patient_id: str
    indicator: str | None
    summary: str | None
    sets_met: tuple[str, ...]
    decisive: tuple[DecisiveValue, ...]


def screen_row(evaluation: MasEvaluation) -> ScreenRow:
    indicator = evaluation.indicator
    assessment = evaluation.assessment
    return ScreenRow(
        patient_id=evaluation.patient_id,
        indicator=indicator,
        summary=mas_summary(evaluation) if indicator else None,
        sets_met=tuple(s.key for s in assessment.met_sets),
        decisive=decisive_values(assessment.met_sets),
    )


def decisive_values(sets: Sequence[SetResult], limit: int = 4) -> tuple[DecisiveValue, ...]:
    """The met items of the met sets that carry a value, one per source, in the sets' order."""
    found: list[DecisiveValue] = []
    seen: set[str] = set()
    for result in sets:
        for item in result.criteria:
            if item.status is not Status.MET or not item.value or item.score_term:
                continue
            key = item.source or item.label
            if key in seen:
                continue
            seen.add(key)
            found.append(DecisiveValue(item.label, item.value, item.time, item.source))
    return tuple(found[:limit])


def _set(result: SetResult, timezone: tzinfo) -> dict[str, Any]:
    return {
        "key": result.key,
        "name": result.name,
        "version": result.version,
        "citation": result.citation,
        "applicable": result.applicable,
        "applicability": result.applicability,
        "validated": result.validated,
        "outcome": result.outcome.value,
        "summary": result.summary,
        "score": {"low": float(result.score[0]), "high": float(result.score[1])} if result.score else None,
        "notes": list(result.notes),
        "criteria": [_criterion(item, timezone) for item in result.criteria],
    }


def _criterion(item: CriterionResult, timezone: tzinfo) -> dict[str, Any]:
    return {
        "key": item.key,
        "label": item.label,
        "status": item.status.value,
        "value": item.value,
        "time": _time(item.time, timezone) if item.time else None,
        "threshold": item.threshold,
        "source": item.source,
        "note": item.note,
        "points": {"low": float(item.points[0]), "high": float(item.points[1])} if item.points else None,
    }


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
