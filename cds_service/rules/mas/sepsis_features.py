"""The seed's sepsis "MAS features" (NCT02780583 narrative, clinical.md §1.4 and §2.6): ferritin > 2,000 ng/mL
with signs of coagulopathy and liver-enzyme elevation — the UAB investigators' summary of the Shakoory 2016
re-analysis (which itself grouped by hepatobiliary dysfunction + DIC, whose exact definitions are UNVERIFIED).

Operational reading (stated on the card): coagulopathy and liver-enzyme elevation as defined by the trial's
own items (fibrinogen < 150 mg/dL or INR > 1.5 or D-dimer > 500 ng/mL; ALT or AST > 120 U/L or > 2 × ULN).
Applies to patients with sepsis coded.
"""

from __future__ import annotations

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Underlying
from cds_service.rules.mas import trial
from cds_service.rules.mas.common import Inputs, SetResult, all_of, lab_criterion, tally

KEY = "sepsis-mas-features"
NAME = "Sepsis with MAS features (NCT02780583 rationale)"
VERSION = "seed-2016"
CITATION = "NCT02780583 description citing Shakoory et al., Crit Care Med 2016;44:275 (clinical.md §1.4, §2.6)"


def evaluate(inputs: Inputs) -> SetResult:
    applicable = inputs.context.has(Underlying.SEPSIS)
    items = [
        lab_criterion("ferritin", "Ferritin", inputs.lab(A.FERRITIN), ">", trial.FERRITIN),
        trial.coagulopathy(inputs),
        trial.liver_enzymes(inputs, key="liver", label="Liver enzymes"),
    ]
    return SetResult(
        KEY,
        NAME,
        VERSION,
        CITATION,
        applicable,
        "sepsis coded" if applicable else "no sepsis coded: not applicable",
        tuple(items),
        all_of([item.status for item in items]),
        f"all three needed: {tally(items)}",
        validated=False,  # the investigators' summary, not a validated criteria set
    )
