"""The shared-state keys the A2A server fills and reads (the seed's names)."""

from __future__ import annotations

INCOMING_MESSAGE = "__a2a_incoming_message"
HISTORY = "__a2a_history"
TASK_ID = "__a2a_task_id"
CONTEXT_ID = "__a2a_context_id"
SKILL_ID = "__a2a_skill_id"
INPUT = "input"
FINAL_RESPONSE_PARTS = "__a2a_final_response_parts"
FINAL_RESPONSE_METADATA = "__a2a_final_response_metadata"
REPLY_KIND = "__a2a_reply_kind"
"""How this turn answers, when a node chose: "message" (no task), "rejected" or "auth-required"."""

TASK_RUN_PREFIX = "a2a-task:"
"""Run-id namespace of stored A2A tasks, apart from the flow runs (whose run id is the task id)."""
