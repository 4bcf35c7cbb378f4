"""A small patient specification and its rendering as FHIR R4 JSON (Patient, Observation, Condition,
MedicationRequest). Used by the synthetic-case generator; knows nothing about the criteria."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from random import Random
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Canonical unit of each analyte (the unit a probe value is written in unless a unit is named) and the exact factor
# from the canonical unit to every other unit the generator writes.
UNIT_FACTORS: dict[str, dict[str, Fraction]] = {
    "ferritin": {"ng/mL": Fraction(1), "ug/L": Fraction(1)},
    "platelets": {"10*3/uL": Fraction(1), "10*9/L": Fraction(1), "/uL": Fraction(1000), "/mm3": Fraction(1000)},
    "wbc": {"10*3/uL": Fraction(1), "10*9/L": Fraction(1), "/uL": Fraction(1000)},
    "anc": {"10*3/uL": Fraction(1), "10*9/L": Fraction(1), "/uL": Fraction(1000), "/mm3": Fraction(1000)},
    "hemoglobin": {"g/dL": Fraction(1), "g/L": Fraction(10)},
    "ast": {"U/L": Fraction(1), "[IU]/L": Fraction(1), "ukat/L": Fraction(1, 60)},
    "alt": {"U/L": Fraction(1), "[IU]/L": Fraction(1), "ukat/L": Fraction(1, 60)},
    "ldh": {"U/L": Fraction(1), "[IU]/L": Fraction(1)},
    "triglycerides": {"mg/dL": Fraction(1), "g/L": Fraction(1, 100)},
    "fibrinogen": {"g/L": Fraction(1), "mg/dL": Fraction(100)},
    "ddimer": {
        "ng/mL{FEU}": Fraction(1),
        "ug/mL{FEU}": Fraction(1, 1000),
        "mg/L{FEU}": Fraction(1, 1000),
        "ng/mL{DDU}": Fraction(1),
        "ug/L{DDU}": Fraction(1),
    },
    "inr": {"{INR}": Fraction(1)},
    "esr": {"mm/h": Fraction(1)},
}

# LOINC codes per analyte and unit (the molar triglyceride code carries mmol/L; FEU/DDU codes carry their basis).
_LOINC_BY_UNIT: dict[str, dict[str, tuple[str, ...]]] = {
    "ferritin": {"*": ("2276-4", "20567-4", "24373-3")},
    "platelets": {"*": ("777-3", "26515-7")},
    "wbc": {"*": ("6690-2", "26464-8")},
    "anc": {"*": ("751-8", "26499-4")},
    "hemoglobin": {"*": ("718-7",), "mmol/L": ("59260-0",)},
    "ast": {"*": ("1920-8", "30239-8", "88112-8")},
    "alt": {"*": ("1742-6",)},
    "ldh": {"*": ("2532-0", "14804-9")},
    "triglycerides": {"*": ("2571-8",), "mmol/L": ("14927-8",)},
    "fibrinogen": {"mg/dL": ("3255-7",), "*": ("48664-7", "30902-1", "3255-7")},
    "ddimer": {"ng/mL{DDU}": ("48066-5", "48058-2"), "ug/L{DDU}": ("48066-5",), "*": ("48065-7", "48067-3")},
    "inr": {"*": ("6301-6", "34714-6")},
    "esr": {"*": ("4537-7", "30341-2")},
}

TEMPERATURE_SITES = (
    "8310-5",
    "8328-7",
    "8329-5",
    "8330-3",
    "8331-1",
    "8332-9",
    "8333-7",
    "8334-5",
    "11289-6",
    "60834-9",
    "60836-4",
    "60838-0",
    "75539-7",
    "75987-8",
    "76010-8",
    "76011-6",
    "91371-5",
    "104063-3",
)
SURFACE_TEMPERATURE_SITES = ("39106-0", "61008-9", "60830-7", "60833-1", "98657-0", "98663-8")

ZONES = (
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
)


def exact_decimal(value: Fraction) -> Decimal | None:
    """The value as a finite decimal of at most 6 places, or None when it has no such form."""
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    places = max(twos, fives)
    if denominator != 1 or places > 6:
        return None
    scaled = value * 10**places
    return Decimal(int(scaled)).scaleb(-places)


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Lab:
    analyte: str
    value: Decimal
    unit: str
    loinc: str | None = None
    status: str = "final"
    age: timedelta = timedelta(hours=3)
    time_field: str = "effectiveDateTime"  # effectiveDateTime | effectivePeriod | effectiveInstant | issued | date-only
    comparator: str | None = None
    upper_limit: Decimal | None = None
    value_form: str = "quantity"  # quantity | string | absent | unit-only


@dataclass
class Temperature:
    value: Decimal
    unit: str = "Cel"
    loinc: str = "8310-5"
    status: str = "final"
    age: timedelta = timedelta(hours=2)
    comparator: str | None = None


@dataclass
class Diagnosis:
    system: str
    code: str
    display: str
    clinical: str | None = "active"
    verification: str | None = "confirmed"


@dataclass
class Order:
    display: str
    rxnorm: str | None
    status: str = "active"
    age: timedelta | None = timedelta(days=90)
    reference_only: bool = False


@dataclass
class Spec:
    name: str
    birth_date: str | None
    labs: list[Lab] = field(default_factory=list)
    temperatures: list[Temperature] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    gender: str = "female"


def birth_date_for(now: datetime, *, years: int, extra_days: int = 0) -> str:
    """A birth date such that the patient turned `years` exactly `extra_days` days before `now`'s date."""
    today = now.date()
    try:
        birthday = today.replace(year=today.year - years)
    except ValueError:
        birthday = date(today.year - years, 2, 28)
    return (birthday - timedelta(days=extra_days)).isoformat()


