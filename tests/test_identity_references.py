"""Which references name the call's patient (`cds_service.fhir.identity`): the quick path for the usual
relative form must agree with the general rule on every spelling."""

from __future__ import annotations

import pytest

from cds_service.fhir.identity import reference_is_patient
from cds_service.fhir.model import Reference


@pytest.mark.parametrize(
    ("reference", "patient_id", "expected"),
    [
        ("Patient/p1", "p1", True),
        ("Patient/p1/", "p1", True),
        ("https://ehr.example.org/fhir/Patient/p1", "p1", True),
        ("https://ehr.example.org/fhir/Patient/p1/_history/3", "p1", True),
        ("Patient/p1/_history/3", "p1", True),
        ("Patient/p2", "p1", False),
        ("Patient/p10", "p1", False),
        ("Group/p1", "p1", False),
        ("https://ehr.example.org/fhir/Patient/p2/_history/1", "p1", False),
        # An id with a slash is not a FHIR id; the quick path must not read "Patient/a/b" as Patient "a/b".
        ("Patient/a/b", "a/b", False),
        (None, "p1", True),  # no reference: searched by this patient, not evidence of another one
        ("", "p1", True),
    ],
)
def test_reference_names_the_patient(reference: str | None, patient_id: str, expected: bool) -> None:
    assert reference_is_patient(Reference(reference=reference), patient_id) is expected


def test_no_reference_object_is_not_another_patient() -> None:
    assert reference_is_patient(None, "p1") is True
