"""The app's work-up: read the launch patient's data from the EHR's FHIR server with the app's own token,
using the queries of the `mas-screen` hook (its prefetch templates), evaluate them with the hook's rule
code and return the explanation document (`cds_service.cards.explanation`) the page renders.

The launch context's patient is the truth: anything about another patient is dropped before evaluation.
Data the granted scopes do not cover is not queried and is reported, never assumed empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from cds_service.cards.explanation import explain
from cds_service.evaluation.mas import evaluate_mas, load_rules, record_from_resources
from cds_service.fhir.client import FhirAccessError, FhirServer, ReadBudget
from cds_service.fhir.identity import names_other_patient
from cds_service.fhir.model import Patient, Resource, decode_payload
from cds_service.fhir.prefetch import PrefetchSpec, RequiredDataUnavailableError, resolve_prefetch
from cds_service.settings import Settings
from cds_service.smart_app.oauth import readable_types
from cds_service.smart_app.sessions import AppSession

WHAT = {
    "Observation": "labs and vital signs",
    "Condition": "conditions (sJIA, Still's, SLE, sepsis, malignancy, coded findings)",
    "MedicationRequest": "medications (anakinra, immunosuppression)",
}


class WorkupError(Exception):
    """The work-up cannot be shown; the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Banner:
    patient_id: str
    name: str | None
    birth_date: str | None
    gender: str | None


async def build_workup(
    session: AppSession,
    *,
    specs: tuple[PrefetchSpec, ...],
    http: httpx.AsyncClient,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    readable = readable_types(session.scopes)
    for needed in ("Patient", "Observation"):
        if needed not in readable:
            raise WorkupError(
                403, f"the EHR did not grant reading {needed} resources: the MAS criteria cannot be evaluated"
            )
    server = FhirServer(
        base_url=session.iss,
        access_token=session.access_token,
        http=http,
        max_response_bytes=settings.fhir_max_response_bytes,
    )
    budget = ReadBudget.starting_now(settings.fhir_deadline_seconds, settings.fhir_max_call_bytes)
    banner, patient = await _read_patient(server, session.patient, budget=budget)
    notes = [f"{WHAT[kind]}: not granted by the EHR, so not read" for kind in WHAT if kind not in readable]
    wanted = tuple(
        PrefetchSpec(s.key, s.template, s.required)  # the prefetch layer percent-encodes query values
        for s in specs
        if _resource_type(s.template) in readable - {"Patient"}
    )
    try:
        data = await resolve_prefetch(
            wanted,
            None,
            {"patientId": session.patient},
            server,
            budget=budget,
            max_pages=settings.fhir_max_pages,
        )
    except RequiredDataUnavailableError as error:
        raise WorkupError(502, "the EHR's FHIR server did not give the labs: " + "; ".join(error.messages)) from error
    resources: list[Resource] = [patient]
    medications_known = False
    for spec in wanted:
        item = data[spec.key]
        resources.extend(item.resources)
        kind = _resource_type(spec.template)
        if kind == "MedicationRequest":
            medications_known = item.available
        if not item.available:
            notes.append(f"{spec.key}: could not be read ({'; '.join(item.notes) or 'unavailable'})")
        elif not item.complete or item.other_patient:
            notes.append(f"{spec.key}: {'; '.join(item.notes)}")
    record = record_from_resources(session.patient, resources, medications_known=medications_known)
    rules = load_rules(settings)
    evaluation = evaluate_mas(record, now=now, rules=rules)
    document = explain(evaluation, timezone=settings.zone, timezone_name=settings.timezone)
    return {
        "patient": {
            "id": banner.patient_id,
            "name": banner.name,
            "birthDate": banner.birth_date,
            "gender": banner.gender,
        },
        "needPatientBanner": session.need_patient_banner,
        "fhirServer": session.iss,
        "labWindowHours": int(rules.pack.parameters.lab_window.total_seconds() // 3600),
        "notes": notes,
        "workup": document,
    }


async def _read_patient(server: FhirServer, patient_id: str, *, budget: ReadBudget) -> tuple[Banner, Patient]:
    try:
        body = bytes(await server.get(server.url_for(f"Patient/{patient_id}"), budget=budget))
    except FhirAccessError as error:
        raise WorkupError(502, f"the patient could not be read from the EHR ({error})") from error
    typed = next((r for r in decode_payload(body).resources if isinstance(r, Patient)), None)
    if typed is None or names_other_patient(typed, patient_id):
        raise WorkupError(502, "the EHR answered with another or no Patient resource for the launch patient")
    return Banner(patient_id, _display_name(body), typed.birthDate, typed.gender), typed


def _display_name(body: bytes) -> str | None:
    """'Given Family' from the official (else first) name, for the banner only."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    names = document.get("name") if isinstance(document, dict) else None
    if not isinstance(names, list) or not names:
        return None
    chosen = next((n for n in names if isinstance(n, dict) and n.get("use") == "official"), names[0])
    if not isinstance(chosen, dict):
        return None
    if isinstance(chosen.get("text"), str):
        return str(chosen["text"])
    given = [g for g in chosen.get("given", []) if isinstance(g, str)]
    family = chosen.get("family") if isinstance(chosen.get("family"), str) else None
    return " ".join([*given, *([family] if family else [])]) or None


def _resource_type(template: str) -> str:
    return template.split("?", 1)[0].split("/", 1)[0]
