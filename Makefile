# Set-up and entry points. `make demo` and `make test` each create .venv and install on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA := $(abspath ../shared/data)
export SKDISTILL_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: install demo test clean

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,onnx,dask]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m skdistill demo

test: install
	$(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) build *.egg-info
