"""Run every criteria set of the rule pack and decide what the patient-view card says (pack.yaml `decision`):

- MAS likely: any applicable set whose role is "validated" is met -> critical card;
- suggestive but undecided: the latest ferritin reaches the pack's warning threshold (HLH-2004's ferritin, the
  lowest ferritin criterion of any set), or an applicable adjunct set is met -> warning card;
- otherwise no card. Display-only sets (trends) never decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cds_service.facts.analytes import A, Catalogue
from cds_service.facts.observations import Measurement, SkippedResult
from cds_service.rules.mas.common import Inputs, SetResult, Status
from cds_service.rules.mas.definitions import CriteriaSet, Threshold
from cds_service.rules.mas.engine import compare, evaluate_set


@dataclass(frozen=True)
class WorkupGroup:
    """One order of the MAS work-up (the pack's workup.yaml)."""

    key: str
    label: str
    order_code: str  # LOINC
    order_display: str
    requirements: tuple[tuple[A, ...], ...]  # each needs a result of one of its analytes
    for_sets: tuple[str, ...]  # offered only when one of these sets applies (empty: always)


@dataclass(frozen=True)
class MasAssessment:
    sets: tuple[SetResult, ...]
    likely: bool
    suggestive: bool
    warning_ferritin: Measurement | None  # the ferritin that reached the warning threshold, if it did
    met_sets: tuple[SetResult, ...]  # validated first, then adjuncts
    missing_workup: tuple[WorkupGroup, ...]
    skipped: tuple[SkippedResult, ...]

    def by_key(self, key: str) -> SetResult:
        return next(result for result in self.sets if result.key == key)


def assess_mas(
    inputs: Inputs,
    *,
    sets: Sequence[CriteriaSet],
    warning_ferritin: Threshold,
    workup: Sequence[WorkupGroup],
    catalogue: Catalogue,
) -> MasAssessment:
    results = tuple(evaluate_set(definition, inputs, catalogue) for definition in sets)
    met = [r for r in results if r.outcome is Status.MET and r.definition.role != "display"]
    validated = tuple(r for r in met if r.validated)
    adjuncts = tuple(r for r in met if not r.validated)
    ferritin = inputs.lab(A.FERRITIN)
    high_ferritin = ferritin if ferritin is not None and compare(ferritin.value, warning_ferritin) else None
    return MasAssessment(
        sets=results,
        likely=bool(validated),
        suggestive=bool(validated or adjuncts or high_ferritin),
        warning_ferritin=high_ferritin,
        met_sets=validated + adjuncts,
        missing_workup=_missing(workup, inputs, {r.key for r in results if r.applicable}),
        skipped=inputs.measurements.skipped,
    )


def _missing(workup: Sequence[WorkupGroup], inputs: Inputs, applicable: set[str]) -> tuple[WorkupGroup, ...]:
    return tuple(
        group
        for group in workup
        if (not group.for_sets or applicable.intersection(group.for_sets))
        and any(inputs.latest_of(alternatives) is None for alternatives in group.requirements)
    )
