"""Which backend serves a model: the `backend` option, checked where it enters (no model loaded)."""

import pytest

from latent_backend.errors import ModelLoadError
from latent_backend.llamacpp import runtime
from latent_backend.registry import choose
from nodes.debate.context import DebateContext
from nodes.fields import OptionError
from nodes.latentmas.context import MASContext
from nodes.medagents.context import MedAgentsContext


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


@pytest.fixture
def cpu_only(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_transformers_is_served_as_asked(gguf):
    assert choose(gguf, "transformers") == ("transformers", "asked for")
    assert choose("HuggingFaceTB/SmolLM2-135M-Instruct", "transformers")[0] == "transformers"


def test_auto_picks_llamacpp_for_a_gguf_on_a_cpu_only_machine(gguf, cpu_only, monkeypatch):
    monkeypatch.setattr(runtime, "available", lambda: True)
    assert choose(gguf, "auto") == ("llamacpp", "a GGUF model on a CPU-only machine")
    assert choose("HuggingFaceTB/SmolLM2-135M-Instruct", "auto") == (
        "transformers",
        "the model is not a GGUF file",
    )


def test_auto_falls_back_to_transformers_and_says_why(gguf, cpu_only, monkeypatch):
    monkeypatch.setattr(runtime, "available", lambda: False)
    kind, why = choose(gguf, "auto")
    assert kind == "transformers" and "llama-cpp-python==0.3.36 is not installed" in why
    import torch

    monkeypatch.setattr(runtime, "available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose(gguf, "auto") == ("transformers", "a CUDA device is available")


def test_llamacpp_refuses_what_it_cannot_serve(gguf, monkeypatch):
    monkeypatch.setattr(runtime, "available", lambda: True)
    with pytest.raises(ModelLoadError, match="runs GGUF files; model 'org/model' is not one"):
        choose("org/model", "llamacpp")
    monkeypatch.setattr(runtime, "available", lambda: False)
    with pytest.raises(
        ModelLoadError, match=r"needs llama-cpp-python==0\.3\.36: pip install 'masgraph\[llamacpp\]'"
    ):
        choose(gguf, "llamacpp")
    with pytest.raises(
        ValueError, match="unknown backend 'vllm'; choose one of transformers, llamacpp, auto"
    ):
        choose(gguf, "vllm")


@pytest.mark.parametrize("context", [MASContext, MedAgentsContext, DebateContext])
def test_every_graph_takes_and_checks_the_backend_option(context):
    assert context().backend == "transformers"
    assert context(backend="llamacpp").backend == "llamacpp"
    with pytest.raises(OptionError, match="option 'backend' must be one of") as caught:
        context(backend="vllm")
    assert caught.value.option == "backend"


def test_the_backend_reaches_the_chat_model():
    from nodes.chat_models import chat_model

    config = MASContext(backend="llamacpp").chat_config()
    assert config.backend == "llamacpp"
    assert chat_model(config).backend == "llamacpp"
    assert MedAgentsContext(backend="auto").chat_config("expert", 10).backend == "auto"
