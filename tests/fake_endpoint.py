"""A fake OpenAI-compatible chat server on 127.0.0.1 that counts the requests it answers.

Processes started by a test or a benchmark call it like a real server (`--base-url URL --model
fake`), so model calls made by several processes can be counted in one place. It answers
POST /v1/chat/completions after a fixed `delay` (standing in for generation time) with a
deterministic reply: a fixed text, or `reply(messages)` computed from the request alone.

    with FakeEndpoint(delay=0.2, reply=arithmetic_reply) as endpoint:
        endpoint.url, endpoint.calls (request text -> count), endpoint.total

    python -m tests.fake_endpoint --delay 0.2 --port 8001   # one for the command line
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, Any]]], str]
SUM_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


def arithmetic_reply(messages: list[dict[str, Any]]) -> str:
    """For "What is A + B?": the sum, except when it is a multiple of 3 (one plus it), boxed. So the
    answers depend on the item, some are wrong, and every agent of an item says the same."""
    text = "\n".join(str(m.get("content")) for m in messages)
    found = SUM_QUESTION.search(text)
    if found is None:
        return "\\boxed{0}"
    total = int(found.group(1)) + int(found.group(2))
    return f"The answer is \\boxed{{{total + 1 if total % 3 == 0 else total}}}"


def sum_items(count: int) -> list[dict[str, str]]:
    """`count` gsm8k-style items "What is A + B?" for `arithmetic_reply` (item i: A = i, B = i + 1)."""
    return [
        {"id": f"q{i}", "question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(count)
    ]


class FakeEndpoint:
    """`with FakeEndpoint(delay=0.2) as endpoint:` -> endpoint.url, endpoint.calls (text -> count)."""

    def __init__(self, delay: float = 0.0, reply: str | Reply = "\\boxed{4}", port: int = 0) -> None:
        self.delay, self.reply = delay, reply
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def __enter__(self) -> FakeEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        text = "\n".join(str(m.get("content")) for m in messages)
        with self._lock:
            self.calls[text] += 1
        time.sleep(self.delay)
        return self.reply if isinstance(self.reply, str) else self.reply(messages)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                text = endpoint._answer(body)
                payload = json.dumps(
                    {
                        "id": "fake",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake OpenAI-compatible server (arithmetic replies)")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds before each reply")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with FakeEndpoint(delay=args.delay, reply=arithmetic_reply, port=args.port) as endpoint:
        print(endpoint.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
