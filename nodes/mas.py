"""LatentMAS agents as graph nodes: the latent LLM node, the judger, and the text agent.

Nodes read the model, the KV store and every option from the runtime context (`MASContext`),
never from checkpointed state. What travels in state is small: the question, the current
KV-cache *handle* (a dict), text outputs, and trace entries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.runtime import Runtime

from latent_backend import GenerationRequest, KVHandle, KVStore, RolloutRequest, get_backend, kv_store
from nodes.agent_call import TraceEntry, ask
from nodes.chat_models import ChatModelConfig, is_registered
from nodes.mas_prompts import BASELINE_PROMPT, LATENT_PROMPTS, TEXT_PROMPTS, fill, load_prompt_overrides
from storage.paths import default_db, kv_dir_for


def _describe(default: Any, description: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"description": description}, **kwargs)


@dataclass
class MASContext:
    """Options of the LatentMAS, text-MAS and single-agent graphs (LangGraph `context_schema`)."""

    task: str = _describe("gsm8k", "Task whose answer format the judger uses (gsm8k, medqa, arc_easy, ...).")
    model: str | None = _describe(
        None,
        "Local model: HF id, folder or .gguf (None: embedded SmolLM2); "
        "with base_url, the served model name (text agents only).",
    )
    base_url: str | None = _describe(
        None, "OpenAI-compatible endpoint for text agents (vLLM, llama.cpp, ...)."
    )
    topology: Literal["sequential", "hierarchical"] = _describe(
        "sequential", "sequential: planner->critic->refiner->judger; hierarchical: 3 solvers -> summarizer."
    )
    latent_steps: int = _describe(10, "Latent thoughts each non-judger agent adds (0-80).")
    latent_space_realign: bool = _describe(True, "Map hidden states back to input-embedding space (ridge).")
    think: bool = _describe(False, "Append the model's think opener to prompts (if its template has one).")
    sequential_info_only: bool = _describe(False, "Hand on only the positions the last agent added.")
    latent_only: bool = _describe(False, "Hand on only the latent positions (implies sequential_info_only).")
    zero_step_handoff: Literal["prompts", "none"] = _describe(
        "prompts",
        "At latent_steps=0, the judger reads earlier agents' prompt positions ('prompts') or "
        "decodes with no cache ('none', the reference implementation's behaviour).",
    )
    max_new_tokens: int = _describe(256, "Tokens each text-generating agent may write.")
    temperature: float = _describe(0.0, "Sampling temperature (0: greedy).")
    top_p: float = _describe(0.95, "Nucleus sampling mass (when temperature > 0).")
    seed: int = _describe(42, "Sampling seed (per row, so batching does not change samples).")
    system_prompt: str | None = _describe(
        None, "System message for every agent (None: the template's default)."
    )
    prompts: dict[str, str] | None = _describe(None, "Per-role prompt template overrides.")
    prompts_file: str | None = _describe(None, "JSON file of per-role prompt template overrides.")
    kv_dir: str | None = _describe(None, "Where KV caches are stored (None: beside the default database).")

    def __post_init__(self) -> None:
        if self.prompts is None:
            self.prompts = {}
        if not 0 <= int(self.latent_steps) <= 4096:
            raise ValueError(f"latent_steps must be between 0 and 4096, got {self.latent_steps}")
        if self.topology not in ("sequential", "hierarchical"):
            raise ValueError(f"topology must be 'sequential' or 'hierarchical', got {self.topology!r}")
        if self.zero_step_handoff not in ("prompts", "none"):
            raise ValueError(f"zero_step_handoff must be 'prompts' or 'none', got {self.zero_step_handoff!r}")

    # -- derived -------------------------------------------------------------------------
    def template(self, role: str, *, latent: bool) -> str:
        overrides = {**load_prompt_overrides(self.prompts_file), **self.prompts}
        if role in overrides:
            return overrides[role]
        if role == "baseline":
            return BASELINE_PROMPT
        return (LATENT_PROMPTS if latent else TEXT_PROMPTS)[role]

    def messages(
        self,
        role: str,
        *,
        latent: bool,
        question: str,
        context: str = "",
        answer_instruction: str | None = None,
    ) -> list[dict[str, str]]:
        from tasks import get_task

        instruction = answer_instruction or get_task(self.task).answer_instruction
        user = fill(
            self.template(role, latent=latent),
            question=question,
            context=context,
            answer_instruction=instruction,
        )
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": user}]

    @property
    def handoff(self) -> Literal["all", "sequential", "latent"]:
        if self.latent_only:
            return "latent"
        return "sequential" if self.sequential_info_only else "all"

    def kv_store(self) -> KVStore:
        return kv_store(self.kv_dir or kv_dir_for(default_db()))

    def chat_config(self) -> ChatModelConfig:
        if self.base_url or is_registered(self.model):
            model = self.model or "default"
        else:
            model = f"local:{self.model}" if self.model else "local"
        return ChatModelConfig(
            model=model,
            base_url=self.base_url,
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
        )


def thread_namespace() -> str:
    """KV entries are filed under the graph thread, so deleting the thread frees them."""
    try:
        return str(get_config()["configurable"].get("thread_id") or "unthreaded")
    except RuntimeError:
        return "unthreaded"


ROLE_ORDER = ("planner", "critic", "refiner", "math", "science", "code")


def text_context(outputs: list[dict[str, str]]) -> str:
    """Earlier agents' outputs as the text-MAS context block: "[Planner]:\\n...\\n\\n".

    Sorted by role, because parallel branches may finish in any order.
    """
    ordered = sorted(outputs, key=lambda o: ROLE_ORDER.index(o["agent"]) if o["agent"] in ROLE_ORDER else 99)
    return "".join(f"[{o['agent'].capitalize()}]:\n{o['text']}\n\n" for o in ordered)


def extract_answer(task: str, text: str) -> str | None:
    """The answer the task's grader reads from `text` (None when there is none)."""
    from tasks import TaskItem, get_task

    return get_task(task).grade(TaskItem(id="-", question="", gold=None), text).prediction


