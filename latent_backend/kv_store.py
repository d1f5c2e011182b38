"""The KV store: entries in memory first, written to disk behind the caller's back.

An `Entry` is named tensors plus string metadata. The store does not know what they mean (the
backend builds and reads them), so another backend can file its own kind of entry, e.g. a
serialized llama.cpp sequence state as one uint8 tensor. Entries are immutable once put.

- Memory: an LRU under a byte budget, on whatever device the tensors live (the model's). Each
  entry is counted once, however many threads load it at the same time.
- Disk: `put` returns at once; one writer thread per store writes
  `<root>/<namespace>/<id>.safetensors` (staged in `<root>/.staging`, then renamed, so a reader
  never sees half a file) with an xxh3 checksum in the file's metadata. An entry waiting for the
  writer is served from the queue. Past the disk budget the oldest files are evicted.
- A miss (never written, evicted, deleted, damaged) raises `KVStoreError`. Entries are rebuilt
  from their recipes by the backend, so a miss costs time, never an answer.
- Namespaces (graph threads) are matched exactly: `delete_namespace` frees one thread's entries,
  queued writes included, and nothing of any other thread.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import torch
import xxhash
from safetensors import safe_open
from safetensors.torch import save_file

from latent_backend.errors import KVStoreError

log = logging.getLogger(__name__)

KV_FORMAT_VERSION = "2"
STAGING = ".staging"
_SAFE_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Entry:
    """What the store files under one id: tensors the store never changes, plus string metadata."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nbytes", sum(t.numel() * t.element_size() for t in self.tensors.values()))


@dataclass
class StoreStats:
    files_written: int = 0
    bytes_written: int = 0
    writes_dropped: int = 0  # queued writes whose namespace was deleted first (never written)
    files_evicted: int = 0  # removed to keep under the disk budget


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    """xxh3-64 over names, dtypes, shapes and bytes (CPU tensors), in name order."""
    digest = xxhash.xxh3_64()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(memoryview(tensor.view(torch.uint8).numpy()))  # no copy
    return digest.hexdigest()


def namespace_dir_name(namespace: str) -> str:
    """One directory per namespace, exactly: safe names as they are, others escaped plus a hash
    ('=' never occurs in a safe name, so two namespaces never share a directory)."""
    if _SAFE_NAMESPACE.fullmatch(namespace):
        return namespace
    return f"{_UNSAFE.sub('_', namespace)[:40]}={hashlib.sha256(namespace.encode()).hexdigest()[:20]}"


