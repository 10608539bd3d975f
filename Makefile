# Set-up and everyday commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The PyTorch build for the engine: this pin takes the CPU wheel on the project's machines; for a
# CUDA build pick the command at https://pytorch.org/get-started/ and run `make TORCH=... install`.
TORCH ?= torch==2.13.0
# pytest workers of `make test` (pytest-xdist): one per core by default; `make test PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= auto

.PHONY: install demo test lint health proto prototxt check-prototxt bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[engine,screen,export,dashboards,test]'
	touch $@

# The README's main command: a simulated screen, an M-CNN trained on the CPU, EC50s recovered.
demo: install
	$(PY) tools/demo.py --out runs/demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

# ruff, and the import layers of pyproject.toml (orchestrators on top, no upward imports).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Module length, cyclomatic complexity and docstring coverage against the limits (README, Development).
health: install
	$(PY) tools/code_health.py

# Regenerate mcnn/caffe/proto/caffe_pb2.py after editing caffe.proto.
proto: install
	$(PY) tools/gen_proto.py

# Regenerate the committed nets and solvers under prototxt/ and solvers/.
prototxt: install
	$(PY) tools/regenerate_committed.py

check-prototxt: install
	$(PY) tools/regenerate_committed.py --check

bench: install
	$(PY) bench/engine.py
	$(PY) bench/data_prep.py
	$(PY) bench/screen.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
