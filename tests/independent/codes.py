"""Which coded Conditions and medication orders the criteria recognise. See DECISIONS.md "Codes"."""

from __future__ import annotations

from collections.abc import Callable

from tests.independent.fhir_facts import ICD10CM, RXNORM, SNOMED, ConditionFact, MedicationFact

EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
NOT_ACTIVE_CLINICAL = frozenset({"inactive", "remission", "resolved"})


def _icd(code: str) -> str:
    return code.upper().replace(".", "")


def is_sjia(system: str, code: str) -> bool:
    return (system == ICD10CM and _icd(code).startswith("M082")) or (system == SNOMED and code == "201796004")


def is_aosd(system: str, code: str) -> bool:
    return system == ICD10CM and _icd(code).startswith("M061")


def is_sepsis(system: str, code: str) -> bool:
    if system == ICD10CM:
        return _icd(code).startswith(("A40", "A41", "R652"))
    return system == SNOMED and code in {"91302008", "76571007", "770349000"}


def is_hiv(system: str, code: str) -> bool:
    return system == ICD10CM and _icd(code).startswith("B20")


def is_malignancy(system: str, code: str) -> bool:
    """ICD-10-CM C00-C96 (the chapter's malignant neoplasm blocks, including C4A, C7A and C7B)."""
    if system != ICD10CM:
        return False
    icd = _icd(code)
    if len(icd) < 3 or icd[0] != "C":
        return False
    head = icd[1:3]
    if head in {"4A", "7A", "7B"}:
        return True
    return head.isdigit() and 0 <= int(head) <= 96


def is_splenomegaly(system: str, code: str) -> bool:
    return (system == ICD10CM and _icd(code) in {"R161", "R162"}) or (system == SNOMED and code == "16294009")


def is_hepatomegaly(system: str, code: str) -> bool:
    return (system == ICD10CM and _icd(code) in {"R160", "R162"}) or (system == SNOMED and code == "80515008")


def is_hemorrhage(system: str, code: str) -> bool:
    return (system == ICD10CM and _icd(code) == "R58") or (system == SNOMED and code == "131148009")


def is_cns_dysfunction(system: str, code: str) -> bool:
    """The papers' list: irritability, disorientation, lethargy, seizures, coma."""
    if system == ICD10CM:
        icd = _icd(code)
        return icd.startswith(("R56", "R402")) or icd in {"R400", "R410", "R454"}
    return system == SNOMED and code in {"91175000", "371632003", "62476001", "214264003", "55929007"}


def _verified(condition: ConditionFact) -> bool:
    return condition.verification_status not in EXCLUDED_VERIFICATION


def has_diagnosis(conditions: list[ConditionFact], matcher: Callable[[str, str], bool], *, active_only: bool) -> bool:
    """A coded diagnosis. `active_only` drops inactive/remission/resolved ones (a current episode is needed)."""
    for condition in conditions:
        if not _verified(condition):
            continue
        if active_only and condition.clinical_status in NOT_ACTIVE_CLINICAL:
            continue
        if any(matcher(system, code) for system, code in condition.codes):
            return True
    return False


IMMUNOSUPPRESSANT_RXNORM = frozenset(
    {
        "8640",  # prednisone
        "8638",  # prednisolone
        "6902",  # methylprednisolone
        "3264",  # dexamethasone
        "5492",  # hydrocortisone
        "3008",  # cyclosporine
        "1256",  # azathioprine
        "42316",  # tacrolimus
        "68149",  # mycophenolate mofetil
        "6851",  # methotrexate
        "3002",  # cyclophosphamide
    }
)
IMMUNOSUPPRESSANT_NAMES = (
    "prednisone",
    "prednisolone",
    "dexamethasone",
    "hydrocortisone",
    "cyclosporin",
    "ciclosporin",
    "azathioprine",
    "tacrolimus",
    "mycophenol",
    "methotrexate",
    "cyclophosphamide",
)


def medication_kind(medication: MedicationFact) -> bool | None:
    """True: an immunosuppressant; False: something else; None: the drug cannot be identified."""
    if any(system == RXNORM and code in IMMUNOSUPPRESSANT_RXNORM for system, code in medication.codes):
        return True
    if any(name in text.lower() for text in medication.names for name in IMMUNOSUPPRESSANT_NAMES):
        return True
    if medication.codes or medication.names:
        return False
    return None
