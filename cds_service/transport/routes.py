"""The CDS Hooks endpoints: discovery, service calls and feedback. A thin road, one step per line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import httpx
from anyio import to_thread
from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.responses import Response

from cds_service.call import HookCall
from cds_service.fhir.client import FhirServer
from cds_service.fhir.prefetch import RequiredDataUnavailableError, resolve_prefetch
from cds_service.registry import Registry, ServiceDefinition
from cds_service.settings import Settings
from cds_service.spec.response import CdsResponse, DiscoveryResponse
from cds_service.storage.database import database_reachable
from cds_service.storage.feedback import FeedbackBodyError, parse_batch, store_feedback
from cds_service.transport.envelope import Envelope, EnvelopeError, check_context, decode_envelope
from cds_service.transport.errors import HttpProblem

log = logging.getLogger("cds_service.calls")
JSON = "application/json"
EMPTY_RESPONSE = b'{"cards":[]}'


def build_router(
    *,
    settings: Settings,
    registry: Registry,
    engine: Engine,
    http_client: Callable[[], httpx.AsyncClient],
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter()
    discovery_body = DiscoveryResponse(services=registry.discovery()).to_json()

    @router.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery() -> Response:
        return Response(content=discovery_body, media_type=JSON)

    @router.post("/cds-services/{service_id}", summary="Call a CDS service")
    async def call_service(service_id: str, request: Request) -> Response:
        started = time.perf_counter()
        service = _service_or_404(registry, service_id)
        envelope = _envelope(await read_body(request, settings.max_body_bytes))
        if envelope.hook not in service.hooks:
            raise HttpProblem(
                400, f"service '{service_id}' does not serve hook '{envelope.hook}'", code="not-supported"
            )
        tokens = _context_tokens(envelope)
        fhir = _fhir_server(envelope, http_client(), settings)
        call = HookCall(
            service_id=service_id,
            hook=envelope.hook,
            hook_instance=envelope.hookInstance,
            context=envelope.context,
            now=clock(),
            settings=settings,
            fhir=fhir,
        )
        # A service may decline a call before any data is fetched (CDS Hooks "trigger guard").
        if service.guard is not None and not await service.guard(call):
            return Response(content=EMPTY_RESPONSE, media_type=JSON)
        try:
            data = await resolve_prefetch(
                service.prefetch,
                envelope.prefetch,
                tokens,
                fhir,
                deadline_seconds=settings.fhir_deadline_seconds,
                max_pages=settings.fhir_max_pages,
            )
        except RequiredDataUnavailableError as error:
            log.info("412 %s %s: required data unavailable", service_id, envelope.hookInstance)
            raise HttpProblem(412, error.messages, code="incomplete") from error
        cards = await service.handler(call, data)
        body = CdsResponse(cards=list(cards)).to_json()
        log.info(
            "200 %s %s %s cards=%d ms=%.1f",
            service_id,
            envelope.hook,
            envelope.hookInstance,
            len(cards),
            (time.perf_counter() - started) * 1000,
        )
        return Response(content=body, media_type=JSON)

    @router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards")
    async def feedback(service_id: str, request: Request) -> Response:
        _service_or_404(registry, service_id)
        body = await read_body(request, settings.max_body_bytes)
        try:
            items = parse_batch(body)
        except FeedbackBodyError as error:
            raise HttpProblem(400, str(error), code="structure") from error
        result = await to_thread.run_sync(store_feedback, engine, service_id, items)
        if result.rejected:
            raise HttpProblem(400, result.rejected, code="invalid")
        return Response(content=f'{{"stored":{result.stored},"duplicates":{result.duplicates}}}', media_type=JSON)

    @router.get("/healthz", summary="Process is up")
    async def healthz() -> Response:
        return Response(content=b'{"status":"ok"}', media_type=JSON)

    @router.get("/readyz", summary="Ready to serve: database reachable, services loaded")
    async def readyz() -> Response:
        ready = bool(registry.services) and await to_thread.run_sync(database_reachable, engine)
        body = b'{"status":"ready"}' if ready else b'{"status":"not ready"}'
        return Response(content=body, status_code=200 if ready else 503, media_type=JSON)

    return router


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HttpProblem(413, f"request body larger than {limit} bytes", code="too-costly")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpProblem(413, f"request body larger than {limit} bytes", code="too-costly")
        chunks.append(chunk)
    return b"".join(chunks)


def _service_or_404(registry: Registry, service_id: str) -> ServiceDefinition:
    service = registry.get(service_id)
    if service is None:
        raise HttpProblem(404, f"no CDS service with id '{service_id}'", code="not-found")
    return service


def _envelope(body: bytes) -> Envelope:
    try:
        return decode_envelope(body)
    except EnvelopeError as error:
        raise HttpProblem(400, str(error), code="structure") from error


def _context_tokens(envelope: Envelope) -> dict[str, str]:
    try:
        return check_context(envelope)
    except EnvelopeError as error:
        raise HttpProblem(400, str(error), code="required") from error


def _fhir_server(envelope: Envelope, client: httpx.AsyncClient, settings: Settings) -> FhirServer | None:
    if not envelope.fhirServer:
        return None
    token = envelope.fhirAuthorization.access_token if envelope.fhirAuthorization else None
    try:
        return FhirServer(
            base_url=envelope.fhirServer,
            access_token=token,
            http=client,
            max_response_bytes=settings.fhir_max_response_bytes,
        )
    except ValueError as error:
        raise HttpProblem(400, str(error), code="value") from error
