"""CORS for browser-based CDS clients: explicit origins (CDS_CORS_ORIGINS), plus, in sandbox mode only, any
origin on this machine (a locally served CDS Hooks sandbox web app). Never `*`, never credentials: the EHR's
JWT is a header, not a cookie (CDS Hooks 2.0 §Cross-Origin Resource Sharing)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from cds_service.spec.operation_outcome import Issue, build_operation_outcome
from cds_service.transport.errors import FHIR_JSON

# http origins on the loopback interface, any port: 127.0.0.1, localhost and [::1].
LOOPBACK_ORIGIN = r"http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?"
ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Accept")


class OutcomeCorsMiddleware(CORSMiddleware):
    """Starlette's CORS, whose refused preflight is an OperationOutcome like every other 4xx."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        issue = Issue(
            f"Origin: preflight refused ({refused}); expected an allowed origin (CDS_CORS_ORIGINS, or a loopback "
            f"origin in sandbox mode), a method among {', '.join(ALLOWED_METHODS)} and headers among "
            f"{', '.join(ALLOWED_HEADERS)}",
            "Origin",
        )
        kept = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return Response(build_operation_outcome([issue], code="security"), 400, kept, media_type=FHIR_JSON)
