"""Issue 12, items 1, 2, 3 and 7: one unusable value costs that value (listed), never the call; bodies that are
not JSON a service can read get 400; prefetch that cannot be read is missing data, never "no MAS"."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from cds_service.transport.envelope import GUARANTEED_NESTING
from tests.builders import FHIR_BASE, hook_request, observation, patient, searchset
from tests.clinical_builders import (
    anakinra_order,
    dose_prefetch,
    normal_safety_labs,
    order_request,
    weight,
)
from tests.clinical_builders import patient as clinical_patient
from tests.conftest import CORE_HOOKS
from tests.jwt_helpers import auth_settings, claims, es384

DOSE = "/cds-services/anakinra-dose"
FEEDBACK = "/cds-services/anakinra-dose/feedback"
MAS = "/cds-services/mas-screen"
KEY = es384("hostile")


def _post_raw(client: TestClient, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def _with_literal(body: dict[str, Any], placeholder: str, literal: str) -> bytes:
    """JSON text with a number literal Python's json module cannot write (1e999999999 stays as sent)."""
    text = json.dumps(body)
    assert f'"{placeholder}"' in text
    return text.replace(f'"{placeholder}"', literal).encode()


def _details(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return "\n".join(f"{card['summary']}\n{card['detail']}" for card in response.json()["cards"])


def _dose_call(**prefetch: Any) -> dict[str, Any]:
    prefetch.setdefault("weights", [weight(30, obs_id="w-ok", ago=timedelta(days=1))])
    prefetch.setdefault("labs", normal_safety_labs())
    return order_request("order-sign", [anakinra_order(100)], prefetch=dose_prefetch(**prefetch))


# -- item 1: one bad value ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("birth_date", ["9999-12-31", "9999-12", "9999"])
def test_a_birth_date_in_year_9999_is_no_age(make_client: Callable[..., TestClient], birth_date: str) -> None:
    details = _details(make_client().post(DOSE, json=_dose_call(patient_resource=clinical_patient(birth_date))))
    assert "needs the patient's birth date" in details  # answered; the age is unknown, not guessed


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31", "9999-12", "9999"]
)
def test_an_effective_time_at_the_edge_of_the_calendar_is_listed_not_fatal(
    make_client: Callable[..., TestClient], when: str
) -> None:
    edge = weight(31, obs_id="w-edge")
    edge["effectiveDateTime"] = when
    details = _details(make_client().post(DOSE, json=_dose_call(weights=[weight(30, obs_id="w-ok"), edge])))
    # Listed as not used, with its reason (by reason, not by raw resource id: cards name no ids).
    assert "**Weights not used:**" in details and ("no usable time" in details or "dated in the future" in details)
    assert "30 kg" in details  # the usable weight still makes the dose


@pytest.mark.parametrize("literal", ["1e999999999", "-1e999999999", "1e-999999999"])
def test_a_weight_beyond_any_decimal_range_is_listed_not_fatal(
    make_client: Callable[..., TestClient], literal: str
) -> None:
    huge = weight(31, obs_id="w-huge", ago=timedelta(hours=1))
    huge["valueQuantity"]["value"] = "NUMBER"
    body = _with_literal(_dose_call(weights=[weight(30, obs_id="w-ok"), huge]), "NUMBER", literal)
    details = _details(_post_raw(make_client(), DOSE, body))
    assert "**Weights not used:**" in details  # listed with its reason (cards name no raw resource ids)
    assert "30 kg" in details


@pytest.mark.parametrize("literal", ["1e300", "1e309", "1e999999999", "123456789012345678901234567890123456789"])
def test_an_absurd_dose_is_not_verifiable_and_says_so(make_client: Callable[..., TestClient], literal: str) -> None:
    body = _dose_call()
    body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"][
        "value"
    ] = "NUMBER"
    details = _details(_post_raw(make_client(), DOSE, _with_literal(body, "NUMBER", literal)))
    assert "dose value is not a plausible number" in details


