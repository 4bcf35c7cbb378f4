"""Feedback (CDS Hooks 2.0 §Feedback): batches, override reasons, idempotency, durability."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_service.storage.database import feedback, feedback_rejected
from tests.conftest import CORE_HOOKS

CARD = "5f3c1e2a-8d4b-4c6e-9a7f-1b2c3d4e5f60"


def _accepted(card: str = CARD, when: str = "2026-03-10T12:01:00Z") -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "accepted",
        "outcomeTimestamp": when,
        "acceptedSuggestions": [{"id": "0d9d4c0a-5d0e-4b7e-8c55-6a1f9d3b2e11"}],
    }


def _overridden(**extra: Any) -> dict[str, Any]:
    return {"card": CARD, "outcome": "overridden", "outcomeTimestamp": "2026-03-10T12:02:00Z", **extra}


def _rows(database_url: str) -> list[Any]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = list(connection.execute(select(feedback).order_by(feedback.c.id)))
    engine.dispose()
    return rows


def test_batch_is_stored_with_both_override_reason_spellings(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, database_url=database_url)
    spec_reason = {
        "reason": {"system": "http://example.org/override", "code": "not-mas", "display": "Not MAS"},
        "userComment": "ferritin from transfusion",
    }
    epic_reasons = [{"reason": {"code": "already-treated", "display": "Already treated"}}]
    batch = {
        "feedback": [
            _accepted(),
            _overridden(overrideReason=spec_reason),
            {
                **_overridden(overrideReasons=epic_reasons),
                "outcomeTimestamp": "2026-03-10T12:03:00Z",
                "extension": {"com.epic.cdshooks.feedback.overrideReason.reasonTitle": "x"},
            },
        ]
    }
    response = client.post("/cds-services/prefetch-probe/feedback", json=batch)
    assert response.status_code == 200
    assert response.json() == {"stored": 3, "duplicates": 0}
    rows = _rows(database_url)
    assert [(r.outcome, r.override_reason_code) for r in rows] == [
        ("accepted", None),
        ("overridden", "not-mas"),
        ("overridden", "already-treated"),
    ]
    assert rows[0].accepted_suggestions == '["0d9d4c0a-5d0e-4b7e-8c55-6a1f9d3b2e11"]'
    assert rows[1].override_comment == "ferritin from transfusion"
    assert "com.epic.cdshooks" in rows[2].raw  # the item is kept as received


def test_feedback_is_idempotent_on_card_outcome_and_time(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, database_url=database_url)
    first = client.post("/cds-services/prefetch-probe/feedback", json={"feedback": [_accepted()]})
    # Same instant written with an offset instead of Z: still the same feedback.
    again = client.post(
        "/cds-services/prefetch-probe/feedback",
        json={"feedback": [_accepted(when="2026-03-10T13:01:00+01:00")]},
    )
    later = client.post(
        "/cds-services/prefetch-probe/feedback", json={"feedback": [_accepted(when="2026-03-10T12:05:00Z")]}
    )
    assert first.json() == {"stored": 1, "duplicates": 0}
    assert again.json() == {"stored": 0, "duplicates": 1}
    assert later.json() == {"stored": 1, "duplicates": 0}
    assert len(_rows(database_url)) == 2


def test_invalid_items_get_400_but_valid_ones_and_the_rejects_are_kept(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, database_url=database_url)
    batch = {
        "feedback": [
            _accepted(),
            {
                "card": CARD,
                "outcome": "accepted",
                "outcomeTimestamp": "2026-03-10T12:09:00Z",
            },  # no suggestions
            {"card": CARD, "outcome": "ignored", "outcomeTimestamp": "2026-03-10T12:09:00Z"},
            {"card": CARD, "outcome": "overridden", "outcomeTimestamp": "yesterday"},
        ]
    }
    response = client.post("/cds-services/prefetch-probe/feedback", json=batch)
    assert response.status_code == 400
    text = " ".join(issue["diagnostics"] for issue in response.json()["issue"])
    assert "feedback[1]" in text and "feedback[2]" in text and "feedback[3]" in text
    assert "feedback[0]" not in text
    assert len(_rows(database_url)) == 1
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rejected = list(connection.execute(select(feedback_rejected)))
    engine.dispose()
    assert len(rejected) == 3


def test_feedback_body_errors_and_unknown_service(core_client: TestClient) -> None:
    assert core_client.post("/cds-services/prefetch-probe/feedback", content=b"{oops").status_code == 400
    assert core_client.post("/cds-services/prefetch-probe/feedback", json={"items": []}).status_code == 400
    assert core_client.post("/cds-services/nope/feedback", json={"feedback": []}).status_code == 404


def test_feedback_survives_a_new_app_on_the_same_database(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    first = make_client(hooks_dir=CORE_HOOKS, database_url=database_url)
    assert first.post("/cds-services/prefetch-probe/feedback", json={"feedback": [_accepted()]}).status_code == 200
    first.__exit__(None, None, None)
    second = make_client(hooks_dir=CORE_HOOKS, database_url=database_url)
    response = second.post("/cds-services/prefetch-probe/feedback", json={"feedback": [_accepted()]})
    assert response.json() == {"stored": 0, "duplicates": 1}
