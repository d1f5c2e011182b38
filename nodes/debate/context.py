"""Options of the MAD debate graph (its LangGraph `context_schema`): never checkpointed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from latent_backend.registry import BackendChoice
from nodes.chat_models import ChatModelConfig, backend_option, chat_model
from nodes.debate.prompts import PROMPT_KEYS, prompt_templates
from nodes.fields import CheckedOptions, OptionError, check_options, option
from nodes.prompt_files import read_prompt_file
from nodes.structured import STRUCTURED_OPTION_HELP, StructuredMode

DEFAULT_TURN_TOKENS = 512


def _role_model(player: str) -> Any:
    return option(None, f"Model of the {player} (None = `model`).")


@dataclass
class DebateContext(CheckedOptions):
    """Options of the MAD debate: mode, rounds, stop rule, models per role, prompts, human role."""

    preset: Literal["default", "reference"] = option(
        "default",
        "'default': masgraph's prompts, a baseline answer first, 512 tokens a turn, one format "
        "reminder; 'reference': the original MAD code's prompts, no baseline in qa mode, the "
        "conversation's remaining token budget per turn, no reminder.",
    )
    mode: Literal["qa", "translation"] = option(
        "qa",
        "'qa': debate a question (debate_topic); 'translation': debate a translation "
        "(source text, languages); the answer key is debate_answer / debate_translation.",
    )
    max_rounds: int = option(
        3,
        "Maximum debate rounds (the paper's max_round); the judge decides if none gave an answer.",
        minimum=1,
    )
    early_stop: Literal["answer", "preference"] = option(
        "answer",
        "When a moderator verdict ends the debate: 'answer' (the original's rule) when its "
        "debate answer is non-empty; 'preference' when it says there is a preference.",
    )
    temperature: float = option(0.0, "Sampling temperature for every role given by model name.", minimum=0.0)
    model: str | ChatModelConfig = option(
        "local",
        "Default model for all roles: a name ('local', 'local:<ref>', a served model, a "
        "registered test model) or a ChatModelConfig (used as given).",
    )
    base_url: str | None = option(
        None, "OpenAI-compatible endpoint for models given by name (None = local backend)."
    )
    backend: BackendChoice = backend_option()
    max_new_tokens: int | None = option(
        None,
        "Generation limit per turn for models given by name; None: the preset's (512; reference: "
        "context_tokens less the tokens of the messages sent, as the original).",
        minimum=1,
    )
    context_tokens: int = option(
        3900,
        "Reference preset's per-call token budget (the original's for gpt-3.5-turbo; 7900 for gpt-4).",
        minimum=1,
    )
    base_model: str | ChatModelConfig | None = _role_model("baseline agent")
    affirmative_model: str | ChatModelConfig | None = _role_model("affirmative debater")
    negative_model: str | ChatModelConfig | None = _role_model("negative debater")
    moderator_model: str | ChatModelConfig | None = _role_model("moderator")
    judge_model: str | ChatModelConfig | None = _role_model("fallback judge")
    prompts: dict[str, str] = option(
        description="Prompt template overrides by name (" + ", ".join(sorted(PROMPT_KEYS)) + "); "
        "##placeholders## as in the original MAD prompt files.",
        factory=dict,
    )
    prompts_file: str | None = option(
        None,
        'JSON file of prompt template overrides (its "debate" section if it has one); '
        "`prompts` wins over the file.",
    )
    judge_sees: Literal["last_round", "first_round"] = option(
        "last_round",
        "Which arguments the judge is shown: the last round's (fixes the original) or "
        "the first round's (the original's behaviour).",
    )
    human_role: Literal["moderator"] | None = option(
        None, "'moderator': a human moderates through interrupt()/Command(resume=verdict).", cli=("--human",)
    )
    structured_output: StructuredMode | None = option(
        None,
        STRUCTURED_OPTION_HELP + " Applies to the moderator's and the judge's JSON verdicts. "
        "None: the preset's ('auto'; reference: 'off').",
    )
    source_lang: str = option(
        "zh", "Translation source language (code or name) when the input gives none.", cli=("--source",)
    )
    target_lang: str = option(
        "en", "Translation target language (code or name) when the input gives none.", cli=("--target",)
    )

    grading: Literal["lenient", "reference"] | None = option(
        None,
        "How a qa answer is compared with the gold: 'lenient' or 'reference' (the original has no "
        "grader, so both apply masgraph's); None: the preset's.",
    )

    def __post_init__(self) -> None:
        if self.prompts is None:  # an explicit None from a form means "no overrides"
            self.prompts = {}
        check_options(self)
        if self.structured_output is None:
            self.structured_output = "off" if self.reference else "auto"
        try:
            prompt_templates(self.mode, self.prompts, reference=self.reference)
        except ValueError as exc:
            raise OptionError("prompts", str(exc)) from None

    @property
    def reference(self) -> bool:
        return self.preset == "reference"

    @property
    def grading_rules(self) -> str:
        return self.grading or ("reference" if self.reference else "lenient")

    # -- derived -------------------------------------------------------------------------
    def templates(self) -> dict[str, str]:
        """The mode's templates with the prompts file's overrides, then `prompts`, applied."""
        overrides = {**read_prompt_file(self.prompts_file, "debate"), **self.prompts}
        return prompt_templates(self.mode, overrides, reference=self.reference)

    def model_config_for(self, role: str, messages: list[dict[str, str]] | None = None) -> ChatModelConfig:
        """The chat model of a role: its own model, else `model`; names get the sampling options.

        The reference preset without `max_new_tokens` gives each call what the original did:
        `context_tokens` less the tokens of the messages' contents (at least 1).
        """
        choice = getattr(self, f"{role}_model", None) or self.model
        if isinstance(choice, ChatModelConfig):
            return choice
        config = ChatModelConfig(
            model=choice,
            base_url=self.base_url,
            temperature=self.temperature,
            max_tokens=self.max_new_tokens or DEFAULT_TURN_TOKENS,
            backend=self.backend,
        )
        if self.max_new_tokens is None and self.reference and messages is not None:
            model = chat_model(config)
            used = sum(_count_tokens(model, m["content"]) for m in messages if m["content"])
            config = replace(config, max_tokens=max(1, self.context_tokens - used))
        return config


def _count_tokens(model: Any, text: str) -> int:
    """Tokens of `text` by the model's own count (tiktoken for an endpoint, as the original); where
    that is unavailable (tiktoken's files cannot be fetched offline) about 4 bytes a token."""
    try:
        return int(model.get_num_tokens(text))
    except Exception:  # any tokenizer-loading failure: an estimate beats a failed turn
        return len(text.encode("utf-8")) // 4 + 1