@pytest.mark.parametrize(
    ("field", "literal"),
    [("periodMax", "0"), ("periodMax", "1e-999999999"), ("period", "1e999999999"), ("frequency", "10000000000")],
)
def test_unusable_timing_is_not_verifiable_and_says_so(
    make_client: Callable[..., TestClient], field: str, literal: str
) -> None:
    body = _dose_call()
    body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"]["repeat"][field] = "N"
    details = _details(_post_raw(make_client(), DOSE, _with_literal(body, "N", literal)))
    assert "timing values not usable" in details


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_feedback_timestamp_at_the_edge_is_a_rejected_item(
    make_client: Callable[..., TestClient], timestamp: str
) -> None:
    item = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": timestamp}
    response = make_client().post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 400
    assert "within the years 1-9999" in response.text


# -- item 2: nesting and encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DOSE, FEEDBACK])
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_a_thousand_deep_is_a_400(make_client: Callable[..., TestClient], path: str, depth: int) -> None:
    body = b'{"a":' * depth + b"1" + b"}" * depth
    response = _post_raw(make_client(), path, body)
    assert response.status_code == 400
    assert "nest" in response.json()["issue"][0]["diagnostics"]


def test_json_nested_to_the_guaranteed_depth_is_read(make_client: Callable[..., TestClient]) -> None:
    body = _dose_call()
    body["extension"] = "DEEP"  # an unknown top-level key: tolerated, but still parsed
    depth = GUARANTEED_NESTING - 2
    deep = '{"a":' * depth + "1" + "}" * depth
    response = _post_raw(make_client(), DOSE, _with_literal(body, "DEEP", deep))
    assert response.status_code == 200


def test_deep_nesting_inside_a_prefetch_value_is_missing_data(make_client: Callable[..., TestClient]) -> None:
    body = _dose_call()
    body["prefetch"]["patient"] = "DEEP"
    deep = '{"resourceType":"Patient","x":' + "[" * 900 + "]" * 900 + "}"
    response = _post_raw(make_client(), DOSE, _with_literal(body, "DEEP", deep))
    assert response.status_code in (400, 412)  # the envelope's limit, or the patient is missing data


