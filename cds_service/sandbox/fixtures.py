"""Fixture patients and cases: FHIR R4 Bundles whose times are shifted to "now" when served.

Files are stored with times around FIXTURE_EPOCH; loading moves every dateTime by (now - epoch), and
birth dates by whole days, so ages, lab recency and trends never go stale.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_service.data_paths import data_dir
from cds_service.fhir.templates import render_template
from cds_service.registry import ServiceDefinition
from cds_service.sandbox.store import FhirStore

FIXTURES_DIR = data_dir("fixtures")
FIXTURE_EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DATETIME_KEYS = frozenset(
    {
        "effectiveDateTime",
        "effectiveInstant",
        "issued",
        "authoredOn",
        "recordedDate",
        "onsetDateTime",
        "abatementDateTime",
        "start",
        "end",
    }
)
FULL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def shift_times(document: Any, delta: timedelta) -> Any:
    """A copy with every dateTime moved by delta and birthDate by whole days."""
    if isinstance(document, list):
        return [shift_times(item, delta) for item in document]
    if not isinstance(document, dict):
        return document
    shifted: dict[str, Any] = {}
    for key, value in document.items():
        if key in DATETIME_KEYS and isinstance(value, str) and FULL_DATETIME.match(value):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
            shifted[key] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif key == "birthDate" and isinstance(value, str) and FULL_DATE.match(value):
            born = datetime.fromisoformat(value).date() + timedelta(days=delta.days)
            shifted[key] = born.isoformat()
        else:
            shifted[key] = shift_times(value, delta)
    return shifted


@dataclass(frozen=True)
class FixturePatient:
    name: str
    bundle: dict[str, Any]  # as stored (epoch times)

    @property
    def patient_id(self) -> str:
        return str(self.patient_resource()["id"])

    def patient_resource(self) -> dict[str, Any]:
        return next(e["resource"] for e in self.bundle["entry"] if e["resource"]["resourceType"] == "Patient")

    def resources(self, now: datetime) -> list[dict[str, Any]]:
        delta = now - FIXTURE_EPOCH
        return [shift_times(entry["resource"], delta) for entry in self.bundle.get("entry", [])]


@dataclass(frozen=True)
class ExpectedCard:
    topic: str
    indicator: str
    summary_contains: str | None = None


@dataclass(frozen=True)
class FixtureCase:
    name: str
    patient: str
    story: str
    hook: str
    service: str
    order: str | None
    expected: tuple[ExpectedCard, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def load_patients(folder: Path = FIXTURES_DIR) -> dict[str, FixturePatient]:
    patients = {}
    for path in sorted((folder / "patients").glob("*.json")):
        patients[path.stem] = FixturePatient(path.stem, json.loads(path.read_text(encoding="utf-8")))
    return patients


def load_order(name: str, folder: Path = FIXTURES_DIR) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "orders" / f"{name}.json").read_text(encoding="utf-8"))
    return document


def load_cases(folder: Path = FIXTURES_DIR) -> list[FixtureCase]:
    cases = []
    for item in json.loads((folder / "cases.json").read_text(encoding="utf-8"))["cases"]:
        cases.append(
            FixtureCase(
                name=item["name"],
                patient=item["patient"],
                story=item["story"],
                hook=item["hook"],
                service=item["service"],
                order=item.get("order"),
                expected=tuple(ExpectedCard(**card) for card in item["expect"]),
            )
        )
    return cases


def store_for(patient: FixturePatient, now: datetime) -> FhirStore:
    return FhirStore.of(patient.resources(now))


def build_request(
    patient: FixturePatient,
    service: ServiceDefinition,
    *,
    hook: str,
    now: datetime,
    order: dict[str, Any] | None = None,
    prefetch: bool = True,
    hook_instance: str | None = None,
    fhir_server: str | None = None,
) -> dict[str, Any]:
    """A hook request as an EHR would send it: context, and prefetch computed from the service's
    templates against the fixture patient (omitted when prefetch=False, to exercise the fallback)."""
    context: dict[str, Any] = {"userId": "Practitioner/sandbox-user", "patientId": patient.patient_id}
    if hook in ("order-select", "order-sign"):
        draft = copy.deepcopy(order) if order is not None else None
        entries = []
        if draft is not None:
            draft["subject"] = {"reference": f"Patient/{patient.patient_id}"}
            entries.append({"resource": draft})
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{draft['id']}"] if draft else []
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "context": context,
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
    if prefetch:
        store = store_for(patient, now)
        tokens = {"patientId": patient.patient_id, "userId": context["userId"]}
        values: dict[str, Any] = {}
        for spec in service.prefetch:
            query = render_template(spec.template, tokens)
            values[spec.key] = store.query(query) if query is not None else None
        body["prefetch"] = values
    return body
