"""OpenAPI descriptions of the CDS Hooks bodies, for documentation and for schemathesis fuzzing.

The routes read raw bytes (they decode only what a service needs), so the schemas are declared here.
"""

from __future__ import annotations

from typing import Any

from cds_service.spec.response import CdsResponse

OPERATION_OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}
HOOK_REQUEST = {
    "type": "object",
    "required": ["hook", "hookInstance", "context"],
    "properties": {
        "hook": {"enum": ["patient-view", "order-select", "order-sign"]},
        "hookInstance": {"type": "string", "minLength": 1},
        "fhirServer": {"type": "string"},
        "fhirAuthorization": {
            "type": "object",
            "required": ["access_token"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string"},
                "expires_in": {"type": "integer"},
                "scope": {"type": "string"},
                "subject": {"type": "string"},
            },
        },
        "context": {
            "type": "object",
            "required": ["userId", "patientId"],
            "properties": {
                "userId": {"type": "string", "minLength": 1},
                "patientId": {"type": "string", "minLength": 1},
                "encounterId": {"type": "string"},
                "selections": {"type": "array", "items": {"type": "string"}},
                "draftOrders": {"type": "object"},
            },
            "additionalProperties": True,
        },
        "prefetch": {"type": "object", "additionalProperties": True},
    },
}
FEEDBACK = {
    "type": "object",
    "required": ["feedback"],
    "properties": {
        "feedback": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["card", "outcome", "outcomeTimestamp"],
                "properties": {
                    "card": {"type": "string"},
                    "outcome": {"enum": ["accepted", "overridden"]},
                    "outcomeTimestamp": {"type": "string"},
                    "acceptedSuggestions": {"type": "array"},
                    "overrideReason": {"type": "object"},
                },
            },
        }
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {"description": "error", "content": {"application/fhir+json": {"schema": OPERATION_OUTCOME}}}
        for code in codes
    }


def call_openapi() -> dict[str, Any]:
    # The 200 schema (the response model's JSON schema) is filled in when the document is first asked for
    # (`with_service_ids`): generating it costs start-up time that no discovery or hook call needs.
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": HOOK_REQUEST}}},
        "responses": {
            "200": {"description": "cards", "content": {"application/json": {}}},
            "401": {"description": "unauthorized (bare)"},
            **_errors(400, 404, 412, 413),
        },
    }


def feedback_openapi() -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": FEEDBACK}}},
        "responses": {
            "200": {"description": "stored"},
            "401": {"description": "unauthorized (bare)"},
            **_errors(400, 404, 413),
        },
    }


def with_service_ids(schema: dict[str, Any], service_ids: list[str]) -> dict[str, Any]:
    """Name the served ids in the `service_id` path parameter (clients and fuzzers see real ids), and give
    the service call's answer its schema."""
    for path, operations in schema.get("paths", {}).items():
        if "{service_id}" not in path:
            continue
        if path == "/cds-services/{service_id}" and "post" in operations:
            answer = operations["post"].get("responses", {}).get("200", {}).get("content", {})
            answer.setdefault("application/json", {})["schema"] = _without_nulls(CdsResponse.model_json_schema())
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "service_id":
                    parameter["schema"] = {"type": "string", "enum": sorted(service_ids)}
    return schema


def _without_nulls(value: Any) -> Any:
    """As FastAPI renders its own document (exclude_none): `"default": null` and the like are left out."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value
