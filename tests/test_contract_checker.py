"""The contract checker itself must be able to fail: it is what guards every other response."""

from __future__ import annotations

import json

import pytest

from tests import contract

GOOD_CARD = {
    "uuid": "5f3c1e2a-8d4b-4c6e-9a7f-1b2c3d4e5f60",
    "summary": "ok",
    "indicator": "info",
    "source": {"label": "x"},
}


def _problems(cards: list[object]) -> list[str]:
    return contract.response_problems("POST", "/cds-services/x", 200, json.dumps({"cards": cards}).encode())


def test_good_card_passes() -> None:
    assert _problems([GOOD_CARD]) == []


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD_CARD, "summary": "x" * 140},
        {**GOOD_CARD, "indicator": "hard-stop"},
        {**GOOD_CARD, "uuid": "1"},
        {**GOOD_CARD, "detail": None},
        {**GOOD_CARD, "links": []},
        {**GOOD_CARD, "source": {}},
        {**GOOD_CARD, "suggestions": [{"label": "a", "uuid": GOOD_CARD["uuid"], "actions": []}]},
        {**GOOD_CARD, "overrideReasons": [{"code": "a", "system": "s"}]},
    ],
)
def test_each_rule_can_fail(bad: dict[str, object]) -> None:
    assert _problems([bad])


def test_errors_need_operation_outcome_and_no_5xx() -> None:
    assert contract.response_problems("POST", "/cds-services/x", 400, b'{"detail": "bad"}')
    assert contract.response_problems("POST", "/cds-services/x", 500, b"")
    assert contract.response_problems("POST", "/cds-services/x", 401, b"why")
    assert not contract.response_problems(
        "POST", "/cds-services/x", 412, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error"}]}'
    )


def _outcome(*issues: dict[str, object]) -> bytes:
    return json.dumps({"resourceType": "OperationOutcome", "issue": list(issues)}).encode()


@pytest.mark.parametrize(
    "issue",
    [
        {"severity": "error"},
        {"severity": "error", "diagnostics": "invalid hook request (1 problems)"},
        {"severity": "error", "diagnostics": "context.patientId: bad", "expression": ["context.patientId"]},
        {"severity": "error", "diagnostics": "missing; expected a string", "expression": ["hook"]},
    ],
)
def test_a_400_must_name_the_field_and_what_was_expected(issue: dict[str, object]) -> None:
    assert contract.response_problems("POST", "/cds-services/x", 400, _outcome(issue))
    assert contract.response_problems("POST", "/cds-services/x/feedback", 400, _outcome(issue))


def test_a_precise_400_passes() -> None:
    precise = {"diagnostics": "context.draftOrders: missing; expected a Bundle", "expression": ["context.draftOrders"]}
    body = {"diagnostics": "request body: not valid JSON (byte 3)"}
    assert not contract.response_problems("POST", "/cds-services/x", 400, _outcome(precise, body))
