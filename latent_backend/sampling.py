"""Choosing the next token of one row: greedy, or transformers' sampling warpers with a seeded RNG.

Shared by every backend, so a request samples the same way whichever backend decodes it: greedy
at temperature 0, else temperature, top-k, top-p and min-p (transformers' own warpers, in the order
`generate()` applies them) and a multinomial draw from a per-row `torch.Generator` seeded by the
request. top_k and min_p come from the request, else from the model's defaults (a transformers
model's generation_config, a GGUF's `general.sampling.*`); 0 turns top-k off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import (
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from latent_backend.requests import GenerationRequest

_NO_IDS = torch.zeros(1, 0, dtype=torch.long)  # the warpers take input ids but do not read them


@dataclass(frozen=True)
class SamplingDefaults:
    """A model's own sampling defaults (None: not set)."""

    top_k: int | None = None
    min_p: float | None = None


def warpers(request: GenerationRequest, defaults: SamplingDefaults) -> LogitsProcessorList | None:
    """The request's sampling warpers, or None for greedy decoding."""
    if request.temperature <= 0:
        return None
    top_k = request.top_k if request.top_k is not None else defaults.top_k
    min_p = request.min_p if request.min_p is not None else defaults.min_p
    chain = LogitsProcessorList()
    if request.temperature != 1.0:
        chain.append(TemperatureLogitsWarper(request.temperature))
    if top_k:
        chain.append(TopKLogitsWarper(top_k=int(top_k)))
    if request.top_p < 1.0:
        chain.append(TopPLogitsWarper(top_p=request.top_p))
    if min_p:
        chain.append(MinPLogitsWarper(min_p=float(min_p)))
    return chain


def generator(seed: int | None) -> torch.Generator:
    rng = torch.Generator()
    rng.manual_seed(0 if seed is None else int(seed))
    return rng


def choose(logits: torch.Tensor | np.ndarray, chain: LogitsProcessorList | None, rng: torch.Generator) -> int:
    """The next token from one row's logits [vocab] (fp32)."""
    if chain is None:
        return int(logits.argmax())
    if isinstance(logits, np.ndarray):
        logits = torch.from_numpy(logits)
    scores = chain(_NO_IDS, logits[None])[0]
    return int(torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=rng))
