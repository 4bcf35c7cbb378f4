"""Conditions (and coded findings) -> underlying diseases, clinical findings, immunosuppression.

Which code means which disease or finding is the rule pack's (conditions.yaml and its value sets). Findings that
labs cannot show (splenomegaly, hepatomegaly, hemorrhage, CNS dysfunction, hemophagocytosis) count only when
coded; otherwise they are *unknown*, never "absent". Inactive, resolved, refuted or entered-in-error conditions
never count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from cds_service.facts.fhir_time import parse_fhir_time
from cds_service.facts.valuesets import ValueSet
from cds_service.fhir.model import CodeableConcept, Condition, MedicationRequest, Observation, Resource

INACTIVE_CLINICAL = frozenset({"inactive", "remission", "resolved"})
NOT_TRUE = frozenset({"refuted", "entered-in-error"})
ACTIVE_ORDER = frozenset({"active", "on-hold"})


class Underlying(Enum):
    """Underlying diseases the rules name (keys of the pack's conditions.yaml)."""

    SJIA = "sjia"
    AOSD = "aosd"
    SLE = "sle"
    EBV = "ebv"
    MALIGNANCY = "malignancy"
    SEPSIS = "sepsis"
    HIV = "hiv"
    HLH = "hlh"


class Finding(Enum):
    """Clinical findings the rules name (keys of the pack's conditions.yaml)."""

    SPLENOMEGALY = "splenomegaly"
    HEPATOMEGALY = "hepatomegaly"
    HEMORRHAGE = "hemorrhage"
    CNS_DYSFUNCTION = "cns-dysfunction"
    HEMOPHAGOCYTOSIS = "hemophagocytosis"


@dataclass(frozen=True)
class NamedValueSet:
    name: str  # for people, e.g. "systemic JIA"
    valueset: ValueSet
    known_when_inactive: bool = False  # a chronic diagnosis: known even in remission (never when refuted)


@dataclass(frozen=True)
class ConditionCodes:
    underlying: Mapping[Underlying, NamedValueSet]
    findings: Mapping[Finding, NamedValueSet]
    immunosuppressants: ValueSet
    long_term: timedelta  # HScore "known" immunosuppression: ordered at least this long ago


@dataclass(frozen=True)
class Evidence:
    resource: str  # e.g. "Condition/c1"
    text: str


@dataclass(frozen=True)
class ClinicalContext:
    underlying: dict[Underlying, Evidence]
    findings: dict[Finding, Evidence]
    immunosuppression: bool | None  # None: cannot tell (medication list missing, or only recent orders)
    immunosuppression_evidence: tuple[str, ...]  # resources behind the answer (orders, HIV condition)
    immunosuppression_reason: str  # a stable reason code, worded by presentation

    def has(self, disease: Underlying) -> bool:
        return disease in self.underlying


def _codes(concept: CodeableConcept | None) -> list[tuple[str | None, str | None]]:
    if concept is None:
        return []
    return [(coding.system, coding.code) for coding in concept.coding]


def _is_true(condition: Condition) -> bool:
    return not ({code for _, code in _codes(condition.verificationStatus)} & NOT_TRUE)


def _is_active(condition: Condition) -> bool:
    return not ({code for _, code in _codes(condition.clinicalStatus)} & INACTIVE_CLINICAL)


def _text(concept: CodeableConcept | None) -> str:
    if concept is None:
        return "coded condition"
    return concept.text or next((c.display for c in concept.coding if c.display), None) or "coded condition"


def classify_concept(
    concept: CodeableConcept | None, codes: ConditionCodes, *, active: bool = True
) -> tuple[set[Underlying], set[Finding]]:
    """What a coded concept says; an inactive one names only the chronic diagnoses that stay known."""
    diseases: set[Underlying] = set()
    findings: set[Finding] = set()
    pairs = _codes(concept)
    for disease, named in codes.underlying.items():
        if (active or named.known_when_inactive) and any(named.valueset.contains(s, c) for s, c in pairs):
            diseases.add(disease)
    if active:
        for finding, named in codes.findings.items():
            if any(named.valueset.contains(system, code) for system, code in pairs):
                findings.add(finding)
    return diseases, findings


def extract_clinical_context(
    conditions: Iterable[Resource],
    medications: Iterable[Resource] | None,
    *,
    now: datetime,
    codes: ConditionCodes,
) -> ClinicalContext:
    underlying: dict[Underlying, Evidence] = {}
    findings: dict[Finding, Evidence] = {}
    for resource in conditions:
        concept = None
        active = True
        if isinstance(resource, Condition) and _is_true(resource):
            concept, active = resource.code, _is_active(resource)
        elif isinstance(resource, Observation) and resource.status in ("final", "amended", "corrected"):
            concept = resource.code  # a coded finding recorded as an Observation
        if concept is None:
            continue
        diseases, found = classify_concept(concept, codes, active=active)
        evidence = Evidence(f"{type(resource).__name__}/{resource.id}", _text(concept))
        for disease in diseases:
            underlying.setdefault(disease, evidence)
        for finding in found:
            findings.setdefault(finding, evidence)
    immunosuppression, sources, reason = _immunosuppression(underlying, medications, now, codes)
    return ClinicalContext(underlying, findings, immunosuppression, sources, reason)


def _immunosuppression(
    underlying: dict[Underlying, Evidence], medications: Iterable[Resource] | None, now: datetime, codes: ConditionCodes
) -> tuple[bool | None, tuple[str, ...], str]:
    """(known immunosuppression?, the resources behind it, a reason code)."""
    if Underlying.HIV in underlying:
        return True, (underlying[Underlying.HIV].resource,), "hiv"
    if medications is None:
        return None, (), "medication-list-unavailable"
    recent: list[str] = []
    for resource in medications:
        if not isinstance(resource, MedicationRequest) or resource.status not in ACTIVE_ORDER:
            continue
        concept = resource.medicationCodeableConcept
        names = [concept.text] if concept and concept.text else []
        names += [c.display for c in concept.coding if c.display] if concept else []
        if resource.medicationReference and resource.medicationReference.display:
            names.append(resource.medicationReference.display)
        if codes.immunosuppressants.text_match(names) is None:
            continue
        authored = parse_fhir_time(resource.authoredOn)
        if authored is not None and authored.latest <= now - codes.long_term:
            return True, (f"MedicationRequest/{resource.id}",), "long-term-immunosuppressant"
        recent.append(f"MedicationRequest/{resource.id}")
    if recent:
        return None, tuple(recent), "only-recent-immunosuppressants"
    return False, (), "none"
