"""No PHI in the logs or the audit trail of a full small run.

A worker decides a small simulated practice's events (with a few bad records carrying patient data,
so the dead-letter and error paths log too) and is then stopped cleanly. The worker's whole log and
every audit record are scanned for the simulated patients' full names, e-mail addresses, phone numbers
(as sent and as bare digits) and birth dates. Actions legitimately carry names in their messages, and
dead letters carry the raw input by contract, so they are not scanned; audit records must identify
accounts, events and actions by id only.
"""

from __future__ import annotations

import json
import re

from models.simulator import Practice
from tests.faults.harness import CrashableWorker, keyed, produce, read_all, wait_drained


def _phi(events: list[dict]) -> set[str]:
    found: set[str] = set()
    for event in events:
        if event["type"] != "billing.patient.updated":
            continue
        data = event["data"]
        name = data.get("name") or {}
        given = name.get("given")
        given = " ".join(given) if isinstance(given, list) else given
        if given and name.get("family"):
            found.add(f"{given} {name['family']}")
            found.add(f"{name['family']}, {given}")
        for field in ("email", "birth_date"):
            if data.get(field):
                found.add(str(data[field]))
        for field in ("mobile_phone", "home_phone", "work_phone", "phone"):
            if data.get(field):
                number = str(data[field])
                found.add(number)
                found.add(re.sub(r"\D", "", number)[-10:])
    return found


def test_logs_and_audit_records_carry_no_patient_names_phones_or_emails(crashable: CrashableWorker) -> None:
    events = list(Practice(seed=21, patients=40, days=150).events())
    phi = _phi(events)
    assert len(phi) > 40, "the practice must have patients with names, phones and e-mails"
    records = [keyed(e) for e in events]
    # Bad records with patient data in them: dead-lettered, and whatever the worker logs about them
    # must not quote them.
    patient = next(e for e in events if e["type"] == "billing.patient.updated")
    bad_type = json.loads(json.dumps(patient))
    bad_type["data"]["birth_date"] = {"not": "a date"}
    bad_json = json.dumps(patient).encode()[:-5]
    key = str(patient["data"]["account_id"]).encode()
    records += [(key, json.dumps(bad_type).encode()), (key, bad_json)]

    crashable.start()
    produce(crashable.bootstrap, crashable.topic("events"), records)
    wait_drained(crashable, timeout_s=180)
    crashable.stop()

    audit = read_all(crashable.bootstrap, [crashable.topic("audit")])
    dead = read_all(crashable.bootstrap, [crashable.topic("dlq")])
    assert audit and len(dead) >= 2
    log = crashable.logs()
    audit_text = "\n".join(r.raw.decode() for r in audit)
    in_log = sorted(p for p in phi if p in log)
    in_audit = sorted(p for p in phi if p in audit_text)
    print(f"\nphi scan: {len(phi)} values, {len(log)} log chars, {len(audit)} audit records")
    assert not in_log, f"PHI in the worker log: {in_log[:5]}"
    assert not in_audit, f"PHI in audit records: {in_audit[:5]}"
