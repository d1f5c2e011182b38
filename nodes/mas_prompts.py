"""Prompt templates of the LatentMAS agents (latent and text variants) and the single agent.

Our wording; the roles, what each sees, and the judger's answer format follow SPEC §1.
Placeholders: {question}, {answer_instruction}, and for text agents {context} (earlier agents'
outputs as "[Planner]:\\n...\\n\\n"). Every template can be overridden per role by a mapping or a
JSON prompts file given in the context.
"""

from __future__ import annotations

import json
from pathlib import Path

LATENT_PROMPTS: dict[str, str] = {
    "planner": (
        "You are a Planner Agent. Design a clear, step-by-step plan for how to solve the question below. "
        "Keep the plan to a few concise bullet points. Do not give the final answer.\n\nQuestion: {question}"
    ),
    "critic": (
        "You are a Critic Agent. A plan for the question below is given to you in latent form. Review it "
        "and give constructive feedback: what is wrong or missing and how to fix it.\n\nQuestion: {question}"
    ),
    "refiner": (
        "You are a Refiner Agent. A plan and feedback on it are given to you in latent form. Write a "
        "refined, improved step-by-step plan for the question below. Do not give the final answer.\n\n"
        "Question: {question}"
    ),
    "judger": (
        "You are given latent information from other agents for reference, and a target question. The "
        "latent information may be irrelevant; ignore it if it does not help. Reason step by step, "
        "briefly, then answer.\n\nTarget question: {question}\n\n{answer_instruction}"
    ),
    "math": (
        "You are a mathematics expert. Solve the question below step by step with careful calculation.\n\n"
        "Question: {question}"
    ),
    "science": (
        "You are a science expert. Solve the question below step by step using the relevant scientific "
        "knowledge.\n\nQuestion: {question}"
    ),
    "code": (
        "You are a programming expert. Solve the question below step by step, as a careful programmer "
        "would reason about it.\n\nQuestion: {question}"
    ),
    "summarizer": (
        "You are the Summarizer. Three domain experts worked on the question below; their work is given to "
        "you in latent form. Combine it into one final answer, reasoning briefly.\n\nQuestion: {question}\n\n"
        "{answer_instruction}"
    ),
}

TEXT_PROMPTS: dict[str, str] = {
    "planner": LATENT_PROMPTS["planner"],
    "critic": (
        "You are a Critic Agent. Review the plan below for the question and give constructive feedback: "
        "what is wrong or missing and how to fix it.\n\nQuestion: {question}\n\n{context}"
    ),
    "refiner": (
        "You are a Refiner Agent. Given the plan and the feedback below, write a refined, improved "
        "step-by-step plan for the question. Do not give the final answer.\n\nQuestion: {question}\n\n{context}"
    ),
    "judger": (
        "Other agents worked on the target question; their outputs are below for reference and may be "
        "wrong. Reason step by step, briefly, then answer.\n\n{context}Target question: {question}\n\n"
        "{answer_instruction}"
    ),
    "math": LATENT_PROMPTS["math"],
    "science": LATENT_PROMPTS["science"],
    "code": LATENT_PROMPTS["code"],
    "summarizer": (
        "You are the Summarizer. Three domain experts worked on the question; their outputs are below. "
        "Combine them into one final answer, reasoning briefly.\n\n{context}Question: {question}\n\n"
        "{answer_instruction}"
    ),
}

BASELINE_PROMPT = "Solve the question below. Reason step by step, briefly, then answer.\n\n" \
    "Question: {question}\n\n{answer_instruction}"

SEQUENTIAL_ROLES = ("planner", "critic", "refiner", "judger")
HIERARCHICAL_ROLES = ("math", "science", "code", "summarizer")


def load_prompt_overrides(path: str | None) -> dict[str, str]:
    """Per-role templates from a JSON file {"role": "template", ...}; errors name the file."""
    if not path:
        return {}
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"prompts file {file}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"prompts file {file}: expected a JSON object mapping role names to template strings")
    return data


def fill(template: str, **fields: str) -> str:
    """Fill only the known placeholders, so literal braces in a template (e.g. \\boxed{}) survive."""
    out = template
    for name, value in fields.items():
        out = out.replace("{" + name + "}", value)
    return out
