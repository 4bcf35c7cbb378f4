"""NCT02780583 MAS definition (registry eligibility, clinical.md §1.3), both paths.

Path 1, known sJIA: 2005 preliminary (Ravelli) criteria — ≥ 2 laboratory criteria (platelets ≤ 262 ×10⁹/L,
AST > 59 U/L, WBC ≤ 4.0 ×10⁹/L, fibrinogen ≤ 2.5 g/L) or ≥ 3 of those plus the clinical items (CNS
dysfunction, hemorrhages, hepatomegaly).
Path 2, no sJIA: ferritin > 2,000 ng/mL plus 3 of: bicytopenia (2 of ANC < 1.0 ×10⁹/L, platelets < 100
×10⁹/L, hemoglobin < 9 g/dL — the registry's "mg/dL" is a typo), fasting triglycerides > 265 mg/dL,
splenomegaly, ALT or AST > 120 IU/L (or > 2 × ULN), temperature ≥ 101 °F, fibrinogen < 1.5 g/L or
INR > 1.5 or D-dimer > 500 ng/mL.
Assumptions stated on the card: fasting status of triglycerides is not recorded, so any triglyceride
value is used; the registry gives no FEU/DDU basis for D-dimer, so it is compared as reported.
"""

from __future__ import annotations

from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Finding, Underlying
from cds_service.rules.mas.common import (
    CriterionResult,
    Inputs,
    SetResult,
    Status,
    all_of,
    any_of,
    count_status,
    finding_criterion,
    k_of,
    lab_criterion,
    tally,
)

KEY = "trial"
NAME = "NCT02780583 MAS definition"
VERSION = "registry-2024-08"
CITATION = "NCT02780583 eligibility (registry record; clinical.md §1.3)"

RAVELLI_2005 = {"platelets": Decimal(262), "ast": Decimal(59), "wbc": Decimal("4.0"), "fibrinogen": Decimal(250)}
FERRITIN = Decimal(2000)  # ng/mL, path 2 required
ANC = Decimal("1.0")  # ×10⁹/L ("ANC < 1,000 /µL")
PLATELETS = Decimal(100)  # ×10⁹/L ("< 100,000/mm³")
HEMOGLOBIN = Decimal(9)  # g/dL
TRIGLYCERIDES = Decimal(265)  # mg/dL
TRANSAMINASE = Decimal(120)  # IU/L
FEVER_CELSIUS = (Decimal(101) - 32) * 5 / 9  # ≥ 101 °F, compared exactly (38.33 °C)
FIBRINOGEN = Decimal(150)  # mg/dL (< 1.5 g/L)
INR = Decimal("1.5")
D_DIMER = Decimal(500)  # ng/mL, basis not stated in the registry


def evaluate(inputs: Inputs) -> SetResult:
    if inputs.context.has(Underlying.SJIA):
        return _path_sjia(inputs)
    return _path_no_sjia(inputs)


def _path_sjia(inputs: Inputs) -> SetResult:
    lab = [
        lab_criterion("platelets", "Platelets", inputs.lab(A.PLATELETS), "<=", RAVELLI_2005["platelets"]),
        lab_criterion("ast", "AST", inputs.lab(A.AST), ">", RAVELLI_2005["ast"]),
        lab_criterion("wbc", "WBC", inputs.lab(A.WBC), "<=", RAVELLI_2005["wbc"]),
        lab_criterion(
            "fibrinogen",
            "Fibrinogen",
            inputs.lab(A.FIBRINOGEN),
            "<=",
            RAVELLI_2005["fibrinogen"],
            shown_threshold="≤ 250 mg/dL (2.5 g/L)",
        ),
    ]
    clinical = [
        finding_criterion("cns", "CNS dysfunction", inputs.context, Finding.CNS_DYSFUNCTION),
        finding_criterion("hemorrhage", "Hemorrhages", inputs.context, Finding.HEMORRHAGE),
        finding_criterion("hepatomegaly", "Hepatomegaly", inputs.context, Finding.HEPATOMEGALY),
    ]
    by_lab = count_status(lab, 2)
    combined = count_status(lab + clinical, 3)
    if Status.MET in (by_lab, combined):
        outcome = Status.MET
    elif by_lab is Status.NOT_MET and combined is Status.NOT_MET:
        outcome = Status.NOT_MET
    else:
        outcome = Status.UNKNOWN
    return SetResult(
        KEY,
        NAME + " — sJIA path (2005 preliminary criteria)",
        VERSION,
        CITATION,
        True,
        "known sJIA: registry path 1 (Ravelli 2005 preliminary criteria)",
        tuple(lab + clinical),
        outcome,
        f"≥ 2 laboratory or ≥ 3 combined: laboratory {tally(lab)}; combined {tally(lab + clinical)}",
    )


