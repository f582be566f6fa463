"""``billwise llm serve`` builds vLLM's command with the settings drafting needs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streams.cli import app


def test_llm_serve_runs_the_built_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> int:
        seen.append(list(command))
        return 0

    monkeypatch.setattr("inference.serve.run_vllm", fake_run)
    result = CliRunner().invoke(
        app, ["llm", "serve", "--model", "m/small", "--port", "8123", "--max-model-len", "2048"]
    )
    assert result.exit_code == 0, result.output
    [command] = seen
    assert command[:3] == ["vllm", "serve", "m/small"]
    assert command[command.index("--port") + 1] == "8123"
    assert command[command.index("--max-model-len") + 1] == "2048"
    assert command[command.index("--generation-config") + 1] == "vllm"
