"""`billwise llm serve`: how the vLLM command line is built (vLLM itself cannot run here)."""

from __future__ import annotations

import pytest

from inference.serve import DEFAULT_MODEL, build_vllm_command, run_vllm


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_default_command() -> None:
    cmd = build_vllm_command()
    assert cmd[:3] == ["vllm", "serve", DEFAULT_MODEL]
    assert DEFAULT_MODEL == "Qwen/Qwen2.5-1.5B-Instruct"
    assert flag(cmd, "--port") == "8000"
    assert flag(cmd, "--host") == "127.0.0.1"
    assert flag(cmd, "--max-model-len") == "4096"
    assert flag(cmd, "--generation-config") == "vllm"
    assert flag(cmd, "--structured-outputs-config.backend") == "xgrammar"
    assert not any("guided" in part for part in cmd)
    assert "--api-key" not in cmd and "--enable-log-requests" not in cmd


def test_options() -> None:
    cmd = build_vllm_command(
        "meta-llama/Llama-3.2-3B-Instruct",
        9001,
        2048,
        host="0.0.0.0",
        structured_output_backend="guidance",
        served_model_name="drafter",
        max_num_seqs=32,
        gpu_memory_utilization=0.8,
        dtype="bfloat16",
        extra_args=["--seed", "7"],
    )
    assert cmd[2] == "meta-llama/Llama-3.2-3B-Instruct"
    assert flag(cmd, "--port") == "9001" and flag(cmd, "--max-model-len") == "2048"
    assert flag(cmd, "--structured-outputs-config.backend") == "guidance"
    assert flag(cmd, "--served-model-name") == "drafter"
    assert flag(cmd, "--max-num-seqs") == "32"
    assert flag(cmd, "--gpu-memory-utilization") == "0.8"
    assert flag(cmd, "--dtype") == "bfloat16"
    assert cmd[-2:] == ["--seed", "7"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": " "},
        {"port": 0},
        {"max_model_len": 128},
        {"structured_output_backend": "outlines"},
        {"gpu_memory_utilization": 1.5},
        {"extra_args": ["--enable-log-requests"]},
        {"extra_args": ["--api-key=abc"]},
    ],
)
def test_rejects_bad_or_unsafe_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_vllm_command(**kwargs)  # type: ignore[arg-type]


def test_run_without_vllm_installed() -> None:
    assert run_vllm(build_vllm_command(executable="vllm-not-installed-here")) == 127
