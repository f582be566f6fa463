"""Which accounts belong to one person: POLICY.md counts call and message frequency per person.

A guarantor with three accounts (three children, three visits) is one person to the law: seven calls a
week in all, not seven per account. State is kept per account (every topic is keyed by ``account_id``),
so the worker indexes the accounts it holds by person (practice id and patient id) and hands the
decision core the contacts of the person's other accounts (`rules.decide.decide`'s ``person_contacts``).

The index is built from the states the worker decides, and from every account in its table on the daily
scan timer's first pass after a start or a rebalance. It sees the accounts of this worker's partitions:
accounts of one person that hash to partitions of another worker are not counted together (run one
worker, or key a practice's topics so that a person's accounts share a partition, to count them all).

>>> index = PersonIndex()
>>> index.add("practice-1", "PT-7", "ACC-1")
>>> index.add("practice-1", "PT-7", "ACC-2")
>>> index.add("practice-2", "PT-7", "ACC-3")  # another practice's patient 7 is another person
>>> index.others("practice-1", "PT-7", "ACC-1")
['ACC-2']
"""

from __future__ import annotations


class PersonIndex:
    """Person (practice id, patient id) → the account ids of that person this worker has seen."""

    def __init__(self) -> None:
        self._accounts: dict[tuple[str, str], set[str]] = {}

    def add(self, practice_id: str, patient_id: str, account_id: str) -> None:
        self._accounts.setdefault((practice_id, patient_id), set()).add(account_id)

    def others(self, practice_id: str, patient_id: str, account_id: str) -> list[str]:
        """The person's other accounts, in a stable order (decisions must not depend on set order)."""
        return sorted(self._accounts.get((practice_id, patient_id), set()) - {account_id})
