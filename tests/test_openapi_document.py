"""The OpenAPI document (documentation and schemathesis fuzzing): the service call's answer is described by
the response model's schema, added when the document is first built, without FastAPI's nulls."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from cds_service.spec.response import CdsResponse


def test_the_call_answer_has_the_response_models_schema(make_client: Callable[..., TestClient]) -> None:
    document = make_client().get("/openapi.json").json()
    answer = document["paths"]["/cds-services/{service_id}"]["post"]["responses"]["200"]
    assert answer["description"] == "cards"
    schema = answer["content"]["application/json"]["schema"]
    assert schema["properties"]["cards"]["type"] == "array"
    assert set(schema["$defs"]) == set(CdsResponse.model_json_schema()["$defs"])
    assert _nulls(schema) == 0  # FastAPI leaves `"default": null` out of its own parts; so does this one
    assert ": null" not in json.dumps(document)


def _nulls(value: Any) -> int:
    if isinstance(value, dict):
        return sum(1 if item is None else _nulls(item) for item in value.values())
    if isinstance(value, list):
        return sum(_nulls(item) for item in value)
    return 0
