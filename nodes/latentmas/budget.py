"""Whether a LatentMAS chain fits the model's context, checked before any agent runs.

Each latent agent reads its prompt on top of the cache handed to it and adds `latent_steps`
positions; the final agent reads its prompt and writes up to `max_new_tokens`. The positions every
agent needs are known from the prompts alone, so a chain that cannot fit (e.g. 3 agents x 4096
latent steps in an 8192-position model) is refused before the first agent spends minutes on it.
The arithmetic mirrors the backend's own per-call check (cached + prompt + new positions).
"""

from __future__ import annotations

from typing import Any

from latent_backend.errors import PromptError
from nodes.fields import OptionError
from nodes.latentmas.context import MASContext

LATENT_AGENTS = {"sequential": ("planner", "critic", "refiner"), "hierarchical": ("math", "science", "code")}
FINAL_AGENT = {"sequential": "judger", "hierarchical": "summarizer"}


def chain_positions(ctx: MASContext, prompts: list[int], final_prompt: int, steps: int) -> int:
    """The most positions any agent of the chain needs (cached + its prompt + what it adds)."""
    cached = need = 0
    for prompt in prompts:
        need = max(need, cached + prompt + steps)
        added = prompt + steps
        cached = {"all": cached + added, "sequential": added, "latent": steps}[ctx.handoff]
    if steps == 0 and ctx.zero_step_handoff == "none":
        cached = 0
    return max(need, cached + final_prompt + ctx.max_new_tokens)


def check_chain(ctx: MASContext, backend: Any, question: str, answer_instruction: str | None = None) -> None:
    """Refuse a chain that cannot fit: OptionError (latent_steps) when fewer steps would fit,
    PromptError when even no latent step would (the prompts and max_new_tokens alone are too long)."""
    agents = LATENT_AGENTS[ctx.topology]

    def tokens(agent: str) -> int:
        messages = ctx.messages(agent, latent=True, question=question, answer_instruction=answer_instruction)
        return len(backend.render(messages, think=ctx.think))

    prompts = [tokens(agent) for agent in agents]
    final = tokens(FINAL_AGENT[ctx.topology])
    limit = backend.max_positions
    need = chain_positions(ctx, prompts, final, ctx.latent_steps)
    if need <= limit:
        return
    if chain_positions(ctx, prompts, final, 0) > limit:
        raise PromptError(
            f"prompt too long for {backend.model_id}: the agents' prompts ({sum(prompts) + final} tokens) "
            f"and max_new_tokens {ctx.max_new_tokens} need {chain_positions(ctx, prompts, final, 0)} "
            f"positions > context length {limit}"
        )
    low, high = 0, ctx.latent_steps  # the largest step count that fits: low fits, high does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if chain_positions(ctx, prompts, final, middle) <= limit else (low, middle)
    raise OptionError(
        "latent_steps",
        f"{len(agents)} latent agents x {ctx.latent_steps} latent steps need {need} positions, more than "
        f"{backend.model_id}'s context of {limit} (prompts {sum(prompts) + final} tokens, "
        f"max_new_tokens {ctx.max_new_tokens}); at most {low} latent steps fit",
    )
