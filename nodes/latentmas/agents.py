"""LatentMAS agents as graph nodes: the latent LLM node, the judger, and the text agent.

Nodes read the model, the KV store and every option from the runtime context (`MASContext`),
never from checkpointed state. What travels in state is small: the question, the current
KV-cache *handle* (a dict), text outputs, and trace entries.

With `structured_output="auto"`, the answering agent (the judger, the final text agent) decodes
under `answer_shape`: any text ending in `\\boxed{<answer pattern>}`, switching to the box when
`answer_reserve` tokens are left, so a long reasoning reply still ends with an answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_config, get_stream_writer
from langgraph.runtime import Runtime

from latent_backend import GenerationRequest, KVHandle, KVStore, RolloutRequest, get_backend
from latent_backend.grammar_spec import GrammarSpec
from latent_backend.streaming import Relay, TextDeltas
from nodes.agent_call import AgentReply, TraceEntry, ask
from nodes.fields import context_of
from nodes.latentmas.budget import check_chain
from nodes.latentmas.context import MASContext
from nodes.latentmas.reference import reference_context
from nodes.structured import ask_structured
from storage.paths import KV_DIR_CONFIG_KEY


def stream_writer() -> Callable[[Any], None]:
    """LangGraph's custom stream of the running node (a no-op unless the caller streams "custom")."""
    try:
        return get_stream_writer()
    except RuntimeError:  # outside a graph run
        return lambda _event: None


def _configurable() -> dict[str, Any]:
    try:
        return get_config()["configurable"]
    except RuntimeError:  # called outside a graph run
        return {}


def thread_namespace() -> str:
    """KV entries are filed under the graph thread, so deleting the thread frees them."""
    return str(_configurable().get("thread_id") or "unthreaded")


def kv_store_of(ctx: MASContext) -> KVStore:
    """The KV store beside the database this graph checkpoints to (see compile_with_saver)."""
    return ctx.kv_store(_configurable().get(KV_DIR_CONFIG_KEY))


ROLE_ORDER = ("planner", "critic", "refiner", "math", "science", "code")


def text_context(outputs: list[dict[str, str]], *, reference: bool = False) -> str:
    """Earlier agents' outputs as the text-MAS context block: "[Planner]:\\n...\\n\\n"
    (the reference preset: the original's labels and slicing, see `reference_context`).

    Sorted by role, because parallel branches may finish in any order.
    """
    ordered = sorted(outputs, key=lambda o: ROLE_ORDER.index(o["agent"]) if o["agent"] in ROLE_ORDER else 99)
    if reference:
        hierarchical = any(o["agent"] in ("math", "science", "code") for o in ordered)
        return reference_context([(o["agent"], o["text"]) for o in ordered], hierarchical=hierarchical)
    return "".join(f"[{o['agent'].capitalize()}]:\n{o['text']}\n\n" for o in ordered)


def extract_answer(ctx: MASContext, text: str) -> str | None:
    """The answer the task's grader reads from `text` (None when there is none), by the run's
    grading rules."""
    from tasks import TaskItem, get_task

    task = get_task(ctx.task, grading=ctx.grading_rules)
    return task.grade(TaskItem(id="-", question="", gold=None), text).prediction


def answer_shape(ctx: MASContext, state: dict[str, Any]) -> GrammarSpec | None:
    """The answer format as a grammar when structured output is on and the task boxes its answers."""
    if ctx.structured_output == "off":
        return None
    if "answer_pattern" in state:
        pattern = state["answer_pattern"]
    else:
        from tasks import get_task

        pattern = get_task(ctx.task).answer_pattern()
    if pattern is None:
        return None
    box = rf"\\boxed\{{({pattern})\}}"
    return GrammarSpec.regex(rf"[\s\S]*{box}").with_tail(GrammarSpec.regex(rf"\s*{box}"), ctx.answer_reserve)


