"""Which resources are about the patient of the call. `context.patientId` is the truth (CDS Hooks 2.0
§Hook context): a resource that names another patient is never used, whatever key it arrived under.

A resource with no patient reference at all is kept: it came from a search by this patient, and an
absent `subject` is not evidence of another patient. A Patient resource must carry this patient's id.
"""

from __future__ import annotations

from cds_service.fhir.model import Condition, MedicationRequest, Observation, Patient, Reference, Resource

# A tuple made once: `Observation | Condition | MedicationRequest` would build a new union on every call,
# and this runs for every prefetched resource.
_ABOUT_A_SUBJECT = (Observation, Condition, MedicationRequest)


def names_other_patient(resource: Resource, patient_id: str) -> bool:
    if isinstance(resource, Patient):
        return resource.id != patient_id
    if isinstance(resource, _ABOUT_A_SUBJECT):
        return not reference_is_patient(resource.subject, patient_id)
    return False  # Medication, OperationOutcome: about no patient


def reference_is_patient(reference: Reference | None, patient_id: str) -> bool:
    """True when the reference is absent or points at Patient/<patient_id> (relative, absolute, versioned)."""
    if reference is None or not reference.reference:
        return True
    if reference.reference == "Patient/" + patient_id and "/" not in patient_id:
        return True  # the usual relative form, without splitting (this runs for every prefetched resource)
    parts = reference.reference.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2:] == ["Patient", patient_id]
