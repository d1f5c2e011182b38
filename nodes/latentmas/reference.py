"""The `reference` preset of the LatentMAS, text-MAS and single-agent graphs: the original code's
defaults, prompt texts, question rendering and text-MAS context, for reproducing the paper's runs.

The prompt texts are those of the original LatentMAS code (Gen-Verse/LatentMAS, prompts.py),
reproduced for the reference preset in `reference_prompts.json` beside this module; the first
release's judger wording is in `reference_prompts_release.json`. Everything else here is our code.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

# run.py's defaults (and what its methods fix): 0 latent steps, no ridge realignment (the norm
# rescale still applies), sampling at 0.6/0.95 with 4096 new tokens for every text-writing agent,
# the judger decoding without any cache at 0 steps, and one system message for every agent.
REFERENCE_DEFAULTS: dict[str, Any] = {
    "latent_steps": 0,
    "latent_space_realign": False,
    "zero_step_handoff": "none",
    "max_new_tokens": 4096,
    "temperature": 0.6,
    "top_p": 0.95,
    "system_prompt": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    "record_inputs": True,
}
DEFAULTS: dict[str, Any] = {
    "latent_steps": 10,
    "latent_space_realign": True,
    "zero_step_handoff": "prompts",
    "max_new_tokens": 256,
    "temperature": 0.0,
    "top_p": 0.95,
    "system_prompt": None,
    "record_inputs": False,
}

# The prompt branches of the original, by task (its run.py accepts exactly these tasks but
# winogrande, which only its prompts and data loader know).
FAMILIES: dict[str, str] = {
    "gsm8k": "math",
    "aime2024": "math",
    "aime2025": "math",
    "arc_easy": "choice",
    "arc_challenge": "choice",
    "gpqa": "choice",
    "medqa": "choice",
    "mbppplus": "code",
    "humanevalplus": "code",
    "winogrande": "winogrande",
}

_HERE = Path(__file__).resolve().parent
RELEASE_PROMPTS_FILE = str(_HERE / "reference_prompts_release.json")

# Text MAS in the hierarchical topology labels outputs by these names (sequential: the role's).
HIERARCHICAL_LABELS = {"math": "Math Agent", "science": "Science Agent", "code": "Code Agent"}


@lru_cache(maxsize=1)
def _templates() -> dict[str, dict[str, str]]:
    data = json.loads((_HERE / "reference_prompts.json").read_text(encoding="utf-8"))
    return {kind: table for kind, table in data.items() if isinstance(table, dict)}


def prompt_kind(role: str, *, latent: bool) -> str:
    """Which of the original's prompt builders serves `role`."""
    if role == "baseline":
        return "baseline"
    topology = "hierarchical" if role in ("math", "science", "code", "summarizer") else "sequential"
    return f"{'latent' if latent else 'text'}_{topology}"


def template_keys(role: str, task: str) -> list[str]:
    """Template names for `role` on `task`, most specific first: role:task, role:family, role."""
    family = FAMILIES.get(task, "other")
    return [f"{role}:{task}", f"{role}:{family}", role]


def reference_template(role: str, task: str, *, latent: bool, overrides: dict[str, str]) -> str:
    """The original's template for `role` on `task`, unless `overrides` names one for it."""
    keys = template_keys(role, task)
    for key in keys:
        if key in overrides:
            return overrides[key]
    table = _templates()[prompt_kind(role, latent=latent)]
    for key in keys:
        if key in table:
            return table[key]
    raise ValueError(f"the original LatentMAS code has no {role} prompt for task {task!r}")


def reference_question(task_name: str, item: Any, rendered: str) -> str:
    """The question as the original's data loaders write it (`rendered` is our rendering).

    medqa: the data's `query` field when it has one (the original reads exactly that), else our
    rendering plus "\\nChoose the correct option."; ARC: "a: text" lines; winogrande: its fixed
    instruction and "1: ..." lines; MBPP+/HumanEval+: the original's code request.
    """
    options = item.options or {}
    question = item.question.strip()
    if task_name == "medqa":
        query = (item.meta or {}).get("query")
        return (
            query if isinstance(query, str) and query.strip() else f"{rendered}\nChoose the correct option."
        )
    if task_name in ("arc_easy", "arc_challenge") and options:
        return question + "\n" + "\n".join(f"{key.lower()}: {text}" for key, text in options.items())
    if task_name == "winogrande" and options:
        ask = "Pickout proper choice that fits the _ in the following sentence:"
        return f"{ask}\n{question}\n1: {options.get('1', '')}\n2: {options.get('2', '')}"
    if task_name in ("mbppplus", "humanevalplus"):
        request = (
            "Please provide a self-contained Python script that solves the following problem in a "
            "markdown code block:\n```python\nYOUR_PYTHON_CODE\n```:\n"
        )
        tests = (item.meta or {}).get("test_list")
        if task_name == "mbppplus" and isinstance(tests, list) and len(tests) >= 3:
            listed = "\n".join(str(t) for t in tests[:3])
            return f"{request}{item.question}\nYour answer will be tested on test cases like:\n{listed}\n"
        return f"{request}{item.question}\n"
    return rendered


def reference_context(outputs: list[tuple[str, str]], *, hierarchical: bool) -> str:
    """Earlier agents' outputs as the original's text-MAS context: "[Planner]:\\n...\\n\\n" blocks
    ("[Math Agent]" etc. in the hierarchical topology), less its last character (the original
    slices the context with its -1 length limit)."""
    blocks = "".join(
        f"[{HIERARCHICAL_LABELS.get(agent, agent) if hierarchical else agent.capitalize()}]:\n{text.strip()}\n\n"
        for agent, text in outputs
    )
    return blocks[:-1]
