"""MedAgents reply parsers: domains, the report's sections, votes, advice, the answer letter.

Strict on purpose: the original code guessed where a reply was unreadable (a failed call's
"ERROR." placeholder read as answer "E" or as a yes vote; a missing section crashed the run). Here an
unreadable reply is reported as such (None or a problem string) for the graph to record as a
failure, never guessed into an answer or a vote.

The `*_shape` functions give the shapes that structured output asks for (domain lists as JSON arrays
of exactly N names, votes as one word, letters as "Option: X"); what comes back goes through the
same parsers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from latent_backend.grammar_spec import GrammarSpec

# Used to pad a domain list the model left short; broad fields that suit any clinical question.
GENERIC_DOMAINS: tuple[str, ...] = (
    "General Medicine",
    "Internal Medicine",
    "Emergency Medicine",
    "Family Medicine",
    "Pathology",
    "Pharmacology",
    "Clinical Diagnostics",
    "Preventive Medicine",
)


# ---------------------------------------------------------------- domains

_FIELD_LINE = re.compile(r"medical\s+fields?\s*[*_]*\s*:\s*[*_]*(?P<rest>[^\n]*)", re.IGNORECASE)
# The format's own placeholders ("Field1") echoed back are not specialties.
_PLACEHOLDER = re.compile(r"^(field\s*\d*|\[?\s*field\s*\d*\s*\]?|\.\.\.|etc\.?)$", re.IGNORECASE)


@dataclass
class DomainParse:
    domains: list[str]
    problems: list[str] = field(default_factory=list)


def _clean_domain(raw: str) -> str:
    text = raw.strip().strip("*_`'\"[]()<>").strip()
    text = re.sub(r"^\d+[.)]\s*", "", text)  # "1. Cardiology"
    return re.sub(r"\s+", " ", text).strip(" .,;:").strip()


def parse_domains(reply: str | Sequence[str], count: int) -> DomainParse:
    """Exactly `count` distinct fields from a "Medical Field: A | B | ..." reply (or a list of names).

    Duplicates are dropped case-insensitively (the original keyed analyses by domain, so a
    repeated field silently overwrote an expert); extra fields are trimmed; a short list is padded
    with generic fields. Every deviation is listed in `problems` for the graph to record.
    """
    problems: list[str] = []
    if not isinstance(reply, str):
        parts = [str(part) for part in reply]
    elif matches := list(_FIELD_LINE.finditer(reply or "")):
        # The last such line: models sometimes restate the format before answering.
        line = next((m.group("rest") for m in reversed(matches) if m.group("rest").strip()), "")
        parts = line.split("|") if "|" in line else re.split(r"[,;]", line)
    else:
        problems.append("no 'Medical Field:' line in the reply")
        parts = []

    domains: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for part in parts:
        name = _clean_domain(part)
        if not name or _PLACEHOLDER.match(name):
            continue
        if name.casefold() in seen:
            duplicates += 1
            continue
        seen.add(name.casefold())
        domains.append(name)
    if duplicates:
        problems.append(f"dropped {duplicates} duplicate field(s)")
    if len(domains) > count:
        problems.append(f"trimmed {len(domains) - count} extra field(s)")
        domains = domains[:count]
    if len(domains) < count:
        missing = count - len(domains)
        problems.append(f"padded {missing} missing field(s) with generic ones")
        for generic in GENERIC_DOMAINS:
            if len(domains) == count:
                break
            if generic.casefold() not in seen:
                seen.add(generic.casefold())
                domains.append(generic)
        number = 2
        while len(domains) < count:  # more fields requested than generic names: number them
            domains.append(f"General Medicine {number}")
            number += 1
    return DomainParse(domains, problems)


def domains_shape(count: int, max_tokens: int) -> GrammarSpec:
    """A JSON array of exactly `count` field names, each short enough for `max_tokens` to hold all."""
    length = max(12, min(40, (3 * max_tokens - 2) // count - 4))
    name = {"type": "string", "minLength": 3, "maxLength": length, "pattern": r"^[A-Za-z][A-Za-z &,/()-]*$"}
    return GrammarSpec.json_schema({"type": "array", "items": name, "minItems": count, "maxItems": count})


# ---------------------------------------------------------------- synthesized report

_LABEL_DECOR = r"[*_#>\s]*"
_KEY_KNOWLEDGE = re.compile(_LABEL_DECOR + r"\bkey\s+knowledge\b[*_]*\s*:[*_]*", re.IGNORECASE)
_TOTAL_ANALYSIS = re.compile(_LABEL_DECOR + r"\btotal\s+analysis\b[*_]*\s*:[*_]*", re.IGNORECASE)


@dataclass
class ReportParse:
    """The two sections of a synthesizer/reviser reply; None where the label is missing."""

    key_knowledge: str | None
    total_analysis: str | None


def parse_report(text: str) -> ReportParse:
    """Split "Key Knowledge: ... Total Analysis: ..." (labels may carry markdown, any order)."""
    text = text or ""
    kk = _KEY_KNOWLEDGE.search(text)
    ta = _TOTAL_ANALYSIS.search(text)
    key_knowledge = total_analysis = None
    if ta:
        end = kk.start() if kk and kk.start() > ta.end() else len(text)
        total_analysis = text[ta.end() : end].strip()
    if kk:
        end = ta.start() if ta and ta.start() > kk.end() else len(text)
        key_knowledge = text[kk.end() : end].strip()
    return ReportParse(key_knowledge, total_analysis)


# ---------------------------------------------------------------- consultation

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_vote(text: str) -> str | None:
    """ "yes", "no", or None when the reply holds no clear whole-word answer.

    Whole words only ("diagnostic" and "not" hold no "no"); a reply that opens with its answer is
    read from that word; otherwise it must contain only one of the two. Anything else - including
    an "ERROR." placeholder - is None, never a silent "yes".
    """
    words = re.findall(r"[a-z]+", (text or "").lower())
    if words and words[0] in ("yes", "no"):
        return words[0]
    found = {m.group(1).lower() for m in _YES_NO.finditer(text or "")}
    return found.pop() if len(found) == 1 else None


VOTE_WORDS = ("YES", "NO", "Yes", "No", "yes", "no")  # every casing: the model picks its own


def vote_shape() -> GrammarSpec:
    return GrammarSpec.choice(VOTE_WORDS)


_REVISIONS_LABEL = re.compile(r"^[*_#\s]*revisions?\b[*_]*\s*:[*_]*\s*", re.IGNORECASE)


def clean_advice(text: str) -> str:
    """The advice without its "Revisions:" label."""
    return _REVISIONS_LABEL.sub("", (text or "").strip(), count=1).strip()


# ---------------------------------------------------------------- decision

_LETTER_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Most explicit first; within one pattern the last match wins (a model restating its choice).
    # Letters must be capitals: in prose "a" is an article ("the answer is a bit unclear").
    re.compile(r"\\boxed\{\s*\(?([A-Z])\)?\s*\}"),
    re.compile(r"\b(?i:option|answer|choice)\s*[*_]*\s*:\s*[*_]*\s*\(?\[?([A-Z])\]?\)?(?![A-Za-z])"),
    re.compile(r"\b(?i:answer\s+is)\s*:?\s*[*_]*\s*(?i:option\s+)?\(?([A-Z])\)?(?![A-Za-z])"),
    re.compile(r"\*\*\s*\(?([A-Z])\)?[.)]?\s*\*\*"),
    re.compile(r"^\W*\(([A-Z])\)"),
    # A reply that is just the letter, or opens with "C." / "C)" / "C:".
    re.compile(r"^\W*([A-Z])(?:[.):\]]?\s*$|[.):\]]\s)"),
)


_ALTERNATIVE = re.compile(r"\s*[)\]*]*\s*(?i:or|and|/|,|&)\s*[(\[*]*\s*(?i:option\s+)?[A-Z](?![A-Za-z])")


def _own_choice_letter(text: str, letters: Sequence[str]) -> str | None:
    """Fallback parser for checkouts without the shared one; as strict ("A or B" is None)."""
    valid = {letter.upper() for letter in letters}
    stripped = (text or "").strip()
    for pattern in _LETTER_PATTERNS:
        found = list(pattern.finditer(stripped))
        if found:
            last = found[-1]
            if _ALTERNATIVE.match(stripped, last.end(1)):
                return None
            return last.group(1) if last.group(1) in valid else None
    return None


try:  # the shared extractor, so every method reads letters alike
    from tasks.answers import extract_choice_letter as _shared_choice_letter
except ImportError:  # pragma: no cover - early checkouts without the tasks package
    try:
        from tasks.graders import extract_choice_letter as _shared_choice_letter
    except ImportError:
        _shared_choice_letter = None


def letter_shape(letters: Sequence[str], *, reasoning: bool = False, reserve: int = 8) -> GrammarSpec:
    """One option letter ("Option: B" or "B"); with `reasoning`, any text ending in "Option: B",
    switching to that ending when only `reserve` tokens are left."""
    letter = "[" + "".join(re.escape(x) for x in letters) + "]"
    if not reasoning:
        return GrammarSpec.regex(f"(?:Option: )?{letter}")
    ending = GrammarSpec.regex(rf"\s*Option: {letter}")
    return GrammarSpec.regex(rf"[\s\S]*Option: {letter}").with_tail(ending, reserve)


def parse_answer_letter(text: str, letters: Sequence[str]) -> str | None:
    """The chosen option letter, or None unless the reply states one of `letters` clearly.

    "ERROR." or any other text without a clear letter is None: a failed call is never answer "E".
    """
    valid = "".join(letter.upper() for letter in letters)
    if _shared_choice_letter is not None:
        letter = _shared_choice_letter(text, valid)
        return letter if letter is not None and letter in valid else None
    return _own_choice_letter(text, valid)
