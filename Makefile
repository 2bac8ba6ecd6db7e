# Parley's developer commands. Every target that needs the project's environment sets
# it up first, so `make test` or `make run` works as the first command on a fresh clone
# with nothing but python3 (3.11+, with pip and venv) on PATH.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
TOOLS_STAMP := $(TOOLS)/uv-$(UV_VERSION).stamp
VENV_STAMP := $(VENV)/sync.stamp
PACKAGES := bot integrations tools

# uv must use the interpreter found on PATH and never download one.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Keep Python's bytecode cache even where the environment turns it off: the tests and
# benchmarks start `parley run` and helper processes, and each would otherwise compile
# every module of every SDK again (seconds per process on a slow machine).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv run chat test lint format bench migrate clean catalogs

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(TOOLS_STAMP):
	if [ "$$($(UV) --version 2>/dev/null | cut -d' ' -f2)" != "$(UV_VERSION)" ]; then \
		rm -rf $(TOOLS); \
		$(PYTHON) -m venv $(TOOLS); \
		$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION); \
	fi
	touch $@

$(VENV_STAMP): uv.lock pyproject.toml $(TOOLS_STAMP)
	$(UV) sync --frozen --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	touch $@

# The compiled catalogs (bot/locale/*/LC_MESSAGES/parley.mo) are build output: the wheel's
# build hook (hatch_build.py) makes them for installs and images, these rules for the tree.
LOCALE := bot/locale
CATALOGS := $(wildcard $(LOCALE)/*/LC_MESSAGES/parley.po)
COMPILED := $(CATALOGS:.po=.mo)

$(LOCALE)/%/LC_MESSAGES/parley.mo: $(LOCALE)/%/LC_MESSAGES/parley.po $(VENV_STAMP)
	$(VENV)/bin/pybabel compile -D parley -l $* -i $< -o $@

venv: $(VENV_STAMP) $(COMPILED) ## Create or update .venv from uv.lock (only when it changed)

run: venv ## Run the bot: configured platforms and the web server
	$(VENV)/bin/parley run

chat: venv ## Chat with Parley in this terminal
	$(VENV)/bin/parley chat

migrate: venv ## Bring the database (DATABASE_URL) to the newest schema
	$(VENV)/bin/parley migrate

# The suite runs on two pytest-xdist workers, one per core of the project's machines (more
# would only queue: many tests start `parley` processes of their own). worksteal: the
# tests are split into two runs in file order, and a worker that finishes first takes
# tests from the other's tail, so a few slow process tests cannot leave one core idle.
# TEST_WORKERS=0 runs everything in this one process (for pdb, or to compare).
TEST_WORKERS ?= 2

test: venv ## Run the tests on TEST_WORKERS workers (extra arguments: make test ARGS="-k config")
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(ARGS)

lint: venv ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(PACKAGES)

format: venv ## Sort imports and format the code
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/ruff format .

# -P: a script's own directory must not shadow packages (tests/bench/telegram.py).
bench: venv ## Run every tests/bench/*.py script; each prints its figures
	@shopt -s nullglob; scripts=(tests/bench/[!_]*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no benchmarks in tests/bench"; fi; \
	for script in "$${scripts[@]}"; do \
		echo "== $$script"; \
		PYTHONPATH=. $(VENV)/bin/python -P "$$script"; \
	done

# After adding or changing words in the code: extract them into the template, merge the
# template into every language's catalog (new entries empty, changed ones fuzzy), compile.
# Then translate the empty and fuzzy entries of each parley.po and run it again
# (docs/languages.md); tests/test_catalogs.py fails until every entry is translated.
catalogs: venv ## Extract the words into bot/locale, update every catalog, compile them
	$(VENV)/bin/pybabel extract -F babel.cfg --add-location=file --sort-output --no-wrap \
		--project=Parley --copyright-holder="Parley contributors" -c "Translators:" \
		-o $(LOCALE)/parley.pot .
	$(VENV)/bin/pybabel update -D parley -i $(LOCALE)/parley.pot -d $(LOCALE) \
		--no-wrap --ignore-obsolete --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -D parley -d $(LOCALE) --statistics

clean: ## Remove caches, build output and both virtual environments (keeps data/)
	rm -rf $(VENV) $(TOOLS) build dist .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
