"""Reading answers out of model text: boxed content, numbers, option letters, code blocks.

Every extractor returns None when the text holds no clear answer. A grader never guesses: a
missing answer is wrong, and so is an ambiguous one ("A or B"). None of this evaluates model
output; numbers are parsed with `fractions.Fraction`, never `eval`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

__all__ = [
    "extract_boxed",
    "extract_choice_letter",
    "extract_code_block",
    "extract_number",
    "normalize_answer",
    "numbers_equal",
    "parse_number",
]

# -- \boxed{...} ---------------------------------------------------------------------------------
_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")


def extract_boxed(text: str | None) -> str | None:
    """The content of the last complete `\\boxed{...}` (nested braces handled), stripped.

    A box left unclosed (e.g. generation cut off) is skipped in favour of the previous complete
    one. Returns None when there is no complete box; "" for an empty box.
    """
    if not text:
        return None
    for start in reversed([m.end() for m in _BOX_START.finditer(text)]):
        content = _balanced(text, start)
        if content is not None:
            return content.strip()
    return None


def _balanced(text: str, start: int) -> str | None:
    """Text from `start` up to the brace closing the one just before it, or None if unclosed."""
    depth = 1
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":  # \{ and \} are literal braces in LaTeX, not grouping
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


# -- numbers ------------------------------------------------------------------------------------
# A minus sign only counts when it is not a hyphen or subtraction ("x-2", "5-3" keep 2 and 3 positive).
_SIGN = r"(?:(?<![\w)\]}])-)?"
_PLAIN = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(
    rf"(?P<frac>{_SIGN}\\[dt]?frac\s*\{{\s*(?P<num>-?(?:{_PLAIN}))\s*\}}\s*\{{\s*(?P<den>-?(?:{_PLAIN}))\s*\}})"
    rf"|(?P<plain>{_SIGN}(?:{_PLAIN})(?:\s*/\s*(?:{_PLAIN}))?)"
)


def _prenormalize(text: str) -> str:
    # LaTeX spellings of thousands separators and spacing inside numbers: 1{,}000, 1\,000, 1\!000.
    return text.replace("{,}", ",").replace("\\!", "").replace("\\,", "").replace("\\%", "%")


def _clean(match: re.Match[str]) -> str:
    if match.group("frac"):
        sign = "-" if match.group("frac").startswith("-") else ""
        return f"{sign}{match.group('num')}/{match.group('den')}".replace(",", "")
    return re.sub(r"[\s,]", "", match.group("plain"))


def extract_number(text: str | None) -> str | None:
    """The answer number of a reply, as written (commas dropped, `\\frac{a}{b}` as "a/b").

    With a `\\boxed{}`: the first number inside the last box (None if the box has none).
    Without a box: the last number in the text.
    """
    if not text:
        return None
    box = extract_boxed(text)
    if box is not None:
        match = _NUMBER.search(_prenormalize(box))
        return _clean(match) if match else None
    matches = list(_NUMBER.finditer(_prenormalize(text)))
    return _clean(matches[-1]) if matches else None


def parse_number(value: Any) -> Fraction | None:
    """`value` as an exact number when the whole of it is one number, else None.

    Accepts "1,000", "$5", "5.0", "-2.5", "3/2", "\\frac{3}{2}", "$\\dfrac{3}{2}$" and "48%" (= 0.48).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Fraction):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))  # via str: 0.1 stays 1/10, not its binary approximation
    text = _prenormalize(str(value)).strip()
    text = re.sub(r"^\\text\{(.*)\}$", r"\1", text).strip()
    text = text.replace("\\$", "$").strip("$ ").rstrip(".").strip()
    percent = text.endswith("%")
    if percent:
        text = text[:-1].strip()
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    cleaned = _clean(match)
    numerator, _, denominator = cleaned.partition("/")
    try:
        number = Fraction(numerator)
        if denominator:
            number /= Fraction(denominator)
    except (ValueError, ZeroDivisionError):
        return None
    return number / 100 if percent else number


def numbers_equal(a: Any, b: Any) -> bool:
    """True when `a` and `b` are each a single number and equal exactly ("3/2" == "1.5" == "\\frac{3}{2}")."""
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y


# -- option letters -----------------------------------------------------------------------------
def extract_choice_letter(text: str | None, letters: str = "ABCDE") -> str | None:
    """The option letter a reply clearly picks, upper-cased, or None.

    In order: the last `\\boxed{}` holding a letter (case-insensitive); the last declaration such
    as "the answer is C", "Answer: **C**", "Option: C", "correct option is (C)", "C is correct";
    a reply that is just the letter ("C", "(C).", "**C**", "C. Colorectal cancer"); a letter set
    off as "(C)", "[C]" or "**C**" when exactly one distinct such letter occurs. Outside a box
    only capital letters count (so the article in "answer is a mix" is not option A), and a
    declaration naming two letters ("A or B") makes the answer None rather than a guess.
    `letters` may also be digits, e.g. "12" for Winogrande.
    """
    if not text:
        return None
    letters = "".join(dict.fromkeys(letters.upper()))
    if not letters:
        return None
    box = extract_boxed(text)
    if box is not None:
        found = _letter_of_fragment(box, letters, ignore_case=True)
        if found:
            return found
    patterns = _letter_patterns(letters)
    declared = _declared_letter(text, patterns)
    if declared is not _NO_DECLARATION:
        return declared  # type: ignore[return-value]
    found = _letter_of_fragment(text, letters, ignore_case=False)
    if found:
        return found
    delimited = {m.group(1) for m in patterns.delimited.finditer(text)}
    return delimited.pop() if len(delimited) == 1 else None


