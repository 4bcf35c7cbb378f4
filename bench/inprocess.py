"""In-process cost of the MAS screen and the dose check against prefetch size, split into phases:
decode (envelope + prefetch -> typed resources), rules (facts + criteria / dose arithmetic),
cards (card and FHIR-resource building, with fhir.resources validation), encode (response JSON)."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from bench.workloads import NOW, order_select, patient_view
from cds_service.cards.dose_cards import order_check_card, safety_cards
from cds_service.cards.mas_cards import AnakinraPlan, mas_card
from cds_service.facts.analytes import A
from cds_service.facts.conditions import extract_clinical_context
from cds_service.facts.medications import read_drafted_dose
from cds_service.facts.observations import extract_measurements
from cds_service.facts.orders import extract_active_orders, resolve_order
from cds_service.facts.patient import extract_patient
from cds_service.fhir.model import MedicationRequest, decode_payload
from cds_service.rules.dosing.calculator import calculate_protocol_dose
from cds_service.rules.dosing.order_check import check_drafted_order
from cds_service.rules.dosing.safety import assess_anc, assess_comedication, assess_renal
from cds_service.rules.mas.common import Inputs
from cds_service.rules.mas.screen import assess_mas
from cds_service.services.settings_view import dosing_rules, underdose_tolerance
from cds_service.settings import Settings
from cds_service.spec.response import CdsResponse
from cds_service.transport.envelope import decode_envelope

SETTINGS = Settings(sandbox=True, gc_freeze=False)
PHASES = ("decode", "rules", "cards", "encode")


def _mas(raw: bytes, clock: Callable[[], float]) -> dict[str, float]:
    marks = [clock()]
    envelope = decode_envelope(raw)
    assert envelope.prefetch is not None
    data = {key: decode_payload(bytes(value)).resources for key, value in envelope.prefetch.items()}
    marks.append(clock())
    patient = extract_patient(data["patient"])
    measurements = extract_measurements((*data["labs"], *data["vitals"]), patient_id="adult-sepsis-mas-82kg", now=NOW)
    context = extract_clinical_context(data["conditions"], data["medications"], now=NOW)
    inputs = Inputs(measurements, context, NOW, timedelta(hours=72), timedelta(hours=24), 16000)
    assessment = assess_mas(inputs)
    dose = calculate_protocol_dose(
        weight=measurements.latest_any_time(A.WEIGHT), patient=patient, now=NOW, rules=dosing_rules(SETTINGS)
    )
    marks.append(clock())
    card = mas_card(
        assessment,
        inputs,
        plan=AnakinraPlan(dose, None, None, True),
        patient_id="p",
        encounter_id=None,
        hook_instance=envelope.hookInstance,
        data_notes=(),
    )
    marks.append(clock())
    CdsResponse(cards=[card] if card else []).to_json()
    marks.append(clock())
    return {phase: marks[i + 1] - marks[i] for i, phase in enumerate(PHASES)}


def _dose(raw: bytes, clock: Callable[[], float]) -> dict[str, float]:
    marks = [clock()]
    envelope = decode_envelope(raw)
    assert envelope.prefetch is not None
    data = {key: decode_payload(bytes(value)).resources for key, value in envelope.prefetch.items()}
    drafts = decode_payload(bytes(envelope.context["draftOrders"])).resources
    original = orjson.loads(bytes(envelope.context["draftOrders"]))["entry"][0]["resource"]
    marks.append(clock())
    order = next(r for r in drafts if isinstance(r, MedicationRequest))
    resolved = resolve_order(order, {})
    patient = extract_patient(data["patient"])
    measurements = extract_measurements(
        (*data["weights"], *data["heights"], *data["safety_labs"]), patient_id="adult-sepsis-mas-82kg", now=NOW
    )
    protocol = calculate_protocol_dose(
        weight=measurements.latest_any_time(A.WEIGHT), patient=patient, now=NOW, rules=dosing_rules(SETTINGS)
    )
    check = check_drafted_order(
        drafted=read_drafted_dose(resolved.order), protocol=protocol, underdose_tolerance=underdose_tolerance(SETTINGS)
    )
    window = timedelta(days=7)
    renal = assess_renal(
        patient=patient,
        adult=True,
        weight=measurements.latest(A.WEIGHT, now=NOW, window=window),
        height=None,
        creatinine=measurements.latest(A.CREATININE, now=NOW, window=window),
        now=NOW,
    )
    anc = assess_anc(measurements.latest(A.ANC, now=NOW, window=window))
    tnf, duplicate = assess_comedication(
        extract_active_orders(data["medications"]), checked_ids=set(), other_draft_anakinra=()
    )
    marks.append(clock())
    cards = [
        order_check_card(
            check,
            order_label="MedicationRequest/x",
            original=original,
            hook="order-select",
            hook_instance=envelope.hookInstance,
        )
    ]
    cards += safety_cards(renal=renal, anc=anc, tnf=tnf, duplicate=duplicate, hook_instance=envelope.hookInstance)
    marks.append(clock())
    CdsResponse(cards=[c for c in cards if c is not None]).to_json()
    marks.append(clock())
    return {phase: marks[i + 1] - marks[i] for i, phase in enumerate(PHASES)}


def measure(kind: str, observations: int, *, min_runs: int = 15, min_seconds: float = 1.0) -> dict[str, Any]:
    raw = orjson.dumps(patient_view(observations) if kind == "mas-screen" else order_select(observations))
    run = _mas if kind == "mas-screen" else _dose
    run(raw, time.perf_counter)  # warm-up (lazy validators, caches)
    samples: list[dict[str, float]] = []
    started = time.perf_counter()
    gc.collect()
    while len(samples) < min_runs or time.perf_counter() - started < min_seconds:
        samples.append(run(raw, time.perf_counter))
        if len(samples) >= 400:
            break
    totals = sorted(sum(s.values()) for s in samples)
    row: dict[str, Any] = {
        "service": kind,
        "observations": observations,
        "body_kib": len(raw) // 1024,
        "runs": len(samples),
        "median_ms": statistics.median(totals) * 1000,
        "p95_ms": totals[min(len(totals) - 1, int(len(totals) * 0.95))] * 1000,
    }
    for phase in PHASES:
        row[f"{phase}_ms"] = statistics.median(s[phase] for s in samples) * 1000
    return row
