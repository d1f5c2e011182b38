"""MedAgents (ACL 2024 Findings): medical experts in collaboration, as a LangGraph state graph.

The figure (SPEC §2), top to bottom as wired in `build_graph()`:

    START -> question_domains -> option_domains             (1-2 expert gathering)
          -> question_analysis x5 (Send) -> merge_question_analyses   (3, parallel)
          -> option_analysis x2 (Send)   -> merge_option_analyses     (4, parallel)
          -> synthesis                                      (5 report summarization)
          -> vote x7 (Send) -> tally_votes                  (6 consultation, repeated while
             -> advice x(non-yes) (Send) -> revision -> vote   someone disagrees and attempts remain)
          -> decision -> END
    base_direct / base_cot: START -> direct_answer | cot_answer -> END
    anal_only: after stage 4 straight to decision; syn_only: after stage 5.

Calls for syn_verif when everyone agrees at once: 2 + 5 + 2 + 1 + 7 + 1 = 18. Each consultation
round that has k dissenters adds k advice calls and one revision call; the next vote is 7 more.
Configuration is the `MedAgentsContext` (context_schema): never module globals.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, get_args

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy, Send

# pydantic, which builds Studio's input/output schemas, refuses typing.TypedDict on Python 3.11.
from typing_extensions import TypedDict

from nodes.agent_call import AgentReply, TraceEntry, ask, is_transient
from nodes.chat_models import ChatModelConfig
from nodes.medagents import (
    build_report,
    check_prompt_overrides,
    clean_advice,
    domain_format,
    format_options,
    parse_answer_letter,
    parse_domains,
    parse_report,
    parse_vote,
    render,
)
from runners.methods import Outcome
from tasks.base import TaskItem

# ============================================================ configuration

Method = Literal["base_direct", "base_cot", "anal_only", "syn_only", "syn_verif"]
Preset = Literal["original", "paper"]
METHODS: tuple[str, ...] = get_args(Method)

# The original code ran temperature 0 and 3 attempts; the paper reports temperature 1.0, 5 attempts.
PRESETS: dict[str, dict[str, Any]] = {
    "original": {"temperature": 0.0, "max_attempts": 3},
    "paper": {"temperature": 1.0, "max_attempts": 5},
}

# Agent roles, each of which may be served by its own model (`role_models`, `role_base_urls`).
ROLES: tuple[str, ...] = (
    "classifier",
    "question_expert",
    "option_expert",
    "synthesizer",
    "voter",
    "reviser",
    "decider",
)


def _described(default: Any, description: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"description": description}, **kwargs)


def _described_factory(factory: Any, description: str) -> Any:
    return field(default_factory=factory, metadata={"description": description})


@dataclass(frozen=True)
class MedAgentsContext:
    """Run configuration of a MedAgents graph (LangGraph `context_schema`; never checkpointed)."""

    method: Method = _described(
        "syn_verif",
        "base_direct | base_cot | anal_only (stages 1-4) | syn_only (1-5) | syn_verif (1-6, the full method)",
    )
    preset: Preset = _described(
        "original",
        "Defaults for temperature and max_attempts: 'original' (code: 0.0, 3) or "
        "'paper' (1.0, 5). Explicit values win over the preset.",
    )
    num_question_domains: int = _described(5, "Question experts gathered in stage 1.")
    num_option_domains: int = _described(2, "Option experts gathered in stage 2.")
    max_attempts: int | None = _described(
        None, "Consultation rounds (vote, advice, revision) at most; None = the preset's."
    )
    temperature: float | None = _described(None, "Sampling temperature; None = the preset's.")
    top_p: float = _described(1.0, "Nucleus sampling mass.")
    seed: int | None = _described(42, "Sampling seed passed to the model (None = unseeded).")
    model: str = _described(
        "local",
        "Chat model for every role: 'local', 'local:<ref>', a served model name with "
        "base_url, or a name registered with nodes.chat_models.register_chat_model.",
    )
    base_url: str | None = _described(None, "OpenAI-compatible endpoint for `model` (None = local).")
    api_key_env: str = _described("OPENAI_API_KEY", "Environment variable holding the API key.")
    timeout: float = _described(600.0, "Seconds before one call times out.")
    role_models: dict[str, str] = _described_factory(
        dict, f"Per-role model overrides, role -> model name. Roles: {', '.join(ROLES)}."
    )
    role_base_urls: dict[str, str] = _described_factory(
        dict, "Per-role endpoint overrides, role -> base_url."
    )
    domains_max_tokens: int = _described(50, "Max new tokens, stages 1-2 (expert gathering).")
    analysis_max_tokens: int = _described(300, "Max new tokens, stages 3-4 (analyses).")
    synthesis_max_tokens: int = _described(2500, "Max new tokens, stage 5 (report).")
    vote_max_tokens: int = _described(30, "Max new tokens, one yes/no vote.")
    advice_max_tokens: int = _described(500, "Max new tokens, one expert's revision advice.")
    revision_max_tokens: int = _described(2500, "Max new tokens, the report revision.")
    answer_max_tokens: int = _described(2500, "Max new tokens, the final decision.")
    direct_max_tokens: int = _described(50, "Max new tokens, base_direct's answer.")
    cot_max_tokens: int = _described(300, "Max new tokens, base_cot's answer.")
    prompts: dict[str, str] = _described_factory(
        dict,
        "Prompt template overrides, name -> str.format template "
        "(names and fields: nodes.medagents_prompts.TEMPLATE_FIELDS).",
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown MedAgents method {self.method!r}; choose one of {METHODS}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown MedAgents preset {self.preset!r}; choose one of {tuple(PRESETS)}")
        # Frozen dataclass: resolve the preset's defaults in place, once.
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.num_question_domains < 1 or self.num_option_domains < 1:
            raise ValueError("MedAgents needs at least one question domain and one option domain")
        if self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0")
        unknown_roles = (set(self.role_models) | set(self.role_base_urls)) - set(ROLES)
        if unknown_roles:
            raise ValueError(f"unknown MedAgents role(s) {sorted(unknown_roles)}; roles: {ROLES}")
        check_prompt_overrides(self.prompts)

    @classmethod
    def from_preset(cls, preset: Preset = "original", **overrides: Any) -> MedAgentsContext:
        """A context with the preset's values ("original" code or "paper"), then `overrides`."""
        return cls(preset=preset, **{**PRESETS[preset], **overrides})

    def capped(self, max_new_tokens: int) -> MedAgentsContext:
        """Every stage's token limit cut to at most `max_new_tokens` (e.g. for a small local model)."""
        limits = {
            f.name: min(getattr(self, f.name), max_new_tokens)
            for f in fields(self)
            if f.name.endswith("_max_tokens")
        }
        return replace(self, **limits)

    def chat_config(self, role: str, max_tokens: int) -> ChatModelConfig:
        return ChatModelConfig(
            model=self.role_models.get(role, self.model),
            base_url=self.role_base_urls.get(role, self.base_url),
            api_key_env=self.api_key_env,
            max_tokens=max_tokens,
            temperature=float(self.temperature),
            top_p=self.top_p,
            seed=self.seed,
            timeout=self.timeout,
        )


