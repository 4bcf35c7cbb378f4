"""2016 EULAR/ACR/PRINTO classification criteria for MAS in sJIA (Ravelli 2016; clinical.md §2.1).

A febrile patient with known or suspected sJIA: ferritin > 684 ng/mL plus any 2 of platelets ≤ 181 ×10⁹/L,
AST > 48 U/L, triglycerides > 156 mg/dL, fibrinogen ≤ 360 mg/dL. Sensitivity 0.73, specificity 0.99.
Applied also to adult-onset Still's disease (one disease, EULAR/PReS 2024), where its specificity is lower
(70 %, clinical.md §2.8); the card says so. "Febrile" is read as a maximum temperature ≥ 38.0 °C in the
temperature window (the criteria give no number: a stated assumption).
"""

from __future__ import annotations

from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Underlying
from cds_service.rules.mas.common import (
    Inputs,
    SetResult,
    all_of,
    count_status,
    lab_criterion,
    stills_population,
    tally,
)

KEY = "eular2016"
NAME = "2016 EULAR/ACR/PRINTO MAS classification (sJIA)"
VERSION = "Ravelli-2016"
CITATION = "Ravelli AM et al., Ann Rheum Dis 2016;75:481 (clinical.md §2.1)"
FERRITIN = Decimal(684)
PLATELETS = Decimal(181)
AST = Decimal(48)
TRIGLYCERIDES = Decimal(156)
FIBRINOGEN = Decimal(360)
FEBRILE_CELSIUS = Decimal(38)  # assumption: the criteria say "febrile" without a number


def evaluate(inputs: Inputs) -> SetResult:
    applicable, population = stills_population(inputs.context)
    fever = lab_criterion(
        "febrile",
        "Febrile (max temperature)",
        inputs.max_temperature(),
        ">=",
        FEBRILE_CELSIUS,
        shown_threshold="≥ 38.0 °C (assumption: 'febrile')",
    )
    ferritin = lab_criterion("ferritin", "Ferritin (required)", inputs.lab(A.FERRITIN), ">", FERRITIN)
    items = [
        lab_criterion("platelets", "Platelets", inputs.lab(A.PLATELETS), "<=", PLATELETS),
        lab_criterion("ast", "AST", inputs.lab(A.AST), ">", AST),
        lab_criterion("triglycerides", "Triglycerides", inputs.lab(A.TRIGLYCERIDES), ">", TRIGLYCERIDES),
        lab_criterion("fibrinogen", "Fibrinogen", inputs.lab(A.FIBRINOGEN), "<=", FIBRINOGEN),
    ]
    outcome = all_of([fever.status, ferritin.status, count_status(items, 2)])
    notes: tuple[str, ...] = ()
    if inputs.context.has(Underlying.AOSD) and not inputs.context.has(Underlying.SJIA):
        notes = ("Applied to adult-onset Still's disease: specificity there is about 70 % (clinical.md §2.8).",)
    return SetResult(
        KEY,
        NAME,
        VERSION,
        CITATION,
        applicable,
        population,
        (fever, ferritin, *items),
        outcome,
        f"febrile {fever.status.value}, ferritin {ferritin.status.value}, items {tally(items)} (2 needed)",
        notes=notes,
    )
