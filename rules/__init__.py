"""Decision policy: the pure decision core, the policy file, the compiled rules, gates and calculators.

Entry points (all pure: no wall clock, no I/O; decision time is the input's time):

* `rules.decide.decide(state, event, policy, *, scores=None, person_contacts=())` → `Decision`
* `rules.decide.daily_scan(state, policy, now, *, scores=None, person_contacts=())` → `Decision`
* `rules.decide.scan_due(last_scan_day, now, policy)` / `rules.decide.due_scans(...)`
* `rules.review.review_decision(state, decision, policy, now)` → `Decision`
* `rules.replay.replay(lines, policy_a, policy_b)` → `ReplayDiff` (``.render()`` for text)
* `rules.bench.gate_benchmark(n)` → dict of p50/p99 per candidate
* `rules.policy.load_policy(path=None)` (``BILLWISE_POLICY``)

Modules, one concept each: ``policy`` (the YAML model), ``compiler`` (policy → durable-rules JSON),
``engine`` (running rulesets), ``evaluator`` (the same JSON in Python), ``usecases`` (triggers →
candidates), ``gates`` (every gate for a candidate), ``channels``, ``zones``, ``schedule``,
``frequency``, ``optout``, ``offers``, ``assistance``, ``routes`` (staff tasks standing in for contact),
``build`` (candidate → Action), ``session`` (one decision in progress), ``state``, ``facts`` (events
folded into state), ``outputs``, ``context``, ``candidate``, ``examples`` (event builders).
"""