def _context(runtime: Runtime[MedAgentsContext]) -> MedAgentsContext:
    return runtime.context if runtime.context is not None else MedAgentsContext()


# ============================================================ state


class Failure(TypedDict):
    """Something a stage could not read from a reply (the run continues on a recorded fallback)."""

    stage: str
    agent: str
    error: str
    raw: str


class AnalysisPart(TypedDict):
    index: int
    domain: str
    analysis: str


class Ballot(TypedDict):
    attempt: int
    index: int
    expert: str
    domain: str
    vote: str | None  # "yes" | "no" | None (unreadable: recorded failure, never a yes)
    raw: str


class AdvicePart(TypedDict):
    attempt: int
    index: int
    expert: str
    domain: str
    advice: str


class MedAgentsInput(TypedDict):
    question: str
    options: dict[str, str]
    gold_answer: NotRequired[str | None]
    item_id: NotRequired[str | None]


class MedAgentsState(MedAgentsInput, total=False):
    question_domains: list[str]
    option_domains: list[str]
    # Parallel branches each append one part; the merge node orders them by domain index.
    question_analysis_parts: Annotated[list[AnalysisPart], operator.add]
    option_analysis_parts: Annotated[list[AnalysisPart], operator.add]
    question_analyses: dict[str, str]
    option_analyses: dict[str, str]
    key_knowledge: str
    total_analysis: str
    syn_report: str
    syn_repo_history: Annotated[list[str], operator.add]
    attempt: int  # consultation rounds held so far
    ballots: Annotated[list[Ballot], operator.add]
    advice_parts: Annotated[list[AdvicePart], operator.add]
    vote_history: Annotated[list[dict[str, Any]], operator.add]
    revision_history: Annotated[list[dict[str, Any]], operator.add]
    pred_answer: str | None
    raw_output: str
    failures: Annotated[list[Failure], operator.add]
    trace: Annotated[list[TraceEntry], operator.add]


