"""The MAD debate's prompt templates (question answering and translation), how they are filled, and
the names the prompts use for rounds and languages.

Templates use the original MAD placeholder style (`##debate_topic##`, `##aff_ans##`, ...), so the
paper's own prompt files plug in unchanged as overrides. The wording here is ours; the structure
follows the original: which player sees what at which stage, and the JSON keys the moderator's and
judge's replies must carry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nodes.debate.verdicts import judge_json_format, moderator_json_format

_FORMAT_REMINDER = (
    "Your last reply could not be read as the JSON object I asked for (##error##). "
    "Reply again with only one JSON object, no other text, in exactly this format: ##json_format##"
)

QA_PROMPTS: dict[str, str] = {
    "base_prompt": "##debate_topic##\nGive your answer and explain it briefly.",
    "player_meta_prompt": (
        "You are a debater. Welcome to the debate. You do not have to agree with the other side's "
        "views: the goal is to find the correct answer.\nThe debate topic is:\n##debate_topic##"
    ),
    "moderator_meta_prompt": (
        "You are the moderator of a debate. Two debaters will present their answers and argue about "
        'the following topic: "##debate_topic##"\n'
        "At the end of each round you evaluate their answers and decide which one is correct."
    ),
    "affirmative_prompt": "You think the correct answer is: ##base_answer##\nRestate your answer and give your reasons.",
    "negative_prompt": "##aff_ans##\n\nYou disagree with my answer. Give your own answer and your reasons.",
    "debate_prompt": "##oppo_ans##\n\nDo you agree with my perspective? Give your reasons and your answer.",
    "moderator_prompt": (
        "The ##round## round of the debate has ended.\n\n"
        "Affirmative side argued:\n##aff_ans##\n\n"
        "Negative side argued:\n##neg_ans##\n\n"
        "As the moderator, evaluate both sides' answers and decide whether one answer is clearly "
        "preferable. If so, summarize why you support the affirmative or the negative side and give "
        "the final answer you consider correct; the debate then ends. If not, the debate goes on to "
        "the next round. Reply with JSON only, in this format: " + moderator_json_format("qa")
    ),
    "judge_prompt_last1": (
        "Affirmative side argued:\n##aff_ans##\n\nNegative side argued:\n##neg_ans##\n\n"
        "Which candidate answers do we have? List them without reasons."
    ),
    "judge_prompt_last2": (
        "So: ##debate_topic##\nSummarize your reasons and give the final answer you consider "
        "correct. Reply with JSON only, in this format: " + judge_json_format("qa")
    ),
    "format_reminder": _FORMAT_REMINDER,
}

TRANSLATION_PROMPTS: dict[str, str] = {
    "base_prompt": "Translate the following text from ##src_lng## to ##tgt_lng##: ##source##",
    "player_meta_prompt": (
        "You are a debater. Welcome to the translation contest, held as a debate. You do not have to "
        "agree with the other side's views: the goal is to find the correct translation.\n"
        "The debate topic is:\nWhat is the correct ##tgt_lng## translation of the following "
        '##src_lng## text: "##source##"'
    ),
    "moderator_meta_prompt": (
        "You are the moderator of a translation debate. Two debaters will present their translations "
        'and argue about the correct ##tgt_lng## translation of the ##src_lng## text: "##source##". '
        "At the end of each round you evaluate the candidate translations by these criteria:\n"
        "1. Accuracy: how faithfully the translation carries the meaning of the source text.\n"
        "2. Fluency: how readable and natural the translation is in ##tgt_lng##."
    ),
    "affirmative_prompt": (
        "You think the correct translation is: ##base_translation##\n"
        "Restate the translation and give your reasons."
    ),
    "negative_prompt": "##aff_ans##\n\nYou disagree with my translation. Give your own translation and your reasons.",
    "debate_prompt": "##oppo_ans##\n\nDo you agree with my perspective? Give your reasons and your translation.",
    "moderator_prompt": (
        "The ##round## round of the debate has ended.\n\n"
        "Affirmative side argued:\n##aff_ans##\n\n"
        "Negative side argued:\n##neg_ans##\n\n"
        "As the moderator, evaluate both sides' translations and decide whether one candidate is "
        "clearly preferable. If so, summarize why you support the affirmative or the negative side "
        "and give the final translation you consider correct; the debate then ends. If not, the "
        "debate goes on to the next round. Reply with JSON only, in this format: "
        + moderator_json_format("translation")
    ),
    "judge_prompt_last1": (
        "Affirmative side argued:\n##aff_ans##\n\nNegative side argued:\n##neg_ans##\n\n"
        "Which candidate translations do we have? List them without reasons."
    ),
    "judge_prompt_last2": (
        "So, what is the correct ##tgt_lng## translation of the following ##src_lng## text: "
        '"##source##"? Summarize your reasons and give the final translation you consider correct. '
        "Reply with JSON only, in this format: " + judge_json_format("translation")
    ),
    "format_reminder": _FORMAT_REMINDER,
}


# The prompt texts of the original MAD code (Skytliang/Multi-Agents-Debate: config4all.json for
# question answering, config4tran.json for translation), reproduced for the reference preset.
# Question answering has no baseline agent there: the affirmative side answers the topic itself.
REFERENCE_QA_PROMPTS: dict[str, str] = {
    "base_prompt": "##debate_topic##",
    "player_meta_prompt": (
        "You are a debater. Hello and welcome to the debate. It's not necessary to fully agree "
        "with each other's perspectives, as our objective is to find the correct answer.\n"
        "The debate topic is stated as follows:\n"
        "##debate_topic##"
    ),
    "moderator_meta_prompt": (
        "You are a moderator. There will be two debaters involved in a debate. They will present "
        'their answers and discuss their perspectives on the following topic: "##debate_topic##"\n'
        "At the end of each round, you will evaluate answers and decide which is correct."
    ),
    "affirmative_prompt": "##debate_topic##",
    "negative_prompt": ("##aff_ans##\n\nYou disagree with my answer. Provide your answer and reasons."),
    "debate_prompt": (
        "##oppo_ans##\n\nDo you agree with my perspective? Please provide your reasons and answer."
    ),
    "moderator_prompt": (
        "Now the ##round## round of debate for both sides has ended.\n"
        "\n"
        "Affirmative side arguing:\n"
        "##aff_ans##\n"
        "\n"
        "Negative side arguing: ##neg_ans##\n"
        "\n"
        "You, as the moderator, will evaluate both sides' answers and determine if there is a clear "
        "preference for an answer candidate. If so, please summarize your reasons for supporting "
        "affirmative/negative side and give the final answer that you think is correct, and the "
        "debate will conclude. If not, the debate will continue to the next round. Now please output "
        'your answer in json format, with the format as follows: {"Whether there is a preference": '
        '"Yes or No", "Supported Side": "Affirmative or Negative", "Reason": "", "debate_answer": '
        '""}'
    ),
    "judge_prompt_last1": (
        "Affirmative side arguing: ##aff_ans##\n"
        "\n"
        "Negative side arguing: ##neg_ans##\n"
        "\n"
        "Now, what answer candidates do we have? Present them without reasons."
    ),
    "judge_prompt_last2": (
        "Therefore, ##debate_topic##\n"
        "Please summarize your reasons and give the final answer that you think is correct. Now "
        'please output your answer in json format, with the format as follows: {"Reason": "", "debate_answer": '
        '""}'
    ),
    "format_reminder": _FORMAT_REMINDER,
}

REFERENCE_TRANSLATION_PROMPTS: dict[str, str] = {
    "base_prompt": "Translate the following text from ##src_lng## to ##tgt_lng##: ##source##",
    "player_meta_prompt": (
        "You are a debater. Hello and welcome to the translation competition, which will be conducted "
        "in a debate format. It's not necessary to fully agree with each other's perspectives, "
        "as our objective is to find the correct translation.\n"
        "The debate topic is stated as follows:\n"
        'What is the correct ##tgt_lng## translation of the following ##src_lng## text: "##source##"'
    ),
    "moderator_meta_prompt": (
        "You are a moderator. There will be two debaters involved in a translation debate competition. "
        "They will present their translations and discuss their perspectives on the correct ##tgt_lng## "
        'translation of the given ##src_lng## text: "##source##". At the end of each round, you '
        "will evaluate the translation candidates based on the following criteria:\n"
        "1. Accuracy: The degree to which the translation captures the original meaning of the "
        "source text.\n"
        "2. Fluency: The readability and naturalness of the translation in ##tgt_lng##."
    ),
    "affirmative_prompt": (
        "You think the correct translation is: ##base_translation## Restate the translation and "
        "provide your reasons."
    ),
    "negative_prompt": (
        "##aff_ans##\n\nYou disagree with my translation. Provide your translation and reasons."
    ),
    "debate_prompt": (
        "##oppo_ans##\n\nDo you agree with my perspective? Please provide your reasons and translation."
    ),
    "moderator_prompt": (
        "Now the ##round## round of debate for both sides has ended.\n"
        "\n"
        "Affirmative side arguing:\n"
        "##aff_ans##\n"
        "\n"
        "Negative side arguing: ##neg_ans##\n"
        "\n"
        "You, as the moderator, will evaluate both sides' translations and determine if there is "
        "a clear preference for a translation candidate. If so, please summarize your reasons for "
        "supporting affirmative/negative side and give the final translation that you think is "
        "correct, and the debate will conclude. If not, the debate will continue to the next round. "
        'Now please output your answer in json format, with the format as follows: {"Whether there '
        'is a preference": "Yes or No", "Supported Side": "Affirmative or Negative", "Reason": '
        '"", "debate_translation": ""}'
    ),
    "judge_prompt_last1": (
        "Affirmative side arguing: ##aff_ans##\n"
        "\n"
        "Negative side arguing: ##neg_ans##\n"
        "\n"
        "Now, what translation candidates do we have? Present them without reasons."
    ),
    "judge_prompt_last2": (
        "Therefore, what is the correct ##tgt_lng## translation of the following ##src_lng## text: "
        '"##source##". Please summarize your reasons and give the final translation that you think '
        "is correct. Now please output your answer in json format, with the format as follows: "
        '{"Reason": "", "debate_translation": ""}'
    ),
    "format_reminder": _FORMAT_REMINDER,
}

PROMPT_KEYS = frozenset(QA_PROMPTS)
# Data fields of the original MAD prompt files: accepted in an override mapping and ignored,
# so the paper's config4all.json / config4tran.json can be passed as they are.
_ORIGINAL_DATA_KEYS = frozenset(
    {
        "debate_topic",
        "base_answer",
        "debate_answer",
        "source",
        "reference",
        "base_translation",
        "debate_translation",
        "src_lng",
        "tgt_lng",
    }
)


def prompt_templates(
    mode: str, overrides: Mapping[str, str] | None = None, *, reference: bool = False
) -> dict[str, str]:
    """The mode's templates (masgraph's, or the original's with `reference`) with `overrides`
    applied (unknown prompt names are an error)."""
    if mode not in ("qa", "translation"):
        raise ValueError(f"unknown debate mode {mode!r}: use 'qa' or 'translation'")
    if reference:
        templates = dict(REFERENCE_TRANSLATION_PROMPTS if mode == "translation" else REFERENCE_QA_PROMPTS)
    else:
        templates = dict(TRANSLATION_PROMPTS if mode == "translation" else QA_PROMPTS)
    for key, value in (overrides or {}).items():
        if key in _ORIGINAL_DATA_KEYS:
            continue
        if key not in PROMPT_KEYS:
            raise ValueError(
                f"unknown debate prompt {key!r}; known prompts: {', '.join(sorted(PROMPT_KEYS))}"
            )
        templates[key] = str(value)
    return templates


_PLACEHOLDER = re.compile(r"##([A-Za-z_]+)##")


def fill(template: str, **values: str) -> str:
    """Replace `##name##` placeholders in one pass (inserted text is never re-scanned).

    Placeholders without a value stay as they are, so a template can be filled in stages.
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


