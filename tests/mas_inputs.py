"""Build criteria Inputs directly from values (canonical units), for boundary tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import ClinicalContext, Evidence, Finding, Underlying
from cds_service.facts.fhir_time import FhirTime
from cds_service.facts.observations import Measurement, Measurements
from cds_service.rules.mas.common import CriterionResult, Inputs, SetResult

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def m(
    analyte: A,
    value: str | int | float,
    *,
    hours_ago: float = 2,
    obs_id: str | None = None,
    upper_limit: str | None = None,
) -> Measurement:
    when = NOW - timedelta(hours=hours_ago)
    return Measurement(
        analyte,
        Decimal(str(value)),
        FhirTime(when, when),
        obs_id or f"{analyte.value}-{hours_ago}",
        False,
        str(value),
        upper_limit=Decimal(upper_limit) if upper_limit else None,
    )


def inputs(
    values: dict[A, str | int | float] | None = None,
    *,
    series: list[Measurement] | None = None,
    underlying: set[Underlying] | None = None,
    findings: set[Finding] | None = None,
    immunosuppression: bool | None = False,
    age_days: int | None = 20 * 365,
) -> Inputs:
    found: dict[A, list[Measurement]] = {}
    for analyte, value in (values or {}).items():
        found.setdefault(analyte, []).append(m(analyte, value))
    for measurement in series or []:
        found.setdefault(measurement.analyte, []).append(measurement)
    ordered = {k: tuple(sorted(v, key=lambda x: x.when, reverse=True)) for k, v in found.items()}
    evidence = Evidence("Condition/c", "coded")
    context = ClinicalContext(
        {u: evidence for u in underlying or set()},
        {f: evidence for f in findings or set()},
        immunosuppression,
        "test",
    )
    return Inputs(Measurements(ordered), context, NOW, timedelta(hours=72), timedelta(hours=24), age_days)


def criterion(result: SetResult, key: str) -> CriterionResult:
    return next(c for c in result.criteria if c.key == key)
