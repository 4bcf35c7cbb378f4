"""App construction, apart from server start, so tests import the app and servers run the same one."""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service import __version__
from cds_service.observability.logging import configure_logging
from cds_service.observability.metrics import Metrics, StatusCounter
from cds_service.registry import Registry, load_registry
from cds_service.rulepack import RulePack, RulePackError
from cds_service.rulepack.selection import pack_for, retired_settings
from cds_service.security.mode import check_startup
from cds_service.security.replay import MemoryReplayStore, ReplayStore
from cds_service.settings import Settings, load_settings
from cds_service.smart_app.config import AppClient, client_registration
from cds_service.smart_app.mount import mount_smart_app
from cds_service.spec.operation_outcome import Issue, build_operation_outcome
from cds_service.startup import StartupError, describe, exit_on_startup_error
from cds_service.storage.audit import AuditWriter
from cds_service.storage.database import create_database
from cds_service.storage.errors import StoreUnavailableError
from cds_service.transport.auth import Authenticator, SandboxAuthenticator
from cds_service.transport.baseline import build_baseline_router
from cds_service.transport.cors import ALLOWED_HEADERS, ALLOWED_METHODS, LOOPBACK_ORIGIN, OutcomeCorsMiddleware
from cds_service.transport.errors import HttpProblem, internal_error_response, problem_response
from cds_service.transport.openapi import with_service_endpoints
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
    log_level: int = logging.INFO,
) -> FastAPI:
    """The app. Without `settings` it is a server start (`uvicorn --factory`, `make run`, `cds-service serve`):
    settings come from the environment, and a configuration the service refuses is one line on stderr and
    exit status 2. With `settings` (tests, the CLI) a refusal is raised as StartupError."""
    if settings is None:
        with exit_on_startup_error():
            return _build_app(load_settings(), clock=clock, http_client=http_client, log_level=log_level)
    return _build_app(settings, clock=clock, http_client=http_client, log_level=log_level)


