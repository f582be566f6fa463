"""Security properties of the web layer that are not about one route's behaviour.

* tokens and webhook signatures are compared in constant time (`hmac.compare_digest`), with no early
  exit over the users and no ``==`` on a secret anywhere in the modules that handle them;
* the server has request size limits and timeouts (the constants exist, are sane, and are used);
* secrets (bearer tokens, their hashes, webhook secrets) never reach the log.
"""

from __future__ import annotations

import ast
import hmac
import inspect
import json
import logging
import textwrap
from pathlib import Path

import pytest

import streams.web.auth as auth
import streams.web.views as views
import streams.webhooks as webhooks
from streams.web.auth import UserDirectory, token_sha256

SECRET_WORDS = ("token", "digest", "secret", "signature", "password", "stored", "expected", "given")
MODULES = (auth, webhooks, views)


def _names(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id.lower())
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr.lower())
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_no_secret_is_compared_with_equality(module) -> None:
    tree = ast.parse(Path(inspect.getsourcefile(module) or "").read_text())
    offending = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            names = _names(node)
            # Comparisons with None or string literals (a scheme, a header name) compare no secret.
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) for o in operands):
                continue
            if any(word in name for name in names for word in SECRET_WORDS):
                offending.append(f"{module.__name__}:{node.lineno}: {ast.unparse(node)}")
    assert not offending, offending


@pytest.mark.parametrize(
    "function",
    [UserDirectory.authenticate, webhooks.verify_drchrono, webhooks.verify_body_signature],
    ids=lambda f: f.__qualname__,
)
def test_token_and_signature_checks_use_compare_digest(function) -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert "hmac.compare_digest" in calls


def test_authenticate_compares_against_every_user_without_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    users = [
        {"user_id": f"u-{i}", "role": "collector", "token_sha256": token_sha256(f"token-{i}")}
        for i in range(7)
    ]
    directory = UserDirectory.from_document({"users": users})
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    for token in ("token-0", "token-6", "nobody", "token-3"):
        calls.clear()
        directory.authenticate(token)
        assert len(calls) == len(users), token  # the first user matching does not stop the loop
        assert all(len(a) == len(b) == 32 for a, b in calls)  # digests, not tokens of varying length


def test_a_huge_authorization_header_is_refused_before_hashing() -> None:
    directory = UserDirectory.from_document(
        {"users": [{"user_id": "u-1", "role": "admin", "token_sha256": token_sha256("x" * 10)}]}
    )
    assert auth.bearer_token("Bearer " + "x" * (auth.MAX_TOKEN_CHARS + 1)) is None
    assert directory.authenticate("x" * (auth.MAX_TOKEN_CHARS + 1)) is None


def test_request_size_limits_and_timeouts_exist_and_are_bounded() -> None:
    assert 1024 <= views.MAX_BODY_BYTES <= 1024 * 1024
    assert 0 < views.BODY_TIMEOUT_S <= 30
    assert 0 < views.PUBLISH_TIMEOUT_S <= views.REQUEST_TIMEOUT_S <= 60
    assert 0 < webhooks.DEFAULT_MAX_BYTES <= 16 * 1024 * 1024
    # Every staff route runs inside the overall timeout (guarded), and the body reader counts bytes.
    source = inspect.getsource(views.guarded)
    assert "asyncio.timeout(REQUEST_TIMEOUT_S)" in source
    reader = inspect.getsource(views.read_decision_body)
    assert "BODY_TIMEOUT_S" in reader and "MAX_BODY_BYTES" in reader


def test_users_file_problems_are_logged_without_tokens_or_hashes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    digest = token_sha256("super-secret-token")
    path = tmp_path / "users.json"
    # A wrong role: the validation error would quote the entry (and its hash) if it were logged raw.
    path.write_text(json.dumps({"users": [{"user_id": "u-1", "role": "king", "token_sha256": digest}]}))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(auth.UsersFileError) as error:
            UserDirectory.from_file(path)
        directory = UserDirectory(path=path)
        directory.reload_if_changed()
        directory.authenticate("super-secret-token")
    for text in (str(error.value), caplog.text):
        assert digest not in text and "super-secret-token" not in text


def test_webhook_secrets_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    env = {webhooks.secret_env_name("drchrono"): "wh-secret-123", webhooks.MAX_BYTES_ENV: "1000"}
    with caplog.at_level(logging.DEBUG):
        config = webhooks.WebhookConfig.from_env(("drchrono", "tebra"), env)
    assert config.secrets["drchrono"] == b"wh-secret-123"
    assert "wh-secret-123" not in caplog.text
