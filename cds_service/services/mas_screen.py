"""Service `mas-screen` (patient-view): MAS criteria sets from FHIR labs, one explained card."""

from __future__ import annotations

from cds_service.call import HookCall
from cds_service.cards.mas_cards import mas_card
from cds_service.evaluation.mas import PatientRecord, evaluate_mas, load_rules
from cds_service.fhir.prefetch import ServiceData
from cds_service.registry import HandlerResult
from cds_service.rules.dosing.protocol import PROTOCOL_VERSION

OPTIONAL_KEYS = {
    "vitals": "temperature and weight",
    "conditions": "conditions (sJIA, Still's, SLE, sepsis, malignancy and coded findings)",
    "medications": "active medications (anakinra, immunosuppression)",
}


async def handle(call: HookCall, data: ServiceData) -> HandlerResult:
    medications = data["medications"]
    record = PatientRecord(
        patient_id=call.patient_id,  # the context's patient: the transport dropped every other patient's data
        patient=data["patient"].resources,
        observations=(*data["labs"].resources, *data["vitals"].resources),
        conditions=data["conditions"].resources,
        medications=medications.resources if medications.available else None,
    )
    evaluation = evaluate_mas(record, now=call.now, rules=load_rules(call.settings))
    assessment = evaluation.assessment
    versions = {s.key: s.version for s in assessment.sets} | {
        assessment.trends.key: assessment.trends.version,
        "anakinra-protocol": PROTOCOL_VERSION,
    }
    card = mas_card(
        evaluation,
        encounter_id=call.context_str("encounterId"),
        hook_instance=call.hook_instance,
        data_notes=_data_notes(data),
    )
    return HandlerResult([card] if card is not None else [], versions)


def _data_notes(data: ServiceData) -> list[str]:
    notes = []
    for key, what in OPTIONAL_KEYS.items():
        item = data[key]
        if not item.available:
            notes.append(
                f"{what} could not be read ({'; '.join(item.notes) or 'unavailable'}); related items are unknown"
            )
        elif not item.complete:
            notes.append(f"{what}: only part of the results could be read ({'; '.join(item.notes)})")
    labs = data["labs"]
    if not labs.complete:
        notes.append(f"labs: only part of the results could be read ({'; '.join(labs.notes)})")
    return notes
