"""Read-only FHIR REST access for the prefetch fallback: bearer token, same-server paging, one budget per call.

One hook call's FHIR reads share a ReadBudget: a deadline and a number of bytes. The deadline bounds the
whole read (connect, headers, every body chunk: not only each socket operation), and the bytes are counted
after decompression, which this module does itself so a gzip bomb stops at the budget instead of inflating
in one piece. What the budget does not cover is the data: the caller decodes what it was given.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


class FhirAccessError(Exception):
    """A FHIR query failed; the message is safe to show (no token, no patient data)."""


@dataclass
class ReadBudget:
    """What one hook call may still read from its FHIR server: until `deadline` (time.monotonic), and bytes."""

    deadline: float
    remaining_bytes: int

    @classmethod
    def starting_now(cls, seconds: float, max_bytes: int) -> ReadBudget:
        return cls(time.monotonic() + seconds, max_bytes)

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def spend(self, size: int) -> None:
        self.remaining_bytes -= size


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

    async def get(self, url: str, *, budget: ReadBudget) -> bytearray:
        if not self.owns(url):
            raise FhirAccessError("refused a URL outside the fhirServer")
        try:
            body = await self._get(url, budget)
        except FhirAccessError:
            self._tell(False)
            raise
        self._tell(True)
        return body

    def _tell(self, ok: bool) -> None:
        if self.on_request is not None:
            self.on_request(ok)

    async def _get(self, url: str, budget: ReadBudget) -> bytearray:
        if budget.seconds_left() <= 0:
            raise FhirAccessError("FHIR server did not answer within the deadline")
        if budget.remaining_bytes <= 0:
            raise FhirAccessError("the call's FHIR read budget is spent")
        headers = {"Accept": "application/fhir+json", "Accept-Encoding": "gzip"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        try:
            async with asyncio.timeout_at(budget.deadline):
                return await self._read(url, headers, budget)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise FhirAccessError("FHIR server did not answer within the deadline") from error
        except httpx.HTTPError as error:
            raise FhirAccessError(f"FHIR server unreachable ({type(error).__name__})") from error

    async def _read(self, url: str, headers: dict[str, str], budget: ReadBudget) -> bytearray:
        timeout = max(0.001, budget.seconds_left())
        async with self.http.stream("GET", url, headers=headers, timeout=timeout) as response:
            if response.status_code != httpx.codes.OK:
                raise FhirAccessError(f"FHIR server answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            encoding = response.headers.get("content-encoding", "identity")
            body = _Body(self.max_response_bytes, budget)
            if declared is not None and declared.isdigit() and encoding == "identity":
                body.check(int(declared))  # refused before reading a byte
            inflater = _Inflater(encoding)
            async for chunk in response.aiter_raw():
                inflater.feed(chunk, body)
            inflater.finish(body)
        return body.data


class _Body:
    """The (decompressed) body, spending the call's budget as it grows: parallel reads share the budget live."""

    def __init__(self, max_response_bytes: int, budget: ReadBudget) -> None:
        self.data = bytearray()
        self._max = max_response_bytes
        self._budget = budget

    def room(self) -> int:
        return min(self._max - len(self.data), self._budget.remaining_bytes)

    def check(self, more: int) -> None:
        if len(self.data) + more > self._max:
            raise FhirAccessError(f"FHIR response larger than {self._max} bytes (CDS_FHIR_MAX_RESPONSE_BYTES)")
        if more > self._budget.remaining_bytes:
            raise FhirAccessError("FHIR responses larger than the call's read budget (CDS_FHIR_MAX_CALL_BYTES)")

    def add(self, piece: bytes) -> None:
        self.check(len(piece))
        self.data += piece
        self._budget.spend(len(piece))


# Inflate at most this much per step, so a bomb never holds more than the budget plus one step in memory.
_INFLATE_STEP = 256 * 1024


class _Inflater:
    """Content-Encoding identity, gzip or deflate, inflated a step at a time and never past the body's room."""

    def __init__(self, encoding: str) -> None:
        name = encoding.strip().lower()
        if name in ("", "identity"):
            self._zlib = None
        elif name in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise FhirAccessError(f"FHIR response in an unsupported content-encoding ({name[:40]})")

    def feed(self, chunk: bytes, body: _Body) -> None:
        if self._zlib is None:
            body.add(chunk)
            return
        data = chunk
        try:
            while data:
                # One byte more than there is room for: enough to know the budget is exceeded.
                body.add(self._zlib.decompress(data, min(_INFLATE_STEP, body.room() + 1)))
                data = self._zlib.unconsumed_tail
        except zlib.error as error:
            raise FhirAccessError("FHIR response is not valid compressed data") from error

    def finish(self, body: _Body) -> None:
        if self._zlib is None:
            return
        try:
            while not self._zlib.eof and (piece := self._zlib.decompress(self._zlib.unconsumed_tail, _INFLATE_STEP)):
                body.add(piece)
        except zlib.error as error:
            raise FhirAccessError("FHIR response is not valid compressed data") from error
        if not self._zlib.eof:
            raise FhirAccessError("compressed FHIR response is truncated")
