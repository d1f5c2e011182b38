"""MedAgents prompt templates, how they are filled, and how overrides are checked.

Our wording; the stages and the reply formats follow the MedAgents paper. Each template is a
`str.format` string. `TEMPLATE_FIELDS` lists the fields each one may use, so an override (the
context's `prompts` mapping or `prompts_file`, e.g. the paper's exact wording) is checked when the
context is built rather than failing halfway through a run. Literal braces are written `{{ }}`.

Output formats that later stages parse, and must survive any rewording:
- domains: "Medical Field: A | B | C" (parsed by `parse.parse_domains`)
- synthesis / revision: "Key Knowledge: ..." and "Total Analysis: ..." (`parse.parse_report`)
- vote: a whole-word YES or NO (`parse.parse_vote`)
- answers: "Option: X" (`parse.parse_answer_letter`), or "Answer: ..." for free-form questions
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from nodes.fields import OptionError

DEFAULT_PROMPTS: dict[str, str] = {
    # Stage 1: expert gathering for the question.
    "question_domains.system": (
        "You are a medical expert who assigns clinical scenarios to the specialties of medicine "
        "best placed to examine them."
    ),
    "question_domains.user": (
        "Read the medical scenario in this question:\n'''{question}'''\n\n"
        "Name the {num_domains} distinct subfields of medicine most relevant to it.\n"
        "Reply with one line, exactly in this format:\n{domain_format}"
    ),
    # Stage 2: expert gathering for the options.
    "option_domains.system": (
        "You are a medical expert who identifies which fields of expertise are needed to judge the "
        "answer options of a multiple-choice medical question."
    ),
    "option_domains.user": (
        "Question:\n'''{question}'''\n\nOptions:\n{options}\n\n"
        "Consider how the options relate to the question, and name the {num_domains} distinct "
        "subfields of medicine best suited to judge these options.\n"
        "Reply with one line, exactly in this format:\n{domain_format}"
    ),
    # Stage 3: one analysis per question domain (independent experts).
    "question_analysis.system": (
        "You are a medical expert in {domain}. From the viewpoint of your specialty you examine "
        "the findings presented in clinical scenarios."
    ),
    "question_analysis.user": (
        "Examine the medical scenario in this question:\n'''{question}'''\n\n"
        "Using your expertise in {domain}, explain what condition the scenario depicts, and point "
        "out the findings you consider most important or alarming."
    ),
    # Stage 4: one analysis per option domain, given every question analysis.
    "option_analysis.system": (
        "You are a medical expert in {domain}. You judge the options of multiple-choice medical "
        "questions: how each relates to the question and whether it is correct."
    ),
    "option_analysis.user": (
        "Question:\n'''{question}'''\n\n"
        "Experts from several specialties analysed the question:\n{question_analyses}\n\n"
        "Options:\n{options}\n\n"
        "Drawing on these analyses and your expertise in {domain}, assess each option in turn: is "
        "it plausible, or should it be eliminated, and why? Point out the differences between the "
        "options; some may look right at first sight but be misleading."
    ),
    "option_analysis.item": "- {domain} expert: {analysis}",
    # Stage 5: the synthesizer turns all analyses into one report.
    "synthesis.system": (
        "You are a medical decision maker who summarizes and reconciles the reports of experts "
        "from several medical specialties."
    ),
    "synthesis.user": (
        "Below are reports from medical experts of different specialties.\n"
        "1. Consider every report carefully.\n"
        "2. Extract the key medical knowledge they contain.\n"
        "3. From that knowledge, derive one comprehensive, synthesized analysis.\n"
        "Reply exactly in this format:\n"
        "Key Knowledge: [the extracted key knowledge]\n"
        "Total Analysis: [the synthesized analysis]\n\n"
        "Question: {question}\n\n{question_reports}\n\nOptions:\n{options}\n\n{option_reports}"
    ),
    "synthesis.question_item": "Report {number} ({domain}, on the question):\n{analysis}",
    "synthesis.option_item": "Report {number} ({domain}, on the options):\n{analysis}",
    # The report that is kept, voted on, revised and answered from.
    "report": (
        "Question: {question}\nOptions:\n{options}\nKey Knowledge: {key_knowledge}\n"
        "Total Analysis: {total_analysis}"
    ),
    # Stage 6: consultation. Every expert votes; each dissenter advises; one call revises.
    "vote.system": "You are a medical expert in {domain}.",
    "vote.user": (
        "Here is a medical report:\n{report}\n\n"
        "As an expert in {domain}, read the report carefully and decide whether your own opinion "
        "agrees with it. Reply with one word only: YES or NO."
    ),
    "advice.system": "You are a medical expert in {domain}.",
    "advice.user": (
        "Here is a medical report:\n{report}\n\n"
        "As an expert in {domain}, use your expertise to propose revisions to this report.\n"
        "Reply exactly in this format:\nRevisions: [your proposed revisions]"
    ),
    "revision.system": ("You are a medical decision maker who revises a report according to expert advice."),
    "revision.user": (
        "Here is the original report:\n{report}\n\n{advice}\n\n"
        "Revise the analysis according to this advice. Reply exactly in this format:\n"
        "Total Analysis: [the revised analysis]"
    ),
    "revision.item": "Advice from an expert in {domain}: {advice}",
    # Decision making.
    "answer_report.system": "You are a medical expert answering a multiple-choice question.",
    "answer_report.user": (
        "Here is a synthesized report:\n{report}\n\n"
        "Based on this report, choose the best answer to the question.\n"
        "Note: the analyses should guide you to the right answer; an option that contains "
        "incorrect information cannot be the right answer.\n"
        "{answer_format}"
    ),
    "answer_analyses.system": "You are a medical expert answering a multiple-choice question.",
    "answer_analyses.user": (
        "Question: {question}\nOptions:\n{options}\n\n"
        "Step 1: understand the question. Experts from several specialties analysed it:\n"
        "{question_analyses}\n\n"
        "Step 2: evaluate each option against the scenario and your knowledge; some may look right "
        "at first sight but be misleading. Experts assessed the options:\n{option_analyses}\n\n"
        "Step 3: using these analyses, choose the best answer. An option that contains incorrect "
        "information cannot be the right answer.\n"
        "{answer_format}"
    ),
    "answer_analyses.item": "- {domain} expert: {analysis}",
    "answer_analyses.option_item": "- {domain} expert: {analysis}",
    # How every answering call must reply: multiple choice, or free text (e.g. MedicationQA).
    "answer_format.choice": (
        "Reply only with the letter of your choice ({letters}), in this format:\nOption: [letter]"
    ),
    "answer_format.free": "Reply with your answer in this format:\nAnswer: [your answer]",
    # Baselines.
    "direct.system": "You are a medical expert answering a multiple-choice question.",
    "direct.user": ("Question: {question}\nOptions:\n{options}\n\n{answer_format}"),
    "cot.system": "You are a medical expert answering a multiple-choice question.",
    "cot.user": (
        "Question: {question}\nOptions:\n{options}\n\n"
        "Work through the question step by step to be sure of the right answer. First write your "
        "reasoning as\nThought: [your step-by-step reasoning]\nthen give your answer. {answer_format}"
    ),
}

TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    "question_domains.system": frozenset(),
    "question_domains.user": frozenset({"question", "num_domains", "domain_format"}),
    "option_domains.system": frozenset(),
    "option_domains.user": frozenset({"question", "options", "num_domains", "domain_format"}),
    "question_analysis.system": frozenset({"domain"}),
    "question_analysis.user": frozenset({"question", "domain"}),
    "option_analysis.system": frozenset({"domain"}),
    "option_analysis.user": frozenset({"question", "options", "domain", "question_analyses"}),
    "option_analysis.item": frozenset({"domain", "analysis", "number", "options"}),
    "synthesis.system": frozenset(),
    "synthesis.user": frozenset({"question", "options", "question_reports", "option_reports"}),
    "synthesis.question_item": frozenset({"domain", "analysis", "number", "question"}),
    "synthesis.option_item": frozenset({"domain", "analysis", "number", "options"}),
    "report": frozenset({"question", "options", "key_knowledge", "total_analysis"}),
    "vote.system": frozenset({"domain"}),
    "vote.user": frozenset({"domain", "report"}),
    "advice.system": frozenset({"domain"}),
    "advice.user": frozenset({"domain", "report"}),
    "revision.system": frozenset(),
    "revision.user": frozenset({"report", "advice"}),
    "revision.item": frozenset({"domain", "advice"}),
    "answer_report.system": frozenset(),
    "answer_report.user": frozenset({"report", "letters", "answer_format"}),
    "answer_analyses.system": frozenset(),
    "answer_analyses.user": frozenset(
        {"question", "options", "question_analyses", "option_analyses", "letters", "answer_format"}
    ),
    "answer_analyses.item": frozenset({"domain", "analysis", "number"}),
    "answer_analyses.option_item": frozenset({"domain", "analysis", "number"}),
    "answer_format.choice": frozenset({"letters"}),
    "answer_format.free": frozenset(),
    "direct.system": frozenset(),
    "direct.user": frozenset({"question", "options", "letters", "answer_format"}),
    "cot.system": frozenset(),
    "cot.user": frozenset({"question", "options", "letters", "answer_format"}),
}

assert DEFAULT_PROMPTS.keys() == TEMPLATE_FIELDS.keys()


def template_fields(template: str) -> set[str]:
    """The replacement-field names a format string uses (raises ValueError on a malformed one)."""
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            names.add(name.split(".")[0].split("[")[0])
    return names


def check_prompt_overrides(
    overrides: Mapping[str, str], *, option: str = "prompts", source: str = ""
) -> None:
    """Reject unknown template names and fields a template cannot be given.

    Errors are `OptionError`s about `option` (the context field the templates came from);
    `source` (e.g. "prompts file x.json: ") prefixes the message.
    """
    for key, template in overrides.items():
        if key not in TEMPLATE_FIELDS:
            raise OptionError(
                option, f"{source}unknown MedAgents prompt {key!r}; known: {', '.join(TEMPLATE_FIELDS)}"
            )
        if not isinstance(template, str):
            raise OptionError(option, f"{source}MedAgents prompt {key!r} must be a string")
        try:
            used = template_fields(template)
        except ValueError as exc:
            raise OptionError(
                option, f"{source}MedAgents prompt {key!r} is not a valid format string: {exc}"
            ) from exc
        unknown = used - TEMPLATE_FIELDS[key]
        if unknown:
            raise OptionError(
                option,
                f"{source}MedAgents prompt {key!r} uses unknown field(s) {sorted(unknown)}; "
                f"available: {sorted(TEMPLATE_FIELDS[key])}",
            )


def render(prompts: Mapping[str, str], key: str, **fields: object) -> str:
    """Fill template `key` from `prompts` (overrides) or the defaults."""
    template = prompts.get(key, DEFAULT_PROMPTS[key])
    return template.format(**fields)


# -- what the templates are filled with -------------------------------------------------------------
def format_options(options: Mapping[str, str] | None) -> str:
    """Options as "A. text" lines (the original printed a Python dict repr)."""
    if not options:
        return "(no options: answer in free text)"
    return "\n".join(f"{letter}. {text}" for letter, text in options.items())


def domain_format(count: int) -> str:
    """The one-line format the gathering stages must reply in."""
    return "Medical Field: " + " | ".join(f"Field{i + 1}" for i in range(count))


def build_report(
    prompts: Mapping[str, str],
    question: str,
    options: Mapping[str, str] | None,
    key_knowledge: str,
    total_analysis: str,
) -> str:
    """The kept report: question + options + key knowledge + total analysis (stage 5's output)."""
    return render(
        prompts,
        "report",
        question=question,
        options=format_options(options),
        key_knowledge=key_knowledge,
        total_analysis=total_analysis,
    )
