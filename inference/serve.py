"""``billwise llm serve``: start vLLM's OpenAI-compatible server with the settings drafting needs.

vLLM is an optional dependency (GPU hosts only); this module only builds and runs the command line.
The API key, if any, is passed through the environment (``VLLM_API_KEY``, which ``vllm serve`` reads),
never on the command line where ``ps`` would show it. Request and output logging stay off: prompts
carry account facts.

>>> build_vllm_command("Qwen/Qwen2.5-1.5B-Instruct", 8000, 4096)[:3]
['vllm', 'serve', 'Qwen/Qwen2.5-1.5B-Instruct']
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
DEFAULT_PORT = 8000
DEFAULT_MAX_MODEL_LEN = 4096
STRUCTURED_OUTPUT_BACKENDS = ("auto", "xgrammar", "guidance")


def build_vllm_command(
    model: str = DEFAULT_MODEL,
    port: int = DEFAULT_PORT,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    *,
    host: str = "127.0.0.1",
    structured_output_backend: str = "xgrammar",
    served_model_name: str | None = None,
    max_num_seqs: int | None = None,
    gpu_memory_utilization: float | None = None,
    dtype: str | None = None,
    extra_args: Sequence[str] = (),
    executable: str = "vllm",
) -> list[str]:
    """The ``vllm serve`` command line.

    - ``--max-model-len``: prompts are ~1k tokens and drafts ≤ 512, so 4096 keeps KV cache small;
    - ``--generation-config vllm``: ignore the model's own ``generation_config.json`` sampling
      defaults (the client sends explicit ``temperature``, ``top_p`` and ``max_tokens`` anyway);
    - ``--structured-outputs-config.backend``: the JSON-schema backend (``xgrammar`` by default).

    >>> cmd = build_vllm_command("m", 9000, 2048, structured_output_backend="guidance", max_num_seqs=32)
    >>> cmd[cmd.index("--structured-outputs-config.backend") + 1], cmd[-2:]
    ('guidance', ['--max-num-seqs', '32'])
    """
    if not model.strip():
        raise ValueError("model must be a Hugging Face id or a local path")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    if max_model_len < 512:
        raise ValueError("max_model_len below 512 cannot hold a drafting prompt and its answer")
    if structured_output_backend not in STRUCTURED_OUTPUT_BACKENDS:
        raise ValueError(f"structured_output_backend must be one of {STRUCTURED_OUTPUT_BACKENDS}")
    cmd = [
        executable,
        "serve",
        model,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--generation-config",
        "vllm",
        "--structured-outputs-config.backend",
        structured_output_backend,
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if max_num_seqs is not None:
        cmd += ["--max-num-seqs", str(max_num_seqs)]
    if gpu_memory_utilization is not None:
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")
        cmd += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if dtype:
        cmd += ["--dtype", dtype]
    forbidden = {"--enable-log-requests", "--enable-log-outputs", "--api-key"}
    bad = [a for a in extra_args if a.split("=", 1)[0] in forbidden]
    if bad:
        raise ValueError(
            f"refusing {bad}: request logging would write account facts; pass keys via VLLM_API_KEY"
        )
    cmd += list(extra_args)
    return cmd


def run_vllm(cmd: Sequence[str], *, api_key: str | None = None) -> int:
    """Run the command in the foreground and return its exit code (127 when vLLM is not installed)."""
    if shutil.which(cmd[0]) is None:
        return 127
    env = dict(os.environ)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return subprocess.call(list(cmd), env=env)
