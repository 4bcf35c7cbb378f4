"""HLH-2004 diagnostic criteria (Henter 2007; clinical.md §2.2): ≥ 5 of 8.

Fever is read as ≥ 38.5 °C (common restatement; the original says "fever"). Cytopenias: ≥ 2 of Hb < 9 g/dL
(< 10 g/dL under 4 weeks of age), platelets < 100 ×10⁹/L, neutrophils < 1.0 ×10⁹/L. Triglycerides ≥ 265 mg/dL
and/or fibrinogen ≤ 150 mg/dL. Ferritin ≥ 500 ng/mL. Splenomegaly and hemophagocytosis only when coded.
NK-cell activity and soluble CD25 have no verified LOINC code in the reference: always unknown, and the card
says these items need the laboratory's own report. A molecular diagnosis is not read.
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
    any_of,
    count_status,
    finding_criterion,
    k_of,
    lab_criterion,
    tally,
)

KEY = "hlh2004"
NAME = "HLH-2004 diagnostic criteria"
VERSION = "Henter-2007"
CITATION = "Henter JI et al., Pediatr Blood Cancer 2007 (HLH-2004; clinical.md §2.2)"
FEVER_CELSIUS = Decimal("38.5")
HEMOGLOBIN = Decimal(9)
HEMOGLOBIN_NEWBORN = Decimal(10)  # infants < 4 weeks
NEWBORN_DAYS = 28
PLATELETS = Decimal(100)
ANC = Decimal("1.0")
TRIGLYCERIDES = Decimal(265)
FIBRINOGEN = Decimal(150)
FERRITIN = Decimal(500)


def evaluate(inputs: Inputs) -> SetResult:
    newborn = inputs.age_days is not None and inputs.age_days < NEWBORN_DAYS
    hb_limit = HEMOGLOBIN_NEWBORN if newborn else HEMOGLOBIN
    items = [
        lab_criterion("fever", "Fever (max temperature)", inputs.max_temperature(), ">=", FEVER_CELSIUS),
        finding_criterion("splenomegaly", "Splenomegaly", inputs.context, Finding.SPLENOMEGALY),
        k_of(
            "cytopenias",
            "Cytopenias (≥ 2 of 3)",
            [
                lab_criterion("hemoglobin", "Hb", inputs.lab(A.HEMOGLOBIN), "<", hb_limit),
                lab_criterion("platelets", "Platelets", inputs.lab(A.PLATELETS), "<", PLATELETS),
                lab_criterion("anc", "ANC", inputs.lab(A.ANC), "<", ANC),
            ],
            2,
            f"2 of: Hb < {hb_limit} g/dL, platelets < 100 ×10⁹/L, ANC < 1.0 ×10⁹/L",
        ),
        any_of(
            "tg-fibrinogen",
            "Triglycerides and/or fibrinogen",
            [
                lab_criterion("triglycerides", "TG", inputs.lab(A.TRIGLYCERIDES), ">=", TRIGLYCERIDES),
                lab_criterion("fibrinogen", "Fibrinogen", inputs.lab(A.FIBRINOGEN), "<=", FIBRINOGEN),
            ],
            "TG ≥ 265 mg/dL and/or fibrinogen ≤ 150 mg/dL",
        ),
        finding_criterion("hemophagocytosis", "Hemophagocytosis", inputs.context, Finding.HEMOPHAGOCYTOSIS),
        CriterionResult(
            "nk",
            "NK-cell activity low/absent",
            Status.UNKNOWN,
            "per local laboratory",
            note="no verified LOINC code: read the laboratory report",
        ),
        lab_criterion("ferritin", "Ferritin", inputs.lab(A.FERRITIN), ">=", FERRITIN),
        CriterionResult(
            "scd25",
            "Soluble CD25",
            Status.UNKNOWN,
            "≥ 2,400 U/mL",
            note="no verified LOINC code: read the laboratory report",
        ),
    ]
    return SetResult(
        KEY,
        NAME,
        VERSION,
        CITATION,
        True,
        "all patients",
        tuple(items),
        count_status(items, 5),
        f"{tally(items)} (5 needed); NK activity and sCD25 cannot be read from coded labs",
    )
