"""The CDS Hooks endpoints: discovery, service calls and feedback. A thin road, one step per line:

auth (401) -> body (413) -> registry (404) -> envelope (400) -> hook (400) -> guard -> data (412)
-> service -> response; every authenticated call is audited, logged and measured.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import anyio
import httpx
import structlog
from anyio import to_thread
from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.responses import Response

from cds_service.call import ContextValueError, HookCall
from cds_service.fhir.client import FhirServer, ReadBudget
from cds_service.fhir.prefetch import RequiredDataUnavailableError, resolve_prefetch
from cds_service.observability.metrics import Metrics
from cds_service.registry import Endpoint, Registry
from cds_service.settings import Settings
from cds_service.spec.operation_outcome import Issue
from cds_service.spec.response import Card, CdsResponse, DiscoveryResponse
from cds_service.storage.audit import AuditCard, AuditRecord, AuditWriter
from cds_service.storage.database import database_ready
from cds_service.storage.errors import StoreUnavailableError
from cds_service.storage.feedback import FeedbackBodyError, parse_batch, store_feedback
from cds_service.transport.auth import Authenticator, Caller
from cds_service.transport.envelope import Envelope, EnvelopeError, check_context, decode_envelope
from cds_service.transport.errors import HttpProblem
from cds_service.transport.openapi import call_openapi, feedback_openapi

log = structlog.get_logger("cds_service.calls")
JSON = "application/json"
EMPTY_RESPONSE = b'{"cards":[]}'
STORE_TIMEOUT_SECONDS = 10.0  # a feedback write that takes longer is answered 503 (it may still be kept)


@dataclass
class _CallTrace:
    """What the audit and the log need to know about one call, filled in as the road is walked."""

    service_id: str
    caller: Caller | None = None
    hook: str | None = None
    hook_instance: str | None = None
    cards: list[Card] = field(default_factory=list)
    rule_versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # audit-only remarks (no patient data)


def build_router(
    *,
    settings: Settings,
    registry: Registry,
    engine: Engine,
    http_client: Callable[[], httpx.AsyncClient],
    clock: Callable[[], datetime],
    authenticator: Authenticator,
    metrics: Metrics,
    ready_checks: list[Callable[[], Awaitable[bool]]],
    audit_writer: AuditWriter,
) -> APIRouter:
    router = APIRouter()
    discovery_body = DiscoveryResponse(services=registry.discovery()).to_json()

    @router.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery() -> Response:
        return Response(content=discovery_body, media_type=JSON)

    @router.post("/cds-services/{service_id}", summary="Call a CDS service", openapi_extra=call_openapi())
    async def call_service(service_id: str, request: Request) -> Response:
        started = time.perf_counter()
        trace = _CallTrace(service_id)
        try:
            trace.caller = await _authenticate(authenticator, request, f"/cds-services/{service_id}", metrics)
            body = await _serve(service_id, request, trace)
        except HttpProblem as problem:
            if trace.caller is None:
                raise  # not authenticated: not audited
            await _finish(trace, problem.status, "; ".join(problem.messages), started)
            raise
        except StoreUnavailableError as error:  # e.g. the replay store (Redis) is down: 503
            if trace.hook_instance is None:
                await _identify(request, trace)
            await _finish_after_failure(trace, 503, str(error), started)
            raise
        except Exception as error:
            await _finish_after_failure(trace, 500, f"internal error ({type(error).__name__})", started)
            raise
        # The answer leaves only once its record is kept: an audit that cannot be written makes this a 503.
        await _finish(trace, 200, "ok", started)
        return Response(content=body, media_type=JSON)

    async def _serve(service_id: str, request: Request, trace: _CallTrace) -> bytes:
        assert trace.caller is not None
        body = await read_body(request, settings.max_body_bytes)
        endpoint = _endpoint_or_404(registry, service_id)
        service = endpoint.service
        require_utf8(body)
        envelope = _envelope(body)
        trace.hook, trace.hook_instance = envelope.hook, envelope.hookInstance
        if envelope.hook not in endpoint.hooks:
            raise HttpProblem(
                400,
                Issue(
                    f"hook: expected {' or '.join(endpoint.hooks)} at /cds-services/{service_id}, got "
                    f"'{envelope.hook}'; discovery lists the id for each hook",
                    "hook",
                ),
                code="not-supported",
            )
        tokens = _context_tokens(envelope)
        fhir, refusal = _fhir_server(envelope, http_client(), settings, trace.caller, metrics)
        # One deadline and one byte budget for every FHIR read of this call (the guard's and the prefetch's).
        budget = ReadBudget.starting_now(settings.fhir_deadline_seconds, settings.fhir_max_call_bytes)
        call = HookCall(
            service_id=service.id,
            hook=envelope.hook,
            hook_instance=envelope.hookInstance,
            context=envelope.context,
            now=clock(),
            settings=settings,
            fhir=fhir,
            app_launch_url=_app_launch_url(settings, request),
            fhir_budget=budget,
        )
        # A service may decline a call before any data is fetched (CDS Hooks "trigger guard").
        try:
            if service.guard is not None and not await service.guard(call):
                return EMPTY_RESPONSE
        except ContextValueError as error:
            raise HttpProblem(400, Issue(str(error), error.field), code="structure") from error
        try:
            data = await resolve_prefetch(
                service.prefetch,
                envelope.prefetch,
                tokens,
                fhir,
                budget=budget,
                max_pages=settings.fhir_max_pages,
                no_server_reason=refusal,
            )
        except RequiredDataUnavailableError as error:
            trace.notes += _other_patient_notes(error.other_patient)
            raise HttpProblem(412, error.messages, code="incomplete") from error
        trace.notes += _other_patient_notes(data.other_patient_keys())
        try:
            result = await service.handler(call, data)
        except ContextValueError as error:
            raise HttpProblem(400, Issue(str(error), error.field), code="structure") from error
        trace.cards = list(result.cards)
        trace.rule_versions = dict(result.rule_versions)
        return CdsResponse(cards=trace.cards).to_json()

    async def _finish(trace: _CallTrace, status: int, outcome: str, started: float) -> None:
        latency = time.perf_counter() - started
        caller = trace.caller
        record = AuditRecord(
            service_id=trace.service_id,
            hook=trace.hook,
            hook_instance=trace.hook_instance,
            issuer=caller.issuer if caller else None,
            tenant=caller.tenant if caller else None,
            status=status,
            outcome="; ".join((outcome, *trace.notes)),
            latency_ms=round(latency * 1000, 3),
            rule_versions=trace.rule_versions,
            cards=tuple(AuditCard(c.uuid, c.indicator, c.summary) for c in trace.cards),
        )
        try:
            await audit_writer.write(record)
        except StoreUnavailableError as error:
            log.error(
                "audit_unavailable", service=trace.service_id, hook_instance=trace.hook_instance, reason=str(error)
            )
            raise
        metrics.latency.labels(trace.service_id, trace.hook or "-", str(status)).observe(latency)
        for card in trace.cards:
            metrics.cards.labels(trace.service_id, card.indicator).inc()
        log.info(
            "hook_call",
            service=trace.service_id,
            hook=trace.hook,
            hook_instance=trace.hook_instance,
            issuer=record.issuer,
            status=status,
            latency_ms=record.latency_ms,
            cards=[c.indicator for c in trace.cards],
        )

    async def _identify(request: Request, trace: _CallTrace) -> None:
        """Best effort, for the audit of a call that failed before its body was read (a signed token whose
        replay check could not run): its hook and hookInstance."""
        with contextlib.suppress(HttpProblem, EnvelopeError, RuntimeError):
            envelope = decode_envelope(await read_body(request, settings.max_body_bytes))
            trace.hook, trace.hook_instance = envelope.hook, envelope.hookInstance

    async def _finish_after_failure(trace: _CallTrace, status: int, outcome: str, started: float) -> None:
        """Audit a call that already failed with a 5xx; if even that cannot be written, the log says so."""
        with contextlib.suppress(StoreUnavailableError):
            await _finish(trace, status, outcome, started)

    @router.post("/cds-services/{service_id}/feedback", summary="Feedback on cards", openapi_extra=feedback_openapi())
    async def feedback(service_id: str, request: Request) -> Response:
        await _authenticate(authenticator, request, f"/cds-services/{service_id}/feedback", metrics)
        body = await read_body(request, settings.max_body_bytes)
        _endpoint_or_404(registry, service_id)
        require_utf8(body)
        try:
            items = parse_batch(body)
        except FeedbackBodyError as error:
            raise HttpProblem(400, error.issue, code="structure") from error
        if len(items) > settings.feedback_max_items:
            raise HttpProblem(
                413, f"more than {settings.feedback_max_items} feedback items in one call", code="too-costly"
            )
        try:
            with anyio.fail_after(STORE_TIMEOUT_SECONDS):
                result = await to_thread.run_sync(store_feedback, engine, service_id, items, abandon_on_cancel=True)
        except TimeoutError as error:
            raise StoreUnavailableError("feedback database did not commit in time") from error
        log.info(
            "feedback",
            service=service_id,
            stored=result.stored,
            duplicates=result.duplicates,
            rejected=len(result.rejected),
        )
        if result.rejected:
            raise HttpProblem(400, result.rejected, code="invalid")
        return Response(content=f'{{"stored":{result.stored},"duplicates":{result.duplicates}}}', media_type=JSON)

    @router.get("/healthz", summary="Process is up")
    async def healthz() -> Response:
        return Response(content=b'{"status":"ok"}', media_type=JSON)

    @router.get("/readyz", summary="Ready: database and shared stores reachable, services loaded")
    async def readyz() -> Response:
        ready = bool(registry.services) and await to_thread.run_sync(database_ready, engine)
        for check in ready_checks:
            ready = ready and await check()
        body = b'{"status":"ready"}' if ready else b'{"status":"not ready"}'
        return Response(content=body, status_code=200 if ready else 503, media_type=JSON)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        _metrics_access(settings, request.headers.get("authorization"))
        return Response(content=metrics.exposition(), media_type="text/plain; version=0.0.4")

    return router


APP_LAUNCH_PATH = "/app/launch"


def _app_launch_url(settings: Settings, request: Request) -> str:
    """Where cards link to the SMART app: under the public base URL, or (sandbox) where this request arrived."""
    base = settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + APP_LAUNCH_PATH


def _metrics_access(settings: Settings, authorization: str | None) -> None:
    """Sandbox: open (loopback clients only). Production: only with CDS_METRICS_TOKEN as a bearer token; without
    that setting /metrics is not served (it names services, rates and error counts)."""
    if settings.sandbox:
        return
    if settings.metrics_token is None:
        raise HttpProblem(404, "metrics are not served: set CDS_METRICS_TOKEN", code="not-found")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise HttpProblem(401, "metrics token missing or wrong", code="security")


def _other_patient_notes(counts: dict[str, int]) -> list[str]:
    """The audit says that data about another patient arrived (how many, under which keys), never whose."""
    if not counts:
        return []
    keys = ", ".join(f"{key}: {count}" for key, count in sorted(counts.items()))
    return [f"identity mismatch: resources about a patient other than context.patientId dropped ({keys})"]


async def _authenticate(authenticator: Authenticator, request: Request, path: str, metrics: Metrics) -> Caller:
    try:
        return await authenticator.authenticate(request, path)
    except HttpProblem:
        metrics.auth_failures.inc()
        raise


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


def require_utf8(body: bytes) -> None:
    """JSON is UTF-8 (RFC 8259). msgspec checks only the strings it decodes, and the prefetch stays raw until a
    service reads it: check the whole body once (an ASCII body, the usual case, costs ~2 µs per 64 KiB)."""
    if body.isascii():
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        issue = Issue(
            f"request body: not valid JSON (not valid UTF-8 at byte {error.start}; JSON is UTF-8, RFC 8259)",
            None,
            "structure",
        )
        raise HttpProblem(400, issue, code="structure") from error


def _endpoint_or_404(registry: Registry, service_id: str) -> Endpoint:
    endpoint = registry.endpoint(service_id)
    if endpoint is None:
        raise HttpProblem(404, f"no CDS service with id '{service_id}'", code="not-found")
    return endpoint


def _envelope(body: bytes) -> Envelope:
    try:
        return decode_envelope(body)
    except EnvelopeError as error:
        raise HttpProblem(400, error.issues, code="structure") from error


def _context_tokens(envelope: Envelope) -> dict[str, str]:
    try:
        return check_context(envelope)
    except EnvelopeError as error:
        raise HttpProblem(400, error.issues, code="required") from error


def _fhir_server(
    envelope: Envelope, client: httpx.AsyncClient, settings: Settings, caller: Caller, metrics: Metrics
) -> tuple[FhirServer | None, str]:
    """The caller's FHIR server, only if its issuer may send it: tokens never go to another server."""
    if not envelope.fhirServer:
        return None, "no fhirServer in the request"
    base = envelope.fhirServer.rstrip("/")
    if caller.https_only and not base.startswith("https://"):
        return None, "fhirServer refused: https is required"
    if caller.fhir_servers is not None and base not in caller.fhir_servers:
        return None, "fhirServer refused: not allowed for this issuer"
    token = envelope.fhirAuthorization.access_token if envelope.fhirAuthorization else None
    try:
        return FhirServer(
            base_url=envelope.fhirServer,
            access_token=token,
            http=client,
            max_response_bytes=settings.fhir_max_response_bytes,
            on_request=lambda ok: metrics.fhir_calls.labels("ok" if ok else "failed").inc(),
        ), ""
    except ValueError as error:
        raise HttpProblem(
            400, Issue(f"fhirServer: expected an http(s) URL, got {base!r}", "fhirServer"), code="value"
        ) from error
