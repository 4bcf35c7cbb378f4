"""Sandbox endpoints behind the web page (sandbox mode only): fixture patients, their lab series,
hook requests built from them, and the feedback stored for a card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select

from cds_service.facts.analytes import A
from cds_service.facts.observations import Measurements, extract_measurements
from cds_service.facts.patient import extract_patient
from cds_service.fhir.model import Observation, Patient, decode_payload
from cds_service.registry import Registry
from cds_service.rulepack import default_pack
from cds_service.sandbox.fixtures import FixturePatient, build_request, load_cases, load_patients
from cds_service.storage.database import feedback

WEB = Path(__file__).parent / "web"
CHARTED = (A.FERRITIN, A.PLATELETS, A.FIBRINOGEN)
SERVICE_FOR_HOOK = {"patient-view": "mas-screen", "order-select": "anakinra-dose", "order-sign": "anakinra-dose"}
ROUTES = {"subcutaneous": ("34206005", "Subcutaneous route"), "intravenous": ("47625008", "Intravenous route")}


class DraftOrder(BaseModel):
    dose: float = Field(gt=0, le=100000)
    unit: Literal["mg", "mL"] = "mg"
    every_hours: int = Field(gt=0, le=168)
    route: Literal["subcutaneous", "intravenous"] = "subcutaneous"


class RequestSpec(BaseModel):
    patient: str
    hook: Literal["patient-view", "order-select", "order-sign"]
    order: DraftOrder | None = None
    prefetch: bool = True


def build_sandbox_router(
    *, registry: Registry, engine: Engine, clock: Callable[[], datetime], fhir_base_path: str
) -> APIRouter:
    router = APIRouter()
    patients = load_patients()
    stories = {case.patient: case.story for case in load_cases() if case.hook == "patient-view"}

    def fixture(name: str) -> FixturePatient:
        if name not in patients:
            raise HTTPException(404, f"no fixture patient '{name}'")
        return patients[name]

    @router.get("/sandbox", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    @router.get("/sandbox/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = WEB / name
        if name not in ("app.js", "app.css") or not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(path, media_type="text/javascript" if name.endswith(".js") else "text/css")

    @router.get("/sandbox/api/patients")
    async def list_patients() -> list[dict[str, Any]]:
        now = clock()
        listing = []
        for name, patient in patients.items():
            resources = _typed(patient, now)
            facts = extract_patient(resources)
            age = facts.age(now.date()) if facts else None
            weight = _measurements(resources, patient.patient_id, now).latest_any_time(A.WEIGHT)
            listing.append(
                {
                    "id": name,
                    "story": stories.get(name, ""),
                    "gender": facts.sex if facts else None,
                    "age": str(age) if age else None,
                    "weight_kg": float(weight.value) if weight else None,
                }
            )
        return listing

    @router.get("/sandbox/api/patients/{name}/series")
    async def series(name: str) -> dict[str, Any]:
        patient = fixture(name)
        now = clock()
        measurements = _measurements(_typed(patient, now), patient.patient_id, now)
        catalogue = default_pack().catalogue
        return {
            analyte.value: {
                "name": catalogue[analyte].name,
                "unit": catalogue[analyte].display_unit,
                "points": [
                    {"time": m.when.isoformat(), "value": float(m.value)}
                    for m in reversed(measurements.all(analyte))
                    if m.when >= now - timedelta(days=7)
                ],
            }
            for analyte in CHARTED
        }

    @router.post("/sandbox/api/requests")
    async def make_request(spec: RequestSpec, request: Request) -> dict[str, Any]:
        patient = fixture(spec.patient)
        service = registry.get(SERVICE_FOR_HOOK[spec.hook])
        if service is None:
            raise HTTPException(404, f"service for {spec.hook} not loaded")
        order = _draft(spec.order) if spec.hook != "patient-view" else None
        if spec.hook != "patient-view" and order is None:
            raise HTTPException(
                400, f"order: missing; {spec.hook} needs a draft order (dose, unit, every_hours, route)"
            )
        body = build_request(
            patient,
            service,
            hook=spec.hook,
            now=clock(),
            order=order,
            prefetch=spec.prefetch,
            fhir_server=None if spec.prefetch else str(request.base_url).rstrip("/") + fhir_base_path,
        )
        # The id discovery lists for this hook: the page calls what an EHR that read discovery would call.
        return {"service": registry.endpoint_id(service.id, spec.hook), "request": body}

    @router.get("/sandbox/api/feedback")
    async def stored_feedback(card: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            with engine.connect() as connection:
                rows = connection.execute(select(feedback).where(feedback.c.card_uuid == card).order_by(feedback.c.id))
                return [
                    {
                        "outcome": r.outcome,
                        "outcome_timestamp": r.outcome_timestamp,
                        "accepted_suggestions": r.accepted_suggestions,
                        "override_reason": r.override_reason_code,
                    }
                    for r in rows
                ]

        return await to_thread.run_sync(read)

    return router


def _measurements(resources: tuple[Patient | Observation, ...], patient_id: str, now: datetime) -> Measurements:
    pack = default_pack()
    return extract_measurements(
        resources,
        patient_id=patient_id,
        now=now,
        catalogue=pack.catalogue,
        future_tolerance=pack.parameters.future_tolerance,
    )


def _typed(patient: FixturePatient, now: datetime) -> tuple[Patient | Observation, ...]:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in patient.resources(now)]}
    payload = decode_payload(orjson.dumps(bundle))
    return tuple(r for r in payload.resources if isinstance(r, Patient | Observation))


def _draft(order: DraftOrder | None) -> dict[str, Any] | None:
    if order is None:
        return None
    code, display = ROUTES[order.route]
    return {
        "resourceType": "MedicationRequest",
        "id": "sandbox-draft-anakinra",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "727711",
                    "display": "0.67 ML anakinra 149 MG/ML Prefilled Syringe",
                }
            ],
            "text": "anakinra (Kineret) 100 mg/0.67 mL",
        },
        "subject": {"reference": "Patient/placeholder"},
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": order.every_hours, "periodUnit": "h"}},
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": order.dose,
                            "unit": order.unit,
                            "system": "http://unitsofmeasure.org",
                            "code": order.unit,
                        }
                    }
                ],
            }
        ],
    }
