"""The llama.cpp backend on the embedded GGUF (make test-llamacpp): skipped without llama-cpp-python.

llama.cpp's arithmetic differs from transformers' (quantized weights and activations), so these
tests compare llama.cpp with itself -- batch vs single, restored vs uninterrupted -- and compare
the backends only where they must agree exactly (token ids) or refuse each other (KV handles).
"""

import importlib.util

import pytest

from latent_backend import GenerationRequest, KVStore, KVStoreError, RolloutRequest

pytestmark = [
    pytest.mark.llamacpp,
    pytest.mark.model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (make llamacpp, or pip install 'masgraph[llamacpp]')",
    ),
]

QUESTIONS = [
    "What is 7 times 8?",
    "A farmer has 12 cows and buys 5 more, then sells 3. How many cows does the farmer have now? Think it over.",
    "Name a primary color.",
]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def cpp():
    from latent_backend.registry import get_backend

    return get_backend(None, "llamacpp")


def fresh_backend():
    """A second backend object on the same GGUF: its own model and context, as after a restart."""
    from latent_backend.llamacpp.backend import LlamaCppBackend
    from latent_backend.models import EMBEDDED_MODEL_ID, embedded_gguf_path

    return LlamaCppBackend(embedded_gguf_path(), EMBEDDED_MODEL_ID)


def chain(backend, store: KVStore, question: str, namespace: str = "t") -> list:
    """Two latent agents, the second on the first's handle: the handles."""
    first = backend.rollout(
        [RolloutRequest(messages=user(question), namespace=namespace, latent_steps=4)], store
    )
    second = RolloutRequest(
        messages=user("Check the reasoning."), namespace=namespace, kv=first[0].handle, latent_steps=3
    )
    return [first[0].handle, backend.rollout([second], store)[0].handle]


def judge(backend, handle, store: KVStore) -> list[int]:
    request = GenerationRequest(messages=user("Give the final answer."), max_new_tokens=24, kv=handle)
    return backend.generate([request], store)[0].token_ids


def test_prompts_render_to_the_transformers_token_ids(cpp, backend):
    for question in QUESTIONS:
        messages = [{"role": "system", "content": "Be brief."}, *user(question)]
        assert cpp.render(messages) == backend.render(messages)
        assert cpp.render(user(question)) == backend.render(user(question))


def test_batch_equals_single(cpp, tmp_path):
    store = KVStore(tmp_path)
    requests = [RolloutRequest(messages=user(q), namespace="t", latent_steps=4) for q in QUESTIONS]
    batched = cpp.rollout(requests, store)
    singles = [cpp.rollout([r], store)[0] for r in requests]
    for b, s in zip(batched, singles, strict=True):
        assert b.handle["positions"] == s.handle["positions"] == b.prompt_tokens + 4
        assert b.handle["next_position"] == b.prompt_tokens + 4
        assert b.last_hidden.equal(s.last_hidden)  # bit-identical: one KV stream per sequence
    judged = [GenerationRequest(messages=user("Answer."), max_new_tokens=16, kv=b.handle) for b in batched]
    together = cpp.generate(judged, store)
    alone = [cpp.generate([j], store)[0] for j in judged]
    assert len({tuple(t.token_ids) for t in together}) == len(together)  # each row read its own cache
    assert [t.token_ids for t in together] == [a.token_ids for a in alone]
    assert all(
        t.generated_tokens > 0 and t.kv_positions == b.handle["positions"]
        for t, b in zip(together, batched, strict=True)
    )
    texts = [GenerationRequest(messages=user(q), max_new_tokens=20) for q in QUESTIONS]
    assert [r.token_ids for r in cpp.generate(texts)] == [cpp.generate([t])[0].token_ids for t in texts]


