"""FHIR OperationOutcome bodies for error answers (CDS Hooks 3.0 §Returning OperationOutcome)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a request: what, and where.

    `expression` is the path of the offending field in the request body (`context.draftOrders`,
    `feedback[0].outcome`), written as OperationOutcome.issue.expression (FHIRPath-style); the
    diagnostics start with the same path, for clients that show only the text. `code` overrides the
    answer's default issue code (e.g. `required` for a missing field).
    """

    diagnostics: str
    expression: str | None = None
    code: IssueCode | None = None

    def __str__(self) -> str:
        return self.diagnostics


def build_operation_outcome(
    messages: Sequence[str | Issue],
    *,
    code: IssueCode,
    severity: Literal["fatal", "error", "warning", "information"] = "error",
) -> bytes:
    """One issue per message, validated by fhir.resources before it leaves the service."""
    # Imported on first use (the start-up warm-up does it in the background): keeps cold start short.
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    issues: list[dict[str, object]] = []
    for message in messages:
        issue = message if isinstance(message, Issue) else Issue(message)
        entry: dict[str, object] = {"severity": severity, "code": issue.code or code, "diagnostics": issue.diagnostics}
        if issue.expression:
            entry["expression"] = [issue.expression]
        issues.append(entry)
    outcome = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})
    return outcome.model_dump_json(exclude_none=True).encode()
