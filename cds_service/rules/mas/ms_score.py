"""MS score for MAS in sJIA (Minoia 2019, Ann Rheum Dis 78:1357; clinical.md §2.4).

MS = 2.44·CNS + 1.54·hemorrhage − 1.30·active arthritis − 0.003·platelets (×10⁹/L) + 0.001·LDH (U/L)
     − 0.004·fibrinogen (mg/dL) + 0.0001·ferritin (ng/mL);  MAS considered at MS ≥ −2.1 (febrile patient with
known or suspected sJIA). The clinical items count only when coded; otherwise the score is a range over
their possible values. Any missing lab makes the score unknown.
"""

from __future__ import annotations

from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Finding
from cds_service.rules.mas.common import (
    CriterionResult,
    Inputs,
    SetResult,
    Status,
    score_status,
    show,
    stills_population,
)

KEY = "ms-score"
NAME = "MS score (sJIA)"
VERSION = "Minoia-2019"
CITATION = "Minoia F et al., Ann Rheum Dis 2019;78:1357 (clinical.md §2.4)"
CUTOFF = Decimal("-2.1")
CNS = Decimal("2.44")
HEMORRHAGE = Decimal("1.54")
ARTHRITIS = Decimal("-1.30")
LAB_COEFFICIENTS = {
    A.PLATELETS: Decimal("-0.003"),
    A.LDH: Decimal("0.001"),
    A.FIBRINOGEN: Decimal("-0.004"),
    A.FERRITIN: Decimal("0.0001"),
}


def evaluate(inputs: Inputs) -> SetResult:
    applicable, population = stills_population(inputs.context)
    criteria: list[CriterionResult] = []
    low = high = Decimal(0)
    for key, label, coefficient, finding in (
        ("cns", "CNS dysfunction", CNS, Finding.CNS_DYSFUNCTION),
        ("hemorrhage", "Hemorrhage", HEMORRHAGE, Finding.HEMORRHAGE),
    ):
        evidence = inputs.context.findings.get(finding)
        if evidence is not None:
            low += coefficient
            high += coefficient
            criteria.append(
                CriterionResult(
                    key,
                    label,
                    Status.MET,
                    f"× {coefficient}",
                    evidence.text,
                    source=evidence.resource,
                    points=(coefficient, coefficient),
                )
            )
        else:
            high += coefficient
            criteria.append(
                CriterionResult(
                    key, label, Status.UNKNOWN, f"× {coefficient}", note="not coded", points=(Decimal(0), coefficient)
                )
            )
    low += ARTHRITIS  # active arthritis is never coded here: 0 or 1
    criteria.append(
        CriterionResult(
            "arthritis",
            "Active arthritis",
            Status.UNKNOWN,
            f"× {ARTHRITIS}",
            note="not read from the record",
            points=(ARTHRITIS, Decimal(0)),
        )
    )
    missing = False
    for analyte, coefficient in LAB_COEFFICIENTS.items():
        measurement = inputs.lab(analyte)
        label = analyte.value.capitalize() if analyte is not A.LDH else "LDH"
        if measurement is None:
            missing = True
            criteria.append(
                CriterionResult(
                    analyte.value,
                    label,
                    Status.UNKNOWN,
                    f"× {format_signed(coefficient)}",
                    note="no result in the window",
                    score_term=True,
                )
            )
            continue
        contribution = coefficient * measurement.value
        low += contribution
        high += contribution
        criteria.append(
            CriterionResult(
                analyte.value,
                label,
                Status.MET,
                f"× {format_signed(coefficient)}",
                show(measurement),
                measurement.when,
                f"Observation/{measurement.observation_id}",
                measurement.conversion_note,
                (contribution, contribution),
                score_term=True,
            )
        )
    if missing:
        outcome, summary, score = Status.UNKNOWN, "labs missing: score not computed", None
    else:
        outcome = score_status(low, high, CUTOFF)
        shown = format_signed(low) if low == high else f"{format_signed(low)} to {format_signed(high)}"
        summary, score = f"MS {shown} (MAS considered at ≥ −2.1)", (low, high)
    return SetResult(
        KEY,
        NAME,
        VERSION,
        CITATION,
        applicable,
        population,
        tuple(criteria),
        outcome,
        summary,
        score=score,
    )


def format_signed(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.0001")).normalize() if abs(value) < 1 else value.quantize(Decimal("0.01"))
    return f"{rounded:f}".replace("-", "−")