class KVStore:
    """Entry id -> `Entry`: memory LRU under `memory_budget_bytes`, persisted under `root`."""

    def __init__(
        self, root: str | Path, *, memory_budget_bytes: int = 2 << 30, disk_budget_bytes: int = 16 << 30
    ) -> None:
        self.root = Path(root)
        self.memory_budget_bytes = memory_budget_bytes
        self.disk_budget_bytes = disk_budget_bytes  # 0: no limit
        self.stats = StoreStats()
        self._lock = threading.Condition()  # guards everything below
        self._memory: OrderedDict[str, tuple[str, Entry]] = OrderedDict()  # id -> (namespace, entry)
        self._memory_bytes = 0
        self._pending: dict[str, tuple[str, Entry]] = {}  # put, not yet on disk
        self._pending_bytes = 0
        self._queue: deque[str] = deque()
        self._busy = False  # the writer is working on an entry (or on the disk budget)
        self._loading: dict[str, threading.Lock] = {}
        self._disk_bytes: int | None = None  # counted on first need
        self._writer: threading.Thread | None = None

    def configure(
        self, *, memory_budget_bytes: int | None = None, disk_budget_bytes: int | None = None
    ) -> None:
        with self._lock:
            if memory_budget_bytes is not None:
                self.memory_budget_bytes = int(memory_budget_bytes)
                self._evict_memory()
            if disk_budget_bytes is not None:
                self.disk_budget_bytes = int(disk_budget_bytes)

    @property
    def memory_bytes(self) -> int:
        with self._lock:
            return self._memory_bytes

    # -- writing -------------------------------------------------------------------------
    def put(self, entry_id: str, namespace: str, entry: Entry, *, persist: bool = True) -> None:
        """File `entry`; returns before it is on disk. The store owns the tensors from now on.

        `persist=False` keeps it in memory only (evicted means recomputed). A writer that falls
        behind by more than the memory budget makes `put` wait (bounded memory)."""
        with self._lock:
            self._remember(entry_id, namespace, entry)
            if not persist:
                return
            while self._pending and self._pending_bytes + entry.nbytes > max(self.memory_budget_bytes, 1):
                self._lock.wait()
            self._pending[entry_id] = (namespace, entry)
            self._pending_bytes += entry.nbytes
            self._queue.append(entry_id)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="kv-writer", daemon=True)
                self._writer.start()
                atexit.register(self.flush)
            self._lock.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued entry is on disk (or dropped); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _write_loop(self) -> None:
        self._sweep_staging()
        while True:
            with self._lock:
                self._busy = False
                self._lock.notify_all()
                self._lock.wait_for(lambda: bool(self._queue))
                entry_id = self._queue.popleft()
                item = self._pending.get(entry_id)
                self._busy = item is not None
            if item is None:
                continue  # its namespace was deleted while it waited
            try:
                self._write(entry_id, item)
                if self.disk_budget_bytes:
                    self._keep_disk_budget()
            except Exception as exc:  # a full disk must not stop the run: the entry stays rebuildable
                log.warning("KV entry %s was not written (%s); it is recomputed if needed", entry_id, exc)
            finally:
                with self._lock:
                    if self._pending.get(entry_id) is item:
                        del self._pending[entry_id]
                        self._pending_bytes -= item[1].nbytes

    def _write(self, entry_id: str, item: tuple[str, Entry]) -> None:
        staging, size = self._stage(entry_id, *item)
        with self._lock:
            if self._pending.get(entry_id) is not item:  # deleted meanwhile
                staging.unlink(missing_ok=True)
                return
            final = self._path(item[0], entry_id)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, final)  # under the lock: a namespace deletion sees it or cancels it
            self.stats.files_written += 1
            self.stats.bytes_written += size
            if self._disk_bytes is not None:
                self._disk_bytes += size

    def _stage(self, entry_id: str, namespace: str, entry: Entry) -> tuple[Path, int]:
        tensors = {name: t.detach().to("cpu").contiguous() for name, t in entry.tensors.items()}
        metadata = {**entry.metadata, "format": KV_FORMAT_VERSION, "xxh3": checksum(tensors)}
        staging = self.root / STAGING / f"{os.getpid()}-{entry_id}.tmp"
        staging.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(staging), metadata=metadata)
        return staging, staging.stat().st_size

    def _sweep_staging(self) -> None:
        """Remove what killed processes left: half-written files, half-deleted namespaces."""
        for path in (self.root / STAGING).glob("*"):
            pid = path.name.removeprefix("trash-").split("-", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    # -- memory --------------------------------------------------------------------------
    def _remember(self, entry_id: str, namespace: str, entry: Entry) -> None:
        """Insert or replace (caller holds the lock); an entry is counted once, whoever loads it."""
        old = self._memory.pop(entry_id, None)
        if old is not None:
            self._memory_bytes -= old[1].nbytes
        if entry.nbytes <= self.memory_budget_bytes:
            self._memory[entry_id] = (namespace, entry)
            self._memory_bytes += entry.nbytes
            self._evict_memory()

    def _evict_memory(self) -> None:
        while self._memory_bytes > self.memory_budget_bytes and self._memory:
            _, (_, evicted) = self._memory.popitem(last=False)
            self._memory_bytes -= evicted.nbytes

    def clear_memory(self) -> None:
        """Forget every entry held in memory (disk and queued writes stay): the next reads are cold."""
        with self._lock:
            self._memory.clear()
            self._memory_bytes = 0

    # -- reading -------------------------------------------------------------------------
    def get(self, entry_id: str, namespace: str) -> Entry:
        """The entry (do not mutate its tensors); `KVStoreError` when it is gone or damaged."""
        with self._lock:
            found = self._memory.get(entry_id) or self._pending.get(entry_id)
            if found is not None:
                if entry_id in self._memory:
                    self._memory.move_to_end(entry_id)
                return found[1]
            loading = self._loading.setdefault(entry_id, threading.Lock())
        with loading:  # one reader loads a file; the others wait and take it from memory
            with self._lock:
                found = self._memory.get(entry_id)
            if found is not None:
                return found[1]
            try:
                entry = self._read(entry_id, namespace)
            finally:
                with self._lock:
                    self._loading.pop(entry_id, None)
            with self._lock:
                self._remember(entry_id, namespace, entry)
            return entry

    def _read(self, entry_id: str, namespace: str) -> Entry:
        path = self._path(namespace, entry_id)
        if not path.is_file():
            raise KVStoreError(
                f"KV entry {entry_id} (namespace {namespace!r}) is not at {path}: "
                "never written, evicted or deleted"
            )
        try:
            with safe_open(str(path), framework="pt", device="cpu") as file:
                metadata = dict(file.metadata() or {})
                tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
        except Exception as exc:
            path.unlink(missing_ok=True)  # a damaged file can never serve; its entry is rebuilt instead
            raise KVStoreError(f"KV entry {entry_id}: file {path} is damaged ({exc})") from exc
        stored_checksum = metadata.pop("xxh3", None)
        if metadata.pop("format", None) != KV_FORMAT_VERSION or stored_checksum != checksum(tensors):
            path.unlink(missing_ok=True)
            raise KVStoreError(f"KV entry {entry_id}: checksum mismatch in {path} (damaged file)")
        return Entry(tensors, metadata)

    def exists(self, entry_id: str, namespace: str) -> bool:
        with self._lock:
            if entry_id in self._memory or entry_id in self._pending:
                return True
        return self._path(namespace, entry_id).is_file()

    def _path(self, namespace: str, entry_id: str) -> Path:
        return self.root / namespace_dir_name(namespace) / f"{entry_id}.safetensors"

    # -- freeing -------------------------------------------------------------------------
    def delete_namespace(self, namespace: str) -> int:
        """Free every entry of one namespace (a graph thread): memory, queued writes and files.
        Returns how many files went."""
        folder = self.root / namespace_dir_name(namespace)
        trash = self.root / STAGING / f"trash-{os.getpid()}-{uuid.uuid4().hex}"
        with self._lock:
            for entry_id in [i for i, (ns, _) in self._memory.items() if ns == namespace]:
                self._memory_bytes -= self._memory.pop(entry_id)[1].nbytes
            for entry_id in [i for i, (ns, _) in self._pending.items() if ns == namespace]:
                self._pending_bytes -= self._pending.pop(entry_id)[1].nbytes
                self.stats.writes_dropped += 1
            self._lock.notify_all()
            if not folder.is_dir():
                return 0
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, trash)  # atomic: the writer can no longer add to it
        files = list(trash.glob("*.safetensors"))
        freed = sum(_size(path) for path in files)
        shutil.rmtree(trash, ignore_errors=True)
        with self._lock:
            if self._disk_bytes is not None:
                self._disk_bytes = max(0, self._disk_bytes - freed)
        return len(files)

    def _keep_disk_budget(self) -> None:
        """Evict the oldest files while the directory holds more than the disk budget (entries are
        rebuildable, so eviction costs time only), down to 90% of it so it does not run every write."""
        if self._disk_bytes is None:
            self._disk_bytes = sum(_size(p) for p in self.root.glob("*/*.safetensors"))
        if self._disk_bytes <= self.disk_budget_bytes:
            return
        files = sorted(
            (path.stat().st_mtime, _size(path), path) for path in self.root.glob("*/*.safetensors")
        )
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.disk_budget_bytes * 9 // 10:
                break
            path.unlink(missing_ok=True)
            total -= size
            self.stats.files_evicted += 1
        with self._lock:
            self._disk_bytes = total


def _size(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_size
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


_stores: dict[str, KVStore] = {}
_stores_lock = threading.Lock()


def kv_store(
    root: str | Path, *, memory_budget_bytes: int | None = None, disk_budget_bytes: int | None = None
) -> KVStore:
    """The process-wide store for a directory (budgets, when given, apply from now on)."""
    key = str(Path(root).expanduser().resolve())
    with _stores_lock:
        if key not in _stores:
            _stores[key] = KVStore(key)
        store = _stores[key]
    store.configure(memory_budget_bytes=memory_budget_bytes, disk_budget_bytes=disk_budget_bytes)
    return store


def kv_store_for_db(db: str) -> KVStore:
    from storage.paths import kv_dir_for

    return kv_store(kv_dir_for(db))
