# The two set-up commands are `make demo` and `make test`; both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install bench-features train-default clean

$(STAMP): requirements-dev.txt pyproject.toml CMakeLists.txt $(wildcard csrc/*)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m speech2face.demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow and not gpu" -q

bench-features: $(STAMP)
	mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks/test_features_bench.py --benchmark-only --benchmark-json=benchmarks/results/features.json

# Rebuilds the built-in model (models/default) from nothing: synthetic corpus, three stages, export, eval.
train-default: $(STAMP)
	$(PY) -m speech2face.training.train_default --data artifacts/synthetic-corpus --work artifacts/train-default --out models/default

clean:
	rm -rf build $(VENV) .pytest_cache

# Load benchmarks and the long soak (see benchmarks/LOAD.md).
.PHONY: soak bench-load
soak: $(STAMP)
	$(PY) -m pytest tests/test_soak.py -m slow -q -s

bench-load: $(STAMP)
	$(PY) -m speech2face.engine.cli bench --out benchmarks/results/load
	$(PY) benchmarks/overhead.py --out benchmarks/results/load
	$(PY) -m pytest benchmarks/test_inprocess_bench.py --benchmark-only --benchmark-json=benchmarks/results/inprocess.json
