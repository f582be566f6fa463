"""A stub of vLLM's OpenAI-compatible server, for tests and the demo: real HTTP on 127.0.0.1.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``, ``GET /metrics``.
Modes (switchable while it runs, `StubServer.set_mode`):

- ``good``: a draft grounded in the request's account context (its amounts and placeholders);
- ``slow``: the same after ``delay_s`` seconds;
- ``error``: HTTP ``error_status`` (500 by default) for completions, 503 for ``/health``;
- ``invalid_json``: content that is not JSON;
- ``schema_mismatch``: JSON without the required fields;
- ``wrong_amount``: a draft stating an amount that is not in the context;
- ``threat``: a draft threatening legal action and credit reporting.

Every request is recorded (`StubServer.requests`) so tests can check what left the engine.
``strict`` (default on) answers 400 to a completion request without ``max_tokens`` or without a
``json_schema`` ``response_format``, the way a test wants to learn about it.

>>> import asyncio, httpx
>>> async def demo() -> str:
...     async with StubServer() as stub:
...         async with httpx.AsyncClient() as http:
...             return (await http.get(f"{stub.root_url}/health")).text
>>> asyncio.run(demo())
'ok'

Run it standalone for the demo: ``python -m inference.stub --port 8001 --mode good``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, get_args

from aiohttp import web

from inference.prompts import CONTEXT_MARKER, INSTRUCTION_MARKER

Mode = Literal["good", "slow", "error", "invalid_json", "schema_mismatch", "wrong_amount", "threat"]
MODES: tuple[str, ...] = get_args(Mode)
STUB_MODEL = "stub/billwise-drafter"


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received (the Authorization header is kept only as present or not)."""

    method: str
    path: str
    json: Any
    has_authorization: bool
    at: float = field(default_factory=time.time)

    @property
    def text(self) -> str:
        """The request body as JSON text (for "does X appear anywhere" checks)."""
        return json.dumps(self.json, ensure_ascii=False)


def _context(payload: dict[str, Any]) -> dict[str, Any]:
    """The account context of the request's user turn (empty when there is none)."""
    for message in payload.get("messages", []):
        content = str(message.get("content", ""))
        if message.get("role") == "user" and CONTEXT_MARKER in content:
            raw = content.split(CONTEXT_MARKER, 1)[1].split(INSTRUCTION_MARKER, 1)[0]
            try:
                parsed = json.loads(raw)
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
    return {}


_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "practice": "Your practice",
        "hello": "Hello {name},",
        "hello_anonymous": "Hello,",
        "balance": "This is {practice}. Your current balance is {balance}.",
        "option": "You can pay {monthly_amount} a month for {months} months (total {total}).",
        "settlement": "We can accept {amount} as payment in full.",
        "help": "We are glad to help with a payment plan or financial assistance.",
        "sms_balance": "{practice}: your balance is {balance}.",
        "sms_message": "{practice}: you have a new message.",
        "subject": "Your account with {practice}",
        "thanks": " Thank you.",
    },
    "es": {
        "practice": "Su consulta",
        "hello": "Hola, {name}:",
        "hello_anonymous": "Hola:",
        "balance": "Le escribimos de {practice}. Su saldo actual es de {balance}.",
        "option": "Puede pagar {monthly_amount} al mes durante {months} meses (total {total}).",
        "settlement": "Podemos aceptar {amount} como pago total.",
        "help": "Con gusto le ayudamos con un plan de pagos o con asistencia financiera.",
        "sms_balance": "{practice}: su saldo es de {balance}.",
        "sms_message": "{practice}: tiene un mensaje nuevo.",
        "subject": "Su cuenta con {practice}",
        "thanks": " Gracias.",
    },
}
"""The good draft's sentences in each language the templates have."""


def good_draft(ctx: dict[str, Any]) -> dict[str, Any]:
    """A draft that states only the context's amounts and placeholders (en or es)."""
    words = _WORDS["es" if ctx.get("language") == "es" else "en"]
    practice = ctx.get("practice_name") or words["practice"]
    name = ctx.get("patient_name")
    balance = ctx.get("balance")
    lines = [words["hello"].format(name=name) if name else words["hello_anonymous"]]
    if balance:
        lines.append(words["balance"].format(practice=practice, balance=balance))
    lines.extend(words["option"].format(**option) for option in ctx.get("plan_options", []))
    if ctx.get("settlement"):
        lines.append(words["settlement"].format(amount=ctx["settlement"]["amount"]))
    lines.append(words["help"])
    sms = words["sms_balance" if balance else "sms_message"].format(practice=practice, balance=balance)
    return {
        "subject": words["subject"].format(practice=practice),
        "body": "\n\n".join(lines),
        "sms_body": sms + words["thanks"],
        "tone_tags": ["friendly", "informative"],
    }


