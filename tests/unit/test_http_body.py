"""The bounded body reader every route with a body uses: size by header or by counting, and time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streams.http_body import BodyRefused, read_limited

LIMIT = 1000


def _app(timeout_s: float) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        try:
            body = await read_limited(request, LIMIT, timeout_s)
        except BodyRefused as exc:
            return web.json_response({"code": exc.code}, status=exc.status)
        return web.Response(body=body)

    app = web.Application()
    app.router.add_post("/", echo)
    return app


async def test_a_body_within_the_limit_is_read_whole() -> None:
    async with TestClient(TestServer(_app(5.0))) as client:
        body = bytes(range(256)) * 3 + b"x" * (LIMIT - 768)
        response = await client.post("/", data=body)
        assert response.status == 200
        assert await response.read() == body


async def test_a_body_over_the_limit_is_413_by_length_and_by_counting() -> None:
    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse up front
        for _ in range(4):
            yield b"y" * 300

    async with TestClient(TestServer(_app(5.0))) as client:
        by_length = await client.post("/", data=b"z" * (LIMIT + 1))
        by_counting = await client.post("/", data=chunks())
        assert (by_length.status, await by_length.json()) == (413, {"code": "too_large"})
        assert (by_counting.status, await by_counting.json()) == (413, {"code": "too_large"})


async def test_a_body_that_trickles_in_is_408() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"a"
            await asyncio.sleep(0.2)

    async with TestClient(TestServer(_app(0.3))) as client:
        response = await client.post("/", data=trickle())
        assert (response.status, await response.json()) == (408, {"code": "body_timeout"})
