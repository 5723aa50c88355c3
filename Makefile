# The README's two commands: `make demo` (main job on the embedded demo data) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: bootstrap demo test test-fast lint typecheck mlflow-ui clean

bootstrap:
	@./scripts/bootstrap.sh

demo: bootstrap
	LAKEBOOST_PII_KEY="$$(./scripts/demo-pii-key.sh)" $(PY) jobs/pipeline.py $(ARGS)

test: bootstrap
	$(PY) -m pytest --durations=15 $(ARGS)

test-fast: bootstrap
	$(PY) -m pytest -m "not e2e" $(ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check lib jobs tests notebooks bench scheduling examples

typecheck: bootstrap
	$(VENV)/bin/mypy lib

clean:
	rm -rf data spark-warehouse metastore_db derby.log
