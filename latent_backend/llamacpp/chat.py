"""Chat rendering for GGUF models: the file's own Jinja template, rendered as transformers renders it.

The template (`tokenizer.chat_template`) goes through transformers' `render_jinja_template` (the
sandboxed Jinja environment, filters and globals `apply_chat_template` uses), with the GGUF's
special tokens as template variables, so a chat renders to the same text, and through
`Engine.tokenize` (special tokens parsed) to the same ids, as on the transformers backend.
llama.cpp's `llama_chat_apply_template` is not used: it re-implements known templates in C++ and
picks one by sniffing, which drops e.g. SmolLM2's default system prompt.
"""

from __future__ import annotations

from latent_backend.errors import ModelLoadError
from latent_backend.llamacpp.engine import Engine

_SPECIAL_TOKENS = ("bos", "eos", "unknown", "padding")
_TEMPLATE_NAMES = {"unknown": "unk_token", "padding": "pad_token"}


class ChatTemplate:
    def __init__(self, engine: Engine) -> None:
        template = engine.meta("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"{engine.path} has no chat template (tokenizer.chat_template)")
        self.template = template
        self.variables: dict[str, str] = {}
        for kind in _SPECIAL_TOKENS:
            token_id = engine.meta(f"tokenizer.ggml.{kind}_token_id")
            if token_id is not None and token_id.lstrip("-").isdigit() and int(token_id) >= 0:
                name = _TEMPLATE_NAMES.get(kind, f"{kind}_token")
                self.variables[name] = engine.token_text(int(token_id))

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat with the generation prompt on (what the model reads before it answers)."""
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            conversations=[messages],
            chat_template=self.template,
            add_generation_prompt=True,
            **self.variables,
        )
        return rendered[0]