def _build_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    http_client: httpx.AsyncClient | None,
    log_level: int,
) -> FastAPI:
    configure_logging(level=log_level)
    # A fatal signal (SIGSEGV, SIGBUS from a memory-mapped file truncated underneath) leaves a trace on stderr:
    # code locations only, never request data.
    faulthandler.enable()
    check_startup(settings)  # refuses to start (and says why) on an unsafe configuration
    pack = _rule_pack(settings)  # refuses to start on a pack that fails any check (or a bad site override)
    # Refuses to start on a bad hooks file.
    registry = load_registry(settings.hooks_dir, settings.discovery_shape, pack=pack)
    engine = _database(settings.database_url)
    replay = _replay_store(settings)
    metrics = Metrics()
    audit_writer = AuditWriter(engine)
    ready_checks: list[Callable[[], Awaitable[bool]]] = []
    if settings.redis_url:
        ready_checks.append(_redis_ready(replay))
    warm = threading.Event()
    ready_checks.append(_flag(warm))
    clients = _HttpClientHolder(http_client)
    current_http_client = clients.get
    authenticator = _authenticator(settings, replay, current_http_client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Discovery answers at once; /readyz says ready after the warm-up, so a load balancer sends hook
        # calls only to a warm worker.
        clients.start()
        threading.Thread(target=_warm_up, args=(settings, warm, clients.prepare), name="warm-up", daemon=True).start()
        log.info(
            "started",
            services=sorted(registry.services),
            sandbox=settings.sandbox,
            authentication=settings.trusted_issuers_file is not None,
        )
        try:
            yield
        finally:
            await clients.close()
            await replay.close()
            audit_writer.close()
            engine.dispose()

    app = FastAPI(
        title="MAS CDS Hooks service",
        version=__version__,
        lifespan=lifespan,
        # No Swagger UI: FastAPI's /docs loads its assets from a CDN (blank offline) and would add a page of
        # third-party script; /openapi.json stays for tools, and /sandbox fires real hooks (README, Sandbox).
        docs_url=None,
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
    app_client = client_registration(settings, sandbox_fhir_path=SANDBOX_FHIR_PATH)  # None: the app is not mounted
    if settings.sandbox:
        _mount_sandbox(app, registry=registry, engine=engine, clock=clock, app_client=app_client)
        if settings.benchmark_endpoints:
            app.include_router(build_baseline_router(registry, settings.max_body_bytes), include_in_schema=False)
    if app_client is not None:
        mount_smart_app(
            app, client=app_client, settings=settings, registry=registry, http=current_http_client, clock=clock
        )
    _describe_endpoints(app, {e.id: e.hooks for e in registry.endpoints.values()})
    _install_error_handlers(app, retry_after_seconds=settings.storage_retry_after_seconds)
    if settings.cors_origins or settings.sandbox:
        # Explicit origins only, never credentials: the EHR's JWT is a header, not a cookie. In sandbox mode
        # (loopback only) a browser client run on this machine, e.g. the official CDS Hooks sandbox, may call
        # every endpoint, the fixture FHIR server included.
        app.add_middleware(
            OutcomeCorsMiddleware,
            allow_origins=settings.cors_origins,
            allow_origin_regex=LOOPBACK_ORIGIN if settings.sandbox else None,
            allow_credentials=False,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
        )
    app.add_middleware(StatusCounter, metrics=metrics)
    return app


def _rule_pack(settings: Settings) -> RulePack:
    retired = retired_settings(os.environ)
    if retired is not None:
        raise StartupError(retired)
    try:
        return pack_for(settings)
    except RulePackError as error:
        raise StartupError(f"rule pack refused: {error} (CDS_RULE_PACK_DIR, CDS_RULE_PACK_OVERRIDES)") from error


def _database(url: str) -> Engine:
    try:
        return create_database(url)
    except (SQLAlchemyError, ImportError, OSError) as error:
        shown = url
        with contextlib.suppress(Exception):
            shown = make_url(url).render_as_string(hide_password=True)
        raise StartupError(f"database {shown} not usable: {describe(error)} (CDS_DATABASE_URL)") from error


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


def _describe_endpoints(app: FastAPI, endpoints: dict[str, tuple[str, ...]]) -> None:
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_service_endpoints(default_openapi(), endpoints)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _redis_ready(replay: ReplayStore) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            return await replay.ping()
        except Exception:
            return False

    return check


def _mount_sandbox(
    app: FastAPI, *, registry: Registry, engine: Engine, clock: Callable[[], datetime], app_client: AppClient | None
) -> None:
    """The sandbox page, its API and the fixture FHIR server: sandbox mode only, never in production."""
    from fastapi import Depends

    from cds_service.sandbox.api import build_sandbox_router
    from cds_service.sandbox.bulk_export import build_bulk_router
    from cds_service.sandbox.fhir_server import build_fhir_router
    from cds_service.sandbox.smart_auth import sandbox_smart_auth

    # The test SMART authorization server first: its .well-known route sits under the FHIR base.
    auth = app.state.smart_auth = sandbox_smart_auth(app_client, clock=clock, fhir_base_path=SANDBOX_FHIR_PATH)
    app.include_router(auth.router(), include_in_schema=False)
    # $export before the FHIR server: its /{type}/{id} route would otherwise take Patient/$export.
    app.include_router(build_bulk_router(clock=clock), prefix=SANDBOX_FHIR_PATH, include_in_schema=False)
    app.include_router(
        build_fhir_router(clock=clock, bulk_export=True),
        prefix=SANDBOX_FHIR_PATH,
        include_in_schema=False,
        dependencies=[Depends(auth.fhir_access)],  # bearer tokens read only their patient's granted types
    )
    app.include_router(
        build_sandbox_router(registry=registry, engine=engine, clock=clock, fhir_base_path=SANDBOX_FHIR_PATH),
        include_in_schema=False,
    )


class _HttpClientHolder:
    """The app's one outgoing HTTP client (FHIR server, JWKS), made on first use and by the warm-up thread:
    building it (TLS context, CA bundle) costs as much as a tenth of start-up, which the first discovery
    answer need not wait for."""

    def __init__(self, given: httpx.AsyncClient | None) -> None:
        self._given = given
        self._client: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self._running = False  # between the lifespan's start and its end

    def get(self) -> httpx.AsyncClient:
        client = self._client
        if client is not None:
            return client
        with self._lock:  # the warm-up thread and the event loop may ask at the same time
            if self._client is None:
                self._client = self._given or httpx.AsyncClient(follow_redirects=False)
            return self._client

    def start(self) -> None:
        with self._lock:
            self._running = True

    def prepare(self) -> None:
        """Make the client ahead of the first call that needs it (the warm-up thread), unless the app has
        stopped meanwhile: nothing would close it then."""
        with self._lock:
            if self._running and self._client is None:
                self._client = self._given or httpx.AsyncClient(follow_redirects=False)

    async def close(self) -> None:
        with self._lock:
            self._running = False
            client, self._client = self._client, None
        if client is not None and self._given is None:
            await client.aclose()


def _warm_up(settings: Settings, done: threading.Event, prepare_http_client: Callable[[], None]) -> None:
    """Import and exercise fhir.resources (~0.2 s: imports, then lazy validators), then freeze the heap;
    then make the outgoing HTTP client (readiness does not wait for it: a call that needs it first makes it)."""
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
    prepare_http_client()


def _flag(event: threading.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check


def _replay_store(settings: Settings) -> ReplayStore:
    if settings.redis_url:
        from cds_service.security.replay_redis import RedisReplayStore  # redis is imported only when used

        return RedisReplayStore(settings.redis_url)
    return MemoryReplayStore()


def _install_error_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    @app.exception_handler(StoreUnavailableError)
    async def _unavailable(_request: Request, error: StoreUnavailableError) -> Response:
        log.error("store_unavailable", reason=str(error))
        problem = HttpProblem(
            503,
            f"temporarily unavailable ({error}); retry later",
            code="transient",
            headers={"Retry-After": str(retry_after_seconds)},
        )
        return problem_response(problem)

    @app.exception_handler(HttpProblem)
    async def _problem(_request: Request, problem: HttpProblem) -> Response:
        return problem_response(problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> Response:
        problem = HttpProblem(
            error.status_code,
            str(error.detail),
            code="not-found" if error.status_code == 404 else "not-supported",
            headers=error.headers,  # Starlette's 405 names the allowed methods in Allow (RFC 9110 §15.5.6)
        )
        return problem_response(problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> Response:
        return problem_response(HttpProblem(400, _validation_issues(error), code="structure"))

    app.add_middleware(CatchAllErrors)


def _validation_issues(error: RequestValidationError) -> list[Issue]:
    """FastAPI's validation errors as Issues: the field's path (`order.dose`) and what was expected."""
    issues = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        if location and location[0] in ("body", "query", "path"):
            location = location[1:]
        path = ".".join(location)
        issues.append(Issue(f"{path or 'request body'}: {item.get('msg', 'invalid')}", path or None))
    return issues or [Issue("request body: does not match the API")]


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
