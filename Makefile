# The two commands the README names:
#   make demo   -- set everything up, compute the demo publication's atlases, build site/, serve it
#   make test   -- set everything up, then lint, type-check and run the whole test suite
# Every target installs what it needs itself (idempotent; stamps under .venv/).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.atlas-setup-stamp
# torch is pinned to the releases this workplace's pip serves from local disk.
TORCH   := torch==2.14.1 torchvision==0.29.1
HOST    ?= 127.0.0.1
PORT    ?= 8000

.PHONY: setup browser demo build serve test lint typecheck pytest bench mutate clean

setup: $(STAMP) node_modules/.package-lock.json

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[compute,dev,bench,cluster,gpu-layout]'
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# Debian's chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "chromium missing: run 'sudo apt-get install -y chromium' (browser tests will be skipped)"; fi; \
	fi

demo: setup
	$(BIN)/atlas build
	$(BIN)/atlas serve --host $(HOST) --port $(PORT)

build: setup
	$(BIN)/atlas build

serve: setup
	$(BIN)/atlas serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check generator tests bench
	$(BIN)/ruff format --check generator tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: setup
	$(BIN)/python bench/run_all.py

# Mutation testing (issue 17; not part of `make test`): MODULES="grid layout ..." picks modules
# (bench/mutate.py --list), MUTATE_ARGS passes more options (e.g. --max-children 2).
MODULES ?=
MUTATE_ARGS ?=
mutate: setup
	$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/python -m pip install -q 'mutmut>=3.8,<4'
	$(BIN)/python bench/mutate.py $(MODULES) $(MUTATE_ARGS)

clean:
	rm -rf site .site-* test-artifacts .pytest_cache .mypy_cache .ruff_cache mutants
