# nasforge: every target sets up .venv on first use (plain pip, torch from PyPI/pip's
# configured sources), then reuses it until pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python
NASFORGE := $(VENV)/bin/nasforge
EXAMPLES := $(sort $(wildcard examples/*.arch))
BENCHES := $(sort $(wildcard benchmarks/bench_*.py))

.PHONY: all demo test lint bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

# The main job. For now: check every example, print its canonical form, compile it
# to out/models/, show the cost of the 15-layer network and run its generated file.
# The search issue turns this into a real search.
demo: $(STAMP)
	$(NASFORGE) validate --canonical $(EXAMPLES)
	mkdir -p out/models
	@for arch in $(EXAMPLES); do \
	  name=$$(basename $$arch .arch); \
	  $(NASFORGE) compile $$arch -o out/models/$$name.py || exit 1; \
	done
	$(NASFORGE) info examples/nas_cifar15.arch
	$(PY) out/models/nas_cifar15.py

test: $(STAMP)
	$(PY) -m pytest -q
	$(PY) -m ruff check .

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	@for bench in $(BENCHES); do echo "== $$bench"; $(PY) $$bench || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
