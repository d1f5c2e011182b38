"""The llama.cpp backend (llama-cpp-python, in process): GGUF models on the CPU, quantized.

`LlamaCppBackend` serves the same interface as the transformers backend; `runtime` imports
llama-cpp-python with the environment it needs. Nothing here is imported until a llama.cpp
backend is asked for (`latent_backend.registry.get_backend`).
"""
