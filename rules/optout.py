"""Opt-out replies: which inbound words revoke consent at once, and which need a person to read them.

TCPA revocation may come by any reasonable means (47 CFR 64.1200(a)(10), T-06). The policy lists the
per-se keywords (STOP, QUIT, ...); a reply containing one as a word revokes. Replies a reasonable person
might read as an opt-out but that are not clear ("wrong number", "no más", emoji only) go to staff.

>>> from rules.policy import load_policy
>>> policy = load_policy()
>>> replies = ["STOP", "stop texting me pls", "Opt out.", "wrong number", "no más", "👍"]
>>> [classify(text, policy) for text in replies]
['revoke', 'revoke', 'revoke', 'ambiguous', 'ambiguous', 'ambiguous']
>>> classify("Thanks, I paid yesterday", policy) is None
True
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Literal

from rules.policy import OptOutPolicy, Policy

Reading = Literal["revoke", "ambiguous"]

_WORDS = re.compile(r"[^\w]+", re.UNICODE)


def _normal(text: str) -> str:
    """Casefolded words separated by single spaces, punctuation gone: "Opt-Out!" → "opt out"."""
    return " ".join(_WORDS.split(text.casefold())).strip()


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


@cache
def _patterns(policy: OptOutPolicy) -> tuple[re.Pattern[str], tuple[str, ...]]:
    keywords = sorted((_normal(k) for k in policy.keywords), key=len, reverse=True)
    keyword_re = re.compile(r"(?:^| )(?:" + "|".join(re.escape(k) for k in keywords) + r")(?: |$)")
    phrases = tuple(_strip_accents(_normal(p)) for p in policy.ambiguous_phrases)
    return keyword_re, phrases


def classify(text: str | None, policy: Policy) -> Reading | None:
    """``revoke`` for a keyword reply, ``ambiguous`` for an unclear one, ``None`` for anything else."""
    if not text or not text.strip():
        return None
    keyword_re, phrases = _patterns(policy.opt_out)
    words = _normal(text)
    if keyword_re.search(words):
        return "revoke"
    plain = _strip_accents(words)
    if any(f" {phrase} " in f" {plain} " for phrase in phrases):
        return "ambiguous"
    if policy.opt_out.emoji_only_is_ambiguous and not any(c.isalnum() for c in text):
        return "ambiguous"
    return None
