# ferry — developer commands. `make run` and `make test` set everything up themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SYSDEPS := .venv-sysdeps

.PHONY: install sysdeps run test lint bench clean vsix code-server

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.4'
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -e '.[dev,ssh,spark,ray,postgres,server,notebook,data]'
	@# the editable source too: with PYTHONDONTWRITEBYTECODE set, every ferry process (each
	@# command, supervisor, job watchdog) would otherwise compile the modules it imports
	$(BIN)/python -m compileall -q -j 0 src
	@touch $(STAMP)

# torch (CPU) for the distributed tests: pip takes the CPU build this machine keeps on disk
# (uv would download a multi-GB CUDA build instead)
TORCH := $(VENV)/.torch
$(TORCH): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'torch==2.13.0'
	@touch $(TORCH)

# Debian packages the heavier test suites need (git for snapshot/git capture tests, Open MPI for
# the MPI tests). `test` runs it before `install`: where mpi4py has no wheel, pip builds it with
# Open MPI's mpicc.
sysdeps:
	@./scripts/sysdeps.sh

run: install
	$(BIN)/ferry submit examples/quickstart/train.py -e quickstart -- --alpha 0.5

test: sysdeps install $(TORCH) vsix code-server
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench compat
	$(BIN)/ruff format --check src tests bench compat
	$(BIN)/mypy

# the VS Code extension (editors/vscode): esbuild bundle + vsce package, version in step with
# pyproject.toml; code-server (a real VS Code for its end-to-end tests) cached outside the clone
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
VSIX    := dist/ferry-vscode-$(VERSION).vsix
vsix: $(VSIX)

$(VSIX): $(wildcard editors/vscode/src/*.ts) editors/vscode/package.json editors/vscode/README.md pyproject.toml
	mkdir -p dist && cd editors/vscode && (test -d node_modules || npm ci --no-audit --no-fund) \
	  && npm pkg set version=$(VERSION) && npx tsc --noEmit -p . && node build.mjs --minify \
	  && npx vsce package --no-dependencies --allow-missing-repository -o ../../$(VSIX)

code-server: sysdeps
	@./scripts/code-server.sh >/dev/null

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
