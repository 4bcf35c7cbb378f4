"""Three-valued criteria: every item is met, not met or unknown, and carries what it was decided on.

Missing data is never "not met". A rule "k of n" is met when k items are met, not met when even
counting every unknown item as met could not reach k, and unknown otherwise.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from cds_service.facts.analytes import CATALOGUE, A
from cds_service.facts.conditions import ClinicalContext, Finding, Underlying
from cds_service.facts.observations import Measurement, Measurements
from cds_service.rules.dosing.calculator import format_amount


class Status(Enum):
    MET = "met"
    NOT_MET = "not met"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CriterionResult:
    key: str
    label: str
    status: Status
    threshold: str
    value: str | None = None  # canonical unit, e.g. "8450 ng/mL"
    time: datetime | None = None
    source: str | None = None  # e.g. "Observation/abc"
    note: str | None = None
    points: tuple[Decimal, Decimal] | None = None  # scores: (lowest, highest) possible contribution
    score_term: bool = False  # a term of a linear score (shown as "term", not "met")


@dataclass(frozen=True)
class SetResult:
    key: str
    name: str
    version: str
    citation: str
    applicable: bool
    applicability: str
    criteria: tuple[CriterionResult, ...]
    outcome: Status
    summary: str
    validated: bool = True  # counts toward "MAS likely" (screening adjuncts do not)
    score: tuple[Decimal, Decimal] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inputs:
    """What the criteria read: latest values within the windows, and the clinical context."""

    measurements: Measurements
    context: ClinicalContext
    now: datetime
    lab_window: timedelta
    temperature_window: timedelta
    age_days: int | None = None

    def lab(self, analyte: A) -> Measurement | None:
        return self.measurements.latest(analyte, now=self.now, window=self.lab_window)

    def max_temperature(self) -> Measurement | None:
        values = self.measurements.within(A.TEMPERATURE, now=self.now, window=self.temperature_window)
        return max(values, key=lambda m: m.value) if values else None

    def series(self, analyte: A) -> tuple[Measurement, ...]:
        return self.measurements.within(analyte, now=self.now, window=self.lab_window)


Comparison = Callable[[Decimal, Decimal], bool]
OPS: dict[str, Comparison] = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
SYMBOL = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}


def show(measurement: Measurement) -> str:
    unit = CATALOGUE[measurement.analyte].display_unit
    text = f"{format_amount(measurement.value)} {unit}".strip()
    if measurement.preliminary:
        text += " (preliminary)"
    return text


def lab_criterion(
    key: str,
    label: str,
    measurement: Measurement | None,
    op: str,
    threshold: Decimal,
    *,
    shown_threshold: str | None = None,
) -> CriterionResult:
    unit = ""
    if measurement is not None:
        unit = CATALOGUE[measurement.analyte].display_unit
    threshold_text = shown_threshold or f"{SYMBOL[op]} {format_amount(threshold)} {unit}".strip()
    if measurement is None:
        return CriterionResult(key, label, Status.UNKNOWN, threshold_text, note="no result in the window")
    met = OPS[op](measurement.value, threshold)
    return CriterionResult(
        key,
        label,
        Status.MET if met else Status.NOT_MET,
        threshold_text,
        show(measurement),
        measurement.when,
        f"Observation/{measurement.observation_id}",
        measurement.conversion_note,
    )


def finding_criterion(key: str, label: str, context: ClinicalContext, finding: Finding) -> CriterionResult:
    evidence = context.findings.get(finding)
    if evidence is None:
        return CriterionResult(
            key,
            label,
            Status.UNKNOWN,
            "clinical finding",
            note="not coded in the record: unknown (a clinician must assess)",
        )
    return CriterionResult(key, label, Status.MET, "clinical finding", evidence.text, source=evidence.resource)


def any_of(key: str, label: str, parts: Sequence[CriterionResult], threshold: str) -> CriterionResult:
    """An item met by any of its parts (e.g. 'ALT or AST > 120')."""
    statuses = [p.status for p in parts]
    if Status.MET in statuses:
        status = Status.MET
    elif Status.UNKNOWN in statuses:
        status = Status.UNKNOWN
    else:
        status = Status.NOT_MET
    shown = [p for p in parts if p.status is Status.MET] or [p for p in parts if p.value] or list(parts)
    return CriterionResult(
        key,
        label,
        status,
        threshold,
        "; ".join(f"{p.label} {p.value}" for p in shown if p.value) or None,
        next((p.time for p in shown if p.time), None),
        ", ".join(p.source for p in shown if p.source) or None,
        "; ".join(p.note for p in parts if p.note and p.status is Status.UNKNOWN) or None,
    )


def k_of(key: str, label: str, parts: Sequence[CriterionResult], k: int, threshold: str) -> CriterionResult:
    """An item met when at least k parts are met (e.g. bicytopenia: 2 of 3 lineages)."""
    status = count_status(parts, k)
    met = [p for p in parts if p.status is Status.MET]
    return CriterionResult(
        key,
        label,
        status,
        threshold,
        "; ".join(f"{p.label} {p.value}" for p in met) or None,
        next((p.time for p in met if p.time), None),
        ", ".join(p.source for p in met if p.source) or None,
        f"{len(met)} met, {sum(p.status is Status.UNKNOWN for p in parts)} unknown",
    )


def count_status(parts: Sequence[CriterionResult], k: int) -> Status:
    met = sum(p.status is Status.MET for p in parts)
    unknown = sum(p.status is Status.UNKNOWN for p in parts)
    if met >= k:
        return Status.MET
    if met + unknown < k:
        return Status.NOT_MET
    return Status.UNKNOWN


def all_of(statuses: Sequence[Status]) -> Status:
    if all(s is Status.MET for s in statuses):
        return Status.MET
    if any(s is Status.NOT_MET for s in statuses):
        return Status.NOT_MET
    return Status.UNKNOWN


def score_status(low: Decimal, high: Decimal, cutoff: Decimal) -> Status:
    """A score known only as a range: met when even its lowest value reaches the cutoff."""
    if low >= cutoff:
        return Status.MET
    if high < cutoff:
        return Status.NOT_MET
    return Status.UNKNOWN


def stills_population(context: ClinicalContext) -> tuple[bool, str]:
    """The sJIA / Still's disease sets (2016 criteria, MS score, ferritin/ESR): applicable, and why."""
    applicable = context.has(Underlying.SJIA) or context.has(Underlying.AOSD)
    return applicable, (
        "known sJIA / Still's disease" if applicable else "no sJIA or Still's disease coded: not applicable"
    )


def tally(parts: Sequence[CriterionResult]) -> str:
    met = sum(p.status is Status.MET for p in parts)
    unknown = sum(p.status is Status.UNKNOWN for p in parts)
    return f"{met} met, {unknown} unknown of {len(parts)}"
