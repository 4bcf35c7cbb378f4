"""FHIR OperationOutcome bodies for error answers (CDS Hooks 3.0 §Returning OperationOutcome)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

IssueCode = Literal[
    "invalid",
    "structure",
    "required",
    "value",
    "not-found",
    "not-supported",
    "too-costly",
    "processing",
    "timeout",
    "transient",
    "incomplete",
    "exception",
    "security",
    "duplicate",
]


def build_operation_outcome(
    messages: Sequence[str],
    *,
    code: IssueCode,
    severity: Literal["fatal", "error", "warning", "information"] = "error",
) -> bytes:
    """One issue per message, validated by fhir.resources before it leaves the service."""
    # Imported on first use (the start-up warm-up does it in the background): keeps cold start short.
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": message} for message in messages],
        }
    )
    return outcome.model_dump_json(exclude_none=True).encode()