# -- node factories ------------------------------------------------------------------------------
def latent_agent(agent: str):
    """A latent (non-judger) agent: prompt + latent thoughts on top of the incoming KV handle."""

    def node(state: dict[str, Any], runtime: Runtime[MASContext]) -> dict[str, Any]:
        ctx = context_of(runtime, MASContext)
        backend = get_backend(ctx.model, ctx.backend)
        if state.get("kv") is None:  # the chain's first agent: refuse a chain that cannot fit, now
            check_chain(ctx, backend, state["question"], state.get("answer_instruction"))
        writer = stream_writer()

        def progress(step: int, steps: int, positions: int) -> None:
            writer({"agent": agent, "latent_step": step, "latent_steps": steps, "kv_positions": positions})

        started = time.perf_counter()
        result = backend.submit_rollout(
            RolloutRequest(
                messages=ctx.messages(
                    agent,
                    latent=True,
                    question=state["question"],
                    answer_instruction=state.get("answer_instruction"),
                ),
                namespace=thread_namespace(),
                kv=state.get("kv"),
                latent_steps=ctx.latent_steps,
                realign=ctx.latent_space_realign,
                think=ctx.think,
                handoff=ctx.handoff,
                persist=ctx.kv_persistence == "disk",
                on_step=progress,
            ),
            kv_store_of(ctx),
        )
        entry = TraceEntry(
            agent=agent,
            role=agent,
            prompt_tokens=result.prompt_tokens,
            generated_tokens=0,
            seconds=round(time.perf_counter() - started, 4),
            latent_steps=result.latent_steps,
            kv_positions=result.handle["positions"],
            output="",
        )
        if ctx.record_inputs:
            entry["input"] = result.prompt_text or ""
        return {"kv": result.handle, "trace": [entry]}

    node.__name__ = agent
    return node


def latent_judger(agent: str = "judger"):
    """The judger: decodes the final answer in text on top of the accumulated KV handle."""

    def node(state: dict[str, Any], runtime: Runtime[MASContext]) -> dict[str, Any]:
        ctx = context_of(runtime, MASContext)
        backend = get_backend(ctx.model, ctx.backend)
        handle: KVHandle | None = state.get("kv")
        if ctx.latent_steps == 0 and ctx.zero_step_handoff == "none":
            handle = None
        grammar = answer_shape(ctx, state)
        started = time.perf_counter()
        request = GenerationRequest(
            messages=ctx.messages(
                agent,
                latent=True,
                question=state["question"],
                answer_instruction=state.get("answer_instruction"),
            ),
            max_new_tokens=ctx.max_new_tokens,
            temperature=ctx.temperature,
            top_p=ctx.top_p,
            top_k=ctx.top_k,
            seed=ctx.seed,
            kv=handle,
            think=ctx.think,
            grammar=grammar,
        )
        result = _generate_streaming(backend, request, kv_store_of(ctx), agent)
        entry = TraceEntry(
            agent=agent,
            role="judger",
            prompt_tokens=result.prompt_tokens,
            generated_tokens=result.generated_tokens,
            seconds=round(time.perf_counter() - started, 4),
            latent_steps=0,
            kv_positions=result.kv_positions,
            output=result.text,
        )
        if ctx.record_inputs:
            entry["input"] = result.prompt_text or ""
        if grammar is not None:
            entry["structured"] = "grammar"
        return {"text": result.text, "answer": extract_answer(ctx, result.text), "trace": [entry]}

    node.__name__ = agent
    return node


def _generate_streaming(backend: Any, request: GenerationRequest, store: Any, agent: str) -> Any:
    """Decode through the backend; the text goes out on the custom stream as it is written."""
    writer = stream_writer()
    relay = Relay(lambda emit: backend.submit_generate(replace(request, on_token=emit), store))
    deltas = TextDeltas(backend.decode, request.stop)
    for token in relay:
        if piece := deltas.push(token):
            writer({"agent": agent, "text": piece})
    return relay.result


def text_agent(agent: str, *, final: bool = False):
    """A text-MAS agent: writes text that later agents read as "[Agent]:\\n..." context."""

    def node(state: dict[str, Any], runtime: Runtime[MASContext]) -> dict[str, Any]:
        ctx = context_of(runtime, MASContext)
        context = text_context(state.get("outputs") or [], reference=ctx.preset == "reference")
        role = "baseline" if agent == "baseline" else agent
        messages = ctx.messages(
            role,
            latent=False,
            question=state["question"],
            context=context,
            answer_instruction=state.get("answer_instruction"),
        )
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        chat = _lc_messages(system, messages[-1]["content"])
        shape = answer_shape(ctx, state) if final else None
        if shape is None:
            reply = ask(ctx.chat_config(), chat, agent=agent, role=role, record_input=bool(ctx.record_inputs))
        else:
            shaped = ask_structured(ctx.chat_config(), chat, shape, agent=agent, role=role)
            text = shaped.value if isinstance(shaped.value, str) else shaped.text
            reply = AgentReply(text=text, trace=shaped.trace)
        if final:
            return {
                "text": reply.text,
                "answer": extract_answer(ctx, reply.text),
                "trace": [reply.trace],
            }
        return {"outputs": [{"agent": agent, "text": reply.text}], "trace": [reply.trace]}

    node.__name__ = agent
    return node


def _lc_messages(system: str | None, user: str) -> list[BaseMessage]:
    return [*([SystemMessage(system)] if system else []), HumanMessage(user)]
