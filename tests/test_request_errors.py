"""Every 400 a client gets names the field at fault (OperationOutcome issue.expression, and the start of
the text) and what was expected there, so a client developer can fix the request without our logs.

The contract checker (tests/contract.py) enforces the shape on every 400 of the suite; these cases pin the
exact words for the mistakes real clients make.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import hook_request
from tests.conftest import CORE_HOOKS

CAPTURES = Path(__file__).parent / "captures"


def _issues(response: Any) -> list[tuple[str | None, str]]:
    assert response.status_code == 400, response.text
    document = response.json()
    assert document["resourceType"] == "OperationOutcome"
    return [((issue.get("expression") or [None])[0], issue["diagnostics"]) for issue in document["issue"]]


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(body: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


CASES: list[tuple[str, Any, list[tuple[str | None, str]]]] = [
    (
        "no envelope fields",
        {},
        [
            ("hook", 'hook: missing; expected the hook\'s name as a string (e.g. "patient-view")'),
            ("hookInstance", "hookInstance: missing; expected a string (a UUID for this hook invocation)"),
            ("context", "context: missing; expected an object holding the hook's context fields"),
        ],
    ),
    (
        "body is an array",
        [],
        [(None, "request body: expected a JSON object with hook, hookInstance, context, got an array")],
    ),
    (
        "hook is a number",
        _with(hook_request(), 7, "hook"),
        [("hook", 'hook: expected the hook\'s name as a string (e.g. "patient-view"), got an integer')],
    ),
    (
        "empty hookInstance",
        _with(hook_request(), "  ", "hookInstance"),
        [("hookInstance", "hookInstance: expected a string (a UUID for this hook invocation), got an empty string")],
    ),
    (
        "context is an array",
        _with(hook_request(), [], "context"),
        [("context", "context: expected an object holding the hook's context fields, got an array")],
    ),
    (
        "prefetch is an array",
        _with(hook_request(), [], "prefetch"),
        [("prefetch", "prefetch: expected an object mapping prefetch keys to FHIR resources (or null), got an array")],
    ),
    (
        "access token missing",
        _with(hook_request(fhirServer="https://fhir.example.org"), {"token_type": "Bearer"}, "fhirAuthorization"),
        [
            (
                "fhirAuthorization.access_token",
                "fhirAuthorization.access_token: missing; expected the OAuth 2.0 access token as a string",
            )
        ],
    ),
    (
        "expires_in as text",
        _with(
            hook_request(fhirServer="https://fhir.example.org"),
            {"access_token": "t", "expires_in": "300"},
            "fhirAuthorization",
        ),
        [
            (
                "fhirAuthorization.expires_in",
                "fhirAuthorization.expires_in: expected the token's lifetime in seconds as an integer, got a string",
            )
        ],
    ),
    (
        "fhirAuthorization without fhirServer",
        _with(hook_request(), {"access_token": "t"}, "fhirAuthorization"),
        [
            (
                "fhirServer",
                "fhirServer: missing; expected the FHIR server's base URL, required when fhirAuthorization is "
                "present (CDS Hooks 2.0, cds-r-1)",
            )
        ],
    ),
    (
        "fhirServer not a URL",
        hook_request(fhirServer="fhir.example.org/r4"),
        [("fhirServer", "fhirServer: expected an http(s) URL, got 'fhir.example.org/r4'")],
    ),
    (
        "patientId and userId missing",
        _without(_without(hook_request(), "context", "patientId"), "context", "userId"),
        [
            (
                "context.userId",
                "context.userId: missing; patient-view requires the user's FHIR reference as a string (e.g. "
                '"Practitioner/123")',
            ),
            (
                "context.patientId",
                "context.patientId: missing; patient-view requires the FHIR id of the patient in context as a string",
            ),
        ],
    ),
    (
        "patientId is a number",
        _with(hook_request(), 6506911, "context", "patientId"),
        [
            (
                "context.patientId",
                "context.patientId: expected the FHIR id of the patient in context as a string, got an integer",
            )
        ],
    ),
    (
        "a selection is not a string",
        _with(hook_request("order-select"), ["MedicationRequest/1", {"reference": "x"}], "context", "selections"),
        [
            (
                "context.selections[1]",
                'context.selections[1]: expected a reference string such as "MedicationRequest/123", got an object',
            )
        ],
    ),
    (
        "draftOrders is an array",
        _with(hook_request("order-sign"), [], "context", "draftOrders"),
        [
            (
                "context.draftOrders",
                "context.draftOrders: expected a FHIR Bundle (an object) holding the draft orders, got an array",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(body, expected) for _, body, expected in CASES], ids=[c[0] for c in CASES]
)
def test_each_malformed_hook_request_names_the_field_and_what_was_expected(
    core_client: TestClient, body: Any, expected: list[tuple[str | None, str]]
) -> None:
    hook = body.get("hook") if isinstance(body, dict) and isinstance(body.get("hook"), str) else "patient-view"
    service = "prefetch-probe-order-select" if hook == "order-select" else "prefetch-probe"
    if hook == "order-sign":
        body["hook"] = "order-select"  # the probe serves order-select; the check under test is the same
        body["context"]["selections"] = []
    assert _issues(core_client.post(f"/cds-services/{service}", json=body)) == expected


def test_malformed_json_says_so_at_the_body(core_client: TestClient) -> None:
    response = core_client.post("/cds-services/prefetch-probe", content=b'{"hook": ', headers={"content-type": "json"})
    ((where, text),) = _issues(response)
    assert where is None and text.startswith("request body: not valid JSON (")


def test_healthchain_order_select_without_draft_orders_and_selections_names_both(
    make_client: Callable[..., TestClient],
) -> None:
    """HealthChain 0.16.1's SandboxClient drops draftOrders and selections from order-select."""
    body = json.loads((CAPTURES / "healthchain-0.16.1--order-select--request.json").read_text())
    response = make_client().post("/cds-services/anakinra-dose-order-select", json=body)
    assert _issues(response) == [
        (
            "context.selections",
            "context.selections: missing; order-select requires an array of references to the selected draft "
            'orders (e.g. ["MedicationRequest/123"])',
        ),
        (
            "context.draftOrders",
            "context.draftOrders: missing; order-select requires a FHIR Bundle (an object) holding the draft orders",
        ),
    ]
    assert [issue["code"] for issue in response.json()["issue"]] == ["required", "required"]


