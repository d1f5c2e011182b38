"""LatentMAS `preset="reference"`: the original code's exact messages for sample items (expected strings
in tests/data/reference/latentmas.json, produced by running the original prompt builders), its
question rendering, its text-MAS context, and its defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphs.baseline import build_graph as build_baseline
from graphs.text_mas import build_graph as build_text_mas
from nodes.chat_models import register_chat_model
from nodes.fields import OptionError
from nodes.latentmas.context import MASContext
from nodes.latentmas.reference import RELEASE_PROMPTS_FILE
from runners.methods.latentmas import LATENT_MAS
from tasks import get_task, load_items, sample_path
from tests.fakes import ScriptedChatModel

EXAMPLES = json.loads(
    (Path(__file__).parents[2] / "data" / "reference" / "latentmas.json").read_text(encoding="utf-8")
)
MEDQA_QUERY = (
    EXAMPLES["latent_mas/sequential/medqa/release"]["judger"]["messages"][1]["content"]
    .split("Target Question: ", 1)[1]
    .split("\n\nYou are a helpful", 1)[0]
)
GSM8K_QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
QUESTIONS = {"medqa": MEDQA_QUERY, "gsm8k": GSM8K_QUESTION}
HIERARCHICAL = {"planner": "math", "critic": "science", "refiner": "code", "judger": "summarizer"}


@pytest.mark.parametrize("task", ["medqa", "gsm8k"])
@pytest.mark.parametrize("topology", ["sequential", "hierarchical"])
@pytest.mark.parametrize("variant", ["1076b0f", "release"])
def test_latent_agents_send_the_originals_messages(task, topology, variant):
    prompts_file = RELEASE_PROMPTS_FILE if variant == "release" else None
    ctx = MASContext(preset="reference", task=task, topology=topology, prompts_file=prompts_file)
    for role, expected in EXAMPLES[f"latent_mas/{topology}/{task}/{variant}"].items():
        ours = role if topology == "sequential" else HIERARCHICAL[role]
        assert ctx.messages(ours, latent=True, question=QUESTIONS[task]) == expected["messages"], role


@pytest.mark.parametrize("task", ["medqa", "gsm8k"])
def test_single_agent_sends_the_originals_messages(task):
    ctx = MASContext(preset="reference", task=task)
    assert (
        ctx.messages("baseline", latent=False, question=QUESTIONS[task])
        == (EXAMPLES[f"baseline/{task}/1076b0f"]["messages"])
    )


@pytest.mark.parametrize(
    ("topology", "replies"),
    [
        (
            "sequential",
            {
                "Planner Agent": "Planner Agent's Output:\n- Identify the disease from the colonoscopy "
                "findings.\n- Recall its long-term complications.",
                "Critic Agent": "Critic Agent's Output:\nOriginal Plan: identify disease, recall "
                "complications.\nFeedback: Plan is fine.",
                "Refiner Agent": "Refiner Agent's Output:\n1. Bloody diarrhea + continuous rectal "
                "ulceration + pseudopolyps = ulcerative colitis.\n2. Its major long-term risk is "
                "colorectal cancer.",
            },
        ),
        ("hierarchical", {}),
    ],
)
def test_text_mas_sends_the_originals_messages_with_its_context(topology, replies):
    def reply(messages):
        text = messages[-1].content
        opening = text.lstrip("\n").split(".", 1)[0]  # "You are a Planner Agent"
        return next((r for name, r in replies.items() if name in opening), "The answer is \\boxed{C}.")

    model = ScriptedChatModel(reply)
    register_chat_model("fake-reference-text", model)
    ctx = MASContext(preset="reference", task="medqa", topology=topology, model="fake-reference-text")
    state = build_text_mas().compile().invoke({"question": MEDQA_QUERY}, context=ctx)
    sent = {call[-1].content: [{"role": "system", "content": call[0].content}] for call in model.calls}
    expected = EXAMPLES[f"text_mas/{topology}/medqa"]
    for role, example in expected.items():
        system, user = example["messages"]
        assert user["content"] in sent, role  # every agent's message, byte for byte
        assert sent[user["content"]] == [system]
    assert len(model.calls) == 4
    assert state["answer"] == "c"  # reference grading reads the box the original's way


def test_reference_question_is_the_datas_query_field():
    items = load_items(sample_path("medqa_latentmas_sample.json"), task="medqa")
    records = json.loads(Path(sample_path("medqa_latentmas_sample.json")).read_text(encoding="utf-8"))
    ctx = MASContext(preset="reference", task="medqa")
    task = get_task("medqa")
    for item, record in zip(items, records, strict=True):
        assert LATENT_MAS.make_input(item, task, ctx)["question"] == record["query"]
    assert items[0].meta["query"] == MEDQA_QUERY
    # Without a query field: our rendering plus the original's suffix.
    bare = items[0].__class__(id="x", question=items[0].question, gold="C", options=items[0].options)
    assert LATENT_MAS.make_input(bare, task, ctx)["question"] == MEDQA_QUERY
    assert LATENT_MAS.make_input(bare, task, MASContext(task="medqa"))["question"] == task.prompt(bare)


def test_reference_defaults_and_what_explicit_options_override():
    ref = MASContext(preset="reference", task="medqa")
    assert (ref.latent_steps, ref.latent_space_realign, ref.zero_step_handoff) == (0, False, "none")
    assert (ref.max_new_tokens, ref.temperature, ref.top_p, ref.top_k, ref.seed) == (
        4096,
        0.6,
        0.95,
        None,
        42,
    )
    assert ref.system_prompt == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    assert ref.grading_rules == "reference"
    default = MASContext(task="medqa")
    assert (default.latent_steps, default.latent_space_realign, default.zero_step_handoff) == (
        10,
        True,
        "prompts",
    )
    assert (default.max_new_tokens, default.temperature, default.system_prompt) == (256, 0.0, None)
    assert default.grading_rules == "lenient"
    tuned = MASContext(preset="reference", task="medqa", latent_steps=20, grading="lenient", temperature=0.0)
    assert (tuned.latent_steps, tuned.grading_rules, tuned.temperature) == (20, "lenient", 0.0)


def test_reference_preset_refuses_tasks_the_original_has_no_prompts_for():
    with pytest.raises(OptionError, match="no prompts for task 'medmcqa'"):
        MASContext(preset="reference", task="medmcqa")
    with pytest.raises(OptionError, match="unknown prompt role"):
        MASContext(prompts={"judger:nope": "x"})
    ctx = MASContext(preset="reference", task="medqa", prompts={"judger:medqa": "Q: {question}"})
    assert ctx.messages("judger", latent=True, question="x")[-1]["content"] == "Q: x"


def test_baseline_graph_grades_with_the_reference_rules():
    model = ScriptedChatModel(["So the answer is \\boxed{\\text{C}}."])
    register_chat_model("fake-reference-baseline", model)
    ctx = MASContext(preset="reference", task="medqa", model="fake-reference-baseline")
    state = build_baseline().compile().invoke({"question": MEDQA_QUERY}, context=ctx)
    assert state["answer"] == "\\text{c"  # the original's reading; lenient would say "C"
    assert model.calls[0][-1].content == EXAMPLES["baseline/medqa/1076b0f"]["messages"][1]["content"]


@pytest.mark.model
def test_latent_run_records_each_agents_rendered_input_and_ids(backend):
    """The embedded model renders the reference messages; each agent keeps its input and ids, and at
    0 latent steps the judger reads no cache (the original drops it)."""
    from graphs.latent_mas import build_graph

    ctx = MASContext(preset="reference", task="gsm8k", max_new_tokens=4, temperature=0.0)
    state = build_graph().compile().invoke({"question": GSM8K_QUESTION}, context=ctx)
    expected = EXAMPLES["latent_mas/sequential/gsm8k/1076b0f"]
    for entry in state["trace"]:
        messages = expected[entry["role"]]["messages"]
        assert entry["input"] == backend.render_text(messages)
        assert backend.tokenize(entry["input"]) == backend.render(messages) and "input_ids" not in entry
    judger = state["trace"][-1]
    assert judger["role"] == "judger" and judger["kv_positions"] == 0


def test_the_default_preset_keeps_no_rendered_inputs_in_checkpointed_state(backend):
    """Inputs are the reference preset's record; by default they stay out of the trace (and so of
    every checkpoint), and asking for them brings them back."""
    from graphs.latent_mas import build_graph

    graph = build_graph().compile()
    plain = graph.invoke({"question": GSM8K_QUESTION}, context=MASContext(task="gsm8k", max_new_tokens=4))
    kept = graph.invoke(
        {"question": GSM8K_QUESTION}, context=MASContext(task="gsm8k", max_new_tokens=4, record_inputs=True)
    )
    assert [e["agent"] for e in plain["trace"]] == ["planner", "critic", "refiner", "judger"]
    assert not any("input" in entry for entry in plain["trace"])
    assert all(entry["input"] for entry in kept["trace"])
