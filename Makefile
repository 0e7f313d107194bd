# Every target runs inside the project's one pinned environment (builder/env.sh builds it
# on first use: a virtualenv on glibc >= 2.39 hosts, a Debian trixie root elsewhere).
SHELL := /bin/bash
ENV := builder/env.sh run

# Paths are resolved in contract/paths.py (build/ in the checkout, the data beside it).
# Another copy of the labelled data (train.tsv): make DATA=/path/to/dir
ifdef DATA
export TAGGER_DATA_DIR := $(abspath $(DATA))
endif
PATH_OF = $$(python -m contract.paths $(1))

.PHONY: all env import pipeline lineage tune serve up vertex docs test lint format bench-quality bench-encoder bench-speed bench-serving bench-app bench-footprint bench-learning bench-feedback bench-hostile bench-request-log bench-drift bench-online bench-training lock lock-app clean

# The main job: environment, data import (span 0), full pipeline run, lineage of the pushed model.
all: import pipeline lineage

env:
	@builder/env.sh ensure

import: env
	@$(ENV) python -m ingest --span 0

pipeline: env
	@$(ENV) python local_runner.py

lineage: env
	@$(ENV) python -m pipeline.lineage

# A pipeline run with the Tuner (TRIALS=6 by default; ARGS=--encoder for that setting),
# then its best hyperparameters are written to hyperparameters/<setting>/ for review if
# their model was blessed: untuned runs train with what is committed there.
TRIALS ?= 6
tune: env
	@$(ENV) bash -c 'python local_runner.py --tune $(TRIALS) $(ARGS) && python -m pipeline.adopt_tuning'

# Serve the pushed models with TF Serving's REST API on port 8501 (Ctrl-C stops it).
serve: env
	@$(ENV) bash -c 'exec python -m serving.model_server --rest_api_port=8501 \
	  --model_name=$(call PATH_OF,model_name) --model_base_path=$(call PATH_OF,serving_model) \
	  --monitoring_config_file=deploy/serving/monitoring.config'

# After `make`: model server, app (page and API on :8080) and learning worker (Ctrl-C stops all).
up: env
	@$(ENV) python -m serving.up

# Compile the pipeline for Vertex AI Pipelines (docs/pipeline.md: Run on Vertex AI); ARGS=--submit ...
vertex: env
	@$(ENV) python vertex_runner.py compile $(ARGS)

# The README's picture, from its text source; the SVG carries the source's sha256, and a
# test fails when the two disagree (redraw with `make docs`).
docs: env
	@$(ENV) bash -c 'set -eo pipefail; sum=$$(sha256sum docs/architecture.dot | cut -d" " -f1); \
	  dot -Tsvg docs/architecture.dot | sed "1a <!-- drawn from docs/architecture.dot, sha256 $$sum -->" \
	  > docs/architecture.svg.partial && mv docs/architecture.svg.partial docs/architecture.svg'
	@echo "docs/architecture.svg drawn from docs/architecture.dot"

# The test command: lint, format check, Dockerfile lint and the whole pytest suite.
test: env
	@$(ENV) bash -c 'ruff check . && ruff format --check . && hadolint deploy/*/Dockerfile && pytest'

lint format: env
	@$(ENV) bash -c 'ruff check --fix . && ruff format .'

bench-quality: env
	@$(ENV) python bench/quality.py

bench-encoder: env
	@$(ENV) python bench/encoder.py

bench-speed: env
	@$(ENV) python bench/pipeline_speed.py

bench-training: env
	@$(ENV) python bench/training_speed.py $(ARGS)

bench-serving: env
	@$(ENV) python bench/serving_speed.py

bench-app: env
	@$(ENV) python bench/app_speed.py

bench-footprint: env
	@$(ENV) python bench/app_footprint.py

bench-learning: env
	@$(ENV) python bench/learning_curve.py

bench-feedback: env
	@$(ENV) python bench/feedback_latency.py

bench-hostile: env
	@$(ENV) python bench/hostile_clients.py

bench-request-log: env
	@$(ENV) python bench/request_log.py

bench-drift: env
	@$(ENV) python bench/drift.py

bench-online: env
	@$(ENV) python bench/online_at_size.py $(ARGS)

lock: env
	@$(ENV) uv pip compile --system-certs requirements.in --generate-hashes --python-version 3.13 \
	  --python-platform x86_64-manylinux_2_39 -o requirements.lock --custom-compile-command "make lock"
	@$(ENV) uv pip compile --system-certs builder/deploy-tools.in --generate-hashes --python-version 3.13 \
	  --python-platform x86_64-manylinux_2_39 -o builder/deploy-tools.lock --custom-compile-command "make lock"
	@$(MAKE) --no-print-directory lock-app

# The app's own small lock, at the versions requirements.lock pins (serving/requirements.in).
lock-app: env
	@mkdir -p build && grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | sed 's/ .*//' > build/app-constraints.txt
	@$(ENV) uv pip compile --system-certs serving/requirements.in -c build/app-constraints.txt \
	  --generate-hashes --python-version 3.13 --python-platform x86_64-manylinux_2_39 \
	  -o serving/requirements.lock --custom-compile-command "make lock"

clean:
	rm -rf build
