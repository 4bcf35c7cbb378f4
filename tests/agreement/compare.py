"""Run the product and the independent oracle (tests/independent, written from the papers without reading the
product) over the same generated patients, set by set."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from cds_service.evaluation.mas import MasRules, evaluate_mas, record_from_resources
from cds_service.fhir.identity import names_other_patient
from cds_service.fhir.model import decode_payload
from cds_service.rulepack import default_pack
from tests.independent.generator import Case
from tests.independent.oracle import evaluate as oracle_evaluate

RULES = MasRules(default_pack())
TRIAL_KEYS = ("trial-sjia", "trial-no-sjia")


@dataclass(frozen=True)
class Disagreement:
    index: int  # the case's position in the generated list (names may repeat)
    case: str
    set_key: str  # "indicator" for the card decision
    product: str
    oracle: str


def product_outcomes(case: Case) -> dict[str, str]:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in case.resources]}
    resources = tuple(
        r for r in decode_payload(orjson.dumps(bundle)).resources if not names_other_patient(r, case.patient_id)
    )
    evaluation = evaluate_mas(record_from_resources(case.patient_id, resources), now=case.now, rules=RULES)
    outcomes: dict[str, str] = {}
    for result in evaluation.assessment.sets:
        key = "trial" if result.key in TRIAL_KEYS else result.key
        shown = result.outcome.value if result.applicable else "not applicable"
        if key == "trial" and key in outcomes and shown == "not applicable":
            continue  # one of the two trial paths applies
        outcomes[key] = shown
    outcomes["indicator"] = evaluation.indicator or "none"
    return outcomes


def compare(cases: list[Case]) -> tuple[list[Disagreement], Counter[str]]:
    disagreements: list[Disagreement] = []
    counted: Counter[str] = Counter()
    for index, case in enumerate(cases):
        ours = product_outcomes(case)
        theirs_result = oracle_evaluate(case.resources, case.patient_id, case.now)
        theirs: dict[str, Any] = {**theirs_result.sets, "indicator": theirs_result.indicator or "none"}
        for key, value in theirs.items():
            counted[key] += 1
            if ours.get(key) != value:
                disagreements.append(Disagreement(index, case.name, key, ours.get(key, "missing"), value))
    return disagreements, counted
