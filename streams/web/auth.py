"""Who is calling and what they may do: bearer tokens, users and the review roles of POLICY.md section 2.

Users come from ``BILLWISE_USERS_FILE`` (ARCHITECTURE.md)::

    {"users": [{"user_id": "u-ana", "role": "billing_manager", "token_sha256": "<64 hex digits>"}]}

Only the SHA-256 of a token is stored. A request's bearer token is hashed and compared with
`hmac.compare_digest` against *every* user (no early exit), so neither the comparison nor the loop
tells an attacker how close a guess was or which user it nearly matched. The file is re-read when it
changes on disk: the ``admin`` role manages users by editing that file (there is no user API), and a
revoked token stops working without a worker restart. A missing or broken file fails closed (nobody
is authenticated); tokens and their hashes never reach the log.

Roles (POLICY.md section 2, and the decision this module documents):

* every role may read (``GET /review``, ``GET /accounts/{id}``);
* ``approve``, ``edit`` and ``reject`` need a reviewer role: the policy file's
  ``review.approver_roles.default`` (shipped: collector, billing_manager, compliance_officer, admin);
* approving or editing a *restricted* action (balance over ``review.balance_over``, $5,000 by default,
  or a kind in ``review.restricted_kinds``, ``settlement_offer`` by default) needs
  ``review.approver_roles.restricted`` (billing_manager, compliance_officer). ``admin`` manages users
  and may decide ordinary held actions, but is *not* an approver of restricted ones;
* rejecting is allowed to every reviewer role, restricted or not: it releases nothing, and stopping
  an action must never wait for a senior reviewer.

>>> directory = UserDirectory.from_document(
...     {"users": [{"user_id": "u-1", "role": "collector", "token_sha256": token_sha256("s3cret")}]})
>>> directory.authenticate("s3cret")
User(user_id='u-1', role='collector')
>>> directory.authenticate("guess") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.common import Id
from schemas.inputs import Role

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = get_args(Role)
MAX_TOKEN_CHARS = 4096
"""A longer Authorization header is not a token of ours; refuse before hashing megabytes."""

Decision = Literal["approve", "reject", "edit"]


@dataclass(frozen=True)
class User:
    """An authenticated caller: who (``user_id``) and in which role."""

    user_id: str
    role: Role


class _UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: Id
    role: Role
    token_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class _UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[_UserEntry]


class UsersFileError(ValueError):
    """The users file cannot be used (unreadable, not JSON, wrong shape, duplicate users or tokens)."""


def token_sha256(token: str) -> str:
    """The stored form of a bearer token: SHA-256 of its UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``.

    >>> bearer_token("Bearer abc"), bearer_token("bearer  abc "), bearer_token("Basic abc")
    ('abc', 'abc', None)
    """
    if not authorization or len(authorization) > MAX_TOKEN_CHARS:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


@dataclass
class UserDirectory:
    """The users allowed to call the API, keyed by the SHA-256 digest of their token."""

    entries: Sequence[tuple[bytes, User]] = ()
    path: Path | None = None
    _stamp: tuple[int, int] | None = field(default=None, repr=False)

    @classmethod
    def from_document(cls, document: Any, path: Path | None = None) -> UserDirectory:
        """Users from a parsed users-file document; raises `UsersFileError` when it is not valid."""
        try:
            parsed = _UsersFile.model_validate(document)
        except ValidationError as exc:
            # Field locations only: the input values would include token hashes.
            where = ", ".join(".".join(str(p) for p in error["loc"]) for error in exc.errors())
            raise UsersFileError(f"users file does not match the format: {where}") from None
        entries: list[tuple[bytes, User]] = []
        seen_users: set[str] = set()
        seen_digests: set[str] = set()
        for entry in parsed.users:
            digest = entry.token_sha256.lower()
            if entry.user_id in seen_users:
                raise UsersFileError(f"user {entry.user_id!r} appears twice")
            if digest in seen_digests:
                # Two users with one token would make the caller's identity ambiguous.
                raise UsersFileError(f"user {entry.user_id!r} shares a token with another user")
            seen_users.add(entry.user_id)
            seen_digests.add(digest)
            entries.append((bytes.fromhex(digest), User(entry.user_id, entry.role)))
        return cls(entries=tuple(entries), path=path)

    @classmethod
    def from_file(cls, path: Path | None) -> UserDirectory:
        """Users from ``path``; with no path, an empty directory that authenticates nobody."""
        if path is None:
            return cls()
        directory = cls(path=path)
        directory.reload_if_changed(strict=True)
        return directory

    def reload_if_changed(self, *, strict: bool = False) -> None:
        """Re-read the file when its size or modification time changed.

        A file that cannot be read or parsed empties the directory (fail closed) and is logged
        without its content; ``strict`` raises instead, so a worker does not start on a broken file.
        """
        if self.path is None:
            return
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            self._fail(strict, f"users file {self.path} cannot be read: {type(exc).__name__}")
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            document = json.loads(self.path.read_bytes())
            fresh = UserDirectory.from_document(document, self.path)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._fail(strict, f"users file {self.path} is not readable JSON: {type(exc).__name__}")
            return
        except UsersFileError as exc:
            self._fail(strict, str(exc))
            return
        self.entries = fresh.entries
        self._stamp = stamp
        log.info("users file loaded: %d users", len(self.entries))

    def _fail(self, strict: bool, message: str) -> None:
        if strict:
            raise UsersFileError(message)
        self.entries = ()
        self._stamp = None
        log.error("%s; no user is authenticated until it is fixed", message)

    def authenticate(self, token: str | None) -> User | None:
        """The user whose token this is, or ``None``; constant time in the number of users."""
        self.reload_if_changed()
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found: User | None = None
        for stored, user in self.entries:
            # No break: every entry is compared whether or not one already matched.
            if hmac.compare_digest(stored, digest):
                found = user
        return found

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class ReviewRules:
    """Who may decide which held action (POLICY.md section 2); defaults are the shipped policy's."""

    reviewer_roles: frozenset[str] = frozenset(
        {"collector", "billing_manager", "compliance_officer", "admin"}
    )
    restricted_roles: frozenset[str] = frozenset({"billing_manager", "compliance_officer"})
    balance_over: Decimal = Decimal("5000.00")
    restricted_kinds: frozenset[str] = frozenset({"settlement_offer"})
    balance_reason: str = "R-REVIEW-BALANCE"
    """The review reason the gates give for a balance over the limit (a held action's own record of it)."""

    @classmethod
    def from_policy(cls, policy: Any) -> ReviewRules:
        """The rules of ``policy.review`` when the policy has that section, else the defaults.

        Read defensively (``getattr``): the web layer must not break when the policy model gains or
        renames unrelated fields, and the defaults are POLICY.md's own.
        """
        review = getattr(policy, "review", None)
        if review is None:
            return cls()
        approvers = getattr(review, "approver_roles", None)
        defaults = cls()
        return cls(
            reviewer_roles=frozenset(getattr(approvers, "default", defaults.reviewer_roles)),
            restricted_roles=frozenset(getattr(approvers, "restricted", defaults.restricted_roles)),
            balance_over=Decimal(str(getattr(review, "balance_over", defaults.balance_over))),
            restricted_kinds=frozenset(getattr(review, "restricted_kinds", defaults.restricted_kinds)),
        )

    def is_restricted(
        self,
        kind: str,
        *,
        balances: Iterable[Decimal | None] = (),
        reasons: Iterable[str] = (),
        has_settlement: bool = False,
    ) -> bool:
        """Whether approving needs a restricted role: a restricted kind, a settlement, or a large balance.

        ``balances`` are every balance known for the action (the one it was built on, the account's
        current one): any of them over the limit restricts it, so the check errs on the safe side.
        """
        if kind in self.restricted_kinds or has_settlement or self.balance_reason in reasons:
            return True
        return any(balance is not None and balance > self.balance_over for balance in balances)

    def approver_roles(self, restricted: bool) -> frozenset[str]:
        """The roles that may approve or edit an action (restricted or not)."""
        return self.restricted_roles if restricted else self.reviewer_roles

    def may_decide(self, role: str, decision: Decision, restricted: bool) -> bool:
        """Whether ``role`` may ``decision`` an action; rejecting needs only a reviewer role."""
        if decision == "reject":
            return role in self.reviewer_roles
        return role in self.approver_roles(restricted)
