"""The state shared by the LatentMAS, text-MAS and single-agent graphs."""

from __future__ import annotations

import operator
from typing import Annotated

from typing_extensions import TypedDict

from latent_backend.kv_store import KVHandle
from nodes.agent_call import TraceEntry


class MASState(TypedDict, total=False):
    item_id: str
    question: str  # the task's prompt for the item: question, options, context
    answer_instruction: str  # the item's answer format (optional: default, the context task's)
    kv: KVHandle | None  # the KV-cache handle handed from latent agent to agent (never a tensor)
    outputs: Annotated[list[dict[str, str]], operator.add]  # text agents' outputs, in text MAS
    text: str  # the final agent's decoded text
    answer: str | None  # what the task's grader extracts from `text`
    trace: Annotated[list[TraceEntry], operator.add]  # one entry per agent call
