# Set-up and entry points. `make demo`, `make test` and `make docs` each create .venv and install
# on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA := $(abspath ../shared/data)
export SKDISTILL_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: install demo test docs docs-full bench-serving clean

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,onnx,dask,conformal]"
	touch $@

install: $(VENV)/.installed

# The API pages import every public module (skdistill.onnx too): the docs tools go on top of
# what `make test` installs.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,onnx,dask,conformal,docs]"
	touch $@

# The serving benchmark's runtimes (LightGBM, treelite + tl2cgen, lleaves, onnxmltools) go on
# top of what `make test` installs; the suite itself never needs them.
$(VENV)/.serving-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,onnx,dask,conformal,serving]"
	touch $@

demo: install
	$(PY) -m skdistill demo

test: install
	$(PY) -m pytest -n 2 -q

# The site, offline, warnings as errors, into doc/_build/html. `make docs` lists the gallery
# without running it (what CI builds); `make docs-full` runs every example in examples/.
SPHINX := $(PY) -m sphinx -W --keep-going -b html doc doc/_build/html

docs: $(VENV)/.docs-installed
	$(SPHINX) -q -D plot_gallery=0

docs-full: $(VENV)/.docs-installed
	OMP_NUM_THREADS=1 $(SPHINX)

# "Is distillation worth it?" (doc/serving.md): every table, teacher, student and runtime,
# one thread each; hours on two cores (see doc/serving.md).
bench-serving: $(VENV)/.serving-installed
	OMP_NUM_THREADS=1 $(PY) -m benchmarks serving \
		--json benchmarks/serving.json --markdown benchmarks/serving.md

clean:
	rm -rf $(VENV) build *.egg-info doc/_build doc/api doc/auto_examples