class DomainTask(TypedDict):
    """Payload of one analysis branch (a `Send`)."""

    index: int
    domain: str
    question: str
    options: dict[str, str]
    question_analyses: dict[str, str]


class ExpertTask(TypedDict):
    """Payload of one vote or advice branch (a `Send`)."""

    attempt: int
    index: int
    expert: str
    domain: str
    report: str


# ============================================================ helpers


def _call(
    ctx: MedAgentsContext,
    *,
    stage: str,
    role: str,
    agent: str,
    system: str,
    user: str,
    max_tokens: int,
    **extra: Any,
) -> AgentReply:
    """One call through the shared `ask`; the trace entry is tagged with its stage."""
    return ask(
        ctx.chat_config(role, max_tokens), (system, user), agent=agent, role=role, stage=stage, **extra
    )


def _failure(reply: AgentReply, stage: str, agent: str, error: str) -> Failure:
    reply.trace["failure"] = error
    return Failure(stage=stage, agent=agent, error=error, raw=reply.text)


def _letters(options: dict[str, str]) -> str:
    return ", ".join(options)


def _answer_format(ctx: MedAgentsContext, options: dict[str, str]) -> str:
    if options:
        return render(ctx.prompts, "answer_format.choice", letters=_letters(options))
    return render(ctx.prompts, "answer_format.free")


def _experts(state: MedAgentsState) -> list[tuple[str, str]]:
    """(expert id, domain) for every consultation member, question experts first."""
    return [(f"question_expert_{i + 1}", d) for i, d in enumerate(state["question_domains"])] + [
        (f"option_expert_{i + 1}", d) for i, d in enumerate(state["option_domains"])
    ]


def _analysis_block(ctx: MedAgentsContext, key: str, analyses: dict[str, str]) -> str:
    return "\n".join(
        render(ctx.prompts, key, domain=domain, analysis=text, number=i + 1)
        for i, (domain, text) in enumerate(analyses.items())
    )


def _decide(
    ctx: MedAgentsContext, state: MedAgentsState, *, stage: str, system: str, user: str, max_tokens: int
) -> dict[str, Any]:
    """The final answer call and its strict parse (shared by the decision and baseline nodes)."""
    reply = _call(
        ctx, stage=stage, role="decider", agent="decider", system=system, user=user, max_tokens=max_tokens
    )
    options = state.get("options") or {}
    failures: list[Failure] = []
    if options:
        pred = parse_answer_letter(reply.text, list(options))
        if pred is None:
            failures.append(_failure(reply, stage, "decider", "no clear option letter in the answer"))
    else:  # free-form questions (e.g. MedicationQA): the answer is the text itself
        pred = reply.text.split("Answer:", 1)[-1].strip() or None
        if pred is None:
            failures.append(_failure(reply, stage, "decider", "empty answer"))
    return {
        "pred_answer": pred,
        "raw_output": reply.text,
        "failures": failures,
        "trace": [reply.trace],
        **_record_defaults(state),
    }


# Record fields a method's stages never wrote still appear in the final state, empty.
_RECORD_DEFAULTS: dict[str, Any] = {
    "question_domains": list,
    "option_domains": list,
    "question_analyses": dict,
    "option_analyses": dict,
    "syn_report": str,
}


def _record_defaults(state: MedAgentsState) -> dict[str, Any]:
    return {key: make() for key, make in _RECORD_DEFAULTS.items() if key not in state}


# ============================================================ nodes, in the figure's order


