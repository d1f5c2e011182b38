"""The state of the MAD debate graph: its input, its output, and the channels in between.

Every player keeps its own chat memory (system prompt, the events it was told, its own replies) in
the `memories` channel; nodes return only the messages they add. The final state's `record` is the
debate's output record (see `nodes.debate.agents.conclude`).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from typing_extensions import TypedDict

from nodes.agent_call import TraceEntry
from nodes.debate.prompts import language_name


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


def merge_memories(
    left: dict[str, list[Message]] | None, right: dict[str, list[Message]] | None
) -> dict[str, list[Message]]:
    """Append each player's new messages to its memory (nodes return only what they add)."""
    merged = {name: list(messages) for name, messages in (left or {}).items()}
    for name, messages in (right or {}).items():
        merged[name] = merged.get(name, []) + list(messages)
    return merged


class DebateInput(TypedDict):
    """What a debate starts from (Studio's input form): a topic (qa) or a source text (translation)."""

    debate_topic: NotRequired[str]  # qa mode: the question debated
    source: NotRequired[str]  # translation mode: the text to translate
    src_lng: NotRequired[str]  # its language (default: the context's source_lang)
    tgt_lng: NotRequired[str]  # the language to translate into (default: the context's target_lang)
    reference: NotRequired[str | None]  # a reference translation, kept in the record
    base_answer: NotRequired[str]  # given: the baseline agent is skipped; else generated


class DebateOutput(TypedDict, total=False):
    """What a finished debate returns."""

    record: dict[str, Any]  # the output record: answer, reason, side, prompts, players, tokens, ...
    base_answer: str
    round: int  # the last round played
    memories: dict[str, list[Message]]  # every player's conversation
    verdicts: list[dict[str, Any]]  # one per moderator round, then the judge's
    failures: list[dict[str, Any]]
    trace: list[TraceEntry]  # one entry per model call (and per human verdict)


class DebateState(DebateInput, total=False):
    start_time: str
    prompts: dict[str, str]  # the templates actually used, task fields filled in (the record's "config")
    round: int
    memories: Annotated[dict[str, list[Message]], merge_memories]
    verdicts: Annotated[list[dict[str, Any]], operator.add]  # one per moderator round, then the judge's
    halted: str | None  # why the debate stopped early (a player's call failed)
    failures: Annotated[list[dict[str, Any]], operator.add]
    trace: Annotated[list[TraceEntry], operator.add]
    record: dict[str, Any]


def debate_input(
    topic: str | None = None,
    *,
    source_text: str | None = None,
    source_lang: str | None = None,
    target_lang: str | None = None,
    reference: str | None = None,
    base_answer: str | None = None,
) -> DebateInput:
    """The input state: a debate topic (qa mode) or a source text to translate (translation mode).

    `base_answer` (the base translation, in translation mode) skips the baseline agent.
    Languages are codes ('zh') or names ('Chinese'); unset ones come from the context.
    """
    if (topic is None) == (source_text is None):
        raise ValueError("give either a debate topic or a source_text to translate")
    state: DebateInput = {}
    if topic is not None:
        state["debate_topic"] = topic
    else:
        state["source"] = source_text or ""
        if source_lang:
            state["src_lng"] = language_name(source_lang)
        if target_lang:
            state["tgt_lng"] = language_name(target_lang)
        if reference is not None:
            state["reference"] = reference
    if base_answer:
        state["base_answer"] = base_answer
    return state


# -- reading and writing state --------------------------------------------------------------------
def message(role: str, content: str) -> Message:
    return {"role": role, "content": content}


def memory_of(state: DebateState, player: str) -> list[Message]:
    return (state.get("memories") or {}).get(player, [])


def arguments(state: DebateState, player: str) -> list[str]:
    """A player's replies, one per round it spoke in."""
    return [m["content"] for m in memory_of(state, player) if m["role"] == "assistant"]


def failure(node: str, round_: int, kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A failure entry of the record: which node, which round, what kind, what happened."""
    return {"node": node, "round": round_, "kind": kind, "detail": detail[:2000], **extra}
