"""CDS Hooks response rules, written apart from the service's own models so they can disagree.

`check_exchange` is installed as an httpx response hook on every test client: each response produced
anywhere in the suite is checked against these rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SERVICE_CALL = re.compile(r"^/cds-services/[^/]+$")
CDS_ENDPOINT = re.compile(r"^/cds-services/[^/]+(/feedback)?$")
SAYS_WHAT_WAS_EXPECTED = ("expected", "missing", "not valid JSON")
INDICATORS = {"info", "warning", "critical"}


def _no_nulls_or_empties(value: Any, path: str, problems: list[str]) -> None:
    if value is None or value in ("", [], {}):
        problems.append(f"{path} is null or empty")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nulls_or_empties(item, f"{path}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_nulls_or_empties(item, f"{path}[{index}]", problems)


def card_problems(card: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    _no_nulls_or_empties(card, where, problems)
    if not UUID.match(str(card.get("uuid", ""))):
        problems.append(f"{where}.uuid missing or not a uuid")
    summary = card.get("summary")
    if not isinstance(summary, str) or len(summary) >= 140:
        problems.append(f"{where}.summary missing or not < 140 characters")
    if card.get("indicator") not in INDICATORS:
        problems.append(f"{where}.indicator invalid")
    source = card.get("source")
    if not isinstance(source, dict) or not source.get("label"):
        problems.append(f"{where}.source.label missing")
    elif "topic" in source and not (source["topic"].get("code") and source["topic"].get("system")):
        problems.append(f"{where}.source.topic needs code and system")
    suggestions = card.get("suggestions")
    if suggestions:
        if card.get("selectionBehavior") not in {"at-most-one", "any"}:
            problems.append(f"{where}.selectionBehavior required with suggestions")
        for index, suggestion in enumerate(suggestions):
            if not UUID.match(str(suggestion.get("uuid", ""))):
                problems.append(f"{where}.suggestions[{index}].uuid missing or not a uuid")
            if not suggestion.get("label"):
                problems.append(f"{where}.suggestions[{index}].label missing")
            for action in suggestion.get("actions", []):
                if action.get("type") not in {"create", "update", "delete"} or not action.get("description"):
                    problems.append(f"{where}.suggestions[{index}] action invalid")
                if action.get("type") in {"create", "update"} and not action.get("resource"):
                    problems.append(f"{where}.suggestions[{index}] action without resource")
    for index, reason in enumerate(card.get("overrideReasons", [])):
        if not reason.get("display"):
            problems.append(f"{where}.overrideReasons[{index}].display missing")
    return problems


def response_problems(method: str, path: str, status: int, body: bytes) -> list[str]:
    if status >= 500:
        return [f"{method} {path} answered {status}"]
    if 400 <= status < 500 and status != 401:
        try:
            document = json.loads(body)
        except ValueError:
            return [f"{method} {path} answered {status} without an OperationOutcome"]
        if document.get("resourceType") != "OperationOutcome" or not document.get("issue"):
            return [f"{method} {path} answered {status} without an OperationOutcome"]
        if b"Traceback" in body:
            return [f"{method} {path} leaked a stack trace"]
        if status == 400 and CDS_ENDPOINT.match(path):
            return [f"{method} {path} 400: {problem}" for problem in _imprecise_issues(document["issue"])]
        return []
    if status == 401:
        return [] if not body else [f"{method} {path}: 401 must be bare"]
    if method == "POST" and SERVICE_CALL.match(path) and status == 200:
        document = json.loads(body)
        if set(document) - {"cards", "systemActions"} or not isinstance(document.get("cards"), list):
            return ["response must be {'cards': [...]}"]
        problems: list[str] = []
        for index, card in enumerate(document["cards"]):
            problems.extend(card_problems(card, f"cards[{index}]"))
        return problems
    if method == "GET" and path == "/cds-services" and status == 200:
        problems = []
        for index, service in enumerate(json.loads(body)["services"]):
            _no_nulls_or_empties(service, f"services[{index}]", problems)
            for field in ("hook", "id", "description"):
                if not service.get(field):
                    problems.append(f"services[{index}].{field} missing")
        return problems
    return []


def _imprecise_issues(issues: list[dict[str, Any]]) -> list[str]:
    """A client-facing 400 names the field (issue.expression, repeated at the start of the text) and what
    was expected there; only a body that is not a JSON object at all has no field to name."""
    problems = []
    for issue in issues:
        text = issue.get("diagnostics", "")
        expressions = issue.get("expression") or []
        where = expressions[0] if expressions else "request body"
        if not text.startswith(f"{where}:"):
            problems.append(f"issue does not start with the field it is about: {text!r}")
        elif not any(phrase in text for phrase in SAYS_WHAT_WAS_EXPECTED):
            problems.append(f"issue does not say what was expected: {text!r}")
    return problems


class ContractViolationError(AssertionError):
    pass


checked_responses = 0


def check_exchange(response: Any) -> None:
    """httpx response hook (sync clients)."""
    global checked_responses
    response.read()
    problems = response_problems(
        response.request.method, response.request.url.path, response.status_code, response.content
    )
    checked_responses += 1
    if problems:
        raise ContractViolationError("; ".join(problems))
