"""The KV store on its own: memory first, background writes, checksums, exact namespaces, budgets."""

import json
import subprocess
import sys
import threading

import pytest
import torch

import latent_backend.kv_store as kv_module
from latent_backend.kv_store import Entry, KVStore, KVStoreError, namespace_dir_name


def make_entry(positions: int, seed: int = 0, layers: int = 3, dtype=torch.float32) -> Entry:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for index in range(layers):
        tensors[f"k.{index}"] = torch.randn(2, positions, 8, generator=generator).to(dtype)
        tensors[f"v.{index}"] = torch.randn(2, positions, 8, generator=generator).to(dtype)
    return Entry(tensors, {"positions": str(positions)})


def same(a: Entry, b: Entry) -> bool:
    return a.tensors.keys() == b.tensors.keys() and all(
        torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors
    )


def files_of(root, entry_id: str) -> list:
    return list(root.rglob(f"{entry_id}.safetensors"))


def test_entries_are_served_from_memory_then_from_disk_bit_identically(tmp_path):
    store = KVStore(tmp_path)
    entry = make_entry(5, dtype=torch.bfloat16)
    assert entry.nbytes == 3 * 2 * 2 * 5 * 8 * 2
    store.put("e1", "thread-1", entry)
    assert store.get("e1", "thread-1") is entry  # memory first: no copy, no disk
    assert store.flush(timeout=30)
    assert store.stats.files_written == 1 and files_of(tmp_path, "e1")
    cold = KVStore(tmp_path).get("e1", "thread-1")
    assert same(cold, entry) and cold.metadata == {"positions": "5"}


@pytest.mark.slow
def test_an_entry_resolves_bit_identically_in_a_new_process(tmp_path):
    store = KVStore(tmp_path)
    entry = make_entry(7, seed=3)
    store.put("e1", "t", entry)
    store.flush()
    script = (
        "import sys, torch\n"
        "from latent_backend.kv_store import KVStore\n"
        "entry = KVStore(sys.argv[1]).get('e1', 't')\n"
        "torch.save(entry.tensors, sys.argv[2])\n"
    )
    out = tmp_path / "loaded.pt"
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(out)], check=True)
    assert same(Entry(torch.load(out)), entry)


def test_put_returns_before_the_write_and_the_queue_serves_reads(tmp_path, monkeypatch):
    release = threading.Event()
    real_save = kv_module.save_file

    def slow_save(*args, **kwargs):
        release.wait(30)
        real_save(*args, **kwargs)

    monkeypatch.setattr(kv_module, "save_file", slow_save)
    store = KVStore(tmp_path, memory_budget_bytes=0)  # nothing stays in memory: reads hit the queue
    entry = make_entry(4)
    store.put("e1", "t", entry)  # returns although the writer is stuck
    assert store.get("e1", "t") is entry and store.exists("e1", "t")
    assert not store.flush(timeout=0.2) and not files_of(tmp_path, "e1")
    release.set()
    assert store.flush(timeout=30) and same(KVStore(tmp_path).get("e1", "t"), entry)


def test_memory_only_entries_are_never_written(tmp_path):
    store = KVStore(tmp_path)
    store.put("e1", "t", make_entry(3), persist=False)
    assert store.flush(timeout=5) and store.exists("e1", "t")
    assert store.stats.files_written == 0 and not files_of(tmp_path, "e1")
    store.clear_memory()
    with pytest.raises(KVStoreError, match="never written, evicted or deleted"):
        store.get("e1", "t")


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_or_missing_file_is_a_miss_and_a_damaged_one_is_removed(tmp_path, damage):
    store = KVStore(tmp_path)
    store.put("e1", "t", make_entry(6, layers=2))
    store.flush()
    [path] = files_of(tmp_path, "e1")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        flipped = bytearray(raw)
        flipped[-5] ^= 0xFF
        path.write_bytes(bytes(flipped))
    else:
        path.unlink()
    with pytest.raises(KVStoreError, match="e1"):
        KVStore(tmp_path).get("e1", "t")
    assert not path.exists()


