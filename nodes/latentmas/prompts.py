"""Prompt templates of the LatentMAS agents (latent and text variants) and the single agent.

Our wording; the roles, what each sees, and the judger's answer format follow the LatentMAS paper.
Placeholders: {question}, {answer_instruction}, and for text agents {context} (earlier agents'
outputs as "[Planner]:\\n...\\n\\n"). Every template can be overridden per role by a mapping or a
JSON prompts file given in the context.
"""

from __future__ import annotations

LATENT_PROMPTS: dict[str, str] = {
    "planner": (
        "You are a Planner Agent. Design a clear, step-by-step plan for how to solve the question below. "
        "Keep the plan concise, with a few bullet points for each step. Do not give the final answer.\n\n"
        "Question: {question}\n\nNow write your plan."
    ),
    "critic": (
        "You are a Critic Agent. A plan for the question below is given to you in latent form. Check it for "
        "correctness and completeness and give helpful feedback for improving it.\n\n"
        "Question: {question}\n\n"
        "Answer in this format:\nOriginal plan: [restate the plan you were given]\n"
        "Feedback: [your detailed feedback]"
    ),
    "refiner": (
        "You are a Refiner Agent. You are given, in latent form, a plan and feedback on it; in text, the "
        "question. Write a refined, improved step-by-step plan. Make sure it is correct and concise; do not "
        "give the final answer.\n\nQuestion: {question}\n\nAnswer in this format:\nRefined plan: [your plan]"
    ),
    "judger": (
        "Target question: {question}\n\nYou are given latent information from other agents for reference. "
        "It may be irrelevant; ignore it if it does not help. Reason step by step about the target question, "
        "without unrelated content.\n\n{answer_instruction}"
    ),
    "math": (
        "You are a mathematics expert. Solve the question below, reasoning step by step with careful "
        "calculation.\n\nQuestion: {question}\n\n{answer_instruction}"
    ),
    "science": (
        "You are a science expert. Solve the question below, reasoning step by step with the relevant "
        "scientific knowledge.\n\nQuestion: {question}\n\n{answer_instruction}"
    ),
    "code": (
        "You are a programming expert. Solve the question below, reasoning step by step as a careful "
        "programmer would.\n\nQuestion: {question}\n\n{answer_instruction}"
    ),
    "summarizer": (
        "You are the Summarizer. Three domain experts worked on the question below; their work is given to "
        "you in latent form for reference. Reason step by step and give one final answer.\n\n"
        "Question: {question}\n\n{answer_instruction}"
    ),
}

TEXT_PROMPTS: dict[str, str] = {
    "planner": LATENT_PROMPTS["planner"],
    "critic": (
        "You are a Critic Agent. You are given the question and a Planner Agent's plan in text. Check the "
        "plan for correctness and completeness and give helpful feedback for improving it.\n\n"
        "Question: {question}\n\n{context}"
        "Answer in this format:\nOriginal plan: [restate the plan you were given]\n"
        "Feedback: [your detailed feedback]"
    ),
    "refiner": (
        "You are a Refiner Agent. You are given the question, a plan and feedback on it, in text. Write a "
        "refined, improved step-by-step plan. Make sure it is correct and concise; do not give the final "
        "answer.\n\nQuestion: {question}\n\n{context}Answer in this format:\nRefined plan: [your plan]"
    ),
    "judger": (
        "Target question: {question}\n\nOther agents' outputs are given below for reference; they may be "
        "wrong. Reason step by step about the target question, without unrelated content.\n\n{context}"
        "{answer_instruction}"
    ),
    "math": LATENT_PROMPTS["math"],
    "science": LATENT_PROMPTS["science"],
    "code": LATENT_PROMPTS["code"],
    "summarizer": (
        "You are the Summarizer. Three domain experts worked on the question; their outputs are below for "
        "reference. Reason step by step and give one final answer.\n\n{context}Question: {question}\n\n"
        "{answer_instruction}"
    ),
}

BASELINE_PROMPT = (
    "Solve the question below. Reason step by step, then answer.\n\n"
    "Question: {question}\n\n{answer_instruction}"
)

SEQUENTIAL_ROLES = ("planner", "critic", "refiner", "judger")
HIERARCHICAL_ROLES = ("math", "science", "code", "summarizer")


def fill(template: str, **fields: str) -> str:
    """Fill only the known placeholders, so literal braces in a template (e.g. \\boxed{}) survive."""
    out = template
    for name, value in fields.items():
        out = out.replace("{" + name + "}", value)
    return out
