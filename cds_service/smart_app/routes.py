"""The app's routes under /app: launch (EHR launch with `iss` + `launch`, standalone with `iss` only),
the OAuth callback, the page and its one data endpoint.

Launch and callback answer people (an HTML page) or programs (an OperationOutcome), by `Accept`.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cds_service.fhir.prefetch import PrefetchSpec
from cds_service.settings import Settings
from cds_service.smart_app.config import CALLBACK_PATH, AppClient
from cds_service.smart_app.oauth import (
    LaunchError,
    Pkce,
    authorize_url,
    checked_url,
    discover,
    exchange_code,
    requested_scopes,
)
from cds_service.smart_app.sessions import AppSession, PendingLaunch, SessionStore
from cds_service.smart_app.workup import WorkupError, build_workup
from cds_service.spec.operation_outcome import IssueCode, build_operation_outcome

WEB = Path(__file__).parent / "web"
LAUNCH_COOKIE = "mas_app_launch"
SESSION_COOKIE_PREFIX = "mas_app_s_"
MAX_PARAMETER_CHARS = 4096
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store"}

log = structlog.get_logger("cds_service.smart_app")


def build_app_router(
    *,
    client: AppClient,
    settings: Settings,
    specs: tuple[PrefetchSpec, ...],
    http: Callable[[], httpx.AsyncClient],
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter()
    store = SessionStore(client.launch_lifetime, client.session_lifetime)
    timeout = settings.fhir_deadline_seconds

    @router.get("/app/launch")
    async def launch(request: Request) -> Response:
        iss = request.query_params.get("iss")
        launch_id = request.query_params.get("launch")
        if iss is None and client.sandbox_fhir_path is not None:
            iss = _base(request) + client.sandbox_fhir_path  # standalone launch against the sandbox EHR
        if not iss:
            return _error(request, 400, "iss is required: launch the app from the EHR")
        if len(iss) > MAX_PARAMETER_CHARS or (launch_id is not None and not 0 < len(launch_id) <= MAX_PARAMETER_CHARS):
            return _error(request, 400, "launch parameters too long or empty")
        iss = iss.rstrip("/")
        if not _allowed_issuer(client, request, iss):
            # Nothing is sent to an unknown iss: neither discovery nor, later, the client secret.
            log.info("app_launch_refused", reason="issuer not allowed")
            return _error(request, 400, "this EHR (iss) is not one the app is registered with")
        try:
            checked_url(iss, allow_http=client.allow_http)
            configuration = await discover(http(), iss, allow_http=client.allow_http, timeout=timeout)
        except LaunchError as error:
            return _error(request, error.status, error.message)
        pkce = Pkce.new()
        browser_secret = secrets.token_urlsafe(24)
        redirect_uri = client.redirect_uri or _base(request) + CALLBACK_PATH
        state = store.add_launch(
            PendingLaunch(iss, configuration.token_endpoint, pkce.verifier, redirect_uri, browser_secret, clock())
        )
        target = authorize_url(
            configuration,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=requested_scopes(ehr_launch=launch_id is not None, v2=configuration.scope_syntax_v2),
            state=state,
            aud=iss,
            challenge=pkce.challenge,
            launch=launch_id,
        )
        response = RedirectResponse(target, status_code=302, headers=NO_STORE)
        _set_cookie(response, request, LAUNCH_COOKIE, browser_secret, client.launch_lifetime)
        return response

    @router.get(CALLBACK_PATH)
    async def callback(request: Request) -> Response:
        params = request.query_params
        pending = store.take_launch(params.get("state", ""), request.cookies.get(LAUNCH_COOKIE), clock())
        if pending is None:
            log.info("app_callback_refused", reason="unknown, used, expired or foreign state")
            return _error(request, 400, "unknown, already used or expired launch (state): launch the app again")
        if "error" in params:
            error = params.get("error", "")[:100]
            description = params.get("error_description", "")[:300]
            detail = f"{error}: {description}" if description else error
            return _error(request, 403, f"the EHR did not authorize the app ({detail})")
        code = params.get("code")
        if not code or len(code) > MAX_PARAMETER_CHARS:
            return _error(request, 400, "the EHR sent no authorization code")
        try:
            token = await exchange_code(
                http(),
                token_endpoint=pending.token_endpoint,
                client_id=client.client_id,
                client_secret=client.client_secret,
                code=code,
                redirect_uri=pending.redirect_uri,
                verifier=pending.verifier,
                timeout=timeout,
            )
        except LaunchError as error:
            return _error(request, error.status, error.message)
        lifetime = client.session_lifetime
        if token.expires_in is not None:
            lifetime = min(lifetime, timedelta(seconds=token.expires_in))
        browser_secret = secrets.token_urlsafe(24)
        handle = store.add_session(
            AppSession(
                iss=pending.iss,
                access_token=token.access_token,
                patient=token.patient,
                scopes=token.scopes,
                need_patient_banner=token.need_patient_banner,
                browser_secret=browser_secret,
                expires=clock() + lifetime,
            )
        )
        response = RedirectResponse(f"/app/?s={handle}", status_code=303, headers=NO_STORE)
        _set_cookie(response, request, SESSION_COOKIE_PREFIX + handle, browser_secret, lifetime)
        response.delete_cookie(LAUNCH_COOKIE, path="/app")
        return response

    @router.get("/app/")
    async def page() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html", headers=NO_STORE)

    @router.get("/app/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return _error(None, 404, "not found")
        return FileResponse(WEB / name, media_type=STATIC[name])

    @router.get("/app/api/workup")
    async def workup(request: Request, s: str = "") -> Response:
        session = store.session(s, request.cookies.get(SESSION_COOKIE_PREFIX + s), clock()) if s else None
        if session is None:
            return _error(None, 401, "no app session: launch the app from the EHR")
        try:
            document = await build_workup(session, specs=specs, http=http(), settings=settings, now=clock())
        except WorkupError as error:
            return _error(None, error.status, error.message)
        return JSONResponse(document, headers=NO_STORE)

    return router


def _allowed_issuer(client: AppClient, request: Request, iss: str) -> bool:
    if iss in client.issuers:
        return True
    return client.sandbox_fhir_path is not None and iss == _base(request) + client.sandbox_fhir_path


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _set_cookie(response: Response, request: Request, name: str, value: str, lifetime: timedelta) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(lifetime.total_seconds()),
        path="/app",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",  # sent on the EHR's top-level redirect back to the callback, not on cross-site posts
    )


def _error(request: Request | None, status: int, message: str) -> Response:
    if request is not None and "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_page(status, message), status_code=status, headers=NO_STORE)
    body = build_operation_outcome([message], code=_issue_code(status))
    return Response(body, status_code=status, media_type="application/fhir+json", headers=NO_STORE)


def _issue_code(status: int) -> IssueCode:
    codes: dict[int, IssueCode] = {401: "security", 403: "security", 404: "not-found", 502: "exception"}
    return codes.get(status, "invalid")


def _page(status: int, message: str) -> str:
    title = "MAS work-up: the app could not start" if status != 404 else "Not found"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/app/static/app.css"></head>'
        f'<body><main class="error-page"><h1>{html.escape(title)}</h1>'
        f'<p id="launch-error" role="alert">{html.escape(message[:1].upper() + message[1:])}.</p>'
        f"<p>HTTP {status}</p></main></body></html>"
    )
