"""Service `mas-screen` (patient-view): MAS criteria sets from FHIR labs, one explained card."""

from __future__ import annotations

from datetime import timedelta

from cds_service.call import HookCall
from cds_service.cards.mas_cards import AnakinraPlan, mas_card
from cds_service.facts.analytes import A
from cds_service.facts.conditions import Underlying, extract_clinical_context
from cds_service.facts.observations import extract_measurements
from cds_service.facts.orders import extract_active_orders
from cds_service.facts.patient import extract_patient
from cds_service.fhir.prefetch import ServiceData
from cds_service.registry import HandlerResult
from cds_service.rules.dosing.calculator import calculate_protocol_dose
from cds_service.rules.dosing.protocol import PROTOCOL_VERSION
from cds_service.rules.mas.common import Inputs
from cds_service.rules.mas.screen import assess_mas
from cds_service.services.settings_view import dosing_rules

OPTIONAL_KEYS = {
    "vitals": "temperature and weight",
    "conditions": "conditions (sJIA, Still's, SLE, sepsis, malignancy and coded findings)",
    "medications": "active medications (anakinra, immunosuppression)",
}


async def handle(call: HookCall, data: ServiceData) -> HandlerResult:
    settings = call.settings
    now = call.now
    patient_id = call.patient_id  # the context's patient: the transport dropped every other patient's data
    patient = extract_patient(data["patient"].resources)
    measurements = extract_measurements(
        (*data["labs"].resources, *data["vitals"].resources), patient_id=patient_id, now=now
    )
    medications = data["medications"]
    context = extract_clinical_context(
        data["conditions"].resources, medications.resources if medications.available else None, now=now
    )
    birth = patient.birth if patient else None
    inputs = Inputs(
        measurements=measurements,
        context=context,
        now=now,
        lab_window=timedelta(hours=settings.lab_lookback_hours),
        temperature_window=timedelta(hours=settings.temperature_lookback_hours),
        age_days=(now.date() - birth[0]).days if birth else None,
    )
    assessment = assess_mas(inputs)
    versions = {s.key: s.version for s in assessment.sets} | {
        assessment.trends.key: assessment.trends.version,
        "anakinra-protocol": PROTOCOL_VERSION,
    }
    if not assessment.suggestive:
        return HandlerResult([], versions)
    active = extract_active_orders(medications.resources) if medications.available else ()
    on_anakinra = next((order.order_id for order in active if order.anakinra.matched), None)
    malignancy = context.underlying.get(Underlying.MALIGNANCY)
    plan = AnakinraPlan(
        dose=calculate_protocol_dose(
            weight=measurements.latest_any_time(A.WEIGHT), patient=patient, now=now, rules=dosing_rules(settings)
        ),
        already_on_anakinra=on_anakinra,
        malignancy=f"{malignancy.text}, {malignancy.resource}" if malignancy else None,
        medication_list_available=medications.available,
    )
    card = mas_card(
        assessment,
        inputs,
        plan=plan,
        patient_id=patient_id,
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
