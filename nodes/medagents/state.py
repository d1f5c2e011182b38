"""The state of the MedAgents graph, its input and output (Studio's forms), and branch payloads.

Parallel branches (analyses, votes, advice) each append one part to a list channel reduced with
`operator.add`; a merge node, or the next stage, orders the parts by their index.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

# pydantic, which builds Studio's input/output schemas, refuses typing.TypedDict on Python 3.11.
from typing_extensions import TypedDict

from nodes.agent_call import TraceEntry


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
    """What a run starts from (Studio's input form)."""

    question: str  # with any context (e.g. a PubMedQA abstract) in front
    options: dict[str, str]  # letter -> option text; empty for free-form questions
    gold_answer: NotRequired[str | None]  # kept in the record only; no agent sees it
    item_id: NotRequired[str | None]


class MedAgentsOutput(TypedDict, total=False):
    """What a finished run returns: the answer and every stage's output."""

    question: str
    options: dict[str, str]
    gold_answer: str | None
    pred_answer: str | None  # the option letter, or the free-form answer; None when unreadable
    raw_output: str  # the decider's reply
    question_domains: list[str]
    option_domains: list[str]
    question_analyses: dict[str, str]  # domain -> analysis, in domain order
    option_analyses: dict[str, str]
    syn_report: str  # the (last) report
    syn_repo_history: list[str]  # the report after synthesis and after each revision
    attempt: int  # consultation rounds held
    vote_history: list[dict[str, Any]]
    revision_history: list[dict[str, Any]]
    failures: list[Failure]
    trace: list[TraceEntry]  # one entry per model call


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
