"""Reading a request body within a size limit and a time limit, for every route that takes one.

A ``Content-Length`` over the limit is refused before anything is read; a chunked body (which carries
none) is counted while it is read and refused once past the limit; a body that trickles in is refused
when the time is up. The callers turn `BodyRefused` into their own error answers.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

CHUNK_BYTES = 64 * 1024


class BodyRefused(Exception):
    """A body not taken: ``status`` 413 (too large) or 408 (too slow), with a code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def read_limited(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """At most ``limit`` bytes of ``request``'s body, all arrived within ``timeout_s``."""
    too_large = BodyRefused(413, "too_large", f"the body may be at most {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused(408, "body_timeout", "the body did not arrive in time") from None
    return b"".join(chunks)
