"""Ferritin/ESR ratio > 21.5 (Eloseily 2019, ACR Open Rheumatol 1:345; clinical.md §2.5).

A screening adjunct for sJIA-MAS (sensitivity 82 %, specificity 78 %): shown, but not enough on its own for
"MAS likely". Undefined when ESR is 0.
"""

from __future__ import annotations

from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.rules.dosing.calculator import format_amount
from cds_service.rules.mas.common import (
    CriterionResult,
    Inputs,
    SetResult,
    Status,
    show,
    stills_population,
)

KEY = "ferritin-esr"
NAME = "Ferritin/ESR ratio (sJIA screening adjunct)"
VERSION = "Eloseily-2019"
CITATION = "Eloseily EM et al., ACR Open Rheumatol 2019;1:345 (clinical.md §2.5)"
CUTOFF = Decimal("21.5")


def evaluate(inputs: Inputs) -> SetResult:
    applicable, population = stills_population(inputs.context)
    ferritin = inputs.lab(A.FERRITIN)
    esr = inputs.lab(A.ESR)
    if ferritin is None or esr is None or esr.value == 0:
        reason = "ESR is 0: ratio undefined" if esr is not None and esr.value == 0 else "ferritin and ESR both needed"
        item = CriterionResult("ratio", "Ferritin ÷ ESR", Status.UNKNOWN, "> 21.5", note=reason)
    else:
        ratio = ferritin.value / esr.value
        item = CriterionResult(
            "ratio",
            "Ferritin ÷ ESR",
            Status.MET if ratio > CUTOFF else Status.NOT_MET,
            "> 21.5",
            f"{format_amount(ratio)} ({show(ferritin)} ÷ {show(esr)})",
            min(ferritin.when, esr.when),
            f"Observation/{ferritin.observation_id}, Observation/{esr.observation_id}",
        )
    return SetResult(
        KEY,
        NAME,
        VERSION,
        CITATION,
        applicable,
        population,
        (item,),
        item.status,
        f"ratio {item.value or 'unknown'}",
        validated=False,
    )
