# ferry — developer commands. `make run` and `make test` set everything up themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SYSDEPS := .venv-sysdeps

.PHONY: install sysdeps run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.4'
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -e '.[dev,ssh,spark,ray,postgres,server,notebook,data]'
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

test: sysdeps install $(TORCH)
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench compat
	$(BIN)/ruff format --check src tests bench compat
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
