"""The FHIR Bulk Data `$export` flow, client side (Bulk Data Access IG v2): kick-off, status polling with
`Retry-After`, the manifest, parallel download of the NDJSON files; with SMART Backend Services
authentication (a client-credentials token obtained with a signed JWT client assertion) when configured.

Transport only: it knows URLs, headers and files, no clinical words. The types and `_typeFilter` queries
come from `cds_service.population.codes.export_request`.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cds_service.population.codes import ExportRequest, export_request
from cds_service.population.progress import Progress

# handling=lenient: a server that cannot run a _typeFilter returns more, never fails (the filter only narrows).
ASYNC_HEADERS = {"Accept": "application/fhir+json", "Prefer": "respond-async, handling=lenient"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_WAIT_SECONDS = 120.0  # longest Retry-After honoured at once
DEFAULT_WAIT_SECONDS = 2.0


class BulkExportError(RuntimeError):
    """The export could not be run; the message says which step and what the server answered."""


@dataclass(frozen=True)
class BackendAuth:
    """SMART Backend Services: client id, its private key (PEM) and the key id in its registered JWKS."""

    client_id: str
    private_key_pem: bytes
    key_id: str | None = None
    token_url: str | None = None  # default: the server's .well-known/smart-configuration
    scope: str = "system/*.read"


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    transaction_time: str | None = None
    errors: list[str] = field(default_factory=list)


def client_assertion(auth: BackendAuth, token_url: str, *, now: float | None = None) -> str:
    """The signed JWT of SMART Backend Services (RS384 for RSA keys, ES384 for EC keys; 5 minutes)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(auth.private_key_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = "ES384"
    else:
        raise BulkExportError("the private key must be RSA (RS384) or EC (ES384)")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": auth.client_id,
        "sub": auth.client_id,
        "aud": token_url,
        "exp": issued + 300,
        "iat": issued,
        "jti": uuid.uuid4().hex,
    }
    headers = {"typ": "JWT", **({"kid": auth.key_id} if auth.key_id else {})}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


class BulkClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth: BackendAuth | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 3600.0,
        parallel: int = 4,
        request: ExportRequest | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.request = request or export_request()  # what the rules need (types, _typeFilter)
        self.auth = auth
        self.http = http or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=False)
        self.sleep = sleep
        self.timeout = timeout
        self.parallel = parallel
        self._token: str | None = None
        self._token_expires = 0.0

    # --- authentication ---------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.auth is None:
            return {}
        if self._token is None or time.time() > self._token_expires - 30:
            self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> None:
        assert self.auth is not None
        token_url = self.auth.token_url or self._discover_token_url()
        response = self.http.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "scope": self.auth.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(self.auth, token_url),
            },
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise BulkExportError(f"token request refused: HTTP {response.status_code} {_reason(response)}")
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise BulkExportError("token response without access_token")
        self._token = body["access_token"]
        self._token_expires = time.time() + float(body.get("expires_in", 300))

    def _discover_token_url(self) -> str:
        response = self.http.get(
            f"{self.base_url}/.well-known/smart-configuration", headers={"Accept": "application/json"}
        )
        if response.status_code != 200:
            raise BulkExportError(
                f"no SMART configuration at the server (HTTP {response.status_code}): give --token-url"
            )
        url = response.json().get("token_endpoint")
        if not isinstance(url, str):
            raise BulkExportError("the SMART configuration names no token_endpoint")
        return url

    # --- the flow ---------------------------------------------------------------------------------------------

    def kick_off(self, *, group: str | None = None, since: str | None = None, type_filter: bool = True) -> str:
        wanted = self.request
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("_outputFormat", "application/fhir+ndjson"),
            ("_type", ",".join(wanted.types)),
        ]
        if type_filter:
            params += [("_typeFilter", query) for query in wanted.type_filters]
        if since:
            params.append(("_since", since))
        path = f"Group/{group}/$export" if group else "Patient/$export"
        response = self.http.get(f"{self.base_url}/{path}", params=params, headers={**ASYNC_HEADERS, **self._headers()})
        if response.status_code != 202:
            raise BulkExportError(f"kick-off refused: HTTP {response.status_code} {_reason(response)}")
        location = response.headers.get("content-location")
        if not location:
            raise BulkExportError("kick-off answered 202 without Content-Location")
        return str(location)

    def wait(self, status_url: str, progress: Progress | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        step = (progress or Progress(enabled=False)).step("export", 0, "polls")
        failures = 0
        while True:
            response = self.http.get(status_url, headers={"Accept": "application/json", **self._headers()})
            step.advance()
            if response.status_code == 200:
                step.finish("manifest ready")
                manifest = response.json()
                if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
                    raise BulkExportError("the completed export returned no manifest")
                return manifest
            if response.status_code in (202, 429) or (response.status_code >= 500 and failures < 3):
                failures += response.status_code >= 500
                wait = retry_after(response.headers.get("retry-after"))
                if time.monotonic() + wait > deadline:
                    raise BulkExportError(f"the export did not complete within {self.timeout:.0f} s")
                self.sleep(wait)
                continue
            raise BulkExportError(f"export failed: HTTP {response.status_code} {_reason(response)}")

    def download(self, manifest: dict[str, Any], folder: Path, progress: Progress | None = None) -> ExportResult:
        folder.mkdir(parents=True, exist_ok=True)
        needed = set(self.request.types)
        outputs = [o for o in manifest["output"] if isinstance(o, dict) and o.get("type") in needed and o.get("url")]
        result = ExportResult(transaction_time=manifest.get("transactionTime"))
        result.errors = [str(e.get("url")) for e in manifest.get("error", []) if isinstance(e, dict)]
        secured = bool(manifest.get("requiresAccessToken"))
        step = (progress or Progress(enabled=False)).step("download", len(outputs), "files")
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = {
                pool.submit(self._download_one, item, folder / f"{item['type']}.{number}.ndjson", secured): item
                for number, item in enumerate(outputs)
            }
            for future in as_completed(futures):
                path, lines = future.result()
                result.files.append(path)
                kind = futures[future]["type"]
                result.counts[kind] = result.counts.get(kind, 0) + lines
                step.advance()
        step.finish(", ".join(f"{k} {v:,}" for k, v in sorted(result.counts.items())))
        return result

    def _download_one(self, item: dict[str, Any], path: Path, secured: bool) -> tuple[Path, int]:
        headers = {"Accept": "application/fhir+ndjson", **(self._headers() if secured else {})}
        lines = 0
        with self.http.stream("GET", str(item["url"]), headers=headers) as response:
            if response.status_code != 200:
                raise BulkExportError(f"download of {item['type']} failed: HTTP {response.status_code}")
            with path.open("wb") as stream:
                for data in response.iter_bytes():
                    stream.write(data)
                    lines += data.count(b"\n")
        return path, lines

    def delete(self, status_url: str) -> None:
        """Tell the server the files may go (best effort: the export already succeeded)."""
        with contextlib.suppress(httpx.HTTPError):
            self.http.delete(status_url, headers=self._headers())

    def run(
        self, folder: Path, *, group: str | None = None, since: str | None = None, progress: Progress | None = None
    ) -> ExportResult:
        try:
            status_url = self.kick_off(group=group, since=since)
            manifest = self.wait(status_url, progress)
            if not any(isinstance(o, dict) and o.get("type") == "Patient" for o in manifest["output"]):
                # A patient-level export without Patient resources: some servers (the SMART reference server,
                # for one) answer an unsupported _typeFilter search with nothing at all, silently.
                self.delete(status_url)
                if progress is not None and progress.enabled:
                    progress.stream.write("export: no Patient resources with _typeFilter; exporting again without\n")
                status_url = self.kick_off(group=group, since=since, type_filter=False)
                manifest = self.wait(status_url, progress)
            result = self.download(manifest, folder, progress)
            self.delete(status_url)
            return result
        except httpx.HTTPError as error:
            raise BulkExportError(f"cannot reach the FHIR server: {type(error).__name__}") from error


def retry_after(value: str | None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), bounded."""
    if not value:
        return DEFAULT_WAIT_SECONDS
    value = value.strip()
    if value.isdigit():
        return min(max(float(value), 0.1), MAX_WAIT_SECONDS)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_WAIT_SECONDS
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - datetime.now(UTC)).total_seconds(), 0.1), MAX_WAIT_SECONDS)


def _reason(response: httpx.Response) -> str:
    """The OperationOutcome's diagnostics, if any (never the whole body: it could hold data)."""
    try:
        document = response.json()
    except ValueError:
        return ""
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        texts = [str(i.get("diagnostics") or i.get("details", {}).get("text") or "") for i in document.get("issue", [])]
        return "; ".join(t for t in texts if t)[:300]
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return str(document.get("error_description") or document["error"])[:300]
    return ""


def run_export_from_args(
    args: argparse.Namespace, folder: Path, progress: Progress, request: ExportRequest | None = None
) -> ExportResult:
    auth = None
    if args.client_id or args.private_key:
        if not (args.client_id and args.private_key):
            raise BulkExportError("SMART Backend Services needs both --client-id and --private-key")
        auth = BackendAuth(
            client_id=args.client_id,
            private_key_pem=Path(args.private_key).read_bytes(),
            key_id=args.key_id,
            token_url=args.token_url,
            scope=args.scope,
        )
    client = BulkClient(str(args.source), auth=auth, timeout=args.timeout, request=request)
    return client.run(folder, group=args.group, since=args.since, progress=progress)
