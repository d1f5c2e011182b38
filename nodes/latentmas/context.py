"""Options of the LatentMAS, text-MAS and single-agent graphs (their LangGraph `context_schema`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from nodes.chat_models import ChatModelConfig, is_registered
from nodes.fields import OptionError, check_options, option
from nodes.latentmas.prompts import BASELINE_PROMPT, LATENT_PROMPTS, TEXT_PROMPTS, fill
from nodes.prompt_files import read_prompt_file
from storage.paths import default_db, kv_dir_for

if TYPE_CHECKING:
    from latent_backend.kv_store import KVStore

PROMPT_ROLES = frozenset({"baseline", *LATENT_PROMPTS, *TEXT_PROMPTS})


@dataclass
class MASContext:
    """Options of the LatentMAS, text-MAS and single-agent graphs (LangGraph `context_schema`)."""

    task: str = option("gsm8k", "Task whose answer format the judger uses (gsm8k, medqa, arc_easy, ...).")
    model: str | None = option(
        None,
        "Local model: HF id, folder or .gguf (None: embedded SmolLM2); "
        "with base_url, the served model name (text agents only).",
    )
    base_url: str | None = option(None, "OpenAI-compatible endpoint for text agents (vLLM, llama.cpp, ...).")
    topology: Literal["sequential", "hierarchical"] = option(
        "sequential",
        "sequential: planner->critic->refiner->judger; hierarchical: 3 solvers -> summarizer.",
        cli=("--prompt",),
    )
    latent_steps: int = option(
        10, "Latent thoughts each non-judger agent adds (0-80 in the paper).", minimum=0, maximum=4096
    )
    latent_space_realign: bool = option(
        True, "Map hidden states back to input-embedding space (ridge).", cli=("--realign",)
    )
    think: bool = option(False, "Append the model's think opener to prompts (if its template has one).")
    sequential_info_only: bool = option(False, "Hand on only the positions the last agent added.")
    latent_only: bool = option(False, "Hand on only the latent positions (implies sequential_info_only).")
    zero_step_handoff: Literal["prompts", "none"] = option(
        "prompts",
        "At latent_steps=0, the judger reads earlier agents' prompt positions ('prompts') or "
        "decodes with no cache ('none', the reference implementation's behaviour).",
    )
    max_new_tokens: int = option(256, "Tokens each text-generating agent may write.", minimum=1)
    temperature: float = option(0.0, "Sampling temperature (0: greedy).", minimum=0.0)
    top_p: float = option(0.95, "Nucleus sampling mass (when temperature > 0).", minimum=0.0, maximum=1.0)
    seed: int = option(42, "Sampling seed (per row, so batching does not change samples).")
    system_prompt: str | None = option(None, "System message for every agent (None: the template's default).")
    prompts: dict[str, str] = option(
        description=f"Per-role prompt template overrides; roles: {', '.join(sorted(PROMPT_ROLES))}.",
        factory=dict,
    )
    prompts_file: str | None = option(None, "JSON file of per-role prompt template overrides.")
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

    def __post_init__(self) -> None:
        if self.prompts is None:  # an explicit None from a form means "no overrides"
            self.prompts = {}
        check_options(self)
        unknown = set(self.prompts) - PROMPT_ROLES
        if unknown:
            raise OptionError(
                "prompts", f"unknown prompt role(s) {sorted(unknown)}; roles: {sorted(PROMPT_ROLES)}"
            )

    # -- derived -------------------------------------------------------------------------
    def template(self, role: str, *, latent: bool) -> str:
        overrides = {**read_prompt_file(self.prompts_file, "latentmas"), **self.prompts}
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
            seed=self.seed,
        )