def test_handle_resumes_after_a_restart(cpp, tmp_path, caplog):
    store = KVStore(tmp_path / "kv")
    handles = chain(cpp, store, QUESTIONS[1])
    expected = judge(cpp, handles[-1], store)
    assert expected != judge(cpp, None, store)  # the cache is read: the judger sees the agents' thoughts
    assert store.flush(timeout=60)

    restarted = fresh_backend()  # a new model, context and store object: only the files remain
    caplog.set_level("WARNING", logger="latent_backend.kv_chain")
    try:
        assert judge(restarted, handles[-1], KVStore(tmp_path / "kv")) == expected
        assert "rebuilding" not in caplog.text  # restored from the files, not recomputed
        # The store lost everything (another machine): the handle's recipes rebuild the cache.
        assert judge(restarted, handles[-1], KVStore(tmp_path / "empty")) == expected
        assert caplog.text.count("rebuilding it from its recipe") == len(handles)
    finally:
        restarted.engine.close()


@pytest.mark.parametrize("handoff", ["sequential", "latent"])
def test_trimmed_handoffs_keep_their_rotary_positions(cpp, tmp_path, handoff):
    store = KVStore(tmp_path)
    first = cpp.rollout([RolloutRequest(messages=user(QUESTIONS[0]), namespace="t", latent_steps=4)], store)[
        0
    ]
    request = RolloutRequest(
        messages=user("Check."), namespace="t", kv=first.handle, latent_steps=3, handoff=handoff
    )
    second = cpp.rollout([request], store)[0]
    added = second.prompt_tokens + 3 if handoff == "sequential" else 3
    assert second.handle["positions"] == added
    assert second.handle["next_position"] == first.handle["next_position"] + second.prompt_tokens + 3
    expected = judge(cpp, second.handle, store)
    assert expected != judge(cpp, None, store)
    assert judge(cpp, second.handle, KVStore(tmp_path / "empty")) == expected  # rebuilt from recipes


def test_a_handle_of_one_backend_is_refused_by_the_other(cpp, backend, tmp_path):
    store = KVStore(tmp_path)
    request = RolloutRequest(messages=user(QUESTIONS[0]), namespace="t", latent_steps=2)
    from_cpp = cpp.rollout([request], store)[0].handle
    from_hf = backend.rollout([request], store)[0].handle
    with pytest.raises(KVStoreError, match=f"belongs to model '{from_cpp['model_id']}'"):
        judge(backend, from_cpp, store)
    with pytest.raises(KVStoreError, match=f"belongs to model '{from_hf['model_id']}'"):
        judge(cpp, from_hf, store)


def test_local_chat_model_generates_on_llamacpp(cpp):
    from langchain_core.messages import HumanMessage

    from nodes.chat_models import LocalChatModel

    model = LocalChatModel(backend="llamacpp", max_tokens=20)
    reply = model.invoke([HumanMessage(content=QUESTIONS[0])])
    direct = cpp.generate([GenerationRequest(messages=user(QUESTIONS[0]), max_new_tokens=20)])[0]
    assert reply.content == direct.text and reply.content
    assert reply.response_metadata["model_name"] == cpp.model_id and cpp.model_id.startswith("llamacpp:")
    assert reply.usage_metadata["output_tokens"] == direct.generated_tokens
    assert model.get_num_tokens("seven times eight") == len(cpp.tokenize("seven times eight"))


def test_constrained_replies_match_their_grammar_on_llamacpp(cpp):
    """The same GrammarSpec as on transformers (llguidance over llama.cpp's vocabulary): sampled
    replies complete and match; a batch of mixed grammars equals single runs."""
    from tests.latent_backend.test_grammar import PROMPT, SHAPES, matches

    requests = [
        GenerationRequest(
            messages=user(PROMPT), max_new_tokens=64, temperature=1.0, seed=seed, grammar=SHAPES[shape]
        )
        for seed in range(3)
        for shape in SHAPES
    ]
    results = cpp.generate(requests)
    shapes = [shape for _ in range(3) for shape in SHAPES]
    failures = [
        (shape, r.finish_reason, r.text)
        for shape, r in zip(shapes, results, strict=True)
        if r.finish_reason != "stop" or not matches(shape, r.text)
    ]
    assert failures == []
    greedy = [GenerationRequest(messages=user(PROMPT), max_new_tokens=40, grammar=SHAPES[s]) for s in SHAPES]
    greedy.append(GenerationRequest(messages=user("Name a primary color."), max_new_tokens=12))
    assert [r.token_ids for r in cpp.generate(greedy)] == [cpp.generate([g])[0].token_ids for g in greedy]
