from __future__ import annotations

from cds_service.fhir.templates import render_template


def test_context_and_user_tokens_are_substituted() -> None:
    context = {"patientId": "p-1", "userId": "Practitioner/dr.7"}
    assert render_template("Observation?patient={{context.patientId}}", context) == "Observation?patient=p-1"
    assert render_template("Practitioner/{{userPractitionerId}}", context) == "Practitioner/dr.7"


def test_user_token_of_another_type_has_no_value() -> None:
    context = {"patientId": "p", "userId": "PractitionerRole/r1"}
    assert render_template("Practitioner/{{userPractitionerId}}", context) is None
    assert render_template("PractitionerRole/{{userPractitionerRoleId}}", context) == "PractitionerRole/r1"
    absolute = {"userId": "https://ehr.example/fhir/Practitioner/abc"}
    assert render_template("Practitioner/{{userPractitionerId}}", absolute) == "Practitioner/abc"


def test_missing_context_value_means_no_query() -> None:
    assert render_template("Encounter/{{context.encounterId}}", {"patientId": "p"}) is None


def test_values_cannot_inject_parameters() -> None:
    rendered = render_template("Observation?patient={{context.patientId}}", {"patientId": "p&code=x"})
    assert rendered == "Observation?patient=p%26code%3Dx"
