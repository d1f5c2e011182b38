"""MedAgents' `reference` preset: the original code's prompt texts, formatting and reply parsing.

The prompt texts are those of the original MedAgents code (gersteinlab/MedAgents,
prompt_generator.py), reproduced for the reference preset as `str.format` templates under our
template names; the parsing rules below are our implementation of what its data_utils.py/utils.py
do. Kept as the original has them: missing spaces where its strings join, options shown as a
Python dict, the options block repeated after every expert's analysis, reports numbered from 0,
any number of domains (duplicates each ask, the later analysis wins), the cut-off last sentence
of an analysis dropped, substring votes, Key Knowledge dropped from the report, and the first
capital A-E after the last colon as the answer.
Deliberately not kept: a failed call never becomes "ERROR." text (and so never answer E, a
"General Medicine" expert or a placeholder analysis): it fails the item; a reply without
"Total Analysis:" fails the item instead of crashing the run.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

# The number of experts the original asks for is in its wording ("five", "two"); the format line
# numbers its fields from 0.
REFERENCE_PROMPTS: dict[str, str] = {
    "question_domains.system": (
        "You are a medical expert who specializes in categorizing a specific medical scenario into "
        "specific areas of medicine."
    ),
    "question_domains.user": (
        "You need to complete the following steps:1. Carefully read the medical scenario presented in the "
        "question: '''{question}'''. \n2. Based on the medical scenario in it, classify the question into "
        "five different subfields of medicine. \n3. You should output in exactly the same format as "
        "'''{domain_format}'''."
    ),
    "option_domains.system": (
        "As a medical expert, you possess the ability to discern the two most relevant fields of expertise "
        "needed to address a multiple-choice question encapsulating a specific medical context."
    ),
    "option_domains.user": (
        "You need to complete the following steps:1. Carefully read the medical scenario presented in the "
        "question: '''{question}'''.2. The available options are: '''{options}'''. Strive to understand "
        "the fundamental connections between the question and the options.3. Your core aim should be to "
        "categorize the options into two distinct subfields of medicine. You should output in exactly the "
        "same format as '''{domain_format}'''"
    ),
    "question_analysis.system": (
        "You are a medical expert in the domain of {domain}. From your area of specialization, you will "
        "scrutinize and diagnose the symptoms presented by patients in specific medical scenarios."
    ),
    "question_analysis.user": (
        "Please meticulously examine the medical scenario outlined in this question: '''{question}'''."
        "Drawing upon your medical expertise, interpret the condition being depicted. Subsequently, "
        "identify and highlight the aspects of the issue that you find most alarming or noteworthy."
    ),
    "option_analysis.system": (
        "You are a medical expert specialized in the {domain} domain. You are adept at comprehending the "
        "nexus between questions and choices in multiple-choice exams and determining their validity. "
        "Your task, in particular, is to analyze individual options with your expert medical knowledge "
        "and evaluate their relevancy and correctness."
    ),
    "option_analysis.user": (
        "Regarding the question: '''{question}''', we procured the analysis of five experts from diverse "
        "domains. \n{question_analyses}"
    ),
    "option_analysis.item": (
        "The evaluation from the {domain} expert suggests: {analysis} \nThe following are the options "
        "available: '''{options}'''.Reviewing the question's analysis from the expert team, you're "
        "required to fathom the connection between the options and the question from the perspective of "
        "your respective domain, and scrutinize each option individually to assess whether it is "
        "plausible or should be eliminated based on reason and logic. Pay close attention to discerning "
        "the disparities among the different options and rationalize their existence. A handful of these "
        "options might seem right on the first glance but could potentially be misleading in reality."
    ),
    "synthesis.system": (
        "You are a medical decision maker who excels at summarizing and synthesizing based on multiple "
        "experts from various domain experts."
    ),
    "synthesis.user": (
        "Here are some reports from different medical domain experts.\n You need to complete the "
        "following steps:1. Take careful and comprehensive consideration of the following reports.2. "
        "Extract key knowledge from the following reports. 3. Derive the comprehensive and summarized "
        "analysis based on the knowledge.4. Your ultimate goal is to derive a refined and synthesized "
        "report based on the following reports.You should output in exactly the same format as '''Key "
        "Knowledge: [extracted key knowledge] \nTotal Analysis: [synthesized analysis] \n'''"
        "{question_reports}{option_reports}"
    ),
    "synthesis.question_item": (
        "Report{number} \nQuestion: {question} \nDomain: {domain} \nAnalysis: {analysis} \n\n"
    ),
    "synthesis.option_item": "Report{number}: \nOptions: {options} \nDomain: {domain} \nAnalysis: {analysis} \n\n",
    "report": "Question: {question} \nOptions: {options} \nTotal Analysis: {total_analysis} \n",
    "vote.system": "You are a medical expert specialized in the {domain} domain.",
    "vote.user": (
        "Here is a medical report: {report} \nAs a medical expert specialized in {domain}, please "
        "carefully read the report and decide whether your opinions are consistent with this report."
        "Please respond only with: [YES or NO]."
    ),
    "advice.system": "You are a medical expert specialized in the {domain} domain.",
    "advice.user": (
        "Here is a medical report: {report} \nAs a medical expert specialized in {domain}, please make "
        "full use of your expertise to propose revisions to this report.You should output in exactly "
        "the same format as '''Revisions: [proposed revision advice] '''"
    ),
    "revision.system": "",
    "revision.user": (
        "Here is the original report: {report}\n\n{advice}Based on the above advice, output the revised "
        "analysis in exactly the same format as '''Total Analysis: [revised analysis] '''"
    ),
    "revision.item": "Here is advice from a medical expert specialized in {domain}: {advice}.\n",
    "answer_report.system": "",
    "answer_report.user": (
        "Here is a synthesized report: {report} \nBased on the above report, select the optimal choice "
        "to answer the question. \nPoints to note: \n1. The analyses provided should guide you towards "
        "the correct response. \n2. Any option containing incorrect information inherently cannot be "
        "the correct choice. \n3. Please respond only with the selected option's letter, like A, B, C, "
        "D, or E, using the following format: '''Option: [Selected Option's Letter]'''. Remember, it's "
        "the letter we need, not the full content of the option."
    ),
    "answer_analyses.system": "",
    "answer_analyses.user": (
        "Question: {question} \nOptions: {options} \nAnswer: Let's work this out in a step by step way "
        "to be sure we have the right answer. \nStep 1: Decode the question properly. We have a team of "
        "experts who have done a detailed analysis of this question. The team includes five experts from "
        "different medical domains related to the problem. \n{question_analyses}Step 2: Evaluate each "
        "presented option individually, based on both the specifics of the patient's scenario as well as "
        "your medical knowledge. Pay close attention to discerning the disparities among the different "
        "options. A handful of these options might seem right on the first glance but could potentially "
        "be misleading in reality. We have detailed analyses from experts across two domains. \n"
        "{option_analyses}Step 3: Based on the understanding gathered from the above steps, select the "
        "optimal choice to answer the question. \nPoints to note: \n1. The analyses provided should "
        "guide you towards the correct response. \n2. Any option containing incorrect information "
        "inherently cannot be the correct choice. \n3. Please respond only with the selected option's "
        "letter, like A, B, C, D, or E, using the following format: '''Option: [Selected Option's "
        "Letter]'''. Remember, it's the letter we need, not the full content of the option."
    ),
    "answer_analyses.item": "Insight from an expert in {domain} suggests, {analysis} \n",
    "answer_analyses.option_item": "Assessment from an expert in {domain} suggests, {analysis} \n",
    "direct.system": "",
    "direct.user": (
        "Question: {question} \nOptions: {options} \nPlease respond only with the selected option's "
        "letter, like A, B, C, D, or E, using the following format: '''Option: [Selected Option's "
        "Letter]'''."
    ),
    "cot.system": "",
    "cot.user": (
        "Question: {question} \nOptions: {options} \nAnswer: Let's work this out in a step by step way "
        "to be sure we have the right answer. You should output in exactly the same format as "
        "'''Thought: [the step-by-step thoughts] \nAnswer: [Selected Option's Letter (like A, B, C, D, "
        "or E)] \n'''"
    ),
}

# How lists of analyses, reports and advice are joined, and where report numbers start.
REFERENCE_JOIN, DEFAULT_JOIN = "", "\n"
REFERENCE_FIRST_NUMBER, DEFAULT_FIRST_NUMBER = 0, 1


def reference_question(question: str) -> str:
    """The question as the original's run.py passes it on: "?" appended unless it ends in punctuation."""
    return question if question and question[-1] in string.punctuation else f"{question}?"


