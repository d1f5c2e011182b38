"""Loading llama-cpp-python: the process environment it needs, its log, and whether it is there.

Invariants:
- `OMP_WAIT_POLICY=PASSIVE` is in the environment before libllama (and its libgomp) loads: ggml's
  OpenMP threads otherwise spin between operations, which on a shared CPU makes a 2-thread decode
  5-20x slower. An explicit setting by the user wins. torch's OpenMP library, once loaded, serves
  llama.cpp too, so the package sets it before torch loads (`latent_backend.__init__`); a warning
  says when torch came first.
- numpy's OpenBLAS gets one thread (`OPENBLAS_NUM_THREADS=1`, also set by the package before
  numpy loads) unless the user set it.
- llama.cpp's own log goes to the `latent_backend.llamacpp` logger: warnings and errors only
  (llama-cpp-python's callback maps ggml's levels with a stale table and hides real errors).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from types import ModuleType
from typing import Any

log = logging.getLogger("latent_backend.llamacpp")

REQUIREMENT = "llama-cpp-python==0.3.36"
_GGML_LOG_WARN, _GGML_LOG_ERROR = 3, 4

_lock = threading.Lock()
_module: ModuleType | None = None
_callback: Any = None  # kept alive: llama.cpp holds a pointer to it


def available() -> bool:
    """llama-cpp-python is installed (importing it is left to `llama()`)."""
    return importlib.util.find_spec("llama_cpp") is not None


def llama() -> ModuleType:
    """The `llama_cpp` module, imported once with the environment and log set up."""
    global _module, _callback
    with _lock:
        if _module is not None:
            return _module
        from latent_backend import TORCH_BEFORE_OMP

        if TORCH_BEFORE_OMP:
            log.warning(
                "torch was imported before OMP_WAIT_POLICY was set: llama.cpp's threads may spin and run "
                "several times slower on a busy CPU (export OMP_WAIT_POLICY=PASSIVE to avoid it)"
            )
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            import llama_cpp
        except ImportError as exc:
            raise ImportError(
                f"the llama.cpp backend needs {REQUIREMENT} (pip install 'masgraph[llamacpp]'): {exc}"
            ) from exc

        @llama_cpp.llama_log_callback
        def forward(level: int, text: bytes, _user_data: Any) -> None:
            if level in (_GGML_LOG_WARN, _GGML_LOG_ERROR):
                message = text.decode("utf-8", errors="replace").rstrip()
                if message and "pooling_type" not in message:  # we ask for no pooling on purpose
                    log.log(logging.ERROR if level == _GGML_LOG_ERROR else logging.WARNING, "%s", message)

        _callback = forward
        llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _module = llama_cpp
        return llama_cpp


def version() -> str:
    return str(llama().__version__)