def direct_answer(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """base_direct: the letter only."""
    ctx = _context(runtime)
    options = state.get("options") or {}
    fields_ = dict(
        question=state["question"],
        options=format_options(options),
        letters=_letters(options),
        answer_format=_answer_format(ctx, options),
    )
    return _decide(
        ctx,
        state,
        stage="direct",
        system=render(ctx.prompts, "direct.system"),
        user=render(ctx.prompts, "direct.user", **fields_),
        max_tokens=ctx.direct_max_tokens,
    )


def cot_answer(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """base_cot: step-by-step thoughts, then the letter."""
    ctx = _context(runtime)
    options = state.get("options") or {}
    fields_ = dict(
        question=state["question"],
        options=format_options(options),
        letters=_letters(options),
        answer_format=_answer_format(ctx, options),
    )
    return _decide(
        ctx,
        state,
        stage="cot",
        system=render(ctx.prompts, "cot.system"),
        user=render(ctx.prompts, "cot.user", **fields_),
        max_tokens=ctx.cot_max_tokens,
    )


def _gather_domains(
    ctx: MedAgentsContext, state: MedAgentsState, *, stage: str, count: int, key: str
) -> dict[str, Any]:
    user = render(
        ctx.prompts,
        f"{stage}.user",
        question=state["question"],
        options=format_options(state.get("options")),
        num_domains=count,
        domain_format=domain_format(count),
    )
    reply = _call(
        ctx,
        stage=stage,
        role="classifier",
        agent=f"{stage}_classifier",
        system=render(ctx.prompts, f"{stage}.system"),
        user=user,
        max_tokens=ctx.domains_max_tokens,
    )
    parsed = parse_domains(reply.text, count)
    failures = (
        [_failure(reply, stage, f"{stage}_classifier", "; ".join(parsed.problems))] if parsed.problems else []
    )
    return {key: parsed.domains, "failures": failures, "trace": [reply.trace]}


def question_domains(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 1: which specialties should examine the question."""
    ctx = _context(runtime)
    return _gather_domains(
        ctx, state, stage="question_domains", count=ctx.num_question_domains, key="question_domains"
    )


def option_domains(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 2: which specialties should judge the options."""
    ctx = _context(runtime)
    return _gather_domains(
        ctx, state, stage="option_domains", count=ctx.num_option_domains, key="option_domains"
    )


def _analyse(
    ctx: MedAgentsContext, task: DomainTask, *, stage: str, role: str, user: str, parts_key: str
) -> dict[str, Any]:
    agent = f"{role}_{task['index'] + 1}"
    reply = _call(
        ctx,
        stage=stage,
        role=role,
        agent=agent,
        system=render(ctx.prompts, f"{stage}.system", domain=task["domain"]),
        user=user,
        max_tokens=ctx.analysis_max_tokens,
        domain=task["domain"],
    )
    text = reply.text.strip()
    failures = []
    if not text:
        failures.append(_failure(reply, stage, agent, "empty analysis"))
        text = f"(The {task['domain']} expert gave no analysis.)"
    part = AnalysisPart(index=task["index"], domain=task["domain"], analysis=text)
    return {parts_key: [part], "failures": failures, "trace": [reply.trace]}


def question_analysis(task: DomainTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 3, one branch: one question expert's independent analysis."""
    ctx = _context(runtime)
    user = render(ctx.prompts, "question_analysis.user", question=task["question"], domain=task["domain"])
    return _analyse(
        ctx,
        task,
        stage="question_analysis",
        role="question_expert",
        user=user,
        parts_key="question_analysis_parts",
    )


def _merged(parts: list[AnalysisPart]) -> dict[str, str]:
    # Domains are distinct (parse_domains), so no expert's analysis overwrites another's.
    return {p["domain"]: p["analysis"] for p in sorted(parts, key=lambda p: p["index"])}


def merge_question_analyses(state: MedAgentsState) -> dict[str, Any]:
    return {"question_analyses": _merged(state["question_analysis_parts"])}


def option_analysis(task: DomainTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 4, one branch: one option expert judges every option, given all question analyses."""
    ctx = _context(runtime)
    user = render(
        ctx.prompts,
        "option_analysis.user",
        question=task["question"],
        options=format_options(task["options"]),
        domain=task["domain"],
        question_analyses=_analysis_block(ctx, "option_analysis.item", task["question_analyses"]),
    )
    return _analyse(
        ctx, task, stage="option_analysis", role="option_expert", user=user, parts_key="option_analysis_parts"
    )


def merge_option_analyses(state: MedAgentsState) -> dict[str, Any]:
    return {"option_analyses": _merged(state["option_analysis_parts"])}


def synthesis(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 5: all analyses -> "Key Knowledge / Total Analysis"; the report keeps both."""
    ctx = _context(runtime)
    options_text = format_options(state.get("options"))

    def reports(key: str, analyses: dict[str, str]) -> str:
        return "\n\n".join(
            render(
                ctx.prompts,
                key,
                domain=d,
                analysis=a,
                number=i + 1,
                question=state["question"],
                options=options_text,
            )
            for i, (d, a) in enumerate(analyses.items())
        )

    user = render(
        ctx.prompts,
        "synthesis.user",
        question=state["question"],
        options=options_text,
        question_reports=reports("synthesis.question_item", state["question_analyses"]),
        option_reports=reports("synthesis.option_item", state["option_analyses"]),
    )
    reply = _call(
        ctx,
        stage="synthesis",
        role="synthesizer",
        agent="synthesizer",
        system=render(ctx.prompts, "synthesis.system"),
        user=user,
        max_tokens=ctx.synthesis_max_tokens,
    )
    parsed = parse_report(reply.text)
    problems = []
    key_knowledge = parsed.key_knowledge
    total_analysis = parsed.total_analysis
    if key_knowledge is None:
        problems.append("no 'Key Knowledge:' section")
        key_knowledge = ""
    if total_analysis is None:
        # The original crashed here; fall back to the reply itself (minus a Key Knowledge part).
        problems.append("no 'Total Analysis:' section; the reply is used as the analysis")
        total_analysis = "" if parsed.key_knowledge is not None else reply.text.strip()
    failures = [_failure(reply, "synthesis", "synthesizer", "; ".join(problems))] if problems else []
    report = build_report(ctx.prompts, state["question"], state.get("options"), key_knowledge, total_analysis)
    return {
        "key_knowledge": key_knowledge,
        "total_analysis": total_analysis,
        "syn_report": report,
        "syn_repo_history": [report],
        "attempt": 0,
        "failures": failures,
        "trace": [reply.trace],
    }


def vote(task: ExpertTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 6, one branch: one expert says whether the report agrees with their opinion."""
    ctx = _context(runtime)
    reply = _call(
        ctx,
        stage="vote",
        role="voter",
        agent=task["expert"],
        system=render(ctx.prompts, "vote.system", domain=task["domain"]),
        user=render(ctx.prompts, "vote.user", domain=task["domain"], report=task["report"]),
        max_tokens=ctx.vote_max_tokens,
        attempt=task["attempt"],
        domain=task["domain"],
    )
    decision = parse_vote(reply.text)
    failures = (
        []
        if decision is not None
        else [_failure(reply, "vote", task["expert"], "no clear YES or NO in the vote")]
    )
    ballot = Ballot(
        attempt=task["attempt"],
        index=task["index"],
        expert=task["expert"],
        domain=task["domain"],
        vote=decision,
        raw=reply.text,
    )
    return {"ballots": [ballot], "failures": failures, "trace": [reply.trace]}


def tally_votes(state: MedAgentsState) -> dict[str, Any]:
    attempt = state.get("attempt", 0) + 1
    ballots = sorted((b for b in state["ballots"] if b["attempt"] == attempt), key=lambda b: b["index"])
    votes = [{"expert": b["expert"], "domain": b["domain"], "vote": b["vote"]} for b in ballots]
    consensus = all(b["vote"] == "yes" for b in ballots)
    return {
        "attempt": attempt,
        "vote_history": [{"attempt": attempt, "votes": votes, "consensus": consensus}],
    }


def advice(task: ExpertTask, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 6, one branch: an expert who did not say yes proposes revisions."""
    ctx = _context(runtime)
    reply = _call(
        ctx,
        stage="advice",
        role="voter",
        agent=task["expert"],
        system=render(ctx.prompts, "advice.system", domain=task["domain"]),
        user=render(ctx.prompts, "advice.user", domain=task["domain"], report=task["report"]),
        max_tokens=ctx.advice_max_tokens,
        attempt=task["attempt"],
        domain=task["domain"],
    )
    text = clean_advice(reply.text)
    failures = []
    if not text:
        failures.append(_failure(reply, "advice", task["expert"], "empty revision advice"))
        text = "(no advice given)"
    part = AdvicePart(
        attempt=task["attempt"],
        index=task["index"],
        expert=task["expert"],
        domain=task["domain"],
        advice=text,
    )
    return {"advice_parts": [part], "failures": failures, "trace": [reply.trace]}


def revision(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Stage 6: one call rewrites the report from all advice of this round."""
    ctx = _context(runtime)
    attempt = state["attempt"]
    parts = sorted((p for p in state["advice_parts"] if p["attempt"] == attempt), key=lambda p: p["index"])
    advice_text = "\n".join(
        render(ctx.prompts, "revision.item", domain=p["domain"], advice=p["advice"]) for p in parts
    )
    reply = _call(
        ctx,
        stage="revision",
        role="reviser",
        agent="reviser",
        system=render(ctx.prompts, "revision.system"),
        user=render(ctx.prompts, "revision.user", report=state["syn_report"], advice=advice_text),
        max_tokens=ctx.revision_max_tokens,
        attempt=attempt,
    )
    parsed = parse_report(reply.text)
    failures = []
    # The reviser rewrites the analysis; key knowledge carries over unless it rewrote that too.
    key_knowledge = parsed.key_knowledge or state.get("key_knowledge", "")
    total_analysis = parsed.total_analysis
    if not total_analysis:
        fallback = reply.text.strip() if parsed.key_knowledge is None else ""
        total_analysis = fallback or state.get("total_analysis", "")
        failures.append(
            _failure(
                reply,
                "revision",
                "reviser",
                "no 'Total Analysis:' section; "
                + ("the reply is used" if fallback else "the report is kept"),
            )
        )
    report = build_report(ctx.prompts, state["question"], state.get("options"), key_knowledge, total_analysis)
    advice_record = [{"expert": p["expert"], "domain": p["domain"], "advice": p["advice"]} for p in parts]
    return {
        "key_knowledge": key_knowledge,
        "total_analysis": total_analysis,
        "syn_report": report,
        "syn_repo_history": [report],
        "revision_history": [{"attempt": attempt, "advice": advice_record}],
        "failures": failures,
        "trace": [reply.trace],
    }


def decision(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> dict[str, Any]:
    """Decision making: the answer from the (last) report, or from the analyses for anal_only."""
    ctx = _context(runtime)
    options = state.get("options") or {}
    common = dict(letters=_letters(options), answer_format=_answer_format(ctx, options))
    if ctx.method == "anal_only":
        user = render(
            ctx.prompts,
            "answer_analyses.user",
            question=state["question"],
            options=format_options(options),
            question_analyses=_analysis_block(ctx, "answer_analyses.item", state["question_analyses"]),
            option_analyses=_analysis_block(ctx, "answer_analyses.item", state["option_analyses"]),
            **common,
        )
        system = render(ctx.prompts, "answer_analyses.system")
    else:
        user = render(ctx.prompts, "answer_report.user", report=state["syn_report"], **common)
        system = render(ctx.prompts, "answer_report.system")
    return _decide(ctx, state, stage="decision", system=system, user=user, max_tokens=ctx.answer_max_tokens)


# ============================================================ routing


def route_start(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str:
    method = _context(runtime).method
    if method == "base_direct":
        return "direct_answer"
    if method == "base_cot":
        return "cot_answer"
    return "question_domains"


def send_question_analyses(state: MedAgentsState) -> list[Send]:
    return [
        Send(
            "question_analysis",
            DomainTask(
                index=i,
                domain=d,
                question=state["question"],
                options=state.get("options") or {},
                question_analyses={},
            ),
        )
        for i, d in enumerate(state["question_domains"])
    ]


def send_option_analyses(state: MedAgentsState) -> list[Send]:
    return [
        Send(
            "option_analysis",
            DomainTask(
                index=i,
                domain=d,
                question=state["question"],
                options=state.get("options") or {},
                question_analyses=state["question_analyses"],
            ),
        )
        for i, d in enumerate(state["option_domains"])
    ]


def _send_votes(state: MedAgentsState) -> list[Send]:
    attempt = state.get("attempt", 0) + 1
    return [
        Send(
            "vote",
            ExpertTask(attempt=attempt, index=i, expert=expert, domain=domain, report=state["syn_report"]),
        )
        for i, (expert, domain) in enumerate(_experts(state))
    ]


def route_after_option_analyses(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str:
    return "decision" if _context(runtime).method == "anal_only" else "synthesis"


def route_after_synthesis(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str | list[Send]:
    ctx = _context(runtime)
    if ctx.method == "syn_only" or ctx.max_attempts < 1:
        return "decision"
    return _send_votes(state)


def route_after_tally(state: MedAgentsState) -> str | list[Send]:
    """Everyone agrees -> decide; otherwise each expert who did not say yes gives advice.

    An unreadable vote counts as not agreeing (the original counted it as yes): that expert is
    asked for advice too, since nothing says the report matches their view.
    """
    attempt = state["attempt"]
    dissent = sorted(
        (b for b in state["ballots"] if b["attempt"] == attempt and b["vote"] != "yes"),
        key=lambda b: b["index"],
    )
    if not dissent:
        return "decision"
    return [
        Send(
            "advice",
            ExpertTask(
                attempt=attempt,
                index=b["index"],
                expert=b["expert"],
                domain=b["domain"],
                report=state["syn_report"],
            ),
        )
        for b in dissent
    ]


def route_after_revision(state: MedAgentsState, runtime: Runtime[MedAgentsContext]) -> str | list[Send]:
    if state["attempt"] >= _context(runtime).max_attempts:
        return "decision"
    return _send_votes(state)


# ============================================================ transport retries


RETRY_POLICY = RetryPolicy(
    max_attempts=3, initial_interval=1.0, backoff_factor=2.0, max_interval=30.0, retry_on=is_transient
)


# ============================================================ the graph


def build_graph(retry_policy: RetryPolicy | None = None) -> StateGraph:
    """The uncompiled MedAgents graph; every node that calls a model gets `retry_policy`."""
    retry = retry_policy or RETRY_POLICY
    builder = StateGraph(MedAgentsState, context_schema=MedAgentsContext, input_schema=MedAgentsInput)

    builder.add_node("direct_answer", direct_answer, retry_policy=retry)
    builder.add_node("cot_answer", cot_answer, retry_policy=retry)
    builder.add_node("question_domains", question_domains, retry_policy=retry)
    builder.add_node("option_domains", option_domains, retry_policy=retry)
    builder.add_node("question_analysis", question_analysis, retry_policy=retry)
    builder.add_node("merge_question_analyses", merge_question_analyses)
    builder.add_node("option_analysis", option_analysis, retry_policy=retry)
    builder.add_node("merge_option_analyses", merge_option_analyses)
    builder.add_node("synthesis", synthesis, retry_policy=retry)
    builder.add_node("vote", vote, retry_policy=retry)
    builder.add_node("tally_votes", tally_votes)
    builder.add_node("advice", advice, retry_policy=retry)
    builder.add_node("revision", revision, retry_policy=retry)
    builder.add_node("decision", decision, retry_policy=retry)

    builder.add_conditional_edges(START, route_start, ["direct_answer", "cot_answer", "question_domains"])
    builder.add_edge("direct_answer", END)
    builder.add_edge("cot_answer", END)
    builder.add_edge("question_domains", "option_domains")
    builder.add_conditional_edges("option_domains", send_question_analyses, ["question_analysis"])
    builder.add_edge("question_analysis", "merge_question_analyses")
    builder.add_conditional_edges("merge_question_analyses", send_option_analyses, ["option_analysis"])
    builder.add_edge("option_analysis", "merge_option_analyses")
    builder.add_conditional_edges(
        "merge_option_analyses", route_after_option_analyses, ["synthesis", "decision"]
    )
    builder.add_conditional_edges("synthesis", route_after_synthesis, ["vote", "decision"])
    builder.add_edge("vote", "tally_votes")
    builder.add_conditional_edges("tally_votes", route_after_tally, ["advice", "decision"])
    builder.add_edge("advice", "revision")
    builder.add_conditional_edges("revision", route_after_revision, ["vote", "decision"])
    builder.add_edge("decision", END)
    return builder


# Checkpointer-free, for LangGraph Studio (`langgraph dev`); the runner compiles its own.
graph = build_graph().compile()


# ============================================================ evaluation method

RECORD_FIELDS: tuple[str, ...] = (
    "question",
    "options",
    "pred_answer",
    "gold_answer",
    "question_domains",
    "option_domains",
    "question_analyses",
    "option_analyses",
    "syn_report",
    "vote_history",
    "revision_history",
    "syn_repo_history",
    "raw_output",
)

# Options that map one-to-one onto context fields.
_CONTEXT_OPTIONS: tuple[str, ...] = (
    "model",
    "base_url",
    "api_key_env",
    "temperature",
    "top_p",
    "seed",
    "timeout",
    "max_attempts",
    "num_question_domains",
    "num_option_domains",
    "role_models",
    "role_base_urls",
) + tuple(f.name for f in fields(MedAgentsContext) if f.name.endswith("_max_tokens"))


def _load_prompts(value: Any) -> dict[str, str]:
    """A prompts mapping, or the path of a JSON file holding one.

    A file shared between methods may nest this method's templates under "medagents".
    """
    if isinstance(value, str | Path):
        value = json.loads(Path(value).read_text(encoding="utf-8"))
    if isinstance(value.get("medagents"), dict):
        value = value["medagents"]
    return dict(value)


class MedAgentsMethod:
    """The evaluation runner's view of MedAgents (runners.methods.EvalMethod)."""

    name = "medagents"

    def build_graph(self) -> StateGraph:
        return build_graph()

    def context(self, options: dict[str, Any]) -> MedAgentsContext:
        """Options: method (or medagents_method), preset, model, base_url, temperature,
        max_attempts, max_new_tokens (caps every stage's limit), prompts (mapping or JSON path),
        and any other MedAgentsContext field by name. Unrelated options are ignored."""
        overrides: dict[str, Any] = {k: options[k] for k in _CONTEXT_OPTIONS if options.get(k) is not None}
        method = options.get("medagents_method") or options.get("method")
        # The runner may pass its own method name ("medagents") under "method".
        if method is not None and method != self.name:
            overrides["method"] = method
        prompts = options.get("prompts") or options.get("prompts_file")
        if prompts:
            overrides["prompts"] = _load_prompts(prompts)
        preset = options.get("preset") or "original"
        if preset not in PRESETS:
            raise ValueError(f"unknown MedAgents preset {preset!r}; choose one of {tuple(PRESETS)}")
        ctx = MedAgentsContext(preset=preset, **overrides)
        if options.get("max_new_tokens"):
            ctx = ctx.capped(int(options["max_new_tokens"]))
        return ctx

    def make_input(self, item: TaskItem, options: dict[str, Any]) -> dict[str, Any]:
        question = item.question
        # PubMedQA-style items carry a context that the method reads before the question.
        if item.context and item.context not in question:
            question = f"{item.context} {question}"
        return MedAgentsInput(
            question=question, options=dict(item.options or {}), gold_answer=item.gold, item_id=item.id
        )

    def outcome(self, item: TaskItem, state: dict[str, Any], options: dict[str, Any]) -> Outcome:
        record: dict[str, Any] = {"item_id": item.id, "group": item.group}
        for key in RECORD_FIELDS:
            record[key] = state.get(key)
        record["gold_answer"] = item.gold
        record["failures"] = list(state.get("failures") or [])
        trace = state.get("trace") or []
        record["calls"] = len(trace)
        record["prompt_tokens"] = sum(t.get("prompt_tokens", 0) for t in trace)
        record["generated_tokens"] = sum(t.get("generated_tokens", 0) for t in trace)
        prediction = state.get("pred_answer")
        if item.options:
            correct = (
                prediction is not None
                and item.gold is not None
                and str(prediction).strip().upper() == str(item.gold).strip().upper()
            )
        else:
            correct = None  # free-form answers are graded by the task (e.g. ROUGE-1)
        return Outcome(prediction=prediction, correct=correct, record=record)


EVAL_METHOD = MedAgentsMethod()
