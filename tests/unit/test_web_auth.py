"""Users file, bearer tokens and the review roles of POLICY.md section 2 (`streams.web.auth`)."""

from __future__ import annotations

import json
import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from rules.policy import load_policy
from streams.web.auth import (
    ReviewRules,
    User,
    UserDirectory,
    UsersFileError,
    bearer_token,
    token_sha256,
)

TOKENS = {
    "u-col": ("collector", "tok-collector-7f1"),
    "u-mgr": ("billing_manager", "tok-manager-2b9"),
    "u-cmp": ("compliance_officer", "tok-compliance-c44"),
    "u-adm": ("admin", "tok-admin-a01"),
}


def users_document(tokens: dict[str, tuple[str, str]] = TOKENS) -> dict:
    return {
        "users": [
            {"user_id": user_id, "role": role, "token_sha256": token_sha256(token)}
            for user_id, (role, token) in tokens.items()
        ]
    }


def test_every_user_authenticates_with_their_own_token_only() -> None:
    directory = UserDirectory.from_document(users_document())
    for user_id, (role, token) in TOKENS.items():
        assert directory.authenticate(token) == User(user_id, role)  # type: ignore[arg-type]
    assert directory.authenticate("tok-collector-7f") is None
    assert directory.authenticate(token_sha256("tok-collector-7f1")) is None  # the hash is not the token
    assert directory.authenticate("") is None
    assert directory.authenticate(None) is None
    assert directory.authenticate("x" * 10_000) is None


def test_upper_case_hashes_are_accepted() -> None:
    document = {"users": [{"user_id": "u", "role": "admin", "token_sha256": token_sha256("t").upper()}]}
    assert UserDirectory.from_document(document).authenticate("t") == User("u", "admin")


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"users": "nope"},
        {"users": [{"user_id": "u", "role": "owner", "token_sha256": "0" * 64}]},
        {"users": [{"user_id": "u", "role": "admin", "token_sha256": "plaintext-token"}]},
        {"users": [{"user_id": "u", "role": "admin", "token_sha256": "0" * 64, "token": "leak"}]},
        {
            "users": [
                {"user_id": "u", "role": "admin", "token_sha256": "0" * 64},
                {"user_id": "u", "role": "collector", "token_sha256": "1" * 64},
            ]
        },
        {
            "users": [
                {"user_id": "u", "role": "admin", "token_sha256": "0" * 64},
                {"user_id": "v", "role": "collector", "token_sha256": "0" * 64},
            ]
        },
    ],
    ids=["no-users", "not-a-list", "unknown-role", "not-a-hash", "extra-field", "dup-user", "shared-token"],
)
def test_a_malformed_users_file_is_refused(document: dict) -> None:
    with pytest.raises(UsersFileError):
        UserDirectory.from_document(document)


def test_error_messages_never_quote_token_hashes() -> None:
    digest = token_sha256("secret")
    with pytest.raises(UsersFileError) as caught:
        UserDirectory.from_document({"users": [{"user_id": "u", "role": "nobody", "token_sha256": digest}]})
    assert digest not in str(caught.value)


def test_no_users_file_authenticates_nobody() -> None:
    directory = UserDirectory.from_file(None)
    assert len(directory) == 0
    assert directory.authenticate("anything") is None


def test_the_file_is_reloaded_when_it_changes_and_a_broken_file_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users_document()))
    directory = UserDirectory.from_file(path)
    assert directory.authenticate("tok-admin-a01") == User("u-adm", "admin")

    # The admin revokes a token by editing the file: no restart needed.
    revoked = {k: v for k, v in TOKENS.items() if k != "u-adm"}
    path.write_text(json.dumps(users_document(revoked)))
    os.utime(path, ns=(1, 1))  # a distinct stamp even on coarse-mtime file systems
    assert directory.authenticate("tok-admin-a01") is None
    assert directory.authenticate("tok-manager-2b9") == User("u-mgr", "billing_manager")

    caplog.set_level(logging.INFO)
    path.write_text("{not json")
    os.utime(path, ns=(2, 2))
    assert directory.authenticate("tok-manager-2b9") is None
    path.unlink()
    assert directory.authenticate("tok-manager-2b9") is None
    for token in ("tok-manager-2b9", token_sha256("tok-manager-2b9")):
        assert token not in caplog.text


def test_a_worker_does_not_start_on_a_broken_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("[]")
    with pytest.raises(UsersFileError):
        UserDirectory.from_file(path)
    with pytest.raises(UsersFileError):
        UserDirectory.from_file(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def-ghi", "abc.def-ghi"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("Bearer " + "x" * 5000, None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# -- roles ------------------------------------------------------------------------------------------


def test_rules_come_from_the_shipped_policy() -> None:
    rules = ReviewRules.from_policy(load_policy())
    assert rules.balance_over == Decimal("5000.00")
    assert rules.restricted_roles == {"billing_manager", "compliance_officer"}
    assert "settlement_offer" in rules.restricted_kinds
    assert {"collector", "billing_manager", "compliance_officer"} <= rules.reviewer_roles


def test_rules_default_to_policy_md_without_a_review_section() -> None:
    assert ReviewRules.from_policy(object()) == ReviewRules()


@pytest.mark.parametrize(
    ("kind", "balances", "reasons", "settlement", "restricted"),
    [
        ("payment_reminder", [Decimal("450.00")], [], False, False),
        ("payment_reminder", [Decimal("5000.00")], [], False, False),  # "over $5,000": not at
        ("payment_reminder", [Decimal("5000.01")], [], False, True),
        ("payment_reminder", [Decimal("450.00"), Decimal("7000.00")], [], False, True),  # grew since held
        ("payment_reminder", [None], ["R-REVIEW-BALANCE"], False, True),
        ("settlement_offer", [Decimal("1200.00")], [], False, True),
        ("staff_task", [Decimal("10.00")], [], True, True),
        ("assistance_invite", [None], ["R-DISPUTE-OPEN"], False, False),
    ],
)
def test_restricted_actions(
    kind: str, balances: list[Decimal | None], reasons: list[str], settlement: bool, restricted: bool
) -> None:
    rules = ReviewRules()
    assert (
        rules.is_restricted(kind, balances=balances, reasons=reasons, has_settlement=settlement) is restricted
    )


@pytest.mark.parametrize(
    ("role", "ordinary", "restricted"),
    [
        ("collector", {"approve", "edit", "reject"}, {"reject"}),
        ("billing_manager", {"approve", "edit", "reject"}, {"approve", "edit", "reject"}),
        ("compliance_officer", {"approve", "edit", "reject"}, {"approve", "edit", "reject"}),
        # admin manages users and may decide ordinary held actions, never restricted approvals.
        ("admin", {"approve", "edit", "reject"}, {"reject"}),
    ],
)
def test_who_may_decide_what(role: str, ordinary: set[str], restricted: set[str]) -> None:
    rules = ReviewRules.from_policy(load_policy())
    for decision in ("approve", "edit", "reject"):
        assert rules.may_decide(role, decision, restricted=False) is (decision in ordinary)
        assert rules.may_decide(role, decision, restricted=True) is (decision in restricted)


def test_a_role_outside_the_reviewers_decides_nothing() -> None:
    rules = ReviewRules(reviewer_roles=frozenset({"collector"}), restricted_roles=frozenset({"collector"}))
    for decision in ("approve", "edit", "reject"):
        assert not rules.may_decide("admin", decision, restricted=False)


@pytest.mark.parametrize("name", ["streams.web.auth", "streams.web.access", "streams.web.review_index"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(name)).failed == 0
