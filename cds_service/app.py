"""App construction, apart from server start, so tests import the app and servers run the same one."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service import __version__
from cds_service.observability.logging import configure_logging
from cds_service.observability.metrics import Metrics, StatusCounter
from cds_service.registry import Registry, load_registry
from cds_service.security.mode import check_startup
from cds_service.security.replay import MemoryReplayStore, ReplayStore
from cds_service.settings import Settings, load_settings
from cds_service.spec.operation_outcome import build_operation_outcome
from cds_service.storage.audit import AuditWriter
from cds_service.storage.database import create_database
from cds_service.transport.auth import Authenticator, SandboxAuthenticator
from cds_service.transport.baseline import build_baseline_router
from cds_service.transport.errors import HttpProblem, internal_error_response, problem_response
from cds_service.transport.openapi import with_service_ids
from cds_service.transport.routes import build_router

log = structlog.get_logger("cds_service")
SANDBOX_FHIR_PATH = "/sandbox/fhir"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = _utc_now,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    settings = settings or load_settings()
    configure_logging()
    check_startup(settings)  # refuses to start (and says why) on an unsafe configuration
    registry = load_registry(settings.hooks_dir)  # refuses to start on a bad hooks file
    engine = create_database(settings.database_url)
    replay = _replay_store(settings)
    metrics = Metrics()
    audit_writer = AuditWriter(engine)
    ready_checks: list[Callable[[], Awaitable[bool]]] = []
    if settings.redis_url:
        ready_checks.append(_redis_ready(replay))
    warm = threading.Event()
    ready_checks.append(_flag(warm))
    holder: dict[str, httpx.AsyncClient] = {}

    def current_http_client() -> httpx.AsyncClient:
        client = holder.get("client")
        if client is None:  # outside the lifespan (e.g. a test without it): make one lazily
            client = holder["client"] = http_client or httpx.AsyncClient(follow_redirects=False)
        return client

    authenticator = _authenticator(settings, replay, current_http_client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        holder["client"] = http_client or httpx.AsyncClient(follow_redirects=False)
        # Discovery answers at once; /readyz says ready after the warm-up, so a load balancer sends hook
        # calls only to a warm worker.
        threading.Thread(target=_warm_up, args=(settings, warm), name="warm-up", daemon=True).start()
        log.info(
            "started",
            services=sorted(registry.services),
            sandbox=settings.sandbox,
            authentication=settings.trusted_issuers_file is not None,
        )
        try:
            yield
        finally:
            if http_client is None:
                await holder["client"].aclose()
            holder.clear()
            await replay.close()
            audit_writer.close()
            engine.dispose()

    app = FastAPI(
        title="MAS CDS Hooks service",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if settings.sandbox else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.engine = engine
    app.state.metrics = metrics
    app.include_router(
        build_router(
            settings=settings,
            registry=registry,
            engine=engine,
            http_client=current_http_client,
            clock=clock,
            authenticator=authenticator,
            metrics=metrics,
            ready_checks=ready_checks,
            audit_writer=audit_writer,
        )
    )
    if settings.sandbox:
        _mount_sandbox(app, registry=registry, engine=engine, clock=clock)
        if settings.benchmark_endpoints:
            app.include_router(build_baseline_router(registry, settings.max_body_bytes), include_in_schema=False)
    _describe_service_ids(app, sorted(registry.services))
    _install_error_handlers(app)
    if settings.cors_origins:
        # Explicit origins only, never credentials: the EHR's JWT is a header, not a cookie.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(StatusCounter, metrics=metrics)
    return app


def _authenticator(settings: Settings, replay: ReplayStore, http: Callable[[], httpx.AsyncClient]) -> Authenticator:
    if settings.trusted_issuers_file is None:
        return SandboxAuthenticator()
    # JWT libraries are imported only when issuers are configured.
    from cds_service.security.issuers import load_trusted_issuers
    from cds_service.security.jwks import JwksCache
    from cds_service.security.verifier import TokenVerifier
    from cds_service.transport.auth_jwt import JwtAuthenticator

    issuers = load_trusted_issuers(settings.trusted_issuers_file)
    jwks = JwksCache(
        issuers,
        http,
        cache_seconds=settings.jwks_cache_seconds,
        cooldown_seconds=settings.jwks_refresh_cooldown_seconds,
    )
    assert settings.public_base_url is not None  # check_startup guarantees it
    verifier = TokenVerifier(
        issuers,
        jwks,
        replay,
        public_base_url=settings.public_base_url,
        leeway_seconds=settings.jwt_leeway_seconds,
        max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
    )
    return JwtAuthenticator(verifier)


def _describe_service_ids(app: FastAPI, service_ids: list[str]) -> None:
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_service_ids(default_openapi(), service_ids)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _redis_ready(replay: ReplayStore) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            return await replay.ping()
        except Exception:
            return False

    return check


def _mount_sandbox(app: FastAPI, *, registry: Registry, engine: Engine, clock: Callable[[], datetime]) -> None:
    """The sandbox page, its API and the fixture FHIR server: sandbox mode only, never in production."""
    from cds_service.sandbox.api import build_sandbox_router
    from cds_service.sandbox.bulk_export import build_bulk_router
    from cds_service.sandbox.fhir_server import build_fhir_router

    # $export first: the FHIR server's /{type}/{id} route would otherwise take Patient/$export.
    app.include_router(build_bulk_router(clock=clock), prefix=SANDBOX_FHIR_PATH, include_in_schema=False)
    app.include_router(build_fhir_router(clock=clock), prefix=SANDBOX_FHIR_PATH, include_in_schema=False)
    app.include_router(
        build_sandbox_router(registry=registry, engine=engine, clock=clock, fhir_base_path=SANDBOX_FHIR_PATH),
        include_in_schema=False,
    )


def _warm_up(settings: Settings, done: threading.Event) -> None:
    """Import and exercise fhir.resources (~0.2 s: imports, then lazy validators), then freeze the heap."""
    from cds_service.cards.fhir_out import ResourceBuildError, validated

    build_operation_outcome(["warm-up"], code="processing")
    for kind in ("MedicationRequest", "ServiceRequest"):
        with contextlib.suppress(ResourceBuildError):
            validated({"resourceType": kind})  # invalid on purpose: loads and runs the validators
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()  # full-GC pauses of 20-30 ms otherwise set p99 (README, performance)
        gc.set_threshold(settings.gc_gen0_threshold, 50, 100)
    done.set()


def _flag(event: threading.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check


def _replay_store(settings: Settings) -> ReplayStore:
    if settings.redis_url:
        from cds_service.security.replay_redis import RedisReplayStore  # redis is imported only when used

        return RedisReplayStore(settings.redis_url)
    return MemoryReplayStore()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HttpProblem)
    async def _problem(_request: Request, problem: HttpProblem) -> Response:
        return problem_response(problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> Response:
        problem = HttpProblem(
            error.status_code,
            str(error.detail),
            code="not-found" if error.status_code == 404 else "not-supported",
        )
        return problem_response(problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> Response:
        return problem_response(HttpProblem(400, "request does not match the API", code="structure"))

    app.add_middleware(CatchAllErrors)


class CatchAllErrors:
    """Last line: an unexpected error answers 500 with an OperationOutcome, never a trace.

    Only the exception type is logged: messages may quote request content (patient data).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            log.error(
                "unhandled_error", error_type=type(error).__name__, method=scope.get("method"), path=scope.get("path")
            )
            if not response_started:
                await internal_error_response()(scope, receive, send)
