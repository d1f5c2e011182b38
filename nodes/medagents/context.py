"""Options of the MedAgents graph (its LangGraph `context_schema`; never checkpointed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from latent_backend.registry import BackendChoice
from nodes.chat_models import ChatModelConfig, backend_option
from nodes.fields import CheckedOptions, OptionError, check_options, option
from nodes.medagents.prompts import check_prompt_overrides
from nodes.medagents.reference import REFERENCE_PROMPTS
from nodes.prompt_files import read_prompt_file
from nodes.structured import STRUCTURED_OPTION_HELP, StructuredMode

Method = Literal["base_direct", "base_cot", "anal_only", "syn_only", "syn_verif"]
Preset = Literal["default", "paper", "reference", "original"]
METHOD_NAMES: tuple[str, ...] = get_args(Method)

# default: masgraph's prompts and parsing with the original code's temperature 0 and 3 attempts;
# paper: the same with the paper's temperature 1.0 and 5 attempts; reference: the original code
# itself (its prompts, formatting, parsing and grading; see nodes.medagents.reference).
# "original" is the old name of "default", kept so stored runs resume.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {"temperature": 0.0, "max_attempts": 3, "structured_output": "auto"},
    "paper": {"temperature": 1.0, "max_attempts": 5, "structured_output": "auto"},
    "reference": {"temperature": 0.0, "max_attempts": 3, "structured_output": "off"},
    "original": {"temperature": 0.0, "max_attempts": 3, "structured_output": "auto"},
}

# Agent roles, each of which may be served by its own model (`role_models`, `role_base_urls`).
ROLES: tuple[str, ...] = (
    "classifier",
    "question_expert",
    "option_expert",
    "synthesizer",
    "voter",
    "reviser",
    "decider",
)


def _tokens(default: int, description: str) -> Any:
    return option(default, f"Max new tokens, {description}.", minimum=1)


@dataclass(frozen=True)
class MedAgentsContext(CheckedOptions):
    """Run configuration of a MedAgents graph (LangGraph `context_schema`; never checkpointed)."""

    method: Method = option(
        "syn_verif",
        "base_direct | base_cot | anal_only (stages 1-4) | syn_only (1-5) | syn_verif (1-6, the full method)",
    )
    preset: Preset = option(
        "default",
        "'default': masgraph's prompts and parsing, temperature 0, 3 attempts; 'paper': the same at "
        "the paper's 1.0 and 5; 'reference': the original code's prompts, parsing, defaults and "
        "grading ('original': old name of 'default'). Explicit values win over the preset.",
    )
    num_question_domains: int = option(5, "Question experts gathered in stage 1.", minimum=1)
    num_option_domains: int = option(2, "Option experts gathered in stage 2.", minimum=1)
    max_attempts: int | None = option(
        None, "Consultation rounds (vote, advice, revision) at most; None = the preset's.", minimum=0
    )
    temperature: float | None = option(None, "Sampling temperature; None = the preset's.", minimum=0.0)
    top_p: float = option(1.0, "Nucleus sampling mass.", minimum=0.0, maximum=1.0)
    seed: int | None = option(42, "Sampling seed passed to the model (None = unseeded).")
    model: str = option(
        "local",
        "Chat model for every role: 'local', 'local:<ref>', a served model name with "
        "base_url, or a name registered with nodes.chat_models.register_chat_model.",
    )
    base_url: str | None = option(None, "OpenAI-compatible endpoint for `model` (None = local).")
    backend: BackendChoice = backend_option()
    api_key_env: str = option("OPENAI_API_KEY", "Environment variable holding the API key.")
    timeout: float = option(600.0, "Seconds before one call times out (> 0).")
    role_models: dict[str, str] = option(
        description=f"Per-role model overrides, role -> model name. Roles: {', '.join(ROLES)}.", factory=dict
    )
    role_base_urls: dict[str, str] = option(
        description="Per-role endpoint overrides, role -> base_url.", factory=dict
    )
    domains_max_tokens: int = _tokens(50, "stages 1-2 (expert gathering)")
    analysis_max_tokens: int = _tokens(300, "stages 3-4 (analyses)")
    synthesis_max_tokens: int = _tokens(2500, "stage 5 (report)")
    vote_max_tokens: int = _tokens(30, "one yes/no vote")
    advice_max_tokens: int = _tokens(500, "one expert's revision advice")
    revision_max_tokens: int = _tokens(2500, "the report revision")
    answer_max_tokens: int = _tokens(2500, "the final decision")
    direct_max_tokens: int = _tokens(50, "base_direct's answer")
    cot_max_tokens: int = _tokens(300, "base_cot's answer")
    max_new_tokens: int | None = option(
        None,
        "Cap on every stage's token limit (e.g. for a small local model); None = the stage limits as set.",
        minimum=1,
    )
    structured_output: StructuredMode | None = option(
        None,
        STRUCTURED_OPTION_HELP + " Applies to domain lists (exactly N), votes (YES/NO) and option "
        "letters. None: the preset's ('auto'; reference: 'off').",
    )
    prompts: dict[str, str] = option(
        description="Prompt template overrides, name -> str.format template "
        "(names and fields: nodes.medagents.prompts.TEMPLATE_FIELDS); they win over prompts_file.",
        factory=dict,
    )
    prompts_file: str | None = option(
        None,
        "JSON file of prompt template overrides (its 'medagents' section, if it has one, "
        "else its top level).",
    )
    grading: Literal["lenient", "reference"] | None = option(
        None,
        "How answers are compared with the gold: 'lenient' (masgraph's) or 'reference' (the "
        "original's exact letter); None: the preset's.",
    )

    def __post_init__(self) -> None:
        for name in ("role_models", "role_base_urls", "prompts"):
            if getattr(self, name) is None:  # an explicit None from a form means "none"
                object.__setattr__(self, name, {})
        if self.method not in METHOD_NAMES:
            raise OptionError(
                "method", f"unknown MedAgents method {self.method!r}; choose one of {METHOD_NAMES}"
            )
        if self.preset not in PRESETS:
            raise OptionError(
                "preset", f"unknown MedAgents preset {self.preset!r}; choose one of {tuple(PRESETS)}"
            )
        check_options(self)
        if self.timeout <= 0:
            raise OptionError("timeout", f"option 'timeout' must be > 0, got {self.timeout!r}")
        # Frozen dataclass: resolve the preset's defaults in place, once.
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("role_models", "role_base_urls"):
            unknown_roles = set(getattr(self, name)) - set(ROLES)
            if unknown_roles:
                raise OptionError(name, f"unknown MedAgents role(s) {sorted(unknown_roles)}; roles: {ROLES}")
        self.templates()  # checks the overrides now rather than halfway through a run

    @classmethod
    def from_preset(cls, preset: Preset = "default", **overrides: Any) -> MedAgentsContext:
        """A context with the preset's values, then `overrides`."""
        return cls(preset=preset, **{**PRESETS[preset], **overrides})

    @property
    def reference(self) -> bool:
        """Whether this run reproduces the original code (prompts, formatting, parsing)."""
        return self.preset == "reference"

    @property
    def grading_rules(self) -> str:
        return self.grading or ("reference" if self.reference else "lenient")

    def templates(self) -> dict[str, str]:
        """The templates in force: the reference preset's (if chosen), then `prompts_file`'s
        templates, then the `prompts` mapping; templates not named fall back to the defaults."""
        try:
            from_file = read_prompt_file(self.prompts_file, "medagents")
        except ValueError as exc:
            raise OptionError("prompts_file", str(exc)) from exc
        check_prompt_overrides(from_file, option="prompts_file", source=f"prompts file {self.prompts_file}: ")
        check_prompt_overrides(self.prompts)
        return {**(REFERENCE_PROMPTS if self.reference else {}), **from_file, **self.prompts}

    def chat_config(self, role: str, max_tokens: int) -> ChatModelConfig:
        """The chat model of `role` for one call of at most `max_tokens` (cut to `max_new_tokens`)."""
        if self.max_new_tokens is not None:
            max_tokens = min(max_tokens, self.max_new_tokens)
        return ChatModelConfig(
            model=self.role_models.get(role, self.model),
            base_url=self.role_base_urls.get(role, self.base_url),
            api_key_env=self.api_key_env,
            max_tokens=max_tokens,
            temperature=float(self.temperature),
            top_p=self.top_p,
            seed=self.seed,
            timeout=self.timeout,
            backend=self.backend,
        )
