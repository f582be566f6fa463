"""A Billwise worker in a child process, for the demo, the benchmark and the tests.

`start_worker` returns once the worker's ``/health`` says it is ready (partitions assigned), so the
caller can produce events straight away; `WorkerProcess.stop` ends it cleanly (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

READY_TIMEOUT_S = 90.0
"""How long a worker may take to start and be given its partitions."""


class WorkerStartError(RuntimeError):
    """The worker exited or did not become ready; the message carries the end of its log."""


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    web_port: int
    log_path: Path

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/health"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until ``/health`` answered ready; raises `WorkerStartError` otherwise."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise WorkerStartError(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise WorkerStartError(f"worker not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_worker(
    bootstrap: str,
    web_port: int,
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> WorkerProcess:
    """Start ``billwise worker`` against ``bootstrap`` and wait until it is ready."""
    worker = launch_worker(bootstrap, web_port, log_path=log_path, env=env)
    worker.wait_ready(ready_timeout_s)
    return worker


def launch_worker(
    bootstrap: str, web_port: int, *, log_path: Path, env: dict[str, str] | None = None
) -> WorkerProcess:
    """Start ``billwise worker`` against ``bootstrap`` without waiting for it (see `start_worker`):
    workers launched together join their group together."""
    child_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--web-port", str(web_port)],
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return WorkerProcess(process, web_port, log_path)
