"""The HTTP server layer under the app: uvicorn's h11 protocol with bounded request heads.

uvicorn's default parser (httptools) buffers request headers without a limit: eight
concurrent 50 MB headers grew the process by ~85 MB before authentication was even
checked. h11 keeps at most ``h11_max_incomplete_event_size`` bytes of an unparsed head;
this protocol answers anything larger with 431 (JSON, like every other error of the API)
and closes the connection, before the head is parsed or the app sees it.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_MAX_HEADER_BYTES = 16_384


def _431(limit: int) -> bytes:
    body = json.dumps({"error": "request_header_fields_too_large",
                       "detail": f"request line and headers larger than {limit} bytes "
                                 "(JOURNEY_API_MAX_HEADER_BYTES)"}).encode()
    return (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _head_over(buffered: bytes, data: bytes, limit: int) -> bool:
    """Whether the request head in ``buffered + data`` exceeds ``limit`` bytes: its end (the
    blank line) is not within the first ``limit`` bytes and more than that has arrived."""
    if len(buffered) + len(data) <= limit:
        return False
    window = (buffered + data[:limit + 4])[:limit + 4]
    return window.find(b"\r\n\r\n") < 0


class BoundedHeadH11Protocol(H11Protocol):
    """`H11Protocol` that refuses a request head over the configured size with 431."""

    def data_received(self, data: bytes) -> None:
        limit = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        # their IDLE: h11 is still reading a request line and headers (keep-alive included).
        # Only the head counts: a body that arrives in the same read as its head is not part of
        # it (a 20 KiB POST in one segment is fine); without the head's end within the limit,
        # the head is too large whatever follows
        if self.conn.their_state is h11.IDLE and _head_over(bytes(self.conn.trailing_data[0]), data, limit):
            self.logger.warning("request head over %d bytes refused with 431", limit)
            self.transport.write(_431(limit))
            self.transport.close()
            return
        super().data_received(data)


__all__ = ["BoundedHeadH11Protocol", "DEFAULT_MAX_HEADER_BYTES"]
