"""The benchmark baseline (sandbox only): decode a hook request exactly as a call does — envelope, then
every declared prefetch key with the same decoder — and answer no cards. The service's own throughput is
reported as a ratio of this endpoint's, measured in the same run on the same server."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cds_service.fhir.model import decode_payload
from cds_service.registry import Registry
from cds_service.transport.envelope import EnvelopeError, decode_envelope
from cds_service.transport.errors import HttpProblem
from cds_service.transport.routes import EMPTY_RESPONSE, JSON, read_body


def build_baseline_router(registry: Registry, max_body_bytes: int) -> APIRouter:
    router = APIRouter()

    @router.post("/bench/decode-only/{service_id}")
    async def decode_only(service_id: str, request: Request) -> Response:
        endpoint = registry.endpoint(service_id)
        if endpoint is None:
            raise HttpProblem(404, f"no CDS service with id '{service_id}'", code="not-found")
        service = endpoint.service
        try:
            envelope = decode_envelope(await read_body(request, max_body_bytes))
        except EnvelopeError as error:
            raise HttpProblem(400, error.issues, code="structure") from error
        prefetch = envelope.prefetch or {}
        for spec in service.prefetch:
            raw = prefetch.get(spec.key)
            if raw is not None:
                decode_payload(bytes(raw))
        return Response(content=EMPTY_RESPONSE, media_type=JSON)

    return router
