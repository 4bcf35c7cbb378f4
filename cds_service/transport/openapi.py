"""OpenAPI descriptions of the CDS Hooks bodies, for documentation and for schemathesis fuzzing.

The routes read raw bytes (they decode only what a service needs), so the schemas are declared here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cds_service.spec.response import CdsResponse
from cds_service.transport.envelope import REQUIRED_CONTEXT

CALL_PATH = "/cds-services/{service_id}"

OPERATION_OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
}
HOOK_REQUEST: dict[str, Any] = {
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


def hook_request_schema(hooks: tuple[str, ...]) -> dict[str, Any]:
    """The request body one endpoint accepts: its hooks, and each hook's required context fields."""
    schemas = []
    for hook in hooks:
        schema = copy.deepcopy(HOOK_REQUEST)
        schema["properties"]["hook"] = {"enum": [hook]}
        schema["properties"]["context"]["required"] = list(REQUIRED_CONTEXT.get(hook, ("userId", "patientId")))
        schemas.append(schema)
    return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}


def with_service_endpoints(schema: dict[str, Any], endpoints: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """Each served id as its own path with the body it accepts (clients and fuzzers see real ids and hooks);
    feedback keeps the `service_id` parameter, naming the served ids. The response models' definitions the
    operations refer to are added, so no `$ref` dangles."""
    schema.setdefault("components", {}).setdefault("schemas", {}).update(_response_schema()[1])
    paths: dict[str, Any] = schema.get("paths", {})
    template = paths.pop(CALL_PATH, {}).get("post")
    if template is not None:
        for endpoint_id, hooks in sorted(endpoints.items()):
            operation = copy.deepcopy(template)
            operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("name") != "service_id"]
            if not operation["parameters"]:
                del operation["parameters"]
            operation["operationId"] = "call_" + endpoint_id.replace("-", "_")
            operation["requestBody"]["content"]["application/json"]["schema"] = hook_request_schema(hooks)
            paths[f"/cds-services/{endpoint_id}"] = {"post": operation}
    for path, operations in paths.items():
        if "{service_id}" not in path:
            continue
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "service_id":
                    parameter["schema"] = {"type": "string", "enum": sorted(endpoints)}
    return schema
