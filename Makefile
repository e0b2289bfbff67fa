# Voisinage: `make run` starts a demo commune on http://localhost:8080, `make test` runs the tests
# (on SQLite and on a PostgreSQL server the tests start themselves).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo
VOISINAGE := $(BIN)/voisinage --config $(DEMO)/voisinage.toml
DEMO_VILLAGES := embourg:Embourg vaux:Vaux-sous-Chèvremont beaufays:Beaufays
CODES_PER_VILLAGE := 3

export PYTHONUNBUFFERED := 1
.DEFAULT_GOAL := run

define DEMO_CONFIG
# Demo commune made by `make run` (paths are relative to the repository, where make runs).
[instance]
domain = "localhost:8080"
name = "Chaudfontaine (démo)"
scheme = "http"

[server]
host = "127.0.0.1"
port = 8080

[database]
url = "sqlite+aiosqlite:///$(DEMO)/voisinage.db"

[media]
path = "$(DEMO)/media"
endef
export DEMO_CONFIG

.PHONY: run test install demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed (the install is editable: code changes need nothing).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

# The demo is made once; later runs reuse it and print the codes kept in demo/codes.csv.
demo: $(STAMP)
	@mkdir -p $(DEMO)
	@test -f $(DEMO)/voisinage.toml || printf '%s\n' "$$DEMO_CONFIG" > $(DEMO)/voisinage.toml
	@if [ ! -f $(DEMO)/codes.csv ]; then \
	  set -e; \
	  existing=$$($(VOISINAGE) village list | cut -f1); \
	  rm -f $(DEMO)/codes.tmp; \
	  for pair in $(DEMO_VILLAGES); do \
	    slug=$${pair%%:*}; name=$${pair#*:}; \
	    if ! printf '%s\n' $$existing | grep -qx "$$slug"; then \
	      $(VOISINAGE) village add "$$slug" --name "$$name"; \
	    fi; \
	    $(VOISINAGE) codes generate --village "$$slug" --count $(CODES_PER_VILLAGE) \
	      --letters $(DEMO)/letters-$$slug.pdf > $(DEMO)/codes-$$slug.csv; \
	    if [ -f $(DEMO)/codes.tmp ]; then tail -n +2 $(DEMO)/codes-$$slug.csv >> $(DEMO)/codes.tmp; \
	    else cat $(DEMO)/codes-$$slug.csv > $(DEMO)/codes.tmp; fi; \
	    rm -f $(DEMO)/codes-$$slug.csv; \
	  done; \
	  mv $(DEMO)/codes.tmp $(DEMO)/codes.csv; \
	fi
	@$(BIN)/python -c 'import csv, sys; rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8"))); \
	print("\nHousehold codes of the demo (each opens %s accounts; letters in $(DEMO)/letters-*.pdf):" % rows[0]["uses"]); \
	[print("  %-22s %s  %s" % (r["village_name"], r["code"], r["register_url"])) for r in rows]; \
	print("\nRegister in a browser at one of the links above, then log in from the same page or any client\nthat accepts http (phone apps usually want https: see README.md).\n")' $(DEMO)/codes.csv

run: demo
	$(VOISINAGE) serve

# One pytest worker per core, at most four (each starts its own PostgreSQL server when it needs one).
test: $(STAMP)
	$(BIN)/pytest -q -n auto --maxprocesses 4 tests

# Benchmarks (not part of `make test`): bench-results/latest.json, latest.md and PNG plots.
# BENCH_FULL=1 adds a 1,000,000-post database; BENCH_ENGINES=sqlite skips PostgreSQL.
.PHONY: bench
# matplotlib (and numpy) go to a venv of their own, .venv/plot: never into .venv, whose fpdf2 writes
# PDFs differently when numpy is importable.
bench: $(STAMP)
	test -x $(VENV)/plot/bin/python || $(PYTHON) -m venv $(VENV)/plot
	$(VENV)/plot/bin/pip install -q --disable-pip-version-check matplotlib
	$(BIN)/python -m compileall -q federation models server  # as a pip install would (see README)
	$(BIN)/python -m tests.bench.run --out bench-results
	$(VENV)/plot/bin/python tests/bench/plots.py bench-results/latest.json
