"""Error answers: a status code and an OperationOutcome body, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.responses import Response

from cds_service.spec.operation_outcome import Issue, IssueCode, build_operation_outcome

FHIR_JSON = "application/fhir+json"


class HttpProblem(Exception):
    """Raised anywhere in transport to answer with `status` and an OperationOutcome."""

    def __init__(
        self,
        status: int,
        messages: Sequence[str | Issue] | str | Issue,
        *,
        code: IssueCode,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.issues: tuple[str | Issue, ...] = (messages,) if isinstance(messages, str | Issue) else tuple(messages)
        self.messages = tuple(str(issue) for issue in self.issues)
        self.code: IssueCode = code
        self.headers = dict(headers or {})  # e.g. Allow on 405, Retry-After on 503
        super().__init__("; ".join(self.messages))


def problem_response(problem: HttpProblem) -> Response:
    if problem.status == 401:
        return Response(status_code=401)
    body = build_operation_outcome(problem.issues, code=problem.code)
    return Response(content=body, status_code=problem.status, media_type=FHIR_JSON, headers=problem.headers)


def internal_error_response() -> Response:
    body = build_operation_outcome(
        ["internal error; the request was not processed. The failure has been logged."], code="exception"
    )
    return Response(content=body, status_code=500, media_type=FHIR_JSON)
