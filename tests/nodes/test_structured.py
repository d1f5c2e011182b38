"""Structured replies through a server-like chat model: the schema sent, the value read, the fall back
when a server refuses a response_format, and schemas turned into grammars."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from latent_backend.grammar_spec import GrammarSpec
from nodes.chat_models import ChatModelConfig, register_chat_model
from nodes.structured import ask_structured, grammar_of
from tests.fakes import ScriptedChatModel

MESSAGES = ("You vote.", "Does the report match your view? YES or NO")
VOTE = GrammarSpec.choice(["YES", "NO"])


class Refusal(Exception):
    """What an OpenAI client raises for a request the server rejects (status and body in the text)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"Error code: {status_code} - {message}")
        self.status_code = status_code


class PickyServer(ScriptedChatModel):
    """A server that rejects the response_format types listed in `refuse` with `error`."""

    refuse: frozenset[str] = frozenset()
    error: Any = None

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        kind = (kwargs.get("response_format") or {}).get("type")
        if kind in self.refuse:
            with self._lock:
                self._calls.append(list(messages))
                self._formats.append(kwargs.get("response_format"))
            raise self.error
        return super()._generate(messages, stop, run_manager, **kwargs)


def served(model: ScriptedChatModel) -> ChatModelConfig:
    name = f"structured-{uuid.uuid4().hex[:8]}"
    register_chat_model(name, model)
    return ChatModelConfig(model=name)


def test_a_choice_is_asked_as_a_json_schema_and_read_back_unwrapped() -> None:
    model = ScriptedChatModel(['{"answer": "NO"}', "NO, not at all"])
    config = served(model)
    reply = ask_structured(config, MESSAGES, VOTE, agent="voter_1", role="voter", stage="vote")
    assert (reply.value, reply.via, reply.error) == ("NO", "json_schema", None)
    assert reply.trace["structured"] == "json_schema" and reply.trace["stage"] == "vote"
    assert reply.trace["output"] == '{"answer": "NO"}'
    assert model.response_formats == [VOTE.to_openai_response_format()]
    # A reply that is not the JSON asked for keeps its text for the caller's free-text parser.
    unread = ask_structured(config, MESSAGES, VOTE, agent="voter_1", role="voter")
    assert (unread.value, unread.text) == (None, "NO, not at all")
    assert unread.error and "not JSON" in unread.error


def test_a_refused_response_format_steps_down_once_and_is_logged_once(caplog) -> None:
    refusal = Refusal(422, "{'detail': [{'loc': ['body', 'response_format', 'type'], 'msg': 'bad'}]}")
    model = PickyServer(lambda _: '{"answer": "YES"}', refuse=frozenset({"json_schema"}), error=refusal)
    config = served(model)
    with caplog.at_level(logging.WARNING, logger="masgraph.structured"):
        first = ask_structured(config, MESSAGES, VOTE, agent="v", role="voter")
        second = ask_structured(config, MESSAGES, VOTE, agent="v", role="voter")
    assert (first.value, first.via, second.value, second.via) == ("YES", "json_object", "YES", "json_object")
    formats = model.response_formats
    assert [f["type"] for f in formats] == ["json_schema", "json_object", "json_object"]
    assert formats[1] == {"type": "json_object", "schema": VOTE.server_schema()}
    assert len(caplog.records) == 1 and "json_object" in caplog.records[0].getMessage()


def test_a_server_refusing_both_forms_gets_plain_requests() -> None:
    refusal = Refusal(400, "response_format is not supported")
    model = PickyServer(lambda _: "YES", refuse=frozenset({"json_schema", "json_object"}), error=refusal)
    config = served(model)
    replies = [ask_structured(config, MESSAGES, VOTE, agent="v", role="voter") for _ in range(2)]
    assert [(r.value, r.via, r.text) for r in replies] == [(None, "text", "YES")] * 2
    assert [f and f["type"] for f in model.response_formats] == ["json_schema", "json_object", None, None]


def test_other_bad_requests_are_not_mistaken_for_a_refusal() -> None:
    model = PickyServer(refuse=frozenset({"json_schema"}), error=Refusal(400, "prompt too long"))
    with pytest.raises(Refusal):
        ask_structured(served(model), MESSAGES, VOTE, agent="v", role="voter")


class Verdict(BaseModel):
    reason: str
    answer: str


def test_schemas_in_every_accepted_form_give_one_grammar() -> None:
    schema = Verdict.model_json_schema()
    spec = GrammarSpec.json_schema(schema)
    forms = [Verdict, schema, {"name": "verdict", "schema": schema}, spec.to_openai_response_format(), spec]
    assert {grammar_of(form) for form in forms} == {spec}
    with pytest.raises(TypeError):
        grammar_of("a string")


class LlamaCppLikeServer:
    """An OpenAI-compatible endpoint that answers like llama-cpp-python's server: a 500 for a
    `json_schema` response_format, the `json_object` form honoured; `finish` is every reply's
    finish_reason."""

    def __init__(self, reply: str, finish: str = "stop") -> None:
        import http.server
        import json
        import threading

        self.formats: list[Any] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kind = (body.get("response_format") or {}).get("type")
                owner.formats.append(kind)
                if kind == "json_schema":
                    status, payload = 500, {"error": {"message": "response_format.type: Input should be "
                                                      "'text' or 'json_object'"}}  # fmt: skip
                else:
                    status, payload = 200, {
                        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": finish,
                                     "message": {"role": "assistant", "content": reply}}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
                    }  # fmt: skip
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("reply", "finish", "value"), [('{"answer": "YES"}', "stop", "YES"), ('{"answer": "Y', "length", None)]
)
def test_a_real_openai_client_steps_down_to_json_object_and_a_cut_reply_is_unparsed(reply, finish, value):
    server = LlamaCppLikeServer(reply, finish)
    try:
        config = ChatModelConfig(model=f"llama-{uuid.uuid4().hex[:6]}", base_url=server.url, timeout=30.0)
        answer = ask_structured(config, MESSAGES, VOTE, agent="voter_1", role="voter")
    finally:
        server.close()
    assert server.formats == ["json_schema", "json_object"]
    assert (answer.value, answer.via, answer.text) == (value, "json_object", reply)
    assert (answer.error is None) == (value is not None)
