"""A test plugin (loaded by `MASGRAPH_PLUGINS=tests.studio_plugin`): scripted chat models that every
process of a test (the CLI, `langgraph dev`) can select by name."""

from __future__ import annotations

import json

from nodes.chat_models import register_chat_model
from tests.fakes import ScriptedChatModel

MODEL = "studio-fake"


def reply(messages) -> str:
    """Debaters argue for 2; a moderator (its prompt asks for JSON) ends the debate with 2."""
    prompt = "\n".join(m.text for m in messages)
    if "moderator of a debate" in prompt or "JSON" in prompt:
        return json.dumps(
            {"Whether there is a preference": "Yes", "Supported Side": "Affirmative",
             "Reason": "Both sides agree.", "debate_answer": "2"}
        )  # fmt: skip
    return "I say the answer is 2, because 1 + 1 = 2."


register_chat_model(MODEL, ScriptedChatModel(reply))
