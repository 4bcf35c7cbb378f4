"""Conditions (and coded findings) -> underlying diseases, clinical findings, immunosuppression.

Underlying-disease codes: clinical.md §5 (ICD-10-CM and SNOMED CT, verified there unless noted).
Findings that labs cannot show (splenomegaly, hepatomegaly, hemorrhage, CNS dysfunction,
hemophagocytosis) count only when coded; otherwise they are *unknown*, never "absent". Their ICD-10-CM
codes (R16.x, R58, R56.9, R40.2-, R41.0) are standard tabular codes not listed in clinical.md
(UNVERIFIED there). HLH/MAS SNOMED codes were not found in the reference and are not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from cds_service.facts.fhir_time import parse_fhir_time
from cds_service.fhir.model import CodeableConcept, Condition, MedicationRequest, Observation, Resource

ICD10 = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
SNOMED = "http://snomed.info/sct"
INACTIVE_CLINICAL = frozenset({"inactive", "remission", "resolved"})
NOT_TRUE = frozenset({"refuted", "entered-in-error"})


class Underlying(Enum):
    SJIA = "systemic JIA"
    AOSD = "adult-onset Still's disease"
    SLE = "systemic lupus erythematosus"
    EBV = "EBV infection"
    MALIGNANCY = "malignancy"
    SEPSIS = "sepsis"
    HIV = "HIV infection"
    HLH = "HLH / MAS (coded)"


class Finding(Enum):
    SPLENOMEGALY = "splenomegaly"
    HEPATOMEGALY = "hepatomegaly"
    HEMORRHAGE = "hemorrhage"
    CNS_DYSFUNCTION = "CNS dysfunction"
    HEMOPHAGOCYTOSIS = "hemophagocytosis"


# (ICD-10 prefixes, SNOMED codes) per disease. Prefix match covers the child codes (M08.2-, M32.-, B27.0-).
UNDERLYING_CODES: dict[Underlying, tuple[tuple[str, ...], frozenset[str]]] = {
    Underlying.SJIA: (("M08.2",), frozenset({"201796004"})),
    Underlying.AOSD: (("M06.1",), frozenset()),
    Underlying.SLE: (("M32.1", "M32.8", "M32.9"), frozenset({"55464009"})),  # M32.0 drug-induced left out
    Underlying.EBV: (("B27.0",), frozenset()),
    # ICD-10-CM chapter 2 malignant neoplasms C00-C96 (tabular; prefix "C"), checked as a range below.
    Underlying.MALIGNANCY: ((), frozenset()),
    # A41.9 / A40-A41 / R65.2- are UNVERIFIED in clinical.md §5.1 (standard ICD-10-CM); SNOMED verified.
    Underlying.SEPSIS: (("A40", "A41", "R65.2"), frozenset({"91302008", "76571007", "770349000"})),
    Underlying.HIV: (("B20",), frozenset()),  # B20 HIV disease (ICD-10-CM tabular; UNVERIFIED in clinical.md)
    Underlying.HLH: (("D76.1", "D76.2"), frozenset()),
}
FINDING_CODES: dict[Finding, tuple[str, ...]] = {
    Finding.SPLENOMEGALY: ("R16.1", "R16.2"),
    Finding.HEPATOMEGALY: ("R16.0", "R16.2"),
    Finding.HEMORRHAGE: ("R58",),
    Finding.CNS_DYSFUNCTION: ("R56.9", "R40.2", "R41.0"),
    Finding.HEMOPHAGOCYTOSIS: (),  # no verified code: stays unknown unless a future code set adds one
}
MALIGNANT = re.compile(r"^C(\d{2})")

IMMUNOSUPPRESSANT = re.compile(
    r"\b(prednis(olone|one)|methylprednisolone|dexamethasone|hydrocortisone|budesonide|"
    r"cyclosporin[e]?|ciclosporin|azathioprine|tacrolimus|mycophenol\w*|methotrexate|cyclophosphamide|"
    r"sirolimus|everolimus|leflunomide)\b",
    re.IGNORECASE,
)
# HScore asks for *known* (long-term) immunosuppression; an order this recent may be MAS treatment itself.
LONG_TERM = timedelta(days=30)


@dataclass(frozen=True)
class Evidence:
    resource: str  # e.g. "Condition/c1"
    text: str


@dataclass(frozen=True)
class ClinicalContext:
    underlying: dict[Underlying, Evidence]
    findings: dict[Finding, Evidence]
    immunosuppression: bool | None  # None: cannot tell (medication list missing, or only recent orders)
    immunosuppression_note: str

    def has(self, disease: Underlying) -> bool:
        return disease in self.underlying


def _codes(concept: CodeableConcept | None) -> list[tuple[str, str]]:
    if concept is None:
        return []
    return [(coding.system or "", coding.code) for coding in concept.coding if coding.code]


def _is_current(condition: Condition) -> bool:
    clinical = {code for _, code in _codes(condition.clinicalStatus)}
    verification = {code for _, code in _codes(condition.verificationStatus)}
    return not (clinical & INACTIVE_CLINICAL) and not (verification & NOT_TRUE)


def _text(concept: CodeableConcept | None) -> str:
    if concept is None:
        return "coded condition"
    return concept.text or next((c.display for c in concept.coding if c.display), None) or "coded condition"


def classify_concept(concept: CodeableConcept | None) -> tuple[set[Underlying], set[Finding]]:
    diseases: set[Underlying] = set()
    findings: set[Finding] = set()
    for system, code in _codes(concept):
        if system in ICD10:
            for disease, (prefixes, _) in UNDERLYING_CODES.items():
                if code.startswith(prefixes) and prefixes:
                    diseases.add(disease)
            malignant = MALIGNANT.match(code)
            if malignant and int(malignant.group(1)) <= 96:
                diseases.add(Underlying.MALIGNANCY)
            for finding, finding_codes in FINDING_CODES.items():
                if finding_codes and code.startswith(finding_codes):
                    findings.add(finding)
        elif system == SNOMED:
            for disease, (_, snomed) in UNDERLYING_CODES.items():
                if code in snomed:
                    diseases.add(disease)
    return diseases, findings


def extract_clinical_context(
    conditions: Iterable[Resource],
    medications: Iterable[Resource] | None,
    *,
    now: datetime,
) -> ClinicalContext:
    underlying: dict[Underlying, Evidence] = {}
    findings: dict[Finding, Evidence] = {}
    for resource in conditions:
        concept = None
        if isinstance(resource, Condition) and _is_current(resource):
            concept = resource.code
        elif isinstance(resource, Observation) and resource.status in ("final", "amended", "corrected"):
            concept = resource.code  # a coded finding recorded as an Observation
        if concept is None:
            continue
        diseases, found = classify_concept(concept)
        evidence = Evidence(f"{type(resource).__name__}/{resource.id}", _text(concept))
        for disease in diseases:
            underlying.setdefault(disease, evidence)
        for finding in found:
            findings.setdefault(finding, evidence)
    immunosuppression, note = _immunosuppression(underlying, medications, now)
    return ClinicalContext(underlying, findings, immunosuppression, note)


def _immunosuppression(
    underlying: dict[Underlying, Evidence], medications: Iterable[Resource] | None, now: datetime
) -> tuple[bool | None, str]:
    if Underlying.HIV in underlying:
        return True, f"HIV ({underlying[Underlying.HIV].resource})"
    if medications is None:
        return None, "medication list unavailable"
    recent: list[str] = []
    for resource in medications:
        if not isinstance(resource, MedicationRequest) or resource.status not in ("active", "on-hold"):
            continue
        concept = resource.medicationCodeableConcept
        names = [concept.text] if concept and concept.text else []
        names += [c.display for c in concept.coding if c.display] if concept else []
        names += (
            [resource.medicationReference.display]
            if resource.medicationReference and resource.medicationReference.display
            else []
        )
        match = next((m for m in (IMMUNOSUPPRESSANT.search(n) for n in names) if m), None)
        if match is None:
            continue
        authored = parse_fhir_time(resource.authoredOn)
        if authored is not None and authored.latest <= now - LONG_TERM:
            return True, f"long-term {match.group(0)} (MedicationRequest/{resource.id})"
        recent.append(f"{match.group(0)} (MedicationRequest/{resource.id}, started within 30 days or date unknown)")
    if recent:
        return None, "only recent immunosuppressants, possibly MAS treatment: " + "; ".join(recent)
    return False, "no immunosuppressant among active orders, no HIV coded"
