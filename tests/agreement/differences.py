"""The stated, cited choices where the product and the independent oracle legitimately differ.

Each entry names the choice, says which side the product takes and why, and recognises the disagreements it
explains from the case's own resources. Any disagreement no entry explains fails the agreement test: it is a bug
in one of the two, to be fixed (or, after review, written down here with its reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.agreement.compare import Disagreement
from tests.independent.generator import Case

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def _codes(case: Case, kind: str) -> set[str]:
    return {
        coding.get("code", "")
        for resource in case.resources
        if resource.get("resourceType") == kind
        for coding in (resource.get("code") or {}).get("coding", [])
    }


def _observations(case: Case, *loinc: str) -> list[dict[str, Any]]:
    return [
        r
        for r in case.resources
        if r.get("resourceType") == "Observation"
        and any(c.get("code") in loinc for c in (r.get("code") or {}).get("coding", []))
    ]


def _stills_without_sjia(case: Case) -> bool:
    codes = _codes(case, "Condition")
    return any(c.startswith("M06.1") for c in codes) and not any(
        c.startswith("M08.2") or c == "201796004" for c in codes
    )


def _value(observation: dict[str, Any]) -> Decimal | None:
    quantity = observation.get("valueQuantity") or {}
    return Decimal(str(quantity["value"])) if "value" in quantity else None


@dataclass(frozen=True)
class Difference:
    key: str
    choice: str
    applies: Callable[[Disagreement, Case], bool]


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "ms-score-ferritin-esr-sjia-only",
        "MS score (Minoia 2019) and ferritin/ESR (Eloseily 2019) were derived in sJIA only; the product applies them "
        "to coded sJIA, the oracle to Still's disease at any age (EULAR/PReS 2024). The 2016 criteria, validated in "
        "adult-onset Still's disease too, apply to both in the product.",
        lambda d, case: (
            d.set_key in ("ms-score", "ferritin-esr") and d.product == "not applicable" and _stills_without_sjia(case)
        ),
    ),
    Difference(
        "ferritin-esr-at-21.5",
        'Eloseily 2019 gives "a ratio of 21.5" without a sign; the product reads "> 21.5" (clinical.md §2.5), the '
        'oracle "≥ 21.5". Only a ratio of exactly 21.5 differs.',
        lambda d, case: (
            d.set_key == "ferritin-esr"
            and (d.product, d.oracle) == ("not met", "met")
            and any(
                (f := _value(ferr)) is not None and (e := _value(esr)) not in (None, 0) and f / e == Decimal("21.5")
                for ferr in _observations(case, "2276-4", "20567-4", "24373-3")
                for esr in _observations(case, "4537-7", "30341-2")
            )
        ),
    ),
    Difference(
        "zero-is-implausible",
        "The pack's gross-error limits make ferritin below 0.1 ng/mL implausible (a value, not a threshold): such a "
        "result is unreadable and, when newest, leaves the item unknown. The oracle takes 0 as a value.",
        lambda d, case: any(_value(o) == 0 for o in _observations(case, "2276-4", "20567-4", "24373-3", "14723-1")),
    ),
    Difference(
        "hemophagocytosis-with-malignancy",
        'HLH-2004 criterion 5 adds "no evidence of malignancy"; the oracle then reads the item as not met, the product '
        "never reads a clinical finding as absent (it stays unknown, and a coded malignancy already bars the trial "
        "definition and the anakinra suggestion).",
        lambda d, case: (
            d.set_key in ("hlh2004", "hscore") and any(c.startswith("C") for c in _codes(case, "Condition"))
        ),
    ),
    Difference(
        "transaminases-without-uln",
        'The trial\'s "ALT or AST > 120 IU/L (or > 2 × ULN)": without a reported reference range the product lets the '
        "fixed 120 IU/L decide (a stated assumption of the pack); the oracle leaves the item unknown.",
        lambda d, case: (
            d.set_key in ("trial", "sepsis-mas-features")
            and (d.product, d.oracle) == ("not met", "unknown")
            and any("referenceRange" not in o for o in _observations(case, "1742-6", "1920-8", "30239-8", "88112-8"))
        ),
    ),
    Difference(
        "hlh2004-triglycerides-in-mmol",
        'Henter 2007 states triglycerides "≥ 3.0 mmol/L (i.e. ≥ 265 mg/dL)"; the product compares in mmol/L, the '
        "paper's primary unit (265.0-265.7 mg/dL is 2.99 mmol/L: not met); the oracle compares a mg/dL value with 265.",
        lambda d, case: (
            d.set_key in ("hlh2004", "indicator")
            and any(
                (v := _value(o)) is not None
                and (o["valueQuantity"].get("code") or o["valueQuantity"].get("unit")) in ("mg/dL", "g/L")
                and Decimal(265) <= (v * 100 if o["valueQuantity"].get("code") == "g/L" else v) < Decimal("265.71")
                for o in _observations(case, "2571-8", "3043-7")
            )
        ),
    ),
    Difference(
        "date-only-times",
        "A result dated by day only is an interval; the product uses it when the whole day lies in the window (its "
        "earliest instant), the oracle never uses a date-only result.",
        lambda d, case: any(len(str(o.get("effectiveDateTime", "x" * 20))) == 10 for o in _observations(case, *_ALL)),
    ),
    Difference(
        "ucum-spelling-without-code",
        "A quantity whose unit text is an exact UCUM spelling (or a listed alias) but carries no code: the product "
        "reads the text (unambiguous), the oracle requires the coded UCUM unit.",
        lambda d, case: any(
            "code" not in (o.get("valueQuantity") or {}) and (o.get("valueQuantity") or {}).get("unit")
            for o in _observations(case, *_ALL)
        ),
    ),
    Difference(
        "molar-units",
        "Ferritin in pmol/L (conventional 2.247 pmol/L per ng/mL) and hemoglobin in mmol/L (monomer, 0.6206) are "
        "converted by the pack, with a note on every converted value; the oracle refuses both units.",
        lambda d, case: any(
            (o.get("valueQuantity") or {}).get("code") in ("pmol/L", "mmol/L")
            for o in _observations(case, "14723-1", "2276-4", "718-7", "59260-0")
        ),
    ),
    Difference(
        "empty-medication-list",
        "A medication search that answered with no orders means no immunosuppressant is ordered (HScore item: no); "
        "only an unavailable list is unknown. The oracle reads a record with no MedicationRequest at all as unknown.",
        lambda d, case: (
            d.set_key == "hscore"
            and (d.product, d.oracle) == ("not met", "unknown")
            and not any(r.get("resourceType") == "MedicationRequest" for r in case.resources)
        ),
    ),
    Difference(
        "temperature-site-75987-8",
        "LOINC 75987-8 is not in the VSAC Body Temperature value set the pack follows; the oracle counts it.",
        lambda d, case: bool(_observations(case, "75987-8")),
    ),
)
_ALL = (
    "2276-4",
    "20567-4",
    "24373-3",
    "14723-1",
    "777-3",
    "26515-7",
    "718-7",
    "6690-2",
    "751-8",
    "1920-8",
    "1742-6",
    "2571-8",
    "3255-7",
    "4537-7",
    "30341-2",
    "2532-0",
    "6301-6",
    "48065-7",
    "48066-5",
)


def explain(disagreement: Disagreement, case: Case, same_case: list[Disagreement]) -> str | None:
    """The key of the stated difference that explains this disagreement, or None."""
    for difference in DIFFERENCES:
        if difference.applies(disagreement, case):
            return difference.key
    if disagreement.set_key == "indicator":
        # The card follows from the sets: explained when a set that differs for a stated reason decided it.
        for other in same_case:
            if other.set_key != "indicator" and "met" in (other.product, other.oracle):
                reason = explain(other, case, [])
                if reason is not None:
                    return reason
    return None
