"""Service `anakinra-dose` (order-select, order-sign): check drafted anakinra orders against NCT02780583."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cds_service.call import HookCall
from cds_service.cards.dose_cards import order_check_card, other_patient_draft_card, safety_cards, worst_first
from cds_service.evaluation.mas import load_rules
from cds_service.facts.analytes import A
from cds_service.facts.medications import read_drafted_dose
from cds_service.facts.observations import extract_measurements
from cds_service.facts.orders import (
    ResolvedOrder,
    extract_active_orders,
    medications_by_key,
    resolve_order,
    with_fetched_medication,
)
from cds_service.facts.patient import extract_patient
from cds_service.fhir.identity import names_other_patient
from cds_service.fhir.model import Medication, MedicationRequest
from cds_service.fhir.prefetch import ServiceData
from cds_service.registry import HandlerResult
from cds_service.rules.dosing.calculator import calculate_protocol_dose
from cds_service.rules.dosing.order_check import check_drafted_order
from cds_service.rules.dosing.safety import assess_anc, assess_comedication, assess_renal
from cds_service.spec.response import Card

SERVICE_VERSION = {"anakinra-dose-service": "2"}


@dataclass(frozen=True)
class DraftAnakinra:
    to_check: list[ResolvedOrder]  # order-select: the selected ones; order-sign: all
    all_drafts: list[ResolvedOrder]
    other_patient: int = 0  # anakinra drafts whose subject is not context.patientId: never checked


async def draft_anakinra(call: HookCall) -> DraftAnakinra:
    """The draft anakinra orders of this call (memoised: the guard and the handler both need it)."""
    cached = call.memo.get("draft_anakinra")
    if isinstance(cached, DraftAnakinra):
        return cached
    drugs = load_rules(call.settings).pack.drugs
    payload = call.context_payload("draftOrders")
    resources = payload.resources if payload is not None else ()
    medications = medications_by_key(resources, payload.full_urls if payload is not None else ())
    anakinra: list[ResolvedOrder] = []
    other_patient = 0
    for order in (r for r in resources if isinstance(r, MedicationRequest)):
        resolved = resolve_order(order, medications)
        if resolved.unresolved_reference is not None:
            resolved = await _fetch_medication(call, resolved)
        if not resolved.anakinra(drugs).matched:
            continue
        if names_other_patient(order, call.patient_id):
            other_patient += 1  # an order for someone else is never checked, nor shown in this chart
            continue
        anakinra.append(resolved)
    to_check = anakinra
    if call.hook == "order-select":
        selected = _selected_ids(call)
        drafted_ids = {r.id for r in resources if isinstance(r, MedicationRequest)}
        # order-select is about the selected orders: another unsigned anakinra order gets no card while
        # the clinician selects, say, paracetamol. Only when the selections name no draft at all (an empty
        # or inconsistent list) is every anakinra draft checked, rather than none.
        if selected & drafted_ids:
            to_check = [r for r in anakinra if r.order.id in selected]
    result = DraftAnakinra(to_check, anakinra, other_patient)
    call.memo["draft_anakinra"] = result
    return result


async def is_anakinra_call(call: HookCall) -> bool:
    """Trigger guard: non-anakinra orders get no cards and cost no FHIR queries."""
    drafts = await draft_anakinra(call)
    return bool(drafts.to_check or drafts.other_patient)


async def handle(call: HookCall, data: ServiceData) -> HandlerResult:
    drafts = await draft_anakinra(call)
    orders = drafts.to_check
    mas_rules = load_rules(call.settings)
    pack = mas_rules.pack
    versions = _versions(pack.rule_versions())
    unchecked = [other_patient_draft_card(drafts.other_patient, call.hook_instance)] if drafts.other_patient else []
    if not orders:
        return HandlerResult(unchecked, versions)
    now = call.now
    parameters = pack.parameters
    patient = extract_patient(data["patient"].resources)
    observations = (*data["weights"].resources, *data["heights"].resources, *data["safety_labs"].resources)
    measurements = extract_measurements(
        observations,
        patient_id=call.patient_id,  # the context's patient: the transport dropped every other patient's data
        now=now,
        catalogue=pack.catalogue,
        future_tolerance=parameters.future_tolerance,
    )
    weight = measurements.latest_any_time(A.WEIGHT)
    rules = mas_rules.dosing
    protocol = calculate_protocol_dose(weight=weight, patient=patient, now=now, rules=rules)

    cards: list[Card] = []
    originals = _original_orders(call)
    for resolved in orders:
        check = check_drafted_order(
            drafted=read_drafted_dose(resolved.order, resolved.concept, pack.drugs),
            protocol=protocol,
            rules=pack.protocol,
            product=pack.product,
            underdose_tolerance=parameters.underdose_tolerance,
        )
        card = order_check_card(
            check,
            order_key=resolved.label,
            order_name=resolved.name(),
            original=originals.get(resolved.order.id or ""),
            hook=call.hook,
            hook_instance=call.hook_instance,
            protocol=pack.protocol,
            template=pack.order,
            zone=mas_rules.zone,
            unused_weights=measurements.skipped_for(A.WEIGHT),
        )
        if card is not None:
            cards.append(card)

    adult = patient.is_adult(now.date(), parameters.adult_age_years) if patient else None
    safety_window = parameters.safety_lab_lookback
    weight_window = rules.weight_max_age_adult if adult else rules.weight_max_age_child
    renal = assess_renal(
        patient=patient,
        adult=adult,
        weight=measurements.latest(A.WEIGHT, now=now, window=weight_window),
        height=measurements.latest(A.HEIGHT, now=now, window=parameters.height_max_age),
        creatinine=measurements.latest(A.CREATININE, now=now, window=safety_window),
        now=now,
        rules=pack.safety,
    )
    anc = assess_anc(measurements.latest(A.ANC, now=now, window=safety_window), pack.safety)
    medications = data["medications"]
    active = extract_active_orders(medications.resources, pack.drugs) if medications.available else None
    drafted = sorted(drafts.all_drafts, key=lambda resolved: resolved.label)
    tnf, duplicate = assess_comedication(
        active,
        checked_ids={resolved.label for resolved in drafted},
        # Two anakinra drafts in one order session duplicate each other.
        other_draft_anakinra=tuple(resolved.name() for resolved in drafted) if len(drafted) > 1 else (),
    )
    cards += safety_cards(
        renal=renal,
        anc=anc,
        tnf=tnf,
        duplicate=duplicate,
        hook_instance=call.hook_instance,
        rules=pack.safety,
        protocol=pack.protocol,
    )
    return HandlerResult(worst_first([*unchecked, *cards]), versions)


def _versions(pack_versions: dict[str, str]) -> dict[str, str]:
    """The audit's rule versions: the rule pack (id, version, content hash) and this service's own version."""
    return {key: value for key, value in pack_versions.items() if not key.startswith("set:")} | SERVICE_VERSION


def _selected_ids(call: HookCall) -> set[str]:
    raw = call.context.get("selections")
    values: Any = orjson.loads(bytes(raw)) if raw is not None else []
    return {value.rsplit("/", 1)[-1] for value in values if isinstance(value, str) and "MedicationRequest/" in value}


def _original_orders(call: HookCall) -> dict[str, dict[str, Any]]:
    """The drafted orders as sent (every field), so a corrected order changes only the dosage."""
    raw = call.context.get("draftOrders")
    if raw is None:
        return {}
    try:
        bundle: Any = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:  # e.g. a number beyond a double (1e309): no original to copy fields from
        return {}
    originals: dict[str, dict[str, Any]] = {}
    for entry in bundle.get("entry", []) if isinstance(bundle, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "MedicationRequest" and resource.get("id"):
            originals[str(resource["id"])] = resource
    return originals


async def _fetch_medication(call: HookCall, resolved: ResolvedOrder) -> ResolvedOrder:
    reference = resolved.unresolved_reference
    if reference is None or reference.startswith("#"):
        return resolved
    relative = "/".join(reference.rstrip("/").split("/")[-2:])
    payload = await call.read(relative)
    medication = next((r for r in payload.resources if isinstance(r, Medication)), None) if payload else None
    return with_fetched_medication(resolved, medication) if medication is not None else resolved
