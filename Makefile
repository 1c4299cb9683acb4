# Set-up and the two commands of the README. `make demo` runs the smoke sweep end to end; `make test` the suite,
# `make test-fast` its unit part (no tests/e2e, no slow, Slurm or soak tests).
# CPU torch is pinned (the wheel on this machine); a GPU user sets TORCH_INDEX, see README.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PIP_TORCH := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
SWEEP ?= sweeps/smoke.yaml

.PHONY: venv demo test test-fast lint bench-smoke clean

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(PIP_TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: venv
	$(VENV)/bin/harness expand $(SWEEP)
	$(VENV)/bin/harness submit --workers 2
	$(VENV)/bin/harness status
	$(VENV)/bin/harness report

test: venv
	$(VENV)/bin/ruff check harness analysis tests bench
	$(VENV)/bin/pytest -q -rs -n 2 --dist loadgroup --no-loadscope-reorder

test-fast: venv
	$(VENV)/bin/pytest -q -rs -n 2 --dist loadgroup --no-loadscope-reorder --ignore=tests/e2e -m "not slow and not slurm and not soak"

bench-smoke: venv
	for b in bench/bench_*.py; do $(PY) $$b --smoke || exit 1; done

clean:
	rm -rf $(VENV) results/* .pytest_cache
