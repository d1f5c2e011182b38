"""text_mas and baseline graph logic with a scripted fake chat model (no real model)."""

from graphs.baseline import build_graph as build_baseline
from graphs.text_mas import build_graph
from nodes.chat_models import register_chat_model
from nodes.latentmas.context import MASContext
from tests.fakes import ScriptedChatModel


def user_prompts(model: ScriptedChatModel) -> list[str]:
    return [call[-1].content for call in model.calls]


def test_sequential_agents_read_earlier_outputs_as_text_context():
    model = ScriptedChatModel(["plan-text", "critique-text", "refined-text", "The answer is \\boxed{7}."])
    register_chat_model("fake-seq", model)
    state = (
        build_graph()
        .compile()
        .invoke({"question": "3 + 4?"}, context=MASContext(model="fake-seq", task="gsm8k"))
    )
    prompts = user_prompts(model)
    assert "[Planner]" not in prompts[0]
    assert "[Planner]:\nplan-text\n\n" in prompts[1]
    assert "[Planner]:\nplan-text\n\n[Critic]:\ncritique-text\n\n" in prompts[2]
    assert "[Refiner]:\nrefined-text" in prompts[3] and "\\boxed{}" in prompts[3]
    assert state["answer"] == "7"
    assert [e["agent"] for e in state["trace"]] == ["planner", "critic", "refiner", "judger"]


def test_hierarchical_solvers_run_in_parallel_then_the_summarizer_reads_all_three():
    def reply(messages):
        text = messages[-1].content
        for role in ("mathematics", "science", "programming"):
            if f"a {role} expert" in text:
                return f"{role}-work"
        return "\\boxed{2}"

    model = ScriptedChatModel(reply)
    register_chat_model("fake-hier", model)
    state = (
        build_graph()
        .compile()
        .invoke(
            {"question": "1 + 1?"},
            context=MASContext(model="fake-hier", task="gsm8k", topology="hierarchical"),
        )
    )
    summarizer_prompt = user_prompts(model)[-1]
    assert (
        summarizer_prompt.index("[Math]:\nmathematics-work")
        < summarizer_prompt.index("[Science]:\nscience-work")
        < summarizer_prompt.index("[Code]:\nprogramming-work")
    )
    assert {e["agent"] for e in state["trace"][:3]} == {"math", "science", "code"}
    assert state["answer"] == "2"


def test_baseline_is_one_call_in_the_task_format():
    model = ScriptedChatModel(["So it is \\boxed{B}."])
    register_chat_model("fake-base", model)
    state = (
        build_baseline()
        .compile()
        .invoke({"question": "Pick one.\nA. x\nB. y"}, context=MASContext(model="fake-base", task="arc_easy"))
    )
    assert len(model.calls) == 1 and state["answer"] == "B"


def test_prompts_file_overrides_a_role_and_a_bad_file_is_named(tmp_path):
    import json

    import pytest

    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"planner": "CUSTOM PLAN PROMPT for {question}"}))
    context = MASContext(task="gsm8k", prompts_file=str(prompts))
    assert (
        context.messages("planner", latent=False, question="2+2?")[-1]["content"]
        == "CUSTOM PLAN PROMPT for 2+2?"
    )
    assert "Critic Agent" in context.messages("critic", latent=False, question="2+2?")[-1]["content"]
    prompts.write_text("{not json")
    with pytest.raises(ValueError, match="prompts.json"):
        MASContext(task="gsm8k", prompts_file=str(prompts)).messages("planner", latent=False, question="q")


def test_each_item_of_a_mixed_set_gets_its_own_answer_instruction():
    from runners.methods import get_method
    from tasks import TaskItem, get_task

    method, mixed = get_method("baseline"), get_task("mixed")

    model = ScriptedChatModel(lambda messages: "\\boxed{C}")
    register_chat_model("fake-mixed", model)
    choice = TaskItem(
        id="c",
        question="Which can fly?",
        gold="C",
        options={"A": "dog", "B": "fish", "C": "bird"},
        meta={"task": "arc_easy"},
    )
    number = TaskItem(id="n", question="2 + 3?", gold="5", meta={"task": "gsm8k"})
    graph = build_baseline().compile()
    for item in (choice, number):
        state = graph.invoke(
            method.make_input(item, mixed),
            context=MASContext(model="fake-mixed", task="mixed"),
        )
        assert get_task(item.meta["task"]).answer_instruction in model.calls[-1][-1].content
        assert state["text"] == "\\boxed{C}"
    assert method.outcome(choice, {"text": "\\boxed{C}"}, mixed).correct