def fill_task(templates: Mapping[str, str], task: Mapping[str, Any], base: str | None) -> dict[str, str]:
    """Every template with the task's fields filled in (and the base answer, once there is one)."""
    values = {
        "debate_topic": task.get("debate_topic", ""),
        "source": task.get("source", ""),
        "src_lng": task.get("src_lng", ""),
        "tgt_lng": task.get("tgt_lng", ""),
    }
    if base is not None:
        values.update(base_answer=base, base_translation=base)
    return {key: fill(template, **values) for key, template in templates.items()}


def format_reminder(prompts: Mapping[str, str], error: str, json_format: str) -> str:
    """The follow-up to a reply that could not be read as the requested JSON."""
    return fill(prompts["format_reminder"], error=error, json_format=json_format)


_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def round_name(number: int) -> str:
    """'first', 'second', ... as the moderator prompt says it ('11th' beyond ten)."""
    if 1 <= number <= len(_ORDINALS):
        return _ORDINALS[number - 1]
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


LANGUAGE_NAMES: dict[str, str] = {
    "zh": "Chinese",
    "en": "English",
    "de": "German",
    "fr": "French",
    "ja": "Japanese",
    "ko": "Korean",
    "es": "Spanish",
    "ru": "Russian",
    "it": "Italian",
    "pt": "Portuguese",
    "ar": "Arabic",
    "cs": "Czech",
    "nl": "Dutch",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "th": "Thai",
    "hi": "Hindi",
    "pl": "Polish",
    "sv": "Swedish",
    "uk": "Ukrainian",
    "id": "Indonesian",
    "he": "Hebrew",
    "fi": "Finnish",
    "ro": "Romanian",
    "hu": "Hungarian",
    "da": "Danish",
    "no": "Norwegian",
    "el": "Greek",
    "fa": "Persian",
    "bn": "Bengali",
    "ms": "Malay",
    "ta": "Tamil",
    "ur": "Urdu",
    "et": "Estonian",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "kk": "Kazakh",
    "gu": "Gujarati",
    "is": "Icelandic",
    "km": "Khmer",
    "ps": "Pashto",
    "ha": "Hausa",
    "iu": "Inuktitut",
    "bg": "Bulgarian",
    "hr": "Croatian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "ca": "Catalan",
}


def language_name(language: str | None) -> str:
    """A language's English name from an ISO 639-1 code ('zh', 'zh-CN', 'en_US'); names pass through."""
    if not language:
        return ""
    text = language.strip()
    code = re.split(r"[-_]", text, maxsplit=1)[0].lower()
    return LANGUAGE_NAMES.get(code, text)
