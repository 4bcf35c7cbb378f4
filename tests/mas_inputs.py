"""Build criteria Inputs directly from values, and evaluate the rule pack's sets on them (boundary tests)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import ClinicalContext, Evidence, Finding, Underlying
from cds_service.facts.fhir_time import FhirTime
from cds_service.facts.observations import Measurement, Measurements
from cds_service.facts.patient import AgeRange
from cds_service.rulepack import default_pack
from cds_service.rules.mas.common import Inputs, ItemResult, SetResult
from cds_service.rules.mas.engine import evaluate_set
from cds_service.rules.mas.screen import MasAssessment, assess_mas

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PACK = default_pack()


def canonical(analyte: A, value: str | int, unit: str) -> Decimal:
    """A value stated in any accepted unit, converted exactly as a FHIR result would be."""
    return PACK.catalogue[analyte].to_canonical(Decimal(str(value)), unit)


def m(
    analyte: A,
    value: str | int | float | Decimal,
    *,
    hours_ago: float = 2,
    obs_id: str | None = None,
    upper_limit: str | None = None,
) -> Measurement:
    when = NOW - timedelta(hours=hours_ago)
    return Measurement(
        analyte,
        value if isinstance(value, Decimal) else Decimal(str(value)),
        FhirTime(when, when),
        obs_id or f"{analyte.value}-{hours_ago}",
        False,
        str(value),
        upper_limit=Decimal(upper_limit) if upper_limit else None,
    )


def inputs(
    values: dict[A, str | int | float | Decimal] | None = None,
    *,
    series: list[Measurement] | None = None,
    underlying: set[Underlying] | None = None,
    findings: set[Finding] | None = None,
    immunosuppression: bool | None = False,
    age_years: int | None = 30,
    age_days: int | None = None,
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
        (),
        "test",
    )
    days = age_days if age_days is not None else (age_years * 365 + 10 if age_years is not None else None)
    age = AgeRange(days // 365, days // 365) if days is not None else None
    return Inputs(
        Measurements(ordered),
        context,
        NOW,
        PACK.parameters.lab_window,
        PACK.parameters.temperature_window,
        age=age,
        age_days=(days, days) if days is not None else None,
        trend_min_change=PACK.parameters.trend_min_change,
    )


def evaluate(key: str, given: Inputs) -> SetResult:
    definition = next(s for s in PACK.sets if s.key == key)
    return evaluate_set(definition, given, PACK.catalogue)


def assess(given: Inputs) -> MasAssessment:
    return assess_mas(
        given,
        sets=PACK.sets,
        warning_ferritin=PACK.decision.warning_ferritin,
        workup=PACK.workup,
        catalogue=PACK.catalogue,
    )


def _walk(items: list[ItemResult]) -> Iterator[ItemResult]:
    for item in items:
        yield item
        yield from _walk(list(item.parts))


def criterion(result: SetResult, key: str) -> ItemResult:
    roots = [result.result] if result.result is not None else list(result.items)
    return next(item for item in _walk(roots) if item.key == key)