def test_namespaces_are_matched_exactly(tmp_path):
    long_id = "r" * 100
    namespaces = ["R", "R_2", "R:2", "R 2", long_id, long_id + "x", "..", "a/b"]
    assert len({namespace_dir_name(ns) for ns in namespaces}) == len(namespaces)
    store = KVStore(tmp_path)
    for index, namespace in enumerate(namespaces):
        store.put(f"e{index}", namespace, make_entry(2, seed=index))
        store.put(f"f{index}", namespace, make_entry(2, seed=index))
    store.flush()
    assert all(path.parent.parent == tmp_path for path in tmp_path.rglob("*.safetensors"))
    assert store.delete_namespace("R") == 2
    assert store.delete_namespace(long_id) == 2
    gone = {"e0", "f0", "e4", "f4"}
    for index, namespace in enumerate(namespaces):
        for entry_id in (f"e{index}", f"f{index}"):
            assert store.exists(entry_id, namespace) == (entry_id not in gone)
            assert bool(files_of(tmp_path, entry_id)) == (entry_id not in gone)


def test_deleting_a_namespace_drops_its_queued_writes(tmp_path, monkeypatch):
    release = threading.Event()
    real_save = kv_module.save_file
    monkeypatch.setattr(kv_module, "save_file", lambda *a, **k: (release.wait(30), real_save(*a, **k)))
    store = KVStore(tmp_path)
    store.put("a1", "a", make_entry(2))  # the writer takes this one and waits
    store.put("a2", "a", make_entry(2))
    store.put("b1", "b", make_entry(2))
    store.delete_namespace("a")
    release.set()
    assert store.flush(timeout=30)
    assert not files_of(tmp_path, "a1") and not files_of(tmp_path, "a2") and files_of(tmp_path, "b1")
    assert store.stats.writes_dropped == 2 and store.stats.files_written == 1
    assert not (tmp_path / ".staging").exists() or not list((tmp_path / ".staging").glob("*.tmp"))


def test_memory_budget_evicts_least_recently_used_and_counts_bytes_exactly(tmp_path):
    entries = {f"e{i}": make_entry(4, seed=i, layers=1) for i in range(4)}  # 512 bytes each
    store = KVStore(tmp_path, memory_budget_bytes=1100)
    for entry_id, entry in entries.items():
        store.put(entry_id, "t", entry)
    store.flush()
    assert store.memory_bytes == 1024 and set(store._memory) == {"e2", "e3"}
    assert all(same(store.get(i, "t"), e) for i, e in entries.items())  # disk serves the evicted
    assert store.memory_bytes == 1024 and set(store._memory) == {"e2", "e3"}


def test_concurrent_readers_of_an_evicted_entry_keep_the_byte_count_exact(tmp_path, monkeypatch):
    entry = make_entry(64, layers=4)
    writer = KVStore(tmp_path)
    writer.put("e1", "t", entry)
    writer.flush()  # on disk before the readers' store starts (it flushes its own queue only)
    store = KVStore(tmp_path, memory_budget_bytes=10 * entry.nbytes)
    real_open = kv_module.safe_open
    opened = []

    def slow_open(*args, **kwargs):  # keep every reader inside the miss at the same time
        opened.append(1)
        threading.Event().wait(0.2)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(kv_module, "safe_open", slow_open)
    barrier = threading.Barrier(8)
    results = []

    def read():
        barrier.wait()
        results.append(store.get("e1", "t"))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(same(result, entry) for result in results)
    assert store.memory_bytes == entry.nbytes == sum(e.nbytes for _, e in store._memory.values())
    assert len(opened) == 1  # one reader loaded the file, the others waited for it


def test_disk_budget_evicts_the_oldest_files(tmp_path):
    entry_bytes = make_entry(16, layers=2).nbytes
    store = KVStore(tmp_path, disk_budget_bytes=int(3.5 * (entry_bytes + 200)))
    for index in range(6):
        store.put(f"e{index}", "t", make_entry(16, seed=index, layers=2))
        store.flush()
    kept = sorted(path.stem for path in tmp_path.rglob("*.safetensors"))
    assert kept and len(kept) <= 3 and kept == [f"e{i}" for i in range(6 - len(kept), 6)]
    assert store.stats.files_evicted == 6 - len(kept)


def test_half_written_files_of_dead_processes_are_swept(tmp_path):
    staging = tmp_path / ".staging"
    staging.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = staging / f"{dead.stdout.strip()}-abc.tmp"
    stale.write_bytes(b"half a file")
    store = KVStore(tmp_path)
    store.put("e1", "t", make_entry(2))
    store.flush()
    assert not stale.exists()


def test_entries_carry_no_handle_and_a_handle_is_plain_data():
    from latent_backend.requests import decode_tokens, encode_tokens

    ids = [0, 1, 49151, 2**31 + 5, *range(300, 700)]
    assert decode_tokens(encode_tokens(ids)) == ids
    json.dumps({"tokens": encode_tokens(ids)})
