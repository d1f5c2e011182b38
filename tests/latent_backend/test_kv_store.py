import json
import subprocess
import sys

import pytest
import torch

from latent_backend.kv_store import KVStore, KVStoreError, LayerKV


def make_layers(positions: int, seed: int = 0, layers: int = 3) -> list[LayerKV]:
    generator = torch.Generator().manual_seed(seed)
    return [
        LayerKV(
            torch.randn(2, positions, 8, generator=generator),
            torch.randn(2, positions, 8, generator=generator),
        )
        for _ in range(layers)
    ]


def test_roundtrip_and_handle_fields(tmp_path):
    store = KVStore(tmp_path)
    layers = make_layers(5)
    handle = store.put(layers, model_id="m", namespace="thread-1")
    assert handle["positions"] == 5 and handle["next_position"] == 5 and handle["parent"] is None
    assert handle["nbytes"] == 3 * 2 * 2 * 5 * 8 * 4
    json.dumps(handle)  # a handle is plain, serializable data
    child = store.put(
        make_layers(2, seed=1), model_id="m", namespace="thread-1", parent=handle, next_position=9
    )
    assert child["parent"] == handle["id"] and child["next_position"] == 9
    for got, want in zip(store.get(handle), layers, strict=True):
        assert torch.equal(got.keys, want.keys) and torch.equal(got.values, want.values)


def test_get_returns_copies_that_cannot_change_the_store(tmp_path):
    store = KVStore(tmp_path)
    handle = store.put(make_layers(4), model_id="m", namespace="t")
    first = store.get(handle)
    first[0].keys.add_(100.0)
    second = store.get(handle)
    assert not torch.equal(first[0].keys, second[0].keys)
    assert torch.equal(KVStore(tmp_path).get(handle)[0].keys, second[0].keys)  # disk copy unchanged too


def test_handle_resolves_bit_identically_in_a_new_process(tmp_path):
    store = KVStore(tmp_path)
    layers = make_layers(7, seed=3)
    handle = store.put(layers, model_id="m", namespace="t")
    script = (
        "import json, sys, torch\n"
        "from latent_backend.kv_store import KVStore\n"
        "store = KVStore(sys.argv[1]); handle = json.loads(sys.argv[2])\n"
        "layers = store.get(handle, model_id='m')\n"
        "torch.save([(l.keys, l.values) for l in layers], sys.argv[3])\n"
    )
    out = tmp_path / "loaded.pt"
    subprocess.run([sys.executable, "-c", script, str(tmp_path), json.dumps(handle), str(out)], check=True)
    loaded = torch.load(out)
    for (keys, values), want in zip(loaded, layers, strict=True):
        assert torch.equal(keys, want.keys) and torch.equal(values, want.values)


def test_missing_corrupt_and_foreign_handles_raise_clear_errors(tmp_path):
    store = KVStore(tmp_path)
    handle = store.put(make_layers(3), model_id="model-a", namespace="t")
    with pytest.raises(KVStoreError, match="model-a"):
        store.get(handle, model_id="model-b")

    fresh = KVStore(tmp_path)  # no memory copy: reads the file
    path = next(tmp_path.rglob(f"{handle['id']}.safetensors"))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(KVStoreError, match=handle["id"]):
        fresh.get(handle)

    path.unlink()
    with pytest.raises(KVStoreError, match=f"{handle['id']}.*deleted or never persisted"):
        KVStore(tmp_path).get(handle)


def test_deleting_a_namespace_frees_its_entries_only(tmp_path):
    store = KVStore(tmp_path)
    mine = [store.put(make_layers(2), model_id="m", namespace="run-1:item-a") for _ in range(2)]
    other = store.put(make_layers(2), model_id="m", namespace="run-2:item-a")
    assert store.delete_namespace("run-1:item-a") == 2
    for handle in mine:
        assert not store.exists(handle)
        with pytest.raises(KVStoreError):
            store.get(handle)
    assert store.exists(other)
    assert store.delete_prefix("run-2:") == 1 and not store.exists(other)


def test_memory_budget_evicts_but_disk_still_serves(tmp_path):
    store = KVStore(tmp_path, memory_budget_bytes=3000)
    handles = [store.put(make_layers(4, seed=i, layers=1), model_id="m", namespace="t") for i in range(4)]
    assert store._memory_bytes <= 3000
    assert all(
        torch.equal(store.get(h)[0].keys, make_layers(4, seed=i, layers=1)[0].keys)
        for i, h in enumerate(handles)
    )