# -- node factories ------------------------------------------------------------------------------
def latent_agent(agent: str):
    """A latent (non-judger) agent: prompt + latent thoughts on top of the incoming KV handle."""

    def node(state: dict[str, Any], runtime: Runtime[MASContext]) -> dict[str, Any]:
        ctx = runtime.context
        backend = get_backend(ctx.model)
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
            ),
            ctx.kv_store(),
        )
        entry = TraceEntry(
            agent=agent,
            role=agent,
            prompt_tokens=result.prompt_tokens,
            generated_tokens=0,
            seconds=round(time.perf_counter() - started, 4),
            latent_steps=result.latent_steps,
            kv_positions=result.handle["positions"],
        )
        return {"kv": result.handle, "trace": [entry]}

    node.__name__ = agent
    return node


def latent_judger(agent: str = "judger"):
    """The judger: decodes the final answer in text on top of the accumulated KV handle."""

    def node(state: dict[str, Any], runtime: Runtime[MASContext]) -> dict[str, Any]:
        ctx = runtime.context
        backend = get_backend(ctx.model)
        handle: KVHandle | None = state.get("kv")
        if ctx.latent_steps == 0 and ctx.zero_step_handoff == "none":
            handle = None
        started = time.perf_counter()
        result = backend.submit_generate(
            GenerationRequest(
                messages=ctx.messages(
                    agent,
                    latent=True,
                    question=state["question"],
                    answer_instruction=state.get("answer_instruction"),
                ),
                max_new_tokens=ctx.max_new_tokens,
                temperature=ctx.temperature,
                top_p=ctx.top_p,
                seed=ctx.seed,
                kv=handle,
                think=ctx.think,
            ),
            ctx.kv_store(),
        )
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
        return {"text": result.text, "answer": extract_answer(ctx.task, result.text), "trace": [entry]}

    node.__name__ = agent
    return node


def text_agent(agent: str, *, final: bool = False):
    """A text-MAS agent: writes text that later agents read as "[Agent]:\\n..." context."""

    def node(state: dict[str, Any], runtime: Runtime[MASContext]) -> dict[str, Any]:
        ctx = runtime.context
        context = text_context(state.get("outputs") or [])
        role = "baseline" if agent == "baseline" else agent
        messages = ctx.messages(
            role,
            latent=False,
            question=state["question"],
            context=context,
            answer_instruction=state.get("answer_instruction"),
        )
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        reply = ask(ctx.chat_config(), _lc_messages(system, messages[-1]["content"]), agent=agent, role=role)
        if final:
            return {
                "text": reply.text,
                "answer": extract_answer(ctx.task, reply.text),
                "trace": [reply.trace],
            }
        return {"outputs": [{"agent": agent, "text": reply.text}], "trace": [reply.trace]}

    node.__name__ = agent
    return node


def _lc_messages(system: str | None, user: str):
    from langchain_core.messages import HumanMessage, SystemMessage

    return [*([SystemMessage(system)] if system else []), HumanMessage(user)]
