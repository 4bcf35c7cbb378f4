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
                "draftOrders": {
                    "type": "object",
                    "required": ["resourceType"],
                    "properties": {
                        "resourceType": {"const": "Bundle"},
                        "entry": {"type": "array", "items": {"type": "object"}},
                    },
                },
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


# Pydantic's own "#/$defs/..." references do not resolve once the schema sits inside an OpenAPI document:
# they point at components/schemas instead, and with_service_ids() puts the definitions there.
_REF_TEMPLATE = "#/components/schemas/{model}"


def _response_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = CdsResponse.model_json_schema(ref_template=_REF_TEMPLATE)
    definitions = schema.pop("$defs", {})
    return schema, {"CdsResponse": schema, **definitions}


def call_openapi() -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": HOOK_REQUEST}}},
        "responses": {
            "200": {
                "description": "cards",
                "content": {"application/json": {"schema": {"$ref": _REF_TEMPLATE.format(model="CdsResponse")}}},
            },
            "401": {"description": "unauthorized (bare)"},
            **_errors(400, 404, 412, 413, 503),
        },
    }


def feedback_openapi() -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": FEEDBACK}}},
        "responses": {
            "200": {"description": "stored"},
            "401": {"description": "unauthorized (bare)"},
            **_errors(400, 404, 413, 503),
        },
    }


def with_service_ids(schema: dict[str, Any], service_ids: list[str]) -> dict[str, Any]:
    """Name the served ids in the `service_id` path parameter (clients and fuzzers see real ids), and add the
    response models' definitions the operations refer to."""
    schema.setdefault("components", {}).setdefault("schemas", {}).update(_response_schema()[1])
    for path, operations in schema.get("paths", {}).items():
        if "{service_id}" not in path:
            continue
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "service_id":
                    parameter["schema"] = {"type": "string", "enum": sorted(service_ids)}
    return schema
