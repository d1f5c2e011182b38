"""Answer extraction as the original LatentMAS and MedAgents code grades (`grading="reference"`).

Our implementation of the rules those repositories apply, so a run can be scored exactly as the
paper's numbers were:
- boxed answers (every non-code task): the content of the *last* `\\boxed{...}` up to its first
  closing brace (nested braces are not followed: `\\boxed{\\text{C}}` reads as `\\text{C`), then
  the first number in it, else that content; without a box, the last number anywhere in the text;
  lower-cased and stripped. A task compares that string with its gold, also lower-cased, for
  equality ("18.0" is not "18"); AIME compares them as integers, and a prediction that is not an
  integer is wrong.
- code: the last ```` ```python ... ``` ```` block (tag case-insensitive, no newline needed after
  it), stripped; the program is that code, a newline, and the tests.
- an option letter a method has already read (MedAgents) is right when it equals the gold letter.
Model text is only matched with regular expressions here, never evaluated.
"""

from __future__ import annotations

import re

__all__ = ["GRADINGS", "reference_boxed_answer", "reference_code_block", "reference_integer_equal"]

GRADINGS = ("lenient", "reference")

_BOX = re.compile(r"\\boxed\{([^}]*)\}")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_PYTHON_BLOCK = re.compile(r"```python(.*?)```", re.DOTALL | re.IGNORECASE)


def reference_boxed_answer(text: str | None) -> str | None:
    """The answer string the original code reads from a reply, normalized; None when it finds none."""
    text = text or ""
    boxes = _BOX.findall(text)
    if boxes:
        content = boxes[-1]
        number = _NUMBER.search(content)
        found = number.group(0) if number else content.strip()
    else:
        numbers = _NUMBER.findall(text)
        if not numbers:
            return None
        found = numbers[-1]
    return found.strip().lower()


def reference_code_block(text: str | None) -> str | None:
    """The last ```python block of a reply, stripped (None without one)."""
    blocks = _PYTHON_BLOCK.findall(text or "")
    return blocks[-1].strip() if blocks else None


def reference_integer_equal(prediction: str, gold: object) -> bool:
    """AIME's rule: both sides parse as Python integers and are equal; anything else is wrong."""
    try:
        return int(prediction) == int(str(gold).strip())
    except ValueError:
        return False
