"""CDS Hooks feedback (2.0 §Feedback): validated, stored durably, idempotent on card+outcome+time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import Engine, insert

from cds_service.spec.field_errors import field_issue, json_type
from cds_service.spec.operation_outcome import Issue
from cds_service.storage.database import UNAVAILABLE_ERRORS, feedback, feedback_rejected, fitted, storable
from cds_service.storage.errors import StoreUnavailableError

# What each field of a feedback item must hold (CDS Hooks 2.0 §Feedback; Epic's `overrideReasons`).
EXPECTED = {
    "feedback": "an array of feedback items",
    "card": "the uuid of the card, as a string",
    "outcome": '"accepted" or "overridden"',
    "outcomeTimestamp": 'the time of the outcome as an RFC 3339 date-time string (e.g. "2026-03-10T12:00:00Z")',
    "acceptedSuggestions": 'an array of {"id": <suggestion uuid>} objects',
    "overrideReason": "an object with reason (a Coding) and/or userComment",
    "overrideReasons": "an override reason object, or an array of them (Epic)",
}


class _Coding(msgspec.Struct):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class _OverrideReason(msgspec.Struct):
    reason: _Coding | None = None
    userComment: str | None = None  # noqa: N815


class _AcceptedSuggestion(msgspec.Struct):
    id: str


class FeedbackItem(msgspec.Struct):
    card: str
    outcome: Literal["accepted", "overridden"]
    outcomeTimestamp: str  # noqa: N815
    acceptedSuggestions: list[_AcceptedSuggestion] | None = None  # noqa: N815
    overrideReason: _OverrideReason | None = None  # noqa: N815
    # Epic sends `overrideReasons` (plural); accept an object or a list of them.
    overrideReasons: _OverrideReason | list[_OverrideReason] | None = None  # noqa: N815


class _Batch(msgspec.Struct):
    feedback: list[msgspec.Raw]


@dataclass(frozen=True)
class FeedbackResult:
    stored: int
    duplicates: int
    rejected: tuple[Issue, ...]


CARD_ID_MAX = 200  # the column's length; a card uuid is 36 characters


class FeedbackBodyError(ValueError):
    def __init__(self, issue: Issue) -> None:
        self.issue = issue
        super().__init__(issue.diagnostics)


def parse_batch(body: bytes) -> list[msgspec.Raw]:
    try:
        return msgspec.json.decode(body, type=_Batch).feedback
    except RecursionError as error:
        too_deep = Issue("request body: not valid JSON here (nested too deeply for the decoder)", None, "structure")
        raise FeedbackBodyError(too_deep) from error
    except msgspec.ValidationError as error:  # a subclass of DecodeError: first
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as decode_error:  # typed decoding stops at the first wrong type
            raise FeedbackBodyError(
                Issue(f"request body: not valid JSON ({decode_error})", None, "structure")
            ) from error
        if not isinstance(document, dict):
            wrong = Issue(
                f'request body: expected an object {{"feedback": [...]}}, got {json_type(document)}', None, "structure"
            )
            raise FeedbackBodyError(wrong) from error
        raise FeedbackBodyError(field_issue(error, expectations=EXPECTED)) from error
    except msgspec.DecodeError as error:
        raise FeedbackBodyError(Issue(f"request body: not valid JSON ({error})", None, "structure")) from error


class _Rejected(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(message)


def _validate(raw: msgspec.Raw) -> FeedbackItem:
    item = msgspec.json.decode(raw, type=FeedbackItem)
    if not item.card.strip():
        raise _Rejected("card", f"expected {EXPECTED['card']}, got an empty string")
    if len(item.card) > CARD_ID_MAX:
        raise _Rejected("card", f"expected {EXPECTED['card']}, got {len(item.card)} characters")
    if item.outcome == "accepted" and not item.acceptedSuggestions:
        raise _Rejected("acceptedSuggestions", f"missing; accepted feedback needs {EXPECTED['acceptedSuggestions']}")
    _normalise_timestamp(item.outcomeTimestamp)
    return item


def _normalise_timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise _Rejected("outcomeTimestamp", f"expected {EXPECTED['outcomeTimestamp']}, got {value!r}") from error
    if parsed.tzinfo is None:
        raise _Rejected("outcomeTimestamp", f"expected a time zone (RFC 3339), got {value!r}")
    try:
        return parsed.astimezone(UTC).isoformat()
    except OverflowError as error:  # 9999-12-31T23:59:59-05:00 is past the last UTC instant Python holds
        raise _Rejected(
            "outcomeTimestamp", f"expected {EXPECTED['outcomeTimestamp']} within the years 1-9999, got {value!r}"
        ) from error


def _issue(index: int, raw: msgspec.Raw, error: Exception) -> Issue:
    where = f"feedback[{index}]"
    if isinstance(error, RecursionError):
        return Issue(f"{where}: not valid JSON here (nested too deeply for the decoder)", where, "structure")
    if isinstance(error, _Rejected):
        return Issue(f"{where}.{error.field}: {error.message}", f"{where}.{error.field}", "value")
    if isinstance(error, msgspec.ValidationError):
        if not bytes(raw).lstrip().startswith(b"{"):
            got = json_type(msgspec.json.decode(raw))
            return Issue(f"{where}: expected a feedback object, got {got}", where, "structure")
        prefixed = {f"{where}.{key}": text for key, text in EXPECTED.items()}
        return field_issue(error, prefix=where, expectations=prefixed)
    return Issue(f"{where}: {error}", where, "invalid")


def _reason(item: FeedbackItem) -> _OverrideReason | None:
    if item.overrideReason is not None:
        return item.overrideReason
    if isinstance(item.overrideReasons, list):
        return item.overrideReasons[0] if item.overrideReasons else None
    return item.overrideReasons


def _row(service_id: str, item: FeedbackItem, raw: msgspec.Raw, now: datetime) -> dict[str, Any]:
    reason = _reason(item)
    coding = reason.reason if reason is not None else None
    accepted = [s.id for s in item.acceptedSuggestions or []]
    return {
        "service_id": fitted(feedback.c.service_id, service_id),
        "card_uuid": storable(item.card),
        "outcome": item.outcome,
        "outcome_timestamp": _normalise_timestamp(item.outcomeTimestamp),
        "accepted_suggestions": storable(json.dumps(accepted)) if accepted else None,
        "override_reason_system": fitted(feedback.c.override_reason_system, coding.system) if coding else None,
        "override_reason_code": fitted(feedback.c.override_reason_code, coding.code) if coding else None,
        "override_reason_display": fitted(feedback.c.override_reason_display, coding.display) if coding else None,
        "override_comment": storable(reason.userComment) if reason else None,
        "raw": storable(bytes(raw).decode("utf-8", errors="replace")),
        "received_at": now,
    }


def store_feedback(engine: Engine, service_id: str, items: list[msgspec.Raw]) -> FeedbackResult:
    """Store every valid item (once); keep invalid ones in the rejected table with the reason."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    rejected_rows: list[dict[str, Any]] = []
    problems: list[Issue] = []
    for index, raw in enumerate(items):
        try:
            rows.append(_row(service_id, _validate(raw), raw, now))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError) as error:
            problem = _issue(index, raw, error)
            problems.append(problem)
            rejected_rows.append(
                {
                    "service_id": fitted(feedback_rejected.c.service_id, service_id),
                    "problem": storable(problem.diagnostics),
                    "raw": storable(bytes(raw).decode("utf-8", errors="replace")),
                    "received_at": now,
                }
            )
    try:
        stored = _insert_all(engine, rows, rejected_rows)
    except UNAVAILABLE_ERRORS as error:
        raise StoreUnavailableError(f"feedback database unavailable ({type(error).__name__})") from error
    return FeedbackResult(stored=stored, duplicates=len(rows) - stored, rejected=tuple(problems))


def _insert_all(engine: Engine, rows: list[dict[str, Any]], rejected_rows: list[dict[str, Any]]) -> int:
    """One transaction: every item of the call is kept, or none is (and the call is answered 503)."""
    stored = 0
    with engine.begin() as connection:
        for row in rows:
            # RETURNING tells inserted from skipped on both dialects (rowcount is -1 on psycopg).
            inserted = connection.execute(
                _insert_ignoring_duplicates(engine).values(**row).returning(feedback.c.id)
            ).fetchall()
            stored += len(inserted)
        if rejected_rows:
            connection.execute(insert(feedback_rejected), rejected_rows)
    return stored


def _insert_ignoring_duplicates(engine: Engine) -> Any:
    # Dialect modules are imported when first needed (the PostgreSQL package costs ~70 ms of start-up).
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    if engine.dialect.name == "postgresql":
        return pg_insert(feedback).on_conflict_do_nothing(constraint="uq_feedback_card_outcome_time")
    if engine.dialect.name == "sqlite":
        return sqlite_insert(feedback).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {engine.dialect.name}")
