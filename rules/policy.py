"""The decision policy: every threshold, window and switch of POLICY.md, loaded from a versioned YAML file.

Counsel reads and approves the file; code implements the gate kinds and reads their parameters from
here. `load_policy` validates a file with clear errors; `BILLWISE_POLICY` names another file.

>>> policy = load_policy()
>>> policy.quiet_hours.start.hour, policy.quiet_hours.end.hour
(8, 21)
"""

from __future__ import annotations

import os
from datetime import time
from decimal import Decimal
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.common import Channel

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.yaml"


class PolicySection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionsPolicy(PolicySection):
    expires_after_days: int = Field(ge=1, le=90)


class QuietHours(PolicySection):
    start: time
    end: time
    default_timezone: str = Field(description="zone used when nothing about the patient names one")


class ChannelsPolicy(PolicySection):
    fallback_order: list[Channel]


class StatementMessagePolicy(PolicySection):
    min_balance_due: Decimal


class ReviewPolicy(PolicySection):
    balance_over: Decimal


class Policy(PolicySection):
    version: str = Field(min_length=1)
    actions: ActionsPolicy
    quiet_hours: QuietHours
    channels: ChannelsPolicy
    statement_message: StatementMessagePolicy
    review: ReviewPolicy


class PolicyError(ValueError):
    """A policy file that cannot be used, with the file and the offending field named."""


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path``, else in ``$BILLWISE_POLICY``, else the shipped default."""
    chosen = Path(path or os.environ.get("BILLWISE_POLICY") or DEFAULT_POLICY_PATH)
    return _load(chosen.resolve())


@cache
def _load(path: Path) -> Policy:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from None
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False)
        )
        raise PolicyError(f"policy file {path} is invalid: {problems}") from None
