"""App construction, apart from server start, so tests import the app and servers run the same one."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service import __version__
from cds_service.registry import Registry, load_registry
from cds_service.settings import Settings, load_settings
from cds_service.spec.operation_outcome import build_operation_outcome
from cds_service.storage.database import create_database
from cds_service.transport.errors import HttpProblem, internal_error_response, problem_response
from cds_service.transport.routes import build_router

log = logging.getLogger("cds_service")
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
    registry = load_registry(settings.hooks_dir)  # refuses to start on a bad hooks file
    engine = create_database(settings.database_url)
    holder: dict[str, httpx.AsyncClient] = {}

    def current_http_client() -> httpx.AsyncClient:
        client = holder.get("client")
        if client is None:  # outside the lifespan (e.g. a test without it): make one lazily
            client = holder["client"] = http_client or httpx.AsyncClient(follow_redirects=False)
        return client

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        holder["client"] = http_client or httpx.AsyncClient(follow_redirects=False)
        _warm_up()
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()  # full-GC pauses of 20-30 ms otherwise set p99 (README, performance)
        try:
            yield
        finally:
            if http_client is None:
                await holder["client"].aclose()
            holder.clear()
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
    app.include_router(
        build_router(
            settings=settings,
            registry=registry,
            engine=engine,
            http_client=current_http_client,
            clock=clock,
        )
    )
    if settings.sandbox:
        _mount_sandbox(app, registry=registry, engine=engine, clock=clock)
    _install_error_handlers(app)
    return app


def _mount_sandbox(app: FastAPI, *, registry: Registry, engine: Engine, clock: Callable[[], datetime]) -> None:
    """The sandbox page, its API and the fixture FHIR server: sandbox mode only, never in production."""
    from cds_service.sandbox.api import build_sandbox_router
    from cds_service.sandbox.fhir_server import build_fhir_router

    app.include_router(build_fhir_router(clock=clock), prefix=SANDBOX_FHIR_PATH, include_in_schema=False)
    app.include_router(
        build_sandbox_router(registry=registry, engine=engine, clock=clock, fhir_base_path=SANDBOX_FHIR_PATH),
        include_in_schema=False,
    )


def _warm_up() -> None:
    """First fhir.resources validation costs ~50 ms (lazy validators); pay it before traffic."""
    build_operation_outcome(["warm-up"], code="processing")


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
            log.error("unhandled %s on %s %s", type(error).__name__, scope.get("method"), scope.get("path"))
            if not response_started:
                await internal_error_response()(scope, receive, send)