def _time_text(moment: datetime, zone: timezone) -> str:
    return moment.astimezone(zone).isoformat()


def _unit_display(unit: str) -> str:
    return {"Cel": "°C", "[degF]": "°F"}.get(unit, unit)


def _quantity(value: Decimal, unit: str, comparator: str | None = None, *, unit_only: bool = False) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": json_number(value), "unit": _unit_display(unit)}
    if not unit_only:
        quantity["system"] = UCUM
        quantity["code"] = unit
    if comparator is not None:
        quantity["comparator"] = comparator
    return quantity


def loinc_for(analyte: str, unit: str, rng: Random) -> str:
    table = _LOINC_BY_UNIT[analyte]
    return rng.choice(table.get(unit, table["*"]))


def render(spec: Spec, patient_id: str, now: datetime, rng: Random) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{patient_id}"}
    resources: list[dict[str, Any]] = []
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id, "gender": spec.gender}
    if spec.birth_date is not None:
        patient["birthDate"] = spec.birth_date
    resources.append(patient)
    for index, lab in enumerate(spec.labs):
        resources.append(_lab_resource(lab, f"{patient_id}-lab-{index}", subject, now, rng))
    for index, temperature in enumerate(spec.temperatures):
        moment = now - temperature.age
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"{patient_id}-temp-{index}",
                "status": temperature.status,
                "category": [_category("vital-signs")],
                "code": {"coding": [{"system": LOINC, "code": temperature.loinc}]},
                "subject": subject,
                "effectiveDateTime": _time_text(moment, rng.choice(ZONES)),
                "valueQuantity": _quantity(temperature.value, temperature.unit, temperature.comparator),
            }
        )
    for index, diagnosis in enumerate(spec.diagnoses):
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": f"{patient_id}-condition-{index}",
            "code": {"coding": [{"system": diagnosis.system, "code": diagnosis.code, "display": diagnosis.display}]},
            "subject": subject,
        }
        if diagnosis.clinical is not None:
            condition["clinicalStatus"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": diagnosis.clinical}
                ]
            }
        if diagnosis.verification is not None:
            condition["verificationStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": diagnosis.verification,
                    }
                ]
            }
        resources.append(condition)
    for index, order in enumerate(spec.orders):
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": f"{patient_id}-order-{index}",
            "status": order.status,
            "intent": "order",
            "subject": subject,
        }
        if order.reference_only:
            request["medicationReference"] = {"reference": f"Medication/{patient_id}-medication-{index}"}
        else:
            concept: dict[str, Any] = {"text": order.display}
            if order.rxnorm is not None:
                concept["coding"] = [{"system": RXNORM, "code": order.rxnorm, "display": order.display}]
            request["medicationCodeableConcept"] = concept
        if order.age is not None:
            request["authoredOn"] = _time_text(now - order.age, rng.choice(ZONES))
        resources.append(request)
    return resources


def _category(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": code}]}


def _lab_resource(lab: Lab, resource_id: str, subject: dict[str, str], now: datetime, rng: Random) -> dict[str, Any]:
    moment = now - lab.age
    zone = rng.choice(ZONES)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id,
        "status": lab.status,
        "category": [_category("laboratory")],
        "code": {"coding": [{"system": LOINC, "code": lab.loinc or loinc_for(lab.analyte, lab.unit, rng)}]},
        "subject": subject,
    }
    if lab.time_field == "effectiveDateTime":
        resource["effectiveDateTime"] = _time_text(moment, zone)
    elif lab.time_field == "effectivePeriod":
        resource["effectivePeriod"] = {
            "start": _time_text(moment, zone),
            "end": _time_text(moment + timedelta(minutes=5), zone),
        }
    elif lab.time_field == "effectiveInstant":
        resource["effectiveInstant"] = _time_text(moment, zone)
    elif lab.time_field == "issued":
        resource["issued"] = _time_text(moment, zone)
    elif lab.time_field == "date-only":
        resource["effectiveDateTime"] = moment.astimezone(zone).date().isoformat()
    else:
        raise ValueError(lab.time_field)
    if lab.value_form == "quantity":
        resource["valueQuantity"] = _quantity(lab.value, lab.unit, lab.comparator)
    elif lab.value_form == "unit-only":
        resource["valueQuantity"] = _quantity(lab.value, lab.unit, lab.comparator, unit_only=True)
    elif lab.value_form == "string":
        resource["valueString"] = f"{lab.value} {lab.unit}"
    elif lab.value_form == "absent":
        resource["dataAbsentReason"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "error"}]
        }
    else:
        raise ValueError(lab.value_form)
    if lab.upper_limit is not None:
        resource["referenceRange"] = [{"high": _quantity(lab.upper_limit, lab.unit)}]
    return resource
