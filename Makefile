# The two set-up commands are `make demo` and `make test`; both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make demo` installs only what the demo uses (the [serve] extra: no PyTorch, no DALI); `make test`
# installs everything. Both share .venv: the full install also marks the demo's subset as present.
DEMO_STAMP := $(VENV)/.installed-serve
# In a checkout the client package is installed for its metadata and the `s2f` script only; the
# editable full package serves every module from the checkout (packaging/client/hatch_build.py).
CLIENT_METADATA := S2F_CLIENT_METADATA_ONLY=1
BUILD_INPUTS := pyproject.toml packaging/client/pyproject.toml packaging/client/hatch_build.py requirements-build.txt CMakeLists.txt $(wildcard csrc/*)

.PHONY: demo test install dist bench-features train-default clean

$(STAMP): requirements-dev.txt $(BUILD_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-build.txt
	$(CLIENT_METADATA) $(PY) -m pip install --quiet --no-build-isolation -r requirements-dev.txt
	touch $(DEMO_STAMP) $(STAMP)

$(DEMO_STAMP): $(BUILD_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-build.txt
	$(CLIENT_METADATA) $(PY) -m pip install --quiet --no-build-isolation ./packaging/client -e ".[serve]"
	touch $(DEMO_STAMP)

install: $(STAMP)

# The two wheels, into dist/: the client (py3-none-any: tritonclient, NumPy, soundfile, PyAV, Pillow;
# no compiler, no model, no tritonserver) and the full package (kernels, model, server), which
# depends on it. Install lines: README.md, "Install".
dist: $(DEMO_STAMP)
	mkdir -p dist
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w dist ./packaging/client .
	ls -l dist

demo: $(DEMO_STAMP)
	$(PY) -m speech2face.demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow and not gpu" -q

# GPU checks (need an NVIDIA GPU; each test skips with its reason where TensorRT, ONNX Runtime CUDA
# or CUDA is missing): TensorRT plans of both gpu layouts with parity, then the waveform engine's
# benchmark on the paper preset (TensorRT FP16/FP32, ORT CUDA, PyTorch CUDA graphs; docs/GPU.md).
.PHONY: test-gpu
test-gpu: $(STAMP)
	mkdir -p benchmarks/results
	$(PY) -m pytest -m gpu -q -rs tests/gpu/test_tensorrt.py
	$(PY) -m pytest -m gpu -q -rs benchmarks/test_gpu_bench.py --benchmark-json=benchmarks/results/gpu.json

# Python lint: the rules, and why each, are in pyproject.toml's [tool.ruff]. Installs its own ruff
# (and needs only the venv, not the build: linting never recompiles the kernels).
RUFF_VERSION := 0.17.6
.PHONY: lint
# The C++ warnings (CMakeLists.txt's -Wall -Wextra) as errors, for every ISA variant: checked
# without generating code, so CI needs no build for it; user builds only warn.
CXX_LINT = $(CXX) -std=c++17 -fsyntax-only -Wall -Wextra -Wno-psabi -Werror -Icsrc $$($(PY) -m pybind11 --includes)

lint:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "ruff==$(RUFF_VERSION)" "pybind11>=2.12"
	$(PY) -m ruff check .
	for isa in generic avx2 avx512; do $(CXX_LINT) -DS2F_ISA=$$isa csrc/kernel_isa.cpp || exit 1; done
	$(CXX_LINT) -DS2F_HAVE_X86_ISAS csrc/bindings.cpp csrc/spectrogram.cpp
	$(CC) -std=c11 -fsyntax-only -Wall -Wextra -Werror csrc/server_shim.c

bench-features: $(STAMP)
	mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks/test_features_bench.py --benchmark-only --benchmark-json=benchmarks/results/features.json

# Rebuilds the built-in model (models/default) from nothing, once per training seed (synthetic
# corpus, three stages, export, evaluation), ships the median seed's bundle and writes the spread
# of every figure (spread.json, EVALUATION.md). Finished seeds are reused, and a recipe change
# retrains only the stages it touches (train_default.stage_keys).
train-default: $(STAMP)
	$(PY) -m speech2face.engine.cli recipe-spread --seeds 0 1 2 --out models/default --ship

# The recipe guard: the reduced recipe rebuilt from nothing, checked against the spread of its own
# seeds (models/default/guard_spread.json, which `make guard-spread` measures).
.PHONY: test-recipe guard-spread
test-recipe: $(STAMP)
	$(PY) -m pytest -m slow -q -s tests/training/test_recipe_guard.py

guard-spread: $(STAMP)
	$(PY) -m speech2face.engine.cli recipe-spread --guard --seeds 0 1 2 --out models/default

clean:
	rm -rf build dist $(VENV) .venv-tools .pytest_cache

# The slow tests of the serving side (the long attacks of docs/SECURITY.md, packaging from a fresh
# virtualenv); the soak and the cluster have their own targets.
.PHONY: test-slow
test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q -s tests/served --deselect tests/served/test_soak.py

# Load benchmarks and the long soak (see benchmarks/LOAD.md).
.PHONY: soak bench-load
soak: $(STAMP)
	$(PY) -m pytest tests/served/test_soak.py -m slow -q -s

bench-load: $(STAMP)
	$(PY) -m speech2face.engine.cli bench --targets triton,triton-file,triton-shm,triton-anybatch,triton-1x2,triton-2x1,fastapi,ort \
		--levels 1,8 --rounds 3 --window 6 --warmup 2 --out benchmarks/results/load
	$(PY) benchmarks/studies/breakdown.py --rounds 3 --requests 120 --out benchmarks/results/breakdown
	$(PY) -m pytest benchmarks/test_inprocess_bench.py --benchmark-only --benchmark-json=benchmarks/results/inprocess.json

# Deployment kit checks, offline (docs/DEPLOY.md). The tools live in their own venv (.venv-tools)
# to keep .venv light; kubectl (kustomize built in) and promtool come from apt when missing.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
.PHONY: lint-docker deploy-check cluster-test

$(TOOLS_STAMP): requirements-tools.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $(TOOLS_STAMP)

lint-docker: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/hadolint docker/Dockerfile.cpu docker/Dockerfile.gpu

deploy-check: lint-docker
	command -v kubectl >/dev/null || (apt-get update -q && apt-get install -y -q kubectl)
	command -v promtool >/dev/null || (apt-get update -q && apt-get install -y -q prometheus)
	$(TOOLS_VENV)/bin/python deploy/check.py

# The local proof: 3 tritonserver replicas behind HAProxy with Prometheus, load at c=16, a replica
# killed, a rolling update, the queue-time rule and the dashboard's queries (apt installs HAProxy
# and Prometheus when missing). It needs the demo's [serve] venv and a test runner, nothing more;
# CLUSTER_BASE_PORT=N takes the ports from N on (11 of them) instead of free ones.
CLUSTER_BASE_PORT ?=
cluster-test: $(DEMO_STAMP)
	$(CLIENT_METADATA) $(PY) -m pip install --quiet --no-build-isolation ./packaging/client -e ".[cluster]"
	S2F_CLUSTER_BASE_PORT=$(CLUSTER_BASE_PORT) $(PY) -m pytest tests/cluster/test_cluster.py -q -s -m "slow or not slow"

# The browser demo's checks (tests/web; docs/web_demo.png is its screenshot): gradio, gradio_client
# and Playwright into .venv, pinned to what was tested; NumPy is held at the installed version (the
# client bounds it; gradio's pandas would otherwise pull NumPy 2.4), and gradio itself caps Pillow
# below 13. Playwright drives Debian's Chromium, installed by apt when missing: `playwright install`
# is never run (it downloads browser builds). The tests start their own tritonserver on loopback.
WEB_PINS := gradio==6.31.0 gradio_client==2.7.2 playwright==1.65.3 "pytest>=8" "pytest-timeout>=2"
WEB_STAMP := $(VENV)/.installed-web
.PHONY: test-web
$(WEB_STAMP): $(DEMO_STAMP)
	$(PY) -m pip install --quiet $(WEB_PINS) "numpy==$$($(PY) -c 'import numpy; print(numpy.__version__)')"
	touch $(WEB_STAMP)

# The first try of the browser demo: the built-in model on a local server and the page on
# http://127.0.0.1:7860, both stopped by Ctrl-C.
.PHONY: web
web: $(WEB_STAMP)
	$(PY) -m speech2face.engine.cli web --serve

test-web: $(WEB_STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium chromium-driver)
	$(PY) -m pytest -q -p no:cacheprovider -rs tests/web

# Triton's own tools on this repository. perf_analyzer: PyPI's perf-analyzer needs glibc 2.38 (Debian
# 12 has 2.36), so the 2.51 binary inside tritonclient[all] is used, with libb64 (apt, when missing)
# and libcudart (pip), in its own venv (.venv-perf; `make .venv-perf/.installed` installs only, and
# tests/served/test_perf_analyzer.py runs once it is there). `make perf-analyzer` then measures it
# beside `s2f bench` on one server, case by case (benchmarks/studies/perf_analyzer_vs_bench.py, ~5 min).
PERF_VENV := .venv-perf
PERF_STAMP := $(PERF_VENV)/.installed
.PHONY: perf-analyzer
$(PERF_STAMP):
	test -x $(PERF_VENV)/bin/python || $(PYTHON) -m venv $(PERF_VENV)
	$(PERF_VENV)/bin/python -m pip install --quiet "tritonclient[all]==2.51.0" "nvidia-cuda-runtime-cu12==12.9.79"
	ldconfig -p | grep -q 'libb64\.so\.0d' || (apt-get update -q && apt-get install -y -q libb64-0d)
	touch $(PERF_STAMP)

perf-analyzer: $(STAMP) $(PERF_STAMP)
	$(PY) benchmarks/studies/perf_analyzer_vs_bench.py --perf-analyzer $(PERF_VENV)/bin/perf_analyzer

# Model Analyzer's search over the fused model's instances and runtime parameters, in its own venv
# (.venv-analyzer), with .venv-perf's perf_analyzer; writes into artifacts/model-analyzer (~6 min).
# benchmarks/studies/model_analyzer_search.py says what it assembles and why the search is brute.
ANALYZER_VENV := .venv-analyzer
ANALYZER_STAMP := $(ANALYZER_VENV)/.installed
.PHONY: model-analyzer
$(ANALYZER_STAMP):
	test -x $(ANALYZER_VENV)/bin/python || $(PYTHON) -m venv $(ANALYZER_VENV)
	$(ANALYZER_VENV)/bin/python -m pip install --quiet "triton-model-analyzer==1.58.0"
	touch $(ANALYZER_STAMP)

model-analyzer: $(STAMP) $(PERF_STAMP) $(ANALYZER_STAMP)
	$(PY) benchmarks/studies/model_analyzer_search.py --analyzer $(ANALYZER_VENV)/bin/model-analyzer \
		--perf-analyzer $(PERF_VENV)/bin/perf_analyzer
