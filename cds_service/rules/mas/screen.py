"""Run every criteria set and decide what the patient-view card says.

- MAS likely: any applicable *validated* set met (trial definition, 2016 EULAR/ACR/PRINTO, HLH-2004,
  HScore ≥ 169 at its lowest possible value, MS score) -> critical card.
- Suggestive but undecided: ferritin ≥ 500 ng/mL (the lowest ferritin criterion, HLH-2004) or any
  applicable adjunct met, without a validated set met -> warning card listing what to order.
- Otherwise nothing is suggestive -> no card.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.observations import SkippedResult
from cds_service.rules.mas import eular2016, ferritin_esr, hlh2004, hscore, ms_score, sepsis_features, trends, trial
from cds_service.rules.mas.common import Inputs, SetResult, Status

SETS = (trial, eular2016, hlh2004, hscore, ms_score, ferritin_esr, sepsis_features)
SUGGESTIVE_FERRITIN = Decimal(500)  # ng/mL, HLH-2004 criterion 7: the lowest ferritin threshold of any set
# The MAS work-up, in the order a card lists what is missing (preferred LOINC order codes, clinical.md §4).
WORKUP: tuple[tuple[A, str], ...] = (
    (A.FERRITIN, "2276-4"),
    (A.PLATELETS, "777-3"),
    (A.WBC, "6690-2"),
    (A.ANC, "751-8"),
    (A.HEMOGLOBIN, "718-7"),
    (A.AST, "1920-8"),
    (A.ALT, "1742-6"),
    (A.LDH, "2532-0"),
    (A.TRIGLYCERIDES, "2571-8"),
    (A.FIBRINOGEN, "3255-7"),
    (A.DDIMER_FEU, "48065-7"),
    (A.INR, "6301-6"),
    (A.ESR, "4537-7"),
    (A.CRP, "1988-5"),
)
SHORT_NAMES = {
    trial.KEY: "trial criteria",
    eular2016.KEY: "2016 EULAR/ACR/PRINTO criteria",
    hlh2004.KEY: "HLH-2004 criteria",
    hscore.KEY: "HScore ≥ 169",
    ms_score.KEY: "MS score",
}


@dataclass(frozen=True)
class MasAssessment:
    sets: tuple[SetResult, ...]
    trends: SetResult
    likely: bool
    suggestive: bool
    met_sets: tuple[SetResult, ...]
    missing_workup: tuple[tuple[A, str], ...]
    skipped: tuple[SkippedResult, ...]

    def short_name_of_first_met(self) -> str | None:
        return SHORT_NAMES.get(self.met_sets[0].key) if self.met_sets else None


def assess_mas(inputs: Inputs) -> MasAssessment:
    sets = tuple(module.evaluate(inputs) for module in SETS)
    met = tuple(s for s in sets if s.applicable and s.outcome is Status.MET)
    likely = any(s.validated for s in met)
    ferritin = inputs.lab(A.FERRITIN)
    high_ferritin = ferritin is not None and ferritin.value >= SUGGESTIVE_FERRITIN
    missing = tuple((analyte, code) for analyte, code in WORKUP if not _has(inputs, analyte))
    return MasAssessment(
        sets=sets,
        trends=trends.evaluate(inputs),
        likely=likely,
        suggestive=likely or high_ferritin or bool(met),
        met_sets=tuple(s for s in met if s.validated) + tuple(s for s in met if not s.validated),
        missing_workup=missing,
        skipped=inputs.measurements.skipped,
    )


def _has(inputs: Inputs, analyte: A) -> bool:
    if analyte is A.DDIMER_FEU:
        return inputs.lab(A.DDIMER_FEU) is not None or inputs.lab(A.DDIMER_DDU) is not None
    return inputs.lab(analyte) is not None
