"""Service `mas-screen` (patient-view): MAS criteria sets from FHIR labs, one explained card."""

from __future__ import annotations

from cds_service.call import HookCall
from cds_service.cards.mas_cards import mas_card
from cds_service.evaluation.mas import PatientRecord, evaluate_mas, load_rules
from cds_service.fhir.prefetch import ServiceData
from cds_service.registry import HandlerResult

OPTIONAL_KEYS = {"vitals": "vital signs", "conditions": "conditions", "medications": "medications"}


async def handle(call: HookCall, data: ServiceData) -> HandlerResult:
    medications = data["medications"]
    record = PatientRecord(
        patient_id=call.patient_id,  # the context's patient: the transport dropped every other patient's data
        patient=data["patient"].resources,
        observations=(*data["labs"].resources, *data["vitals"].resources),
        conditions=data["conditions"].resources,
        medications=medications.resources if medications.available else None,
    )
    rules = load_rules(call.settings)
    evaluation = evaluate_mas(record, now=call.now, rules=rules)
    card = mas_card(
        evaluation,
        encounter_id=call.context_str("encounterId"),
        hook_instance=call.hook_instance,
        data_notes=_data_notes(data),
        app_url=call.app_launch_url,
    )
    return HandlerResult([card] if card is not None else [], rules.pack.rule_versions())


def _data_notes(data: ServiceData) -> list[str]:
    """Short notes for the card on data that could not be read (the details stay in the audit and the log)."""
    notes = [f"{what} could not be read" for key, what in OPTIONAL_KEYS.items() if not data[key].available]
    notes += [
        f"{what} only partly read"
        for key, what in OPTIONAL_KEYS.items()
        if data[key].available and not data[key].complete
    ]
    if not data["labs"].complete:
        notes.append("labs only partly read")
    return notes
