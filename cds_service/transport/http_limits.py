"""uvicorn's httptools protocol with a bound on the request head (request line and headers together).

httptools (uvicorn's default parser) takes headers of any size, and gathers a long header by concatenation:
sixteen 8 MB `Authorization` headers kept the event loop busy for seconds before any authentication. This
protocol counts the bytes of each request head before they reach the parser; past the limit it answers 431
with an OperationOutcome and closes the connection, having read at most the limit plus one network read.
(h11, the other parser, bounds heads itself: 16 KiB by default, `--h11-max-incomplete-event-size`.)

Use: `uvicorn ... --http cds_service.transport.http_limits:BoundedHttpToolsProtocol`; the limit is
CDS_MAX_HEADER_BYTES (read when the module is imported, in each worker).
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_BYTES = int(os.environ.get("CDS_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES))
_OUTCOME = (
    b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"too-costly",'
    b'"diagnostics":"request line and headers larger than %d bytes"}]}'
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True  # bytes arriving now belong to a request head
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._refuse_head()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def _refuse_head(self) -> None:
        self._head_open = False
        body = _OUTCOME % MAX_HEADER_BYTES
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/fhir+json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()