@pytest.mark.parametrize("path", [DOSE, FEEDBACK])
@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
def test_invalid_utf8_is_a_400(make_client: Callable[..., TestClient], path: str, bad: bytes) -> None:
    if path == DOSE:
        body = json.dumps(_dose_call()).encode().replace(b'"pat1"', b'"pat' + bad + b'1"', 1)
    else:
        body = (
            b'{"feedback":[{"card":"c' + bad + b'","outcome":"overridden","outcomeTimestamp":"2026-03-10T12:00:00Z"}]}'
        )
    response = _post_raw(make_client(), path, body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_a_draft_order_that_cannot_be_read_is_a_400_not_no_card(make_client: Callable[..., TestClient]) -> None:
    body = _dose_call()
    body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"] = "twice a day"
    response = make_client().post(DOSE, json=body)
    assert response.status_code == 400
    assert "context.draftOrders: expected a readable FHIR Bundle" in response.text


# -- item 3: unreadable required data is missing data -------------------------------------------------------------


@pytest.mark.parametrize("labs", [1, [], {}, "labs", {"resourceType": 7}, {"resourceType": "Patient", "id": "pat1"}])
def test_unreadable_required_labs_without_a_server_are_412(make_client: Callable[..., TestClient], labs: Any) -> None:
    body = hook_request(prefetch={"patient": patient(), "labs": labs})
    response = make_client().post(MAS, json=body)
    assert response.status_code == 412
    assert "'labs' could not be obtained: prefetch: " in response.text


def test_a_bundle_whose_every_entry_is_malformed_is_unreadable(make_client: Callable[..., TestClient]) -> None:
    broken = observation("o1", valueQuantity={"value": "high"}, code={"coding": "2276-4"})
    body = hook_request(prefetch={"patient": patient(), "labs": searchset(broken)})
    assert make_client().post(MAS, json=body).status_code == 412


def _probe_report(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    report: dict[str, Any] = json.loads(response.json()["cards"][0]["detail"])
    return report


def test_unreadable_prefetch_is_fetched_from_the_fhir_server(make_client: Callable[..., TestClient]) -> None:
    client = make_client(hooks_dir=CORE_HOOKS)
    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{FHIR_BASE}/Observation").respond(json=searchset(observation("o-fetched")))
        body = hook_request(prefetch={"patient": patient(), "labs": [], "encounter": None}, fhirServer=FHIR_BASE)
        report = _probe_report(client.post("/cds-services/prefetch-probe", json=body))
    assert report["labs"]["status"] == "fetched"
    assert report["labs"]["ids"] == ["o-fetched"]


@pytest.mark.parametrize(
    "answer",
    [b"<html>maintenance</html>", b"[]", b"{}", b'{"resourceType":"Bundle","entry":7}', b"\xff\xfe{", b""],
)
def test_a_fhir_server_answering_garbage_with_200_is_no_answer(
    make_client: Callable[..., TestClient], answer: bytes
) -> None:
    client = make_client()
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{FHIR_BASE}/Patient/pat1").respond(json=patient())
        mock.get(url__startswith=f"{FHIR_BASE}/").respond(200, content=answer)
        response = client.post(MAS, json=hook_request(fhirServer=FHIR_BASE))
    assert response.status_code == 412
    assert "'labs' could not be obtained: FHIR server answer: " in response.text


def test_a_partly_readable_bundle_is_used_and_marked_incomplete(make_client: Callable[..., TestClient]) -> None:
    client = make_client(hooks_dir=CORE_HOOKS)
    labs = searchset(observation("o-good"), observation("o-bad", valueQuantity={"value": "high"}))
    report = _probe_report(
        client.post("/cds-services/prefetch-probe", json=hook_request(prefetch={"patient": patient(), "labs": labs}))
    )
    assert report["labs"]["ids"] == ["o-good"]
    assert report["labs"]["complete"] is False
    assert any("entry 1" in note for note in report["labs"]["notes"])


# -- item 7: the smaller ones -------------------------------------------------------------------------------------


def test_405_names_the_allowed_methods(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    response = client.get(DOSE)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert client.delete("/cds-services").headers["allow"] == "GET"


def test_every_openapi_reference_resolves(make_client: Callable[..., TestClient]) -> None:
    document = make_client().get("/openapi.json").json()
    references: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            references.extend(value for key, value in node.items() if key == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    assert "#/components/schemas/Card" in references
    for reference in references:
        target: Any = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict)


@pytest.fixture
def production_client(make_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    return make_client(hooks_dir=CORE_HOOKS, **auth_settings(tmp_path, KEY), metrics_token="scrape-secret")


PROBE = "/cds-services/prefetch-probe"


@pytest.mark.parametrize(
    "exp",
    [str(int(time.time()) + 300), float("inf"), 1e300, True],
    ids=["string", "infinity", "beyond-year-9999", "boolean"],
)
def test_exp_must_be_a_numeric_date(production_client: TestClient, exp: Any) -> None:
    token = KEY.sign(claims(PROBE, exp=exp))
    body = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
    response = production_client.post(PROBE, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    fresh = KEY.sign(claims(PROBE))
    assert production_client.post(PROBE, json=body, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_metrics_need_the_metrics_token_in_production(production_client: TestClient) -> None:
    assert production_client.get("/metrics").status_code == 401
    assert production_client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = production_client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert scraped.status_code == 200
    assert "cds_http_responses_total" in scraped.text


def test_metrics_are_not_served_in_production_without_a_token(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, **auth_settings(tmp_path, KEY))
    assert client.get("/metrics").status_code == 404


def test_a_feedback_batch_is_bounded(make_client: Callable[..., TestClient]) -> None:
    client = make_client(feedback_max_items=20)
    item = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-03-10T12:00:00Z"}
    response = client.post(FEEDBACK, json={"feedback": [item] * 21})
    assert response.status_code == 413
    assert "more than 20 feedback items" in response.text
    assert client.post(FEEDBACK, json={"feedback": [item] * 20}).json() == {"stored": 1, "duplicates": 19}