def _wrong_amount(ctx: dict[str, Any]) -> dict[str, Any]:
    draft = good_draft(ctx)
    wrong = "$98,765.43"
    es = ctx.get("language") == "es"
    extra = f" Su saldo es de {wrong}." if es else f" Your balance is {wrong}."
    draft["body"] += extra
    draft["sms_body"] += extra
    return draft


def _threat(ctx: dict[str, Any]) -> dict[str, Any]:
    draft = good_draft(ctx)
    if ctx.get("language") == "es":
        extra = " Si no paga, tomaremos acciones legales y lo reportaremos al buró de crédito."
    else:
        extra = " If you do not pay, we will take legal action and report you to the credit bureaus."
    draft["body"] += extra
    draft["sms_body"] += extra
    return draft


def _completion(content: str, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-stub-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }


class StubServer:
    """The stub, started in-process: ``async with StubServer(mode="good") as stub: stub.base_url``."""

    def __init__(
        self,
        mode: str = "good",
        *,
        delay_s: float = 0.0,
        error_status: int = 500,
        model: str = STUB_MODEL,
        api_key: str | None = None,
        strict: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.set_mode(mode, delay_s=delay_s, error_status=error_status)
        self.model = model
        self.api_key = api_key
        self.strict = strict
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None

    # -- control --------------------------------------------------------------------------------
    def set_mode(self, mode: str, *, delay_s: float | None = None, error_status: int | None = None) -> None:
        """Switch behaviour at runtime (``slow`` uses ``delay_s``; ``error`` uses ``error_status``)."""
        if mode not in MODES:
            raise ValueError(f"unknown stub mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        if delay_s is not None:
            self.delay_s = delay_s
        if error_status is not None:
            self.error_status = error_status

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what ``VLLM_BASE_URL`` would be."""
        return f"{self.root_url}/v1"

    @property
    def completions(self) -> list[RecordedRequest]:
        """The recorded chat completion requests."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> StubServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StubServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- handlers -------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _record(self, request: web.Request) -> Any:
        payload: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw.decode("utf-8", "replace")
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                json=payload,
                has_authorization="Authorization" in request.headers,
            )
        )
        return payload

    async def _chat(self, request: web.Request) -> web.Response:
        payload = await self._record(request)
        if not self._authorised(request):
            return web.json_response({"error": {"message": "unauthorised"}}, status=401)
        if not isinstance(payload, dict):
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        if self.strict:
            problem = _strict_problem(payload)
            if problem:
                return web.json_response({"error": {"message": problem}}, status=400)
        mode = self.mode
        if mode == "slow":
            await asyncio.sleep(self.delay_s)
        if mode == "error":
            return web.json_response({"error": {"message": "stub error"}}, status=self.error_status)
        ctx = _context(payload)
        if mode == "invalid_json":
            content = "Sure! Here is a friendly message: {subject: Your balance, body: ..."
        elif mode == "schema_mismatch":
            content = json.dumps({"message": "Your balance is due.", "tone": "friendly"})
        elif mode == "wrong_amount":
            content = json.dumps(_wrong_amount(ctx), ensure_ascii=False)
        elif mode == "threat":
            content = json.dumps(_threat(ctx), ensure_ascii=False)
        else:
            content = json.dumps(good_draft(ctx), ensure_ascii=False)
        return web.json_response(_completion(content, str(payload.get("model") or self.model)))

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return web.json_response({"error": {"message": "unauthorised"}}, status=401)
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "billwise-stub"}]}
        )

    async def _health(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.mode == "error":
            return web.Response(text="engine dead", status=503)
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        await self._record(request)
        done = len(self.completions)
        text = (
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="{self.model}"}} 0\n'
            "# TYPE vllm:request_success_total counter\n"
            f'vllm:request_success_total{{model_name="{self.model}",finished_reason="stop"}} {done}\n'
        )
        return web.Response(text=text, content_type="text/plain")


_SCHEMA_KEYS = re.compile(r"guided_(json|regex|choice|grammar)")


def _strict_problem(payload: dict[str, Any]) -> str | None:
    if not isinstance(payload.get("max_tokens"), int):
        return "max_tokens must be set"
    fmt = payload.get("response_format")
    schema = fmt.get("json_schema", {}) if isinstance(fmt, dict) else {}
    if not (isinstance(fmt, dict) and fmt.get("type") == "json_schema" and "schema" in schema):
        return "response_format json_schema required"
    if any(_SCHEMA_KEYS.fullmatch(k) for k in payload):
        return "guided_* fields were removed in vLLM 0.12 and are ignored"
    return None


async def _serve_forever(args: argparse.Namespace) -> None:
    async with StubServer(args.mode, delay_s=args.delay, host=args.host, port=args.port) as stub:
        print(f"stub vLLM server on {stub.base_url} (mode {stub.mode}); Ctrl-C stops it", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m inference.stub [--host H] [--port N] [--mode M] [--delay S]``."""
    parser = argparse.ArgumentParser(description="Stub of vLLM's OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--mode", default="good", choices=MODES)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds, for --mode slow")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
