# Thin targets: each creates .venv when it is missing and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean services

$(STAMP): pyproject.toml setup.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/insights-runner run playbooks/demo.yml

# The real servers and browser some tests use (PostgreSQL, object storage, Chromium): each
# .ci/ensure-NAME script installs its part when it is missing and is a no-op otherwise.
services:
	for script in .ci/ensure-*; do [ -e "$$script" ] || continue; bash "$$script" || exit 1; done

# pytest exits 5 when it collects nothing: that is a failure, never a pass. Two workers
# (pytest-xdist), each running one test file at a time: module fixtures stay per file.
test: $(STAMP) services
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet "ruff==0.17.6" "mypy==2.4.1"  # pinned: a new release must not turn CI red
	$(BIN)/ruff check runner tests benchmarks
	$(BIN)/mypy runner

# run_all.py runs the download rounds of downloads.py itself: that script is not run twice.
bench: $(STAMP)
	for script in benchmarks/*.py; do \
	  [ "$$script" = benchmarks/downloads.py ] && continue; \
	  $(BIN)/python $$script || exit 1; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
