"""KV-cache handles and the store that maps them to caches.

A `KVHandle` is a small JSON-able dict that travels in graph state (checkpointed), never a
tensor. The `KVStore` keeps the caches: an in-memory LRU under a byte budget, written through
to disk as safetensors (atomically, with a checksum) so a handle still resolves after the
process restarts. Files are grouped by namespace (the graph thread id), so deleting a thread
frees its entries.

Stored caches are immutable: `get()` returns fresh tensors, because a forward pass appends to the
cache object it is given and must never change a stored entry under another handle.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from latent_backend.errors import KVStoreError
from latent_backend.requests import KVHandle

KV_FORMAT_VERSION = "1"


@dataclass(frozen=True)
class LayerKV:
    keys: torch.Tensor  # [kv_heads, seq, head_dim]
    values: torch.Tensor


def _checksum(layers: list[LayerKV]) -> str:
    digest = hashlib.sha256()
    for layer in layers:
        for tensor in (layer.keys, layer.values):
            digest.update(tensor.contiguous().view(torch.uint8).numpy())  # hashed in place, no copy
    return digest.hexdigest()


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _safe_name(namespace: str) -> str:
    cleaned = _SAFE.sub("_", namespace)[:80]
    return f"{cleaned}-{hashlib.sha1(namespace.encode()).hexdigest()[:8]}"


class KVStore:
    """Handles -> caches; memory LRU under `memory_budget_bytes`, persisted under `root`."""

    def __init__(self, root: str | Path, memory_budget_bytes: int = 2 << 30) -> None:
        self.root = Path(root)
        self.memory_budget_bytes = memory_budget_bytes
        self._memory: OrderedDict[str, list[LayerKV]] = OrderedDict()
        self._memory_bytes = 0
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------
    def put(
        self,
        layers: list[LayerKV],
        *,
        model_id: str,
        namespace: str,
        parent: KVHandle | None = None,
        next_position: int | None = None,
    ) -> KVHandle:
        """Store a single-sequence cache. The store takes ownership: pass tensors nobody mutates later
        (e.g. fresh `index_select` results); they are only moved to contiguous CPU memory."""
        stored = [
            LayerKV(layer.keys.detach().to("cpu").contiguous(), layer.values.detach().to("cpu").contiguous())
            for layer in layers
        ]
        positions = int(stored[0].keys.shape[1]) if stored else 0
        nbytes = sum(t.numel() * t.element_size() for layer in stored for t in (layer.keys, layer.values))
        handle = KVHandle(
            id=uuid.uuid4().hex,
            model_id=model_id,
            namespace=namespace,
            positions=positions,
            next_position=positions if next_position is None else int(next_position),
            parent=parent["id"] if parent else None,
            nbytes=nbytes,
            sha256=_checksum(stored),
        )
        self._write(handle, stored)
        self._remember(handle["id"], stored, nbytes)
        return handle

    def _path(self, handle: KVHandle) -> Path:
        return self.root / _safe_name(handle["namespace"]) / f"{handle['id']}.safetensors"

    def _write(self, handle: KVHandle, layers: list[LayerKV]) -> None:
        path = self._path(handle)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for index, layer in enumerate(layers):
            tensors[f"k.{index}"] = layer.keys
            tensors[f"v.{index}"] = layer.values
        metadata = {
            "format": KV_FORMAT_VERSION,
            "model_id": handle["model_id"],
            "positions": str(handle["positions"]),
            "sha256": handle["sha256"],
        }
        staging = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        save_file(tensors, str(staging), metadata=metadata)
        os.replace(staging, path)  # atomic: a reader sees the old file, the new one, or none

    def _remember(self, handle_id: str, layers: list[LayerKV], nbytes: int) -> None:
        if nbytes > self.memory_budget_bytes:
            return
        with self._lock:
            self._memory[handle_id] = layers
            self._memory_bytes += nbytes
            while self._memory_bytes > self.memory_budget_bytes and self._memory:
                _, evicted = self._memory.popitem(last=False)
                self._memory_bytes -= sum(
                    t.numel() * t.element_size() for layer in evicted for t in (layer.keys, layer.values)
                )

    # -- reading -------------------------------------------------------------------------
    def get(self, handle: KVHandle, *, model_id: str | None = None, copy: bool = True) -> list[LayerKV]:
        """The cache behind `handle`, as fresh tensors the caller may mutate.

        `copy=False` returns the stored tensors themselves, for callers that only read them (the
        backend copies them straight into a padded batch); mutating those would corrupt the store.
        """
        if model_id is not None and handle.get("model_id") != model_id:
            raise KVStoreError(
                f"KV handle {handle.get('id')} belongs to model {handle.get('model_id')!r}, "
                f"not {model_id!r}: a cache cannot be reused across models"
            )
        with self._lock:
            layers = self._memory.get(handle["id"])
            if layers is not None:
                self._memory.move_to_end(handle["id"])
        if layers is None:
            layers = self._read(handle)
            self._remember(handle["id"], layers, handle["nbytes"])
        if not copy:
            return layers
        return [LayerKV(layer.keys.clone(), layer.values.clone()) for layer in layers]

    def _read(self, handle: KVHandle) -> list[LayerKV]:
        path = self._path(handle)
        if not path.is_file():
            raise KVStoreError(
                f"KV handle {handle['id']} (namespace {handle['namespace']!r}) has no "
                f"stored cache at {path}: it was deleted or never persisted"
            )
        try:
            tensors = load_file(str(path))
        except Exception as exc:
            raise KVStoreError(f"KV handle {handle['id']}: cache file {path} is corrupt ({exc})") from exc
        count = len(tensors) // 2
        try:
            layers = [LayerKV(tensors[f"k.{i}"], tensors[f"v.{i}"]) for i in range(count)]
        except KeyError as exc:
            raise KVStoreError(f"KV handle {handle['id']}: cache file {path} lacks tensor {exc}") from exc
        if _checksum(layers) != handle["sha256"]:
            raise KVStoreError(
                f"KV handle {handle['id']}: checksum mismatch in {path} (file corrupt or overwritten)"
            )
        return layers

    def exists(self, handle: KVHandle) -> bool:
        return handle["id"] in self._memory or self._path(handle).is_file()

    # -- freeing -------------------------------------------------------------------------
    def delete_namespace(self, namespace: str) -> int:
        """Free every entry of one namespace (a graph thread); returns how many files went."""
        folder = self.root / _safe_name(namespace)
        removed = 0
        if folder.is_dir():
            for path in folder.glob("*.safetensors"):
                self._forget(path.stem)
                path.unlink(missing_ok=True)
                removed += 1
            for path in folder.glob("*.tmp"):
                path.unlink(missing_ok=True)
            folder.rmdir()
        return removed

    def delete_prefix(self, prefix: str) -> int:
        """Free every namespace whose name starts with `prefix` (e.g. all threads of a run)."""
        removed = 0
        if self.root.is_dir():
            cleaned = _SAFE.sub("_", prefix)
            for folder in self.root.iterdir():
                if folder.is_dir() and folder.name.startswith(cleaned):
                    for path in folder.glob("*"):
                        self._forget(path.stem)
                        path.unlink(missing_ok=True)
                        removed += 1
                    folder.rmdir()
        return removed

    def _forget(self, handle_id: str) -> None:
        with self._lock:
            layers = self._memory.pop(handle_id, None)
            if layers is not None:
                self._memory_bytes -= sum(
                    t.numel() * t.element_size() for layer in layers for t in (layer.keys, layer.values)
                )


_stores: dict[str, KVStore] = {}
_stores_lock = threading.Lock()


def kv_store(root: str | Path) -> KVStore:
    """The process-wide store for a directory."""
    key = str(Path(root).expanduser().resolve())
    with _stores_lock:
        if key not in _stores:
            _stores[key] = KVStore(key)
        return _stores[key]


def kv_store_for_db(db: str) -> KVStore:
    from storage.paths import kv_dir_for

    return kv_store(kv_dir_for(db))
