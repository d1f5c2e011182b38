"""Runs the latent_mas graph up to its judger, then is killed while the KV writer is mid-file.

    python -m tests.graphs.latent_crash_worker DB THREAD

The KV store's third file write (the refiner's entry) writes half the file and hangs; the graph
itself stops before the judger (`interrupt_before`). The worker prints "MID-FILE" and "STOPPED";
the test then kills it with SIGKILL (at exit the store would wait for the hung writer forever).
"""

from __future__ import annotations

import os
import sys
import threading

import latent_backend.kv_store as kv_module
from graphs.latent_mas import build_graph
from storage.checkpoints import RUN_DURABILITY, compile_with_saver, thread_config
from tests.graphs.test_latent_mas_recovery import QUESTION, context_for

real_save = kv_module.save_file
writes = []


def save_then_hang_on_the_third(tensors, path, metadata=None) -> None:
    writes.append(path)
    real_save(tensors, path, metadata=metadata)
    if len(writes) == 3:
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        print("MID-FILE", flush=True)
        threading.Event().wait()  # the writer thread never finishes this file


def main() -> None:
    db, thread = sys.argv[1], sys.argv[2]
    kv_module.save_file = save_then_hang_on_the_third
    graph = compile_with_saver(build_graph(), db, interrupt_before=["judger"])
    graph.invoke(
        {"question": QUESTION}, thread_config(thread), context=context_for(), durability=RUN_DURABILITY
    )
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