def _path_no_sjia(inputs: Inputs) -> SetResult:
    ferritin = lab_criterion("ferritin", "Ferritin (required)", inputs.lab(A.FERRITIN), ">", FERRITIN)
    items = [
        k_of(
            "bicytopenia",
            "Bicytopenia",
            [
                lab_criterion("anc", "ANC", inputs.lab(A.ANC), "<", ANC),
                lab_criterion("platelets", "Platelets", inputs.lab(A.PLATELETS), "<", PLATELETS),
                lab_criterion("hemoglobin", "Hb", inputs.lab(A.HEMOGLOBIN), "<", HEMOGLOBIN),
            ],
            2,
            "2 of: ANC < 1.0 ×10⁹/L, platelets < 100 ×10⁹/L, Hb < 9 g/dL",
        ),
        lab_criterion(
            "triglycerides",
            "Triglycerides",
            inputs.lab(A.TRIGLYCERIDES),
            ">",
            TRIGLYCERIDES,
            shown_threshold="> 265 mg/dL (fasting; fasting status not recorded)",
        ),
        finding_criterion("splenomegaly", "Splenomegaly", inputs.context, Finding.SPLENOMEGALY),
        liver_enzymes(inputs, key="transaminases", label="ALT or AST"),
        _fever(inputs),
        coagulopathy(inputs),
    ]
    outcome = all_of([ferritin.status, count_status(items, 3)])
    return SetResult(
        KEY,
        NAME + " — path without sJIA",
        VERSION,
        CITATION,
        True,
        "no sJIA coded: registry path 2 (ferritin > 2,000 plus 3 of 6)",
        (ferritin, *items),
        outcome,
        f"ferritin {ferritin.status.value}; items {tally(items)} (3 needed)",
    )


def liver_enzymes(inputs: Inputs, *, key: str, label: str) -> CriterionResult:
    """Trial item 4: ALT or AST > 120 IU/L, or > 2 × the laboratory's upper limit."""
    return any_of(
        key,
        label,
        [*transaminase_items(inputs, A.ALT, "ALT"), *transaminase_items(inputs, A.AST, "AST")],
        "ALT or AST > 120 U/L, or > 2 × ULN",
    )


def coagulopathy(inputs: Inputs) -> CriterionResult:
    """Trial item 6: fibrinogen < 1.5 g/L, or INR > 1.5, or D-dimer > 500 ng/mL (basis as reported)."""
    return any_of(
        "coagulopathy",
        "Coagulopathy",
        [
            lab_criterion("fibrinogen", "Fibrinogen", inputs.lab(A.FIBRINOGEN), "<", FIBRINOGEN),
            lab_criterion("inr", "INR", inputs.lab(A.INR), ">", INR),
            *d_dimer_items(inputs),
        ],
        "fibrinogen < 150 mg/dL, or INR > 1.5, or D-dimer > 500 ng/mL (basis as reported)",
    )


def transaminase_items(inputs: Inputs, analyte: A, label: str) -> list[CriterionResult]:
    measurement = inputs.lab(analyte)
    parts = [lab_criterion(label.lower(), label, measurement, ">", TRANSAMINASE)]
    if measurement is not None and measurement.upper_limit is not None:
        parts.append(
            lab_criterion(f"{label.lower()}-uln", f"{label} vs 2×ULN", measurement, ">", 2 * measurement.upper_limit)
        )
    return parts


def _fever(inputs: Inputs) -> CriterionResult:
    return lab_criterion(
        "fever",
        "Max temperature (24 h)",
        inputs.max_temperature(),
        ">=",
        FEVER_CELSIUS,
        shown_threshold="≥ 101 °F (38.33 °C)",
    )


def d_dimer_items(inputs: Inputs) -> list[CriterionResult]:
    return [
        lab_criterion(f"d-dimer-{basis}", f"D-dimer {basis.upper()}", inputs.lab(analyte), ">", D_DIMER)
        for basis, analyte in (("feu", A.DDIMER_FEU), ("ddu", A.DDIMER_DDU))
        if inputs.lab(analyte) is not None
    ] or [lab_criterion("d-dimer", "D-dimer", None, ">", D_DIMER, shown_threshold="> 500 ng/mL")]
