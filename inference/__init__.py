"""Message drafting: vLLM client, prompts, PHI tokeniser, output guardrails and approved templates."""
