"""The OpenAPI document (documentation and schemathesis fuzzing): every served call's answer is described by
the response model's schema, whose definitions sit in components/schemas, without FastAPI's nulls."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from cds_service.spec.response import CdsResponse


def test_each_call_answer_refers_to_the_response_models_schema(make_client: Callable[..., TestClient]) -> None:
    document = make_client().get("/openapi.json").json()
    calls = [path for path in document["paths"] if path.startswith("/cds-services/") and "feedback" not in path]
    assert calls, "no service call paths in the document"
    for path in calls:
        answer = document["paths"][path]["post"]["responses"]["200"]
        assert answer["description"] == "cards"
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CdsResponse"}
    components = document["components"]["schemas"]
    assert components["CdsResponse"]["properties"]["cards"]["type"] == "array"
    assert set(CdsResponse.model_json_schema()["$defs"]) <= set(components)
    assert _nulls(components["CdsResponse"]) == 0  # FastAPI leaves `"default": null` out of its own parts
    assert ": null" not in json.dumps(document)


def test_no_reference_in_the_document_dangles(make_client: Callable[..., TestClient]) -> None:
    document = make_client().get("/openapi.json").json()
    components = document["components"]["schemas"]
    for reference in _references(document):
        assert reference.startswith("#/components/schemas/"), reference
        assert reference.rsplit("/", 1)[1] in components, reference


def _nulls(value: Any) -> int:
    if isinstance(value, dict):
        return sum(1 if item is None else _nulls(item) for item in value.values())
    if isinstance(value, list):
        return sum(_nulls(item) for item in value)
    return 0


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []
