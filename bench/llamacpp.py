"""Benchmark: the llama.cpp backend against the transformers one, and llama.cpp's server as anchor.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/llamacpp.py --rounds 2

Same embedded model (SmolLM2-135M: transformers reads the fp32 dequantized copy of the GGUF,
llama.cpp the Q4_1 GGUF itself), same prompts, greedy, 2 threads:

- decode tok/s at batch 1 and 4: (tokens(N) - tokens(1)) / (seconds(N) - seconds(1)) per batch,
  so prefill is not counted; prompts that ask for long texts (rows may still stop at EOS: the
  generated tokens are printed);
- prefill tok/s: a ~500-token prompt, one new token;
- latent step ms: a rollout of 16 latent steps less one of 0, per step (batch 1 and 4);
- the server (`python -m llama_cpp.server`, loopback, same GGUF, n_threads 2): decode tok/s from
  its token stream (first to last token), batch 1 only (it serves one request at a time);
- agreement on the same input: last hidden states after the prompt and after 8 latent steps, and
  the realigned input embedding of the same hidden state, as relative errors between backends.

Writes bench/results/llamacpp.md (and prints it). The median of `--rounds` rounds is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from latent_backend import GenerationRequest, KVStore, RolloutRequest  # noqa: E402
from latent_backend.models import embedded_gguf_path  # noqa: E402
from latent_backend.registry import get_backend  # noqa: E402

LONG = [
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain in detail how bread is made, step by step.",
    "Describe the history of the bicycle at length.",
    "Write a long letter to a friend about your summer.",
]
PARAGRAPH = (
    "The hospital admitted a 54-year-old man with chest pain radiating to the left arm, sweating and "
    "nausea that began two hours earlier while he was shovelling snow. "
)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out


def decode_rate(backend, batch: int, tokens: int) -> tuple[float, int]:
    """Decode tok/s (prefill excluded) and the tokens generated, for `batch` rows of `tokens` tokens."""
    prompts = [user(LONG[i % len(LONG)]) for i in range(batch)]

    def run(new: int):
        requests = [GenerationRequest(messages=m, max_new_tokens=new) for m in prompts]
        return timed(lambda: backend.generate(requests))

    short, _ = run(1)
    full, results = run(tokens)
    made = sum(r.generated_tokens for r in results)
    return (made - batch) / (full - short), made


def prefill_rate(backend) -> tuple[float, int]:
    messages = user(PARAGRAPH * 14)
    seconds, results = timed(
        lambda: backend.generate([GenerationRequest(messages=messages, max_new_tokens=1)])
    )
    return results[0].prompt_tokens / seconds, results[0].prompt_tokens


def latent_step_ms(backend, batch: int, steps: int = 16) -> float:
    store = KVStore(tempfile.mkdtemp(prefix="bench-llamacpp-kv-"))

    def run(latent: int) -> float:
        requests = [
            RolloutRequest(
                messages=user(LONG[i % len(LONG)]), namespace="b", latent_steps=latent, persist=False
            )
            for i in range(batch)
        ]
        return timed(lambda: backend.rollout(requests, store))[0]

    return 1000 * (run(steps) - run(0)) / steps


def measure(backend, tokens: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for batch in (1, 4):
        out[f"decode_b{batch}"], out[f"made_b{batch}"] = decode_rate(backend, batch, tokens)
        out[f"latent_b{batch}"] = latent_step_ms(backend, batch)
    out["prefill"], out["prefill_tokens"] = prefill_rate(backend)
    return out


def server_decode(tokens: int, port: int = 8571) -> float | None:
    """Decode tok/s of llama-cpp-python's server on the same GGUF, from its token stream."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path())]
    command += ["--n_threads", "2", "--n_ctx", "2048", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            return None
        rates = []
        for prompt in LONG:
            body = {"messages": user(prompt), "max_tokens": tokens, "temperature": 0, "stream": True}
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            stamps = []
            with urllib.request.urlopen(request, timeout=600) as response:
                for line in response:
                    if line.startswith(b"data: {") and b'"content"' in line:
                        stamps.append(time.perf_counter())
            if len(stamps) > 2:
                rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
        return statistics.median(rates) if rates else None
    finally:
        server.terminate()
        server.wait(timeout=30)


def relative_error(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def agreement(hf, cpp) -> dict[str, float]:
    """Relative errors llama.cpp vs transformers on the same inputs (transformers is the reference)."""
    store = KVStore(tempfile.mkdtemp(prefix="bench-llamacpp-agree-"))
    out = {}
    for steps in (0, 8):
        request = RolloutRequest(messages=user(LONG[0]), namespace="a", latent_steps=steps, persist=False)
        h_hf, h_cpp = (
            hf.rollout([request], store)[0].last_hidden,
            cpp.rollout([request], store)[0].last_hidden,
        )
        out[f"hidden_{steps}"] = relative_error(h_cpp, h_hf)
        if steps == 0:
            aligned_hf = hf._align(h_hf[None].to(hf.device), True)[0].float().cpu()
            aligned_cpp = cpp._align(h_hf[None].numpy(), True)[0]
            out["aligned_same_h"] = relative_error(aligned_cpp, aligned_hf)
    w_hf, norm_hf = hf.realignment(True)
    w_cpp, norm_cpp = cpp.realignment(True)
    out["w_a"] = relative_error(w_cpp, w_hf.float().cpu())
    out["target_norm"] = abs(norm_cpp - float(norm_hf)) / float(norm_hf)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "llamacpp.md"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    backends = {
        "transformers (fp32)": get_backend(None, "transformers"),
        "llama.cpp (Q4_1)": get_backend(None, "llamacpp"),
    }
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
    for _ in range(args.rounds):
        for name, backend in backends.items():
            rounds[name].append(measure(backend, args.tokens))
    figures = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()
    }
    server = None if args.no_server else server_decode(args.tokens)
    load = os.getloadavg()[0]
    lines = [
        f"Embedded SmolLM2-135M-Instruct, greedy, 2 threads, {args.tokens} new tokens, median of {args.rounds} "
        f"round(s); load average {load:.1f} at the end (2 cores).",
        "",
        "| backend | decode b1 (tok/s) | decode b4 (tok/s, all rows) | prefill (tok/s) | latent step b1 (ms) "
        "| latent step b4 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        lines.append(
            f"| {name} | {f['decode_b1']:.1f} | {f['decode_b4']:.1f} | {f['prefill']:.0f} "
            f"({f['prefill_tokens']:.0f} tokens) | {f['latent_b1']:.1f} | {f['latent_b4']:.1f} |"
        )
    if server is not None:
        lines.append(f"| llama.cpp server (Q4_1, loopback) | {server:.1f} | - | - | - | - |")
    cpp = figures["llama.cpp (Q4_1)"]
    ratio = f"{cpp['decode_b1'] / server:.2f}x the server's" if server else "no server figure"
    lines += [
        "",
        f"llama.cpp backend decode b1: {cpp['decode_b1'] / figures['transformers (fp32)']['decode_b1']:.2f}x "
        f"transformers, {ratio}. Tokens generated (b1/b4): "
        + ", ".join(f"{n} {f['made_b1']:.0f}/{f['made_b4']:.0f}" for n, f in figures.items()),
        "",
    ]
    agree = agreement(*backends.values())
    lines += [
        "Agreement, llama.cpp vs transformers on the same input (relative error, transformers as reference):",
        "",
        "| quantity | relative error |",
        "|---|---|",
        f"| last hidden state after the prompt | {agree['hidden_0']:.4f} |",
        f"| last hidden state after 8 latent steps (realigned) | {agree['hidden_8']:.4f} |",
        f"| realigned input embedding of the same hidden state | {agree['aligned_same_h']:.2e} |",
        f"| realignment matrix W_a | {agree['w_a']:.2e} |",
        f"| target norm | {agree['target_norm']:.2e} |",
    ]
    table = "\n".join(lines) + "\n"
    command = "    " + " ".join(["python", *sys.argv])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(f"# llama.cpp backend benchmark\n\nCommand:\n\n{command}\n\n{table}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
