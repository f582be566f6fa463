"""Message drafting: vLLM client, prompts, PHI tokeniser, output guardrails and approved templates.

Entry points for the rest of the engine:

- `inference.facts.DraftFacts`: everything a draft may state;
- `inference.drafting.Drafter` (``Drafter.from_env()``; ``await drafter.draft(facts)`` → `DraftOutcome`
  with the `schemas.actions.Message` and a ``fallback_reason`` for the ``draft_fallback`` audit record);
- `inference.templates.render_template`: the approved template alone (pure, synchronous);
- `inference.guardrails.check_message`: the output gates, also for staff-edited text;
- `inference.serve.build_vllm_command`: the ``billwise llm serve`` command line;
- `inference.stub.StubServer`: an OpenAI-compatible stub for tests and the demo.
"""
