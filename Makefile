# lindbg: `make demo` and `make test` are the two commands of a fresh machine.
# The virtualenv is made once; it is re-installed only when pyproject.toml changes.

PYTHON3 ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
CC      := gcc
# -no-pie: fixed addresses that `nm` gives as they are at run time;
# -fcf-protection=none: functions start with their own code, not endbr64.
SAMPLE_CFLAGS := -g -O0 -no-pie -fcf-protection=none
SAMPLE  := examples/build/sample
# ruff looks only at folders that exist (tests/ and bench/ come from their own issues).
LINT_PATHS := $(wildcard lindbg tests bench examples)

.PHONY: all venv demo sample test lint typecheck pytest bench clean distclean help

all: test

help:
	@echo "make demo   - set up .venv, build examples/build/sample, run examples/demo.py"
	@echo "make test   - ruff check, mypy (strict, lindbg/), pytest"
	@echo "make lint   - ruff check and mypy only"
	@echo "make bench  - run the benchmarks (python -m bench), with libdebug if it installs"
	@echo "make clean  - remove build outputs and caches (keeps .venv); distclean also .venv"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo ">> creating $(VENV)"; $(PYTHON3) -m venv $(VENV); }
	@echo ">> installing lindbg (editable) with the dev extras into $(VENV)"
	$(PY) -m pip install -e '.[dev]'
	@touch $@

sample: $(SAMPLE)

$(SAMPLE): examples/sample.c
	@mkdir -p $(dir $@)
	$(CC) $(SAMPLE_CFLAGS) -o $@ $<

demo: $(STAMP) $(SAMPLE)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# pytest's exit status 5 means "no tests collected": say so loudly but do not fail,
# so the skeleton stays green until the first tests land. Any other failure fails.
pytest: $(STAMP) $(SAMPLE)
	@rc=0; $(PY) -m pytest -q || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo ">> pytest collected no tests"; exit 0; fi; \
	exit $$rc

test: lint pytest

$(VENV)/.bench-deps: $(STAMP)
	@echo ">> installing libdebug for the comparison (optional)"
	$(PY) -m pip install libdebug==0.9.0 || echo ">> libdebug did not install: the bench runs without it"
	@touch $@

bench: $(STAMP) $(VENV)/.bench-deps
	$(PY) -m bench
	$(PY) -m bench.symbols
	$(PY) -m bench.dump_write
	$(PY) -m bench.dump_open
	$(PY) -m bench.source_level
	$(PY) -m bench.remoting
	$(PY) -m bench.procserver
	$(PY) -m bench.smartclient

clean:
	rm -rf examples/build bench/build tests/build .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name '*.egg-info' -type d -print -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
