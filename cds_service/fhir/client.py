"""Read-only FHIR REST access for the prefetch fallback: bearer token, size cap, same-server paging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


class FhirAccessError(Exception):
    """A FHIR query failed; the message is safe to show (no token, no patient data)."""


@dataclass(frozen=True)
class FhirServer:
    """The caller's FHIR server for one hook call. The token is never logged or sent elsewhere."""

    base_url: str
    access_token: str | None
    http: httpx.AsyncClient
    max_response_bytes: int
    on_request: Callable[[bool], None] | None = None  # told of every request's success, for metrics

    def __post_init__(self) -> None:
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError("fhirServer must be an http(s) URL")

    def url_for(self, relative_query: str) -> str:
        return f"{self.base_url.rstrip('/')}/{relative_query.lstrip('/')}"

    def owns(self, url: str) -> bool:
        """Paging links are followed only on the same server, so the token cannot leak elsewhere."""
        base = urlsplit(self.base_url.rstrip("/") + "/")
        target = urlsplit(url)
        return (target.scheme, target.netloc) == (base.scheme, base.netloc) and (target.path + "/").startswith(
            base.path
        )

    async def get(self, url: str, *, timeout: float) -> bytes:
        if not self.owns(url):
            raise FhirAccessError("refused a URL outside the fhirServer")
        try:
            body = await self._get(url, timeout=timeout)
        except FhirAccessError:
            self._tell(False)
            raise
        self._tell(True)
        return body

    def _tell(self, ok: bool) -> None:
        if self.on_request is not None:
            self.on_request(ok)

    async def _get(self, url: str, *, timeout: float) -> bytes:
        headers = {"Accept": "application/fhir+json"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        try:
            async with self.http.stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code != httpx.codes.OK:
                    raise FhirAccessError(f"FHIR server answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes:
                    raise FhirAccessError("FHIR response larger than the configured limit")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise FhirAccessError("FHIR response larger than the configured limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as error:
            raise FhirAccessError("FHIR server did not answer in time") from error
        except httpx.HTTPError as error:
            raise FhirAccessError(f"FHIR server unreachable ({type(error).__name__})") from error
