# Every target sets up what it needs itself: a fresh clone runs `make demo` or `make test` directly.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CHECKSUM := $(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)
# Two stamps: the demo needs only the local endpoint; the other targets need every extra.
STAMP := $(VENV)/.installed-$(CHECKSUM)
DEMO_STAMP := $(VENV)/.installed-local-$(CHECKSUM)
BENCH_OUT ?= benchmarks/out

.PHONY: demo test test-ray lint bench docs clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,test,bench,docs,lint]'
	rm -f $(VENV)/.installed-*
	touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local]'
	rm -f $(VENV)/.installed-local-*
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/smruntime demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Ray is heavy (hundreds of MB with pyarrow), so the Ray Data test has its own target.
test-ray: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[ray]'
	$(BIN)/python -m pytest -q tests/integration/test_batch_ray.py

lint: $(STAMP)
	$(BIN)/ruff check smruntime tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --out $(BENCH_OUT)

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build *.egg-info site
