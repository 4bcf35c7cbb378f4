"""Replay every request real CDS clients sent (tests/captures/) and assert what its README row says.

Each capture is replayed at the time it was recorded (2026-11-27): its prefetch holds fixture data whose
times were shifted to that moment, so the clock is pinned there, not to the suite's FIXED_NOW. No replay
may reach the network: the recorded fhirServer was a loopback port that is not running now, and every
call below either carries its data or must not need any.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import respx
from fastapi.testclient import TestClient

CAPTURES = Path(__file__).parent / "captures"
Replay = Callable[[Callable[..., TestClient]], None]


def capture(name: str) -> Any:
    return json.loads((CAPTURES / name).read_text(encoding="utf-8"))


def at(moment: str) -> Callable[[], datetime]:
    pinned = datetime.fromisoformat(moment).astimezone(UTC)
    return lambda: pinned


@contextmanager
def no_network() -> Iterator[respx.Router]:
    with respx.mock(assert_all_called=False) as router:
        router.route().respond(503)
        yield router
        assert not router.calls, [str(call.request.url) for call in router.calls]


def patient_references(document: Any) -> set[str]:
    return set(re.findall(r"Patient/([A-Za-z0-9\-.]+)", json.dumps(document)))


def cards_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def sandbox_patient_view(make_client: Callable[..., TestClient]) -> None:
    """Prefetch filled from the service's own templates: the service needs nothing more and answers."""
    body = capture("cds-hooks-sandbox--patient-view--request.json")
    client = make_client(clock=at("2026-11-27T03:16:40Z"))
    templates = {e["id"]: e["prefetch"] for e in client.get("/cds-services").json()["services"]}
    assert set(body["prefetch"]) == set(templates["mas-screen"])
    with no_network():
        cards = cards_of(client.post("/cds-services/mas-screen", json=body))
    assert "critical" in {card["indicator"] for card in cards}  # the MAS patient's data is used as sent
    assert patient_references(cards) <= {body["context"]["patientId"]}


def sandbox_order_select(make_client: Callable[..., TestClient]) -> None:
    """category as an object, a dose in {pill}, selections: answered, and the unit is never guessed."""
    body = capture("cds-hooks-sandbox--order-select--request.json")
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert isinstance(order["category"], dict)
    assert order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "{pill}"
    with no_network():
        cards = cards_of(
            make_client(clock=at("2026-11-27T03:55:00Z")).post("/cds-services/anakinra-dose-order-select", json=body)
        )
    assert cards, "the selected anakinra order gets a card"
    text = json.dumps(cards)
    assert "{pill}" in text  # the drafted unit is shown as drafted, not converted into mg
    assert patient_references(cards) <= {body["context"]["patientId"]}


def sandbox_order_sign(make_client: Callable[..., TestClient]) -> None:
    """The Rx Sign draft carries no medication: not an anakinra order, so no card and no FHIR query."""
    body = capture("cds-hooks-sandbox--order-sign--request.json")
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert "selections" not in body["context"]
    assert "medicationCodeableConcept" not in order and "medicationReference" not in order
    with no_network():
        response = make_client(clock=at("2026-11-27T05:23:20Z")).post(
            "/cds-services/anakinra-dose-order-sign", json=body
        )
    assert cards_of(response) == []


def sandbox_feedback(name: str) -> Replay:
    def replay(make_client: Callable[..., TestClient]) -> None:
        body = capture(name)
        client = make_client(clock=at("2026-11-27T03:16:50Z"))
        response = client.post("/cds-services/mas-screen/feedback", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": 1, "duplicates": 0}
        again = client.post("/cds-services/mas-screen/feedback", json=body)
        assert again.json() == {"stored": 0, "duplicates": 1}  # the sandbox may resend: stored once

    return replay


def sandbox_fhir_post_search(make_client: Callable[..., TestClient]) -> None:
    """Every prefetch search the sandbox ran: POST [type]/_search, answered as the GET search."""
    requests = capture("cds-hooks-sandbox--fhir-post-search--requests.json")["requests"]
    client = make_client(clock=at("2026-11-27T05:23:20Z"))
    for request in requests:
        assert request["method"] == "POST" and request["path"].endswith("/_search")
        by_post = client.post(
            request["path"], content=request["body"], headers={"content-type": request["contentType"]}
        )
        assert by_post.status_code == 200, (request, by_post.text)
        by_get = client.get(f"{request['path'].removesuffix('/_search')}?{request['body']}")
        assert by_post.json().get("entry") == by_get.json().get("entry")
        assert by_post.json()["total"] == by_get.json()["total"]
    assert any(r["path"].endswith("/Observation/_search") for r in requests)


def healthchain_patient_view(make_client: Callable[..., TestClient]) -> None:
    """Prefetch of another patient for context.patientId 6506911: never that patient's card (412: no data
    for 6506911, and no fhirServer to ask). tests/test_patient_identity.py covers this capture in depth."""
    body = capture("healthchain-0.16.1--patient-view--request.json")
    with no_network():
        response = make_client(clock=at("2026-11-27T03:29:40Z")).post("/cds-services/mas-screen", json=body)
    assert response.status_code == 412
    assert "adult-sepsis-mas-82kg" not in response.text


def healthchain_order_select(make_client: Callable[..., TestClient]) -> None:
    """No draftOrders and no selections: a 400 naming exactly those two context fields."""
    body = capture("healthchain-0.16.1--order-select--request.json")
    with no_network():
        response = make_client(clock=at("2026-11-27T03:30:00Z")).post(
            "/cds-services/anakinra-dose-order-select", json=body
        )
    assert response.status_code == 400
    issues = response.json()["issue"]
    assert [issue["expression"] for issue in issues] == [["context.selections"], ["context.draftOrders"]]
    assert all(issue["code"] == "required" for issue in issues)


REPLAYS: dict[str, Replay] = {
    "cds-hooks-sandbox--patient-view--request.json": sandbox_patient_view,
    "cds-hooks-sandbox--order-select--request.json": sandbox_order_select,
    "cds-hooks-sandbox--order-sign--request.json": sandbox_order_sign,
    "cds-hooks-sandbox--feedback-accepted--request.json": sandbox_feedback(
        "cds-hooks-sandbox--feedback-accepted--request.json"
    ),
    "cds-hooks-sandbox--feedback-overridden-no-reason--request.json": sandbox_feedback(
        "cds-hooks-sandbox--feedback-overridden-no-reason--request.json"
    ),
    "cds-hooks-sandbox--fhir-post-search--requests.json": sandbox_fhir_post_search,
    "healthchain-0.16.1--patient-view--request.json": healthchain_patient_view,
    "healthchain-0.16.1--order-select--request.json": healthchain_order_select,
}


def test_every_capture_is_replayed_and_described() -> None:
    files = {path.name for path in CAPTURES.glob("*.json")}
    assert files == set(REPLAYS)
    readme = (CAPTURES / "README.md").read_text(encoding="utf-8")
    described = set(re.findall(r"`([a-z0-9.\-]+\.json)`", readme))
    described |= {f"cds-hooks-sandbox{suffix}" for suffix in re.findall(r"`(--[a-z0-9\-]+\.json)`", readme)}
    assert files <= described, files - described


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_replay(make_client: Callable[..., TestClient], name: str) -> None:
    REPLAYS[name](make_client)