def options_repr(options: Mapping[str, str] | None) -> str:
    """The options as the original prints them: the Python dict."""
    return str(dict(options or {}))


def domain_format(count: int) -> str:
    return "Medical Field: " + " | ".join(f"Field{i}" for i in range(count))


def parse_domains(text: str) -> list[str]:
    """Everything after the last colon, split on " | ": any count, duplicates kept."""
    return text.split(":")[-1].strip().split(" | ")


_SENTENCES = None


def _sentences(text: str) -> list[str]:
    """Sentences by NLTK's Punkt algorithm with its default parameters (the original loads NLTK's
    trained English model, which is data fetched at run time; the two differ on abbreviations)."""
    global _SENTENCES
    if _SENTENCES is None:
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        _SENTENCES = PunktSentenceTokenizer()
    return _SENTENCES.tokenize(text)


def clean_analysis(text: str) -> str:
    """An analysis as the original keeps it: a cut-off last sentence (more than one sentence, the
    last not ending in ".") dropped, the rest joined by spaces plus "."; then everything up to an
    "as an AI language model" disclaimer cut off."""
    sentences = _sentences(text)
    if len(sentences) > 1 and sentences[-1][-1] != ".":
        text = " ".join(sentences[:-1]) + "."
    marker = "as an ai language model"
    at = text.lower().find(marker)
    if at >= 0:
        text = text[at + len(marker) :].strip().strip(",").strip()
    return text


def total_analysis(text: str) -> str | None:
    """The text between the first "Total Analysis:" and the next (None without the label)."""
    parts = text.split("Total Analysis:")
    return parts[1].strip() if len(parts) > 1 else None


def parse_vote(text: str) -> str:
    """The first "yes" or "no" anywhere, inside words too ("not", "know"); neither reads as yes."""
    found = re.search(r"yes|no", text.lower())
    return found.group(0) if found else "yes"


def parse_letter(text: str) -> str | None:
    """The first capital A-E after the last colon (None when there is none)."""
    found = re.search(r"A|B|C|D|E", text.split(":")[-1])
    return found.group(0) if found else None
