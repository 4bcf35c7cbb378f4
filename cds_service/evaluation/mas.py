"""The per-patient MAS evaluation shared by every view: patient-view (one chart), the SMART app (full
work-up) and population screening (every patient of an export). Typed FHIR resources in, the
assessment and the anakinra plan out; no I/O, no HTTP, no words (presentation owns those).

A record holds only the patient's own resources: the transport (or the population reader) has already
dropped anything about another patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from typing import Literal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Underlying, extract_clinical_context
from cds_service.facts.observations import extract_measurements
from cds_service.facts.orders import extract_active_orders
from cds_service.facts.patient import PatientFacts, extract_patient
from cds_service.fhir.model import Condition, Medication, MedicationRequest, Observation, Patient, Resource
from cds_service.rulepack.model import RulePack
from cds_service.rulepack.selection import dosing_rules, pack_for
from cds_service.rules.dosing.calculator import DoseNotCalculated, DosingRules, ProtocolDose, calculate_protocol_dose
from cds_service.rules.mas.common import Inputs
from cds_service.rules.mas.screen import MasAssessment, assess_mas
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
    """The clinical knowledge of an evaluation (the rule pack in force) and the zone times are shown in."""

    pack: RulePack
    zone: tzinfo = UTC

    @property
    def dosing(self) -> DosingRules:
        return dosing_rules(self.pack, self.zone)


def load_rules(settings: Settings) -> MasRules:
    """The rule pack the settings select (CDS_RULE_PACK_DIR, CDS_RULE_PACK_OVERRIDES), loaded once per process."""
    return MasRules(pack_for(settings), settings.zone)


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
        active = extract_active_orders(medications, self.rules.pack.drugs) if medications is not None else ()
        malignancy = self.inputs.context.underlying.get(Underlying.MALIGNANCY)
        weight = self.inputs.measurements.latest_any_time(A.WEIGHT)
        return AnakinraPlan(
            dose=calculate_protocol_dose(weight=weight, patient=self.patient, now=self.now, rules=self.rules.dosing),
            already_on_anakinra=next((order.order_id for order in active if order.anakinra.matched), None),
            malignancy=malignancy.text if malignancy else None,
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
    pack = rules.pack
    parameters = pack.parameters
    patient = extract_patient(tuple(record.patient))
    measurements = extract_measurements(
        record.observations,
        patient_id=record.patient_id,
        now=now,
        catalogue=pack.catalogue,
        future_tolerance=parameters.future_tolerance,
    )
    context = extract_clinical_context(record.conditions, record.medications, now=now, codes=pack.conditions)
    birth = patient.birth if patient else None
    inputs = Inputs(
        measurements=measurements,
        context=context,
        now=now,
        lab_window=parameters.lab_window,
        temperature_window=parameters.temperature_window,
        age=patient.age(now.date()) if patient else None,
        age_days=((now.date() - birth[1]).days, (now.date() - birth[0]).days) if birth else None,
        trend_min_change=parameters.trend_min_change,
    )
    assessment = assess_mas(
        inputs,
        sets=pack.sets,
        warning_ferritin=pack.decision.warning_ferritin,
        workup=pack.workup,
        catalogue=pack.catalogue,
    )
    return MasEvaluation(record, rules, patient, now, inputs, assessment)


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
