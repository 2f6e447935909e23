"""Bounded request headers for uvicorn.

uvicorn's httptools protocol (the one ``uvicorn[standard]`` picks) buffers a request line and
headers of any size and number: a 20 MB header line or 20,000 headers are accepted. Its only
limit, ``h11_max_incomplete_event_size``, applies to the slower pure-Python h11 protocol. So we
subclass the httptools protocol: it counts the bytes fed to the parser until the headers are
complete and the headers parsed, and answers 431 (and closes the connection) above the limits,
before anything reaches the application.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, NamedTuple

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.live_transport import LiveWebSocketProtocol

log = logging.getLogger(__name__)


class HeaderLimits(NamedTuple):
    max_size: int  # request line plus headers, bytes
    max_count: int  # number of header fields


class HeaderLimitExceeded(Exception):
    pass


def _refusal(detail: str) -> bytes:
    body = json.dumps({"status": 431, "detail": detail}).encode()
    head = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + body


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`HeaderLimits`."""

    def __init__(self, *args: Any, limits: HeaderLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.reading_headers = True
        self.header_bytes = 0
        self.header_count = 0
        self.exceeded: str | None = None

    def data_received(self, data: bytes) -> None:
        if not self.reading_headers:
            super().data_received(data)
            return
        room = self.limits.max_size - self.header_bytes
        if len(data) <= room:
            self.header_bytes += len(data)
            super().data_received(data)
            return
        # Feed what fits: the headers may end inside it and the rest be body.
        self.header_bytes = self.limits.max_size
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self.reading_headers:
            self._refuse(f"Request line and headers are larger than {self.limits.max_size} bytes")
            return
        super().data_received(data[room:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > self.limits.max_count:
            self.exceeded = f"More than {self.limits.max_count} request headers"
            raise HeaderLimitExceeded(self.exceeded)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        self.header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers = True

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers a parser error (our exception in ``on_header``) with this."""
        if self.exceeded is None:
            super().send_400_response(msg)
        else:
            self._refuse(self.exceeded)

    def _refuse(self, detail: str) -> None:
        log.warning("refused a request from %s: %s", self.client, detail)
        self.transport.write(_refusal(detail))
        self.transport.close()


def uvicorn_options(limits: HeaderLimits) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` enforcing ``limits`` (picklable, for workers)."""
    # Subscription messages are small JSON: compressing each for every subscriber (and
    # decompressing it in every client) costs more CPU than the bytes it saves.
    # LiveWebSocketProtocol: uvicorn's default WebSocket protocol, letting the live fan-out
    # write subscription frames straight to the connection (server/live_transport.py).
    return {
        "http": functools.partial(HeaderLimitedProtocol, limits=limits),
        "ws": LiveWebSocketProtocol,
        "ws_per_message_deflate": False,
    }
