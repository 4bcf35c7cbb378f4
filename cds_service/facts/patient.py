"""Patient -> age range and sex. A partial birth date gives an age range, never a guessed age."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.facts.fhir_time import completed_years, parse_birth_date
from cds_service.fhir.model import Patient, Resource


@dataclass(frozen=True)
class AgeRange:
    low: int
    high: int

    @property
    def exact(self) -> int | None:
        return self.low if self.low == self.high else None

    def __str__(self) -> str:
        return f"{self.low} years" if self.low == self.high else f"{self.low}–{self.high} years"


@dataclass(frozen=True)
class PatientFacts:
    patient_id: str | None
    birth: tuple[date, date] | None
    sex: str | None  # FHIR administrative gender: male | female | other | unknown

    def age(self, on: date) -> AgeRange | None:
        if self.birth is None:
            return None
        earliest, latest = self.birth
        if latest > on:
            return None  # born after today: a data error, not an age
        return AgeRange(completed_years(latest, on), completed_years(earliest, on))

    def is_adult(self, on: date, adult_age: int) -> bool | None:
        """True/False when every possible birth date agrees; None when it cannot be told."""
        age = self.age(on)
        if age is None:
            return None
        if age.low >= adult_age:
            return True
        if age.high < adult_age:
            return False
        return None


def extract_patient(resources: tuple[Resource, ...]) -> PatientFacts | None:
    patient = next((r for r in resources if isinstance(r, Patient)), None)
    if patient is None:
        return None
    return PatientFacts(patient.id, parse_birth_date(patient.birthDate), patient.gender)
