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

# The real SemanticKITTI sample beside the checkout (if any) is where the LiDAR part is evaluated.
KITTI  := $(wildcard ../shared/data/semantic-kitti)

demo: $(STAMP)
	$(BIN)/pixelwise demo --out runs/demo $(if $(KITTI),--lidar-scans $(KITTI))

bench: $(STAMP)
	$(BIN)/pixelwise bench ops --json runs/bench-ops.json
	$(BIN)/pixelwise bench upsample --json runs/bench-upsample.json
	$(BIN)/pixelwise bench lidar --json runs/bench-lidar.json $(if $(KITTI),--scan $(KITTI)/sequences/00/velodyne/000000.bin)
	$(BIN)/pixelwise bench instances --images 2 --repeats 3 --json runs/bench-instances.json
	$(BIN)/pixelwise bench segment --json runs/bench-segment.json

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
