# Two commands on a fresh machine:  `make run` (chat app on the seeds)  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
ARTICLES ?= seeds

.PHONY: run test test-unit test-e2e test-fast test-slow install index eval compare bench chromium clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in pyproject (a CPU build): an unpinned torch pulls CUDA wheels.
	$(PY) -m pip install --quiet -e '.[test,ray]'  # ray: the extra for rag build --engine ray, so CI runs its tests
	@if $(PY) -m pip list 2>/dev/null | grep -i nvidia; then echo "error: a CUDA (nvidia-*) package was installed" >&2; exit 1; fi
	touch $@

install: $(VENV)/.installed

index: install
	$(VENV)/bin/rag build --articles $(ARTICLES)

run: index
	RAG_ARTICLES_DIR=$(ARTICLES) $(VENV)/bin/streamlit run ui/app.py --server.address $(ADDRESS) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# Debian's Chromium for the real-browser tests (Playwright's own browser download fails offline).
chromium:
	@command -v /usr/bin/chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

test: install chromium
	$(PY) -m pytest -m "not slow" -q
	$(PY) -m pytest -m slow -q -s || [ $$? = 5 ]  # 5: no slow test collected

# tests/unit: pure functions, no model (a few seconds). The rest: the seeds pipeline, browser, Ray, load.
test-unit: install
	$(PY) -m pytest tests/unit -q

test-e2e: install chromium
	$(PY) -m pytest tests/e2e -m "not slow" -q
	$(PY) -m pytest tests/e2e -m slow -q -s || [ $$? = 5 ]

test-fast: install
	$(PY) -m pytest -m "not slow and not browser" -q

eval: install
	$(VENV)/bin/rag eval --qa eval/seeds_qa.jsonl

compare: install
	$(VENV)/bin/rag eval --qa eval/seeds_qa.jsonl --compare

bench: install
	$(PY) -m eval.bench

clean:
	rm -rf index/CURRENT index/versions index/.build-* index/build.lock* test-output
