"""Realignment arithmetic on a tiny random Llama whose embedding matrix is larger than its tokenizer
(as Qwen3 pads its vocabulary), and sampling from the model's generation_config. No hub, no files."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from latent_backend import sampling
from latent_backend.backend import RIDGE_LAMBDA, LatentBackend
from latent_backend.models import LoadedModel
from latent_backend.requests import GenerationRequest

WORDS = ["<pad>", "<eos>", "hello", "world", "a", "b", "c", "d", "e", "f"]
PADDED_ROWS = 24  # 10 tokens, 14 padding rows


def tiny_backend(dtype: torch.dtype, *, tied: bool = False) -> LatentBackend:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=PADDED_ROWS,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config).to(dtype).eval()
    with torch.no_grad():  # padding rows far from the real ones, so including them would show
        model.get_input_embeddings().weight[len(WORDS) :] *= 50
        if not tied:
            model.get_output_embeddings().weight[len(WORDS) :] *= 50
    vocab = {word: i for i, word in enumerate(WORDS)}
    raw = Tokenizer(WordLevel(vocab, unk_token="<pad>"))
    raw.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="<eos>")
    loaded = LoadedModel("tiny", model, tokenizer, torch.device("cpu"), dtype)
    return LatentBackend(loaded)


def ridge(w_in: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
    gram = w_out.T @ w_out + RIDGE_LAMBDA * torch.eye(w_out.shape[1])
    return torch.linalg.solve(gram, w_out.T @ w_in)


def test_padded_rows_are_excluded_from_the_solve_and_the_norm():
    backend = tiny_backend(torch.float32)
    assert len(backend.tokenizer) == len(WORDS) < backend.model.get_input_embeddings().weight.shape[0]
    assert backend.vocab_rows() == len(WORDS)
    w_in = backend.model.get_input_embeddings().weight.detach()
    w_out = backend.model.get_output_embeddings().weight.detach()
    w_a, norm = backend.realignment(True)
    assert torch.allclose(w_a, ridge(w_in[: len(WORDS)], w_out[: len(WORDS)]), atol=1e-5)
    assert torch.allclose(norm, w_in[: len(WORDS)].norm(dim=1).mean())
    # With every row the result is clearly different: the exclusion is what the test sees.
    assert not torch.allclose(w_a, ridge(w_in, w_out), atol=1e-3)
    assert not torch.allclose(norm, w_in.norm(dim=1).mean(), rtol=0.1)
    identity, same_norm = backend.realignment(False)
    assert torch.equal(identity, torch.eye(16)) and torch.equal(same_norm, norm)


def test_realignment_is_fp32_and_cast_once_for_a_bf16_model():
    backend = tiny_backend(torch.bfloat16)
    w_a, norm = backend.realignment(True)
    assert w_a.dtype == torch.float32 and norm.dtype == torch.float32
    w_in = backend.model.get_input_embeddings().weight.detach()[: len(WORDS)].float()
    w_out = backend.model.get_output_embeddings().weight.detach()[: len(WORDS)].float()
    assert torch.allclose(w_a, ridge(w_in, w_out), atol=1e-4)

    hidden = torch.randn(3, 16, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    aligned = backend._align(hidden, True)
    fp32 = hidden.float() @ w_a
    expected = (fp32 * (norm / fp32.norm(dim=-1, keepdim=True))).to(torch.bfloat16)
    assert aligned.dtype == torch.bfloat16
    assert torch.equal(aligned, expected)
    # Computing in bf16 (the matrix and the norm cast to the model dtype first) rounds differently.
    w_bf16, norm_bf16 = w_a.to(torch.bfloat16), norm.to(torch.bfloat16)
    in_bf16 = hidden @ w_bf16
    in_bf16 = in_bf16 * (norm_bf16 / in_bf16.norm(dim=-1, keepdim=True))
    assert not torch.equal(aligned, in_bf16)


@pytest.mark.parametrize("top_k", [1, 3])
def test_sampling_takes_top_k_from_generation_config_unless_overridden(top_k):
    backend = tiny_backend(torch.float32)
    logits = torch.randn(len(WORDS), generator=torch.Generator().manual_seed(2))
    best = set(logits.topk(top_k).indices.tolist())
    backend.model.generation_config.top_k = top_k
    sampled = {
        sampling.choose(
            logits,
            sampling.warpers(GenerationRequest([], temperature=5.0), backend.sampling_defaults),
            sampling.generator(seed),
        )
        for seed in range(40)
    }
    assert sampled <= best and (top_k == 1 or len(sampled) > 1)
    # An explicit top_k=0 turns it off: a hot sampler then reaches tokens outside the top k.
    unrestricted = {
        sampling.choose(
            logits,
            sampling.warpers(GenerationRequest([], temperature=5.0, top_k=0), backend.sampling_defaults),
            sampling.generator(s),
        )
        for s in range(40)
    }
    assert unrestricted - best
    assert (
        sampling.warpers(GenerationRequest([], temperature=0.0), backend.sampling_defaults) is None
    )  # greedy stays argmax
