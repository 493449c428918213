# nasforge: every target sets up .venv on first use (plain pip, torch from PyPI/pip's
# configured sources), then reuses it until pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python
NASFORGE := $(VENV)/bin/nasforge
EXAMPLES := $(sort $(wildcard examples/*.arch))
BENCHES := $(sort $(wildcard benchmarks/bench_*.py))

.PHONY: all demo examples test test-full lint bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev,ray,dashboard]'
	touch $@

# The main job: a real architecture search on the embedded 8x8 digits. The REINFORCE
# controller proposes 96 four-layer networks of the small `digits` space, 8 per update
# (lr 0.02: the paper's 6e-4 is for 12,800 samples); each child trains 2 epochs in its own
# process, 2 at a time, on the CPU. The report compares the mean reward of the first and
# the last quarter of the trials. Run again to continue an interrupted search (--resume);
# `rm -rf out/search` to start over.
DEMO_OUT := out/search
DEMO_SEARCH := --space digits --dataset digits --strategy reinforce --option lr=0.02 \
	--trials 96 --batch 8 --workers 2 --epochs 2 --device cpu --top 5

demo: $(STAMP)
	$(NASFORGE) search $(DEMO_SEARCH) --out $(DEMO_OUT) \
	  $$(test -f $(DEMO_OUT)/search.db && echo --resume)

# Check every example, print its canonical form, compile it to out/models/, show the
# cost of the 15-layer network and run its generated file.
examples: $(STAMP)
	$(NASFORGE) validate --canonical $(EXAMPLES)
	mkdir -p out/models
	@for arch in $(EXAMPLES); do \
	  name=$$(basename $$arch .arch); \
	  $(NASFORGE) compile $$arch -o out/models/$$name.py || exit 1; \
	done
	$(NASFORGE) info examples/nas_cifar15.arch
	$(PY) out/models/nas_cifar15.py

# The whole default suite, the `slow` and `ray` tests included (pytest -m 'not slow' is a
# quick run); the tests marked `full` (full-size models) are skipped unless --full.
test: $(STAMP)
	$(PY) -m pytest -q
	$(PY) -m ruff check .

test-full: $(STAMP)
	$(PY) -m pytest -q --full
	$(PY) -m ruff check .

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	@for bench in $(BENCHES); do echo "== $$bench"; $(PY) $$bench || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
