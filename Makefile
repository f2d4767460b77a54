# The two set-up commands of the README: `make demo` (main job) and `make test`.
# Both create or reuse .venv and install everything. torch is pinned to the CPU wheel
# here, before the package, so the package's torch range never pulls a CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: install demo bench test test-slow clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Real datasets beside the checkout (if any): each task's demo part and bench suite looks for its own inside.
DATA   := $(wildcard ../shared/data)

# Every task's part / suite comes from the task registry: adding a task changes nothing here.
demo: $(STAMP)
	$(BIN)/pixelwise demo --out runs/demo $(if $(DATA),--data-root $(DATA))

bench: $(STAMP)
	$(BIN)/pixelwise bench --json-dir runs $(if $(DATA),--data-root $(DATA))

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
