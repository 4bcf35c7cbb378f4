"""MedicationRequests with their medication resolved: contained, same Bundle, or (by the caller) FHIR."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from cds_service.facts.medications import DrugCodes, DrugMatch, match_drug
from cds_service.fhir.model import CodeableConcept, Medication, MedicationRequest, Resource, decode_resource

ACTIVE_STATUSES = frozenset({"active", "on-hold"})


def medication_key(reference: str) -> str | None:
    """'Medication/x', an absolute URL ending in Medication/x, or '#x' (contained) -> a lookup key."""
    if reference.startswith("#"):
        return reference
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Medication":
        return f"Medication/{parts[-1]}"
    return None


def medications_by_key(
    resources: Iterable[Resource], full_urls: Iterable[tuple[str, Resource]] = ()
) -> dict[str, Medication]:
    found = {f"Medication/{r.id}": r for r in resources if isinstance(r, Medication) and r.id}
    found.update({url: r for url, r in full_urls if isinstance(r, Medication)})
    return found


def contained_medications(order: MedicationRequest) -> dict[str, Medication]:
    found: dict[str, Medication] = {}
    for raw in order.contained:
        try:
            resource = decode_resource(bytes(raw), Medication)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # contained resources of other types, or malformed: not a medication
        if isinstance(resource, Medication) and resource.id:
            found[f"#{resource.id}"] = resource
    return found


@dataclass(frozen=True)
class ResolvedOrder:
    order: MedicationRequest
    concept: CodeableConcept | None
    unresolved_reference: str | None  # a medicationReference we could not resolve locally
    reference_display: str | None

    @property
    def label(self) -> str:
        return f"MedicationRequest/{self.order.id}" if self.order.id else "MedicationRequest (no id)"

    def anakinra(self, codes: DrugCodes) -> DrugMatch:
        return match_drug(codes.anakinra, [self.concept], [self.reference_display])

    def tnf_inhibitor(self, codes: DrugCodes) -> DrugMatch:
        return match_drug(codes.tnf_inhibitors, [self.concept], [self.reference_display])

    def name(self) -> str:
        if self.concept is not None:
            if self.concept.text:
                return self.concept.text
            for coding in self.concept.coding:
                if coding.display:
                    return coding.display
        return self.reference_display or "medication not named"


def resolve_order(order: MedicationRequest, bundle_medications: Mapping[str, Medication]) -> ResolvedOrder:
    if order.medicationCodeableConcept is not None:
        return ResolvedOrder(order, order.medicationCodeableConcept, None, None)
    reference = order.medicationReference
    if reference is None or not reference.reference:
        display = reference.display if reference else None
        return ResolvedOrder(order, None, None, display)
    key = medication_key(reference.reference)
    local = {**bundle_medications, **contained_medications(order)}
    # By type/id, or by the Bundle entry's fullUrl (e.g. "urn:uuid:..." references between draft orders).
    medication = (local.get(key) if key else None) or local.get(reference.reference)
    if medication is not None:
        return ResolvedOrder(order, medication.code, None, reference.display)
    return ResolvedOrder(order, None, reference.reference, reference.display)


def with_fetched_medication(resolved: ResolvedOrder, medication: Medication) -> ResolvedOrder:
    return ResolvedOrder(resolved.order, medication.code, None, resolved.reference_display)


@dataclass(frozen=True)
class ActiveOrder:
    order_id: str
    name: str
    anakinra: DrugMatch
    tnf: DrugMatch


def extract_active_orders(resources: Iterable[Resource], codes: DrugCodes) -> tuple[ActiveOrder, ...]:
    resources = tuple(resources)
    bundle_medications = medications_by_key(resources)
    active: list[ActiveOrder] = []
    for resource in resources:
        if not isinstance(resource, MedicationRequest) or resource.status not in ACTIVE_STATUSES:
            continue
        resolved = resolve_order(resource, bundle_medications)
        active.append(
            ActiveOrder(resolved.label, resolved.name(), resolved.anakinra(codes), resolved.tnf_inhibitor(codes))
        )
    return tuple(active)
