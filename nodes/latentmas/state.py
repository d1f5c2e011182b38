"""The state shared by the LatentMAS, text-MAS and single-agent graphs."""

from __future__ import annotations

import operator
from typing import Annotated, NotRequired

from typing_extensions import TypedDict

from latent_backend.requests import KVHandle
from nodes.agent_call import TraceEntry


class MASInput(TypedDict):
    """What a run starts from (Studio's input form)."""

    question: str  # the task's prompt for the item: question, options, context
    answer_instruction: NotRequired[str]  # the item's answer format (default: the context task's)
    answer_pattern: NotRequired[str | None]  # regex inside its \boxed{} (default: the context task's)
    item_id: NotRequired[str]


class MASOutput(TypedDict, total=False):
    """What a finished run returns."""

    text: str  # the final agent's decoded text
    answer: str | None  # what the task's grader extracts from `text`
    kv: KVHandle | None  # the last latent agent's KV-cache handle (LatentMAS)
    trace: list[TraceEntry]  # one entry per agent call


class MASState(MASInput, total=False):
    kv: KVHandle | None  # the KV-cache handle handed from latent agent to agent (never a tensor)
    outputs: Annotated[list[dict[str, str]], operator.add]  # text agents' outputs, in text MAS
    text: str
    answer: str | None
    trace: Annotated[list[TraceEntry], operator.add]  # one entry per agent call
