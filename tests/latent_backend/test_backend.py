"""Integration tests of the latent backend on the embedded SmolLM2 model."""

import pytest
import torch

from latent_backend import GenerationRequest, KVStore, PromptError, RolloutRequest

pytestmark = pytest.mark.model

QUESTIONS = [
    "What is 7 times 8?",
    "A farmer has 12 cows and buys 5 more, then sells 3. How many cows does the farmer have now? Think it over.",
    "Name a primary color.",
]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_batched_rollout_equals_single_runs(backend, tmp_path):
    store = KVStore(tmp_path)
    requests = [RolloutRequest(messages=user(q), namespace="t", latent_steps=4) for q in QUESTIONS]
    batched = backend.rollout(requests, store)
    singles = [backend.rollout([r], store)[0] for r in requests]
    for b, s in zip(batched, singles, strict=True):
        assert b.handle["positions"] == s.handle["positions"] == b.prompt_tokens + 4
        assert torch.allclose(b.last_hidden, s.last_hidden, atol=1e-3)
        for lb, ls in zip(backend.cache_of(b.handle, store), backend.cache_of(s.handle, store), strict=True):
            assert torch.allclose(lb.keys, ls.keys, atol=1e-3) and torch.allclose(
                lb.values, ls.values, atol=1e-3
            )

    # Second agent on top of different-length caches, then greedy decoding on top of those.
    second = [
        RolloutRequest(messages=user("Check the reasoning."), namespace="t", kv=b.handle, latent_steps=3)
        for b in batched
    ]
    second_batched = backend.rollout(second, store)
    second_single = [backend.rollout([r], store)[0] for r in second]
    for b, s in zip(second_batched, second_single, strict=True):
        assert torch.allclose(b.last_hidden, s.last_hidden, atol=1e-3)
    judge = [
        GenerationRequest(messages=user("Give the final answer."), max_new_tokens=12, kv=b.handle)
        for b in second_batched
    ]
    decoded_batched = backend.generate(judge, store)
    decoded_single = [backend.generate([r], store)[0] for r in judge]
    assert [d.token_ids for d in decoded_batched] == [d.token_ids for d in decoded_single]
    assert all(
        d.kv_positions == b.handle["positions"] for d, b in zip(decoded_batched, second_batched, strict=True)
    )


def test_batched_generation_equals_single_runs(backend):
    requests = [GenerationRequest(messages=user(q), max_new_tokens=10) for q in QUESTIONS]
    batched = backend.generate(requests)
    singles = [backend.generate([r])[0] for r in requests]
    assert [b.token_ids for b in batched] == [s.token_ids for s in singles]
    assert all(b.generated_tokens == len(b.token_ids) and b.prompt_tokens > 0 for b in batched)


def test_forward_on_a_resolved_cache_leaves_the_stored_entry_unchanged(backend, tmp_path):
    store = KVStore(tmp_path)
    handle = backend.rollout(
        [RolloutRequest(messages=user(QUESTIONS[0]), namespace="t", latent_steps=2)], store
    )[0].handle
    before = {name: t.clone() for name, t in store.get(handle["id"], "t").tensors.items()}
    # Two different continuations from one handle: each forward pass appends to its own copy.
    backend.rollout(
        [RolloutRequest(messages=user("Continue."), namespace="t", kv=handle, latent_steps=2)], store
    )
    backend.generate([GenerationRequest(messages=user("Answer."), max_new_tokens=4, kv=handle)], store)
    store.flush()
    for stored in (store.get(handle["id"], "t"), KVStore(tmp_path).get(handle["id"], "t")):
        assert stored.tensors.keys() == before.keys()
        assert all(torch.equal(stored.tensors[name], tensor) for name, tensor in before.items())


def test_handoff_modes_trim_what_is_handed_on(backend, tmp_path):
    store = KVStore(tmp_path)
    first = backend.rollout(
        [RolloutRequest(messages=user(QUESTIONS[1]), namespace="t", latent_steps=3)], store
    )[0]
    results = {}
    for mode in ("all", "sequential", "latent"):
        request = RolloutRequest(
            messages=user("Review it."), namespace="t", kv=first.handle, latent_steps=5, handoff=mode
        )
        results[mode] = backend.rollout([request], store)[0]
    prompt = results["all"].prompt_tokens
    assert results["all"].handle["positions"] == first.handle["positions"] + prompt + 5
    assert results["sequential"].handle["positions"] == prompt + 5
    assert results["latent"].handle["positions"] == 5
    # Positions keep counting from where the full sequence ended, whatever was trimmed.
    assert {r.handle["next_position"] for r in results.values()} == {first.handle["positions"] + prompt + 5}


def test_realignment_matrix_and_norm(backend):
    w_a, target_norm = backend.realignment(True)
    hidden = backend.model.config.hidden_size
    assert w_a.shape == (hidden, hidden)
    identity, same_norm = backend.realignment(False)
    assert torch.equal(identity, torch.eye(hidden, dtype=identity.dtype))
    assert torch.equal(target_norm, same_norm)
    # SmolLM2 ties its embeddings, so the ridge solution is close to the identity.
    assert torch.allclose(w_a, identity, atol=0.05)
    aligned = backend._align(torch.randn(2, hidden), False)
    assert torch.allclose(aligned.norm(dim=-1), target_norm.expand(2), rtol=1e-4)


def test_bad_prompts_raise_clear_errors(backend, tmp_path):
    with pytest.raises(PromptError, match="empty prompt"):
        backend.generate([GenerationRequest(messages=user("   "))])
    too_long = "word " * (backend.loaded.max_positions + 10)
    with pytest.raises(PromptError, match="context length"):
        backend.rollout([RolloutRequest(messages=user(too_long), namespace="t")], KVStore(tmp_path))


def test_a_handle_from_another_model_is_refused(backend, tmp_path):
    from latent_backend import KVStoreError

    store = KVStore(tmp_path)
    handle = backend.rollout([RolloutRequest(messages=user("Hi"), namespace="t", latent_steps=1)], store)[
        0
    ].handle
    foreign = {**handle, "model_id": "another-model"}
    with pytest.raises(KVStoreError, match="another-model"):
        backend.generate([GenerationRequest(messages=user("Hi"), max_new_tokens=2, kv=foreign)], store)


def test_sampling_is_seeded_per_row(backend):
    request = GenerationRequest(
        messages=user(QUESTIONS[2]), max_new_tokens=8, temperature=0.9, top_p=0.95, seed=7
    )
    other = GenerationRequest(
        messages=user(QUESTIONS[0]), max_new_tokens=8, temperature=0.9, top_p=0.95, seed=1
    )
    alone = backend.generate([request])[0]
    together = backend.generate([other, request])[1]
    assert alone.token_ids == together.token_ids
