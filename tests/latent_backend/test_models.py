import time

import pytest

from latent_backend.models import ModelLoadError, convert_gguf, embedded_gguf_path, resolve_model_ref


def test_unknown_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_model_ref(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_ref(str(tmp_path))


def test_a_gguf_that_is_not_a_model_is_a_clear_error(tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("this is not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF model file"):
        resolve_model_ref(str(fake))
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        resolve_model_ref(str(tmp_path / "missing.gguf"))


@pytest.mark.model
def test_embedded_model_is_converted_once_and_reused(backend):
    started = time.perf_counter()
    folder = convert_gguf(embedded_gguf_path())  # already converted by the backend fixture
    assert time.perf_counter() - started < 1.0
    assert (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()
    assert backend.model_id == "SmolLM2-135M-Instruct"
    assert backend.tokenizer.chat_template  # the model's own template comes along
