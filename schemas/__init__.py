"""Billwise wire contract: pydantic models for every record that crosses a topic or an HTTP endpoint."""
