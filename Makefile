# neurocomp — two commands on a fresh machine:
#   make demo   set up .venv (Python 3.10) if needed, compile + verify the embedded MNIST example on
#               Lava, compare float/cpu/Lava per layer, write the energy report
#   make test   same set-up, then the whole test suite (slow Lava tests included)
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.neurocomp-installed

# lava-nc 0.10 needs Python >=3.10,<3.11: the first candidate that really runs as 3.10 — pyenv's
# installed versions (not its shims, which refuse when another version is selected), then PATH.
PYTHON310 ?= $(shell for c in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10.*/bin/python3.10 2>/dev/null | sort -rV) \
                 $$(command -v python3.10 2>/dev/null) /usr/bin/python3.10 /usr/local/bin/python3.10; do \
                 "$$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { echo "$$c"; break; }; done)

.PHONY: demo test test-fast bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
	  if [ -z "$(PYTHON310)" ]; then \
	    echo "error: Python 3.10 not found (lava-nc 0.10 needs >=3.10,<3.11). Install it (e.g. 'pyenv install 3.10') or run 'make PYTHON310=/path/to/python3.10'." >&2; exit 2; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON310)"; \
	  "$(PYTHON310)" -m venv $(VENV) || exit 2; \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurocomp compile models/mnist_mlp/model.yaml --target loihi-sim --out build/mnist_mlp
	$(VENV)/bin/neurocomp verify build/mnist_mlp --samples 20
	$(VENV)/bin/neurocomp energy build/mnist_mlp --baseline gpu --out build/mnist_mlp/energy
	@echo "demo done: build/mnist_mlp/report.json, build/mnist_mlp/energy/energy.html"

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "slow or not slow" tests

test-fast: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "not slow" tests

bench: $(STAMP)
	$(PY) benchmarks/bench_sim.py --quick

clean:
	rm -rf build .pytest_cache
