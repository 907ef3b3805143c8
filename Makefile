# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch: on this project's machines pip finds it on disk. Elsewhere set
# TORCH_PIP_ARGS to an index of CPU wheels (see README) or leave it to get PyPI's default build.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: setup demo test bench clean

$(BIN)/dtg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(BIN)/dtg

setup: $(BIN)/dtg

demo: setup
	$(BIN)/dtg run pipelines/demo.toml

test: setup
	$(BIN)/pip install --quiet -e ".[test,ray]"
	$(BIN)/python -m pytest -n 2 -q

bench: setup  # every benchmark with its defaults (~10 min); docs/benchmarks.md has the recorded commands
	for b in ingest window train score nn_core report detect; do $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf data/lake data/quarantine data/windows data/scores data/events data/ledger.sqlite* models/demo
