"""The per-patient MAS evaluation shared by every view: patient-view (one chart), the SMART app (full
work-up) and population screening (every patient of an export). Typed FHIR resources in, the
assessment and the anakinra plan out; no I/O, no HTTP, no words (presentation owns those).

A record holds only the patient's own resources: the transport (or the population reader) has already
dropped anything about another patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Underlying, extract_clinical_context
from cds_service.facts.observations import extract_measurements
from cds_service.facts.orders import extract_active_orders
from cds_service.facts.patient import PatientFacts, extract_patient
from cds_service.fhir.model import Condition, Medication, MedicationRequest, Observation, Patient, Resource
from cds_service.rules.dosing.calculator import DoseNotCalculated, DosingRules, ProtocolDose, calculate_protocol_dose
from cds_service.rules.mas.common import Inputs
from cds_service.rules.mas.screen import MasAssessment, assess_mas
from cds_service.services.settings_view import dosing_rules
from cds_service.settings import Settings

Indicator = Literal["critical", "warning"]


@dataclass(frozen=True)
class PatientRecord:
    """One patient's data as the rules read it (the typed FHIR subset of `cds_service.fhir.model`)."""

    patient_id: str
    patient: Sequence[Resource]  # the Patient resource
    observations: Sequence[Resource]  # labs and vital signs
    conditions: Sequence[Resource]  # Conditions (and coded findings)
    medications: Sequence[Resource] | None  # MedicationRequests (+ Medications); None: the list is unavailable


@dataclass(frozen=True)
class MasRules:
    """The clinical parameters of an evaluation (windows, dosing rules)."""

    lab_window: timedelta
    temperature_window: timedelta
    dosing: DosingRules


def load_rules(settings: Settings) -> MasRules:
    return MasRules(
        lab_window=timedelta(hours=settings.lab_lookback_hours),
        temperature_window=timedelta(hours=settings.temperature_lookback_hours),
        dosing=dosing_rules(settings),
    )


@dataclass(frozen=True)
class AnakinraPlan:
    """What a card may suggest about anakinra, decided from the record."""

    dose: ProtocolDose | DoseNotCalculated
    already_on_anakinra: str | None  # e.g. "MedicationRequest/x"
    malignancy: str | None  # evidence text when an active malignancy is coded
    medication_list_available: bool


@dataclass(frozen=True)
class MasEvaluation:
    record: PatientRecord
    rules: MasRules
    patient: PatientFacts | None
    now: datetime
    inputs: Inputs
    assessment: MasAssessment

    @property
    def patient_id(self) -> str:
        return self.record.patient_id

    @cached_property
    def plan(self) -> AnakinraPlan:
        """The protocol anakinra plan (worked out on first use: a population screen rarely needs it)."""
        medications = self.record.medications
        active = extract_active_orders(medications) if medications is not None else ()
        malignancy = self.inputs.context.underlying.get(Underlying.MALIGNANCY)
        weight = self.inputs.measurements.latest_any_time(A.WEIGHT)
        return AnakinraPlan(
            dose=calculate_protocol_dose(weight=weight, patient=self.patient, now=self.now, rules=self.rules.dosing),
            already_on_anakinra=next((order.order_id for order in active if order.anakinra.matched), None),
            malignancy=f"{malignancy.text}, {malignancy.resource}" if malignancy else None,
            medication_list_available=medications is not None,
        )

    @property
    def indicator(self) -> Indicator | None:
        """The card this patient gets in patient-view: critical (MAS likely), warning (suggestive), or none."""
        if self.assessment.likely:
            return "critical"
        if self.assessment.suggestive:
            return "warning"
        return None


def evaluate_mas(record: PatientRecord, *, now: datetime, rules: MasRules) -> MasEvaluation:
    patient = extract_patient(tuple(record.patient))
    measurements = extract_measurements(record.observations, patient_id=record.patient_id, now=now)
    context = extract_clinical_context(record.conditions, record.medications, now=now)
    birth = patient.birth if patient else None
    inputs = Inputs(
        measurements=measurements,
        context=context,
        now=now,
        lab_window=rules.lab_window,
        temperature_window=rules.temperature_window,
        age_days=(now.date() - birth[0]).days if birth else None,
    )
    return MasEvaluation(record, rules, patient, now, inputs, assess_mas(inputs))


def record_from_resources(
    patient_id: str, resources: Sequence[Resource], *, medications_known: bool = True
) -> PatientRecord:
    """A record from one patient's resources of any mix (an export, a FHIR search, a fixture).

    Anything naming another patient must already be gone (see `cds_service.fhir.identity`)."""
    return PatientRecord(
        patient_id=patient_id,
        patient=tuple(r for r in resources if isinstance(r, Patient)),
        observations=tuple(r for r in resources if isinstance(r, Observation)),
        conditions=tuple(r for r in resources if isinstance(r, Condition)),
        medications=tuple(r for r in resources if isinstance(r, MedicationRequest | Medication))
        if medications_known
        else None,
    )