FEEDBACK_CASES: list[tuple[str, Any, list[tuple[str | None, str]]]] = [
    ("no feedback key", {"items": []}, [("feedback", "feedback: missing; expected an array of feedback items")]),
    (
        "feedback not an array",
        {"feedback": {}},
        [("feedback", "feedback: expected an array of feedback items, got an object")],
    ),
    ("body an array", [], [(None, 'request body: expected an object {"feedback": [...]}, got an array')]),
    (
        "outcome not allowed",
        {"feedback": [{"card": "c", "outcome": "dismissed", "outcomeTimestamp": "2026-03-10T12:00:00Z"}]},
        [
            (
                "feedback[0].outcome",
                'feedback[0].outcome: \'dismissed\' is not allowed; expected "accepted" or "overridden"',
            )
        ],
    ),
    (
        "outcomeTimestamp missing",
        {"feedback": [{"card": "c", "outcome": "overridden"}]},
        [
            (
                "feedback[0].outcomeTimestamp",
                "feedback[0].outcomeTimestamp: missing; expected the time of the outcome as an RFC 3339 date-time "
                'string (e.g. "2026-03-10T12:00:00Z")',
            )
        ],
    ),
    (
        "reason code a number",
        {
            "feedback": [
                {
                    "card": "c",
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-03-10T12:00:00Z",
                    "overrideReason": {"reason": {"code": 3}},
                }
            ]
        },
        [
            (
                "feedback[0].overrideReason.reason.code",
                "feedback[0].overrideReason.reason.code: expected a string, got an integer",
            )
        ],
    ),
    (
        "accepted without suggestions",
        {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-03-10T12:00:00Z"}]},
        [
            (
                "feedback[0].acceptedSuggestions",
                'feedback[0].acceptedSuggestions: missing; accepted feedback needs an array of {"id": <suggestion '
                "uuid>} objects",
            )
        ],
    ),
    (
        "item not an object",
        {"feedback": ["c"]},
        [("feedback[0]", "feedback[0]: expected a feedback object, got a string")],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(body, expected) for _, body, expected in FEEDBACK_CASES], ids=[c[0] for c in FEEDBACK_CASES]
)
def test_each_malformed_feedback_names_the_field_and_what_was_expected(
    make_client: Callable[..., TestClient], body: Any, expected: list[tuple[str | None, str]]
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS)
    assert _issues(client.post("/cds-services/prefetch-probe/feedback", json=body)) == expected