_NO_DECLARATION = object()


class _LetterPatterns:
    """The regular expressions for one set of option letters (compiled once per set)."""

    def __init__(self, letters: str) -> None:
        cls = f"[{re.escape(letters)}]"  # case-sensitive on purpose: see extract_choice_letter
        end = r"(?![A-Za-z0-9])"
        # "answer is", "final answer:", "Option: ", "correct choice would be". A bare "Option A" is
        # not a declaration: "Option A is wrong because..." is discussion, not an answer.
        keyword = (
            r"(?i:\b(?:answer|option|choice)s?\b)(?:\s*\*\*)?"
            r"(?:\s*(?i:is|would\s+be|should\s+be|will\s+be|=)(?:\s*[:：])?|\s*[:：=])"
        )
        lead = r"[\s*_(\[\"'`]*(?:(?i:option|choice)\s*[(\[]?\s*\**)?"
        self.declaration = re.compile(rf"{keyword}{lead}({cls}){end}")
        self.is_correct = re.compile(
            rf"(?<![A-Za-z0-9])[(\[*]*({cls})[)\]*]*\s+(?i:is\s+(?:the\s+)?(?:correct|right|best))\b"
        )
        self.ambiguous = re.compile(
            rf"^[)\]*.\s]*(?i:or|and|/|,|&)\s*[(\[*]*\s*(?:(?i:option|choice)\s*)?{cls}{end}"
        )
        self.delimited = re.compile(rf"(?:\(|\[|\*\*)({cls})(?:\)|\]|\*\*)")
        self.only = re.compile(
            rf"[\s*_(\[\"'`]*(?:(?i:answer|option|choice)\s*[:：]?\s*)?[(\[*]*({cls})[)\]*]*\s*[.:]?\s*"
        )
        self.leading = re.compile(rf"\s*[(\[*]*({cls})(?:[)\]]|[.:](?!\d))\**(?:\s+\S|\s*$)")


@lru_cache(maxsize=32)
def _letter_patterns(letters: str) -> _LetterPatterns:
    return _LetterPatterns(letters)


def _declared_letter(text: str, patterns: _LetterPatterns) -> object:
    """The letter of the last declaration in `text`; None if it is ambiguous; a sentinel if none."""
    hits: list[tuple[int, int, str]] = []
    for match in patterns.declaration.finditer(text):
        if match.group(1) == "A" and re.match(r"\s+[a-z]", text[match.end() :]):
            continue  # "Answer: A combination of..." - the article, not option A
        hits.append((match.start(1), match.end(), match.group(1)))
    hits += [(m.start(1), m.end(1), m.group(1)) for m in patterns.is_correct.finditer(text)]
    if not hits:
        return _NO_DECLARATION
    _, end, letter = max(hits)
    return None if patterns.ambiguous.match(text[end:]) else letter


def _letter_of_fragment(fragment: str, letters: str, *, ignore_case: bool) -> str | None:
    """A letter when the whole fragment is one ("C", "(c)", "Option: C") or opens "C. text"."""
    plain = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", r"\1", fragment).strip()
    patterns = _letter_patterns(letters)
    if len(plain.strip("()[]*.: ")) == 1:  # a reply that is only "c" is clear in any case
        ignore_case = True
    candidate = plain.upper() if ignore_case else plain
    match = patterns.only.fullmatch(candidate)
    if match:
        return match.group(1)
    # "C. Colorectal cancer" - unless other lines open with other letters too: that is a list of
    # the options being discussed, not an answer.
    openings = {m.group(1) for line in candidate.splitlines() if (m := patterns.leading.match(line))}
    match = patterns.leading.match(candidate)
    if match and openings == {match.group(1)} and not patterns.ambiguous.match(candidate[match.end(1) :]):
        return match.group(1)
    return None


# -- code ---------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code_block(text: str | None) -> str | None:
    """The body of the last closed ```python fenced block, or None (unfenced text is not code)."""
    if not text:
        return None
    blocks = [b for b in _FENCE.findall(text) if b.strip()]
    return blocks[-1] if blocks else None


# -- free text ----------------------------------------------------------------------------------
def normalize_answer(text: Any) -> str:
    """A short answer in comparable form: lower case, no LaTeX text/dollar wrappers, single spaces,
    no surrounding quotes or final full stop."""
    value = _prenormalize(str(text))
    value = re.sub(r"\\(?:text|textbf|mathrm)\s*\{([^{}]*)\}", r"\1", value)
    value = value.replace("\\$", "$").strip().strip("$").strip()
    value = value.strip("\"'`*").strip().rstrip(".").strip()
    return re.sub(r"\s+", " ", value).casefold()
