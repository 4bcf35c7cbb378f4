"""Trends over the lab window (72 h by default): ferritin rising, platelets or fibrinogen falling.

No criteria set defines a trend threshold; this service calls a change of at least 10 % between the oldest
and the newest value in the window a trend (a design choice, stated on the card). Shown as an adjunct.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from cds_service.facts.analytes import CATALOGUE, A
from cds_service.rules.dosing.calculator import format_amount
from cds_service.rules.mas.common import CriterionResult, Inputs, SetResult, Status, show

KEY = "trends"
NAME = "Trends in the lab window"
VERSION = "design-1"
CITATION = "design choice: ≥ 10 % change between oldest and newest value (no published threshold)"
MIN_CHANGE = Decimal("0.10")
WATCHED = ((A.FERRITIN, "rising"), (A.PLATELETS, "falling"), (A.FIBRINOGEN, "falling"))


def evaluate(inputs: Inputs) -> SetResult:
    items = [_trend(inputs, analyte, direction) for analyte, direction in WATCHED]
    outcome = (
        Status.MET
        if any(i.status is Status.MET for i in items)
        else (Status.UNKNOWN if any(i.status is Status.UNKNOWN for i in items) else Status.NOT_MET)
    )
    hours = int(inputs.lab_window.total_seconds() // 3600)
    return SetResult(
        KEY,
        f"{NAME} ({hours} h)",
        VERSION,
        CITATION,
        True,
        "all patients",
        tuple(items),
        outcome,
        "; ".join(f"{i.label}: {i.value or 'unknown'}" for i in items),
        validated=False,
    )


def _trend(inputs: Inputs, analyte: A, direction: str) -> CriterionResult:
    label = f"{CATALOGUE[analyte].name} {direction}"
    series = inputs.series(analyte)
    threshold = f"{'+' if direction == 'rising' else '−'}{format_amount(MIN_CHANGE * 100)} % or more"
    if len(series) < 2 or series[-1].value == 0:
        return CriterionResult(
            analyte.value, label, Status.UNKNOWN, threshold, note="fewer than 2 values in the window"
        )
    newest, oldest = series[0], series[-1]
    change = (newest.value - oldest.value) / oldest.value
    met = change >= MIN_CHANGE if direction == "rising" else change <= -MIN_CHANGE
    hours = int((newest.when - oldest.when).total_seconds() // 3600)
    sign = "+" if change >= 0 else "−"
    percent = (abs(change) * 100).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    value = f"{show(oldest)} → {show(newest)} ({sign}{percent} % in {hours} h)"
    return CriterionResult(
        analyte.value,
        label,
        Status.MET if met else Status.NOT_MET,
        threshold,
        value,
        newest.when,
        f"Observation/{oldest.observation_id}, Observation/{newest.observation_id}",
    )
