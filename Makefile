# Set-up and everyday commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The PyTorch build for the engine: this pin takes the CPU wheel on the project's machines; for a
# CUDA build pick the command at https://pytorch.org/get-started/ and run `make TORCH=... install`.
TORCH ?= torch==2.13.0
# pytest workers of `make test` (pytest-xdist): one per core by default; `make test PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= auto

.PHONY: install demo test lint health proto prototxt check-prototxt bench clean caffe caffe-deps parity

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[engine,screen,export,dashboards,cluster,test]'
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
	$(PY) bench/pooling.py
	$(PY) bench/data_prep.py
	$(PY) bench/screen.py
	$(PY) bench/plain_torch.py
	$(PY) bench/startup.py
	MCNN_CAFFE_PREFIX='$(abspath $(CAFFE_PREFIX))' $(PY) bench/vs_caffe.py

# Real BVLC Caffe (CPU only) as a test oracle, built by docker/build_caffe.sh into CAFFE_DIR; a finished
# build is reused (delete CAFFE_DIR to rebuild). CAFFE_SRC: a Caffe checkout [empty: fetch CAFFE_COMMIT].
# The apt packages need root: `sudo make caffe-deps` once, when `make caffe` says they are missing.
CAFFE_DIR ?= .cache/caffe
CAFFE_SRC ?=
CAFFE_PREFIX ?= $(CAFFE_DIR)/prefix
CAFFE_VENV ?= $(CAFFE_DIR)/venv
CAFFE_WORK ?= $(CAFFE_DIR)/work
# The interpreter of the Caffe venv: the system Python, whose headers and Boost.Python the build uses.
CAFFE_BASE_PYTHON ?= /usr/bin/python3
CAFFE_STAMP := $(CAFFE_PREFIX)/.mcnn-built
CAFFE_PACKAGES := $(shell sed -e 's/\#.*//' docker/caffe-apt-packages.txt)

caffe: $(CAFFE_STAMP)

$(CAFFE_STAMP):
	@if command -v dpkg-query >/dev/null; then \
	    missing=$$(for p in $(CAFFE_PACKAGES); do \
	        dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || printf ' %s' $$p; \
	    done); \
	    if [ -n "$$missing" ]; then \
	        echo "make caffe: missing packages:$$missing (run: sudo make caffe-deps)" >&2; exit 1; \
	    fi; \
	fi
	test -x $(CAFFE_VENV)/bin/python || $(CAFFE_BASE_PYTHON) -m venv $(CAFFE_VENV)
	$(CAFFE_VENV)/bin/python -m pip install --quiet -r docker/pycaffe-requirements.txt
	CAFFE_SRC='$(if $(CAFFE_SRC),$(abspath $(CAFFE_SRC)))' CPU_ONLY=1 PREFIX='$(abspath $(CAFFE_PREFIX))' \
	    WORK_DIR='$(abspath $(CAFFE_WORK))' PYTHON='$(abspath $(CAFFE_VENV))/bin/python' \
	    bash docker/build_caffe.sh
	@# The toolkit too, for `--engine caffe` under real pycaffe, NumPy held at pycaffe's (as Dockerfile.caffe
	@# does); pyarrow >= 21 needs NumPy 2.
	$(CAFFE_VENV)/bin/python -m pip freeze | grep -i '^numpy==' > $(CAFFE_DIR)/hold.txt
	$(CAFFE_VENV)/bin/python -m pip install --quiet --constraint $(CAFFE_DIR)/hold.txt -e . 'pyarrow<21'
	touch $@

caffe-deps:
	bash docker/build_caffe.sh --install-deps

# The differential suite against that Caffe (tests/parity/; without the build every case skips).
# Its table of worst differences goes to $(CAFFE_DIR)/parity-report.md.
parity: install caffe
	MCNN_CAFFE_PREFIX='$(abspath $(CAFFE_PREFIX))' MCNN_CAFFE_PYTHON='$(abspath $(CAFFE_VENV))/bin/python' \
	    MCNN_PARITY_REPORT='$(abspath $(CAFFE_DIR))/parity-report.md' $(PY) -m pytest -q -rs tests/parity

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
