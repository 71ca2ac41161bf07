"""The LLM planner's engine: the prompt a model is asked for a plan with, and the reader of its reply.

It never touches a store: the kernel (``kernel.planner``) scopes the context to what the principal may
see, and validates every proposed step before anything runs.
"""

from memcubed.engines.planner.parse import MAX_REPLY_CHARS, extract_json, parse_plan
from memcubed.engines.planner.prompt import OperationSpec, PlanContext, compact_schema, plan_messages

__all__ = ["MAX_REPLY_CHARS", "OperationSpec", "PlanContext", "compact_schema", "extract_json", "parse_plan",
           "plan_messages"]
