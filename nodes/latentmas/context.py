"""Options of the LatentMAS, text-MAS and single-agent graphs (their LangGraph `context_schema`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from latent_backend.registry import BackendChoice
from nodes.chat_models import ChatModelConfig, backend_option, is_registered
from nodes.fields import CheckedOptions, OptionError, check_options, option
from nodes.latentmas.prompts import BASELINE_PROMPT, LATENT_PROMPTS, TEXT_PROMPTS, fill
from nodes.latentmas.reference import DEFAULTS, FAMILIES, REFERENCE_DEFAULTS, reference_template
from nodes.prompt_files import read_prompt_file
from storage.paths import default_db, kv_dir_for

if TYPE_CHECKING:
    from latent_backend.kv_store import KVStore

PROMPT_ROLES = frozenset({"baseline", *LATENT_PROMPTS, *TEXT_PROMPTS})


def _known_prompt(key: str) -> bool:
    """A role, or role:task / role:family (the reference preset's task-dependent templates)."""
    role, _, scope = key.partition(":")
    return role in PROMPT_ROLES and (not scope or scope in FAMILIES or scope in {*FAMILIES.values(), "other"})


@dataclass
class MASContext(CheckedOptions):
    """Options of the LatentMAS, text-MAS and single-agent graphs (LangGraph `context_schema`)."""

    task: str = option("gsm8k", "Task whose answer format the judger uses (gsm8k, medqa, arc_easy, ...).")
    preset: Literal["default", "reference"] = option(
        "default",
        "'default': masgraph's prompts and settings; 'reference': the original LatentMAS code's "
        "prompts, question rendering, defaults and grading (options left unset take the preset's).",
    )
    model: str | None = option(
        None,
        "Local model: HF id, folder or .gguf (None: embedded SmolLM2); "
        "with base_url, the served model name (text agents only).",
    )
    base_url: str | None = option(None, "OpenAI-compatible endpoint for text agents (vLLM, llama.cpp, ...).")
    backend: BackendChoice = backend_option()
    topology: Literal["sequential", "hierarchical"] = option(
        "sequential",
        "sequential: planner->critic->refiner->judger; hierarchical: 3 solvers -> summarizer.",
        cli=("--prompt",),
    )
    latent_steps: int | None = option(
        None,
        "Latent thoughts each non-judger agent adds (0-80 in the paper); None: the preset's (10; reference 0).",
        minimum=0,
        maximum=4096,
    )
    latent_space_realign: bool | None = option(
        None,
        "Map hidden states back to input-embedding space (ridge); None: the preset's (on; reference off).",
        cli=("--realign",),
    )
    think: bool = option(False, "Append the model's think opener to prompts (if its template has one).")
    sequential_info_only: bool = option(False, "Hand on only the positions the last agent added.")
    latent_only: bool = option(False, "Hand on only the latent positions (implies sequential_info_only).")
    zero_step_handoff: Literal["prompts", "none"] | None = option(
        None,
        "At latent_steps=0, the judger reads earlier agents' prompt positions ('prompts') or "
        "decodes with no cache ('none', the original's behaviour); None: the preset's.",
    )
    max_new_tokens: int | None = option(
        None,
        "Tokens each text-generating agent may write; None: the preset's (256; reference 4096).",
        minimum=1,
    )
    temperature: float | None = option(
        None, "Sampling temperature (0: greedy); None: the preset's (0; reference 0.6).", minimum=0.0
    )
    top_p: float | None = option(
        None, "Nucleus sampling mass (when temperature > 0); None: 0.95.", minimum=0.0, maximum=1.0
    )
    top_k: int | None = option(
        None, "Top-k sampling (when temperature > 0); None: the model's generation_config; 0: off.", minimum=0
    )
    seed: int = option(42, "Sampling seed (per row, so batching does not change samples).")
    structured_output: Literal["off", "auto"] = option(
        "off",
        "'auto': the answering agent (latent judger, final text agent) writes in the task's answer format, "
        "\\boxed{<the task's answer pattern>}, by constrained decoding (response_format on servers); "
        "'off': free text (the method as published).",
    )
    answer_reserve: int = option(
        24,
        "With structured_output 'auto': tokens kept for the box; when only these are left, the answer "
        "must close with it.",
        minimum=1,
    )
    system_prompt: str | None = option(
        None, "System message for every agent (None: the preset's: none; reference: the original's)."
    )
    prompts: dict[str, str] = option(
        description=f"Per-role prompt template overrides; roles: {', '.join(sorted(PROMPT_ROLES))} "
        "(role:task or role:family for one task's template, e.g. judger:medqa).",
        factory=dict,
    )
    prompts_file: str | None = option(None, "JSON file of per-role prompt template overrides.")
    record_inputs: bool | None = option(
        None,
        "Keep each agent's rendered input in its trace entry (checkpointed; None: the preset's: "
        "reference keeps it, default does not, to keep checkpoints small).",
    )
    kv_dir: str | None = option(
        None, "Where KV caches are stored (None: beside the database the graph checkpoints to)."
    )
    kv_persistence: Literal["disk", "memory"] = option(
        "disk",
        "disk: KV entries are also written to disk in the background (a restart reuses them); "
        "memory: never written (throughput runs; a lost entry is recomputed from its recipe).",
    )
    kv_memory_mb: int = option(2048, "Memory budget of the KV store (MiB, on the model's device).", minimum=0)
    kv_disk_mb: int = option(
        16384, "Disk budget of the KV directory (MiB; oldest entries evicted; 0: no limit).", minimum=0
    )
    grading: Literal["lenient", "reference"] | None = option(
        None,
        "How answers are read and compared: 'lenient' (masgraph's) or 'reference' (the original "
        "code's rules); None: the preset's.",
    )

    def __post_init__(self) -> None:
        if self.prompts is None:  # an explicit None from a form means "no overrides"
            self.prompts = {}
        check_options(self)
        unknown = [key for key in self.prompts if not _known_prompt(key)]
        if unknown:
            raise OptionError(
                "prompts", f"unknown prompt role(s) {sorted(unknown)}; roles: {sorted(PROMPT_ROLES)}"
            )
        if self.preset == "reference" and self.task not in FAMILIES:
            raise OptionError(
                "task",
                f"the original LatentMAS code has no prompts for task {self.task!r}; "
                f"preset 'reference' runs {', '.join(FAMILIES)}",
            )
        # Options left unset take the preset's value, so the context always holds concrete ones.
        for name, value in (REFERENCE_DEFAULTS if self.preset == "reference" else DEFAULTS).items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    @property
    def grading_rules(self) -> str:
        """The grading in force: the explicit option, else the preset's."""
        return self.grading or ("reference" if self.preset == "reference" else "lenient")

    # -- derived -------------------------------------------------------------------------
    def template(self, role: str, *, latent: bool) -> str:
        overrides = {**read_prompt_file(self.prompts_file, "latentmas"), **self.prompts}
        if self.preset == "reference":
            return reference_template(role, self.task, latent=latent, overrides=overrides)
        if role in overrides:
            return overrides[role]
        if role == "baseline":
            return BASELINE_PROMPT
        return (LATENT_PROMPTS if latent else TEXT_PROMPTS)[role]

    def messages(
        self,
        role: str,
        *,
        latent: bool,
        question: str,
        context: str = "",
        answer_instruction: str | None = None,
    ) -> list[dict[str, str]]:
        from tasks import get_task

        instruction = answer_instruction or get_task(self.task).answer_instruction
        user = fill(
            self.template(role, latent=latent),
            question=question,
            context=context,
            answer_instruction=instruction,
        )
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": user}]

    @property
    def handoff(self) -> Literal["all", "sequential", "latent"]:
        if self.latent_only:
            return "latent"
        return "sequential" if self.sequential_info_only else "all"

    def kv_store(self, default_dir: str | None = None) -> KVStore:
        """The KV store: `kv_dir`, else `default_dir` (beside the graph's database), else beside
        the default database."""
        from latent_backend.kv_store import kv_store

        return kv_store(
            self.kv_dir or default_dir or kv_dir_for(default_db()),
            memory_budget_bytes=self.kv_memory_mb << 20,
            disk_budget_bytes=self.kv_disk_mb << 20,
        )

    def chat_config(self) -> ChatModelConfig:
        if self.base_url or is_registered(self.model):
            model = self.model or "default"
        else:
            model = f"local:{self.model}" if self.model else "local"
        return ChatModelConfig(
            model=model,
            base_url=self.base_url,
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            seed=self.seed,
            backend=self.backend,
        )
