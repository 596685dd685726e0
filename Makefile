# Every command a person runs. The environment is built from requirements/lock.txt on first use, the
# tracking server's own one (.server-venv, MLflow 3.18) from requirements/server-lock.txt.
VENV   := .venv
SERVER_VENV := .server-venv
LABELSTUDIO_VENV := .labelstudio-venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/nlu-mlflow
# extra options for the demo's run, e.g. DEMO_ARGS="--epochs 1" (what the suite's quick-start test passes)
DEMO_ARGS ?=
BENCH_DATA  ?= ../shared/datasets/rasa-demo-flat
BENCH_EPOCHS ?= 5
BENCH_SCALE_EPOCHS ?= 10
BENCH_SEARCH_DATA ?= ../shared/datasets/snips/train.yml
BENCH_SEARCH_ARGS ?= --sample 1400 --trials 6 --epochs 9

BENCH_FT_EPOCHS ?= 100
BENCH_FT_FRACTION ?= 0.2

.PHONY: venv server-venv server-lock labelstudio-venv labelstudio-lock demo test test-fast lint format bench bench-scale bench-search bench-finetune bench-inbox bench-replay ui clean

$(VENV)/.installed: requirements/lock.txt
	bash scripts/bootstrap.sh

venv: $(VENV)/.installed

$(SERVER_VENV)/.installed: requirements/server-lock.txt requirements/uv.txt
	bash scripts/server-venv.sh

## server-venv: the tracking server's environment; scripts/mlflow-server.sh starts the server from it
server-venv: $(SERVER_VENV)/.installed

## server-lock: re-resolve requirements/server-lock.txt from requirements/server.in (then rebuild .server-venv)
server-lock:
	bash scripts/server-venv.sh --lock

$(LABELSTUDIO_VENV)/.installed: requirements/labelstudio-lock.txt requirements/uv.txt
	bash scripts/labelstudio-venv.sh

## labelstudio-venv: Label Studio's own environment (about 3 minutes, ~1 GB); scripts/labelstudio.sh starts it
labelstudio-venv: $(LABELSTUDIO_VENV)/.installed

## labelstudio-lock: re-resolve requirements/labelstudio-lock.txt from requirements/labelstudio.in
labelstudio-lock:
	bash scripts/labelstudio-venv.sh --lock

## demo: train every config on the pizza example data, evaluate, log to MLflow, pick the best
demo: venv
	$(CLI) run --workflow nlu-mlflow.yml --summary-json last-run.json $(DEMO_ARGS)
	@$(CLI) ui-hint

## test: the whole suite (real Rasa training on tiny data, real MLflow stores and servers) on two workers, a
## module's tests together (tests/conftest.py): a test mostly waits on one core (imports, servers, subprocesses)
TEST_WORKERS ?= 2
test: venv server-venv labelstudio-venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

test-fast: venv server-venv
	$(PY) -m pytest -m "not slow"

lint: venv
	$(VENV)/bin/ruff check nlu_mlflow tests scripts
	$(VENV)/bin/ruff format --check nlu_mlflow tests scripts
	PYRIGHT_PYTHON_GLOBAL_NODE=0 $(VENV)/bin/pyright  # decide/ and workflow/ ([tool.pyright]); Node.js from its wheel

format: venv
	$(VENV)/bin/ruff format nlu_mlflow tests scripts
	$(VENV)/bin/ruff check --fix nlu_mlflow tests scripts

## bench: seed-style loop vs nlu-mlflow run vs training alone (prints ratios; JSON in bench-results/)
bench: venv
	$(PY) scripts/bench.py --data $(BENCH_DATA) --epochs $(BENCH_EPOCHS)
	$(PY) scripts/bench_serving.py --data $(BENCH_DATA)

## bench-scale: candidates inline vs --backend local --parallel 2 on the 3 configs, then the pruned search vs
## the same trials unpruned (epochs, wall/CPU time, best score); ratios measured in one run, JSON in bench-results/
bench-scale: venv
	$(PY) scripts/bench_scale.py --data $(BENCH_DATA)/train.yml --test-data $(BENCH_DATA)/test.yml \
		--epochs $(BENCH_SCALE_EPOCHS) --parallel 2
	$(PY) scripts/bench_search.py --data $(BENCH_SEARCH_DATA) $(BENCH_SEARCH_ARGS)

## bench-search: a search with pruning vs the same trials at full budget (epochs, wall time, best validation
## score, as ratios from one run), and the best trial vs the default config; JSON in bench-results/
bench-search: venv
	$(PY) scripts/bench_search.py --data $(BENCH_SEARCH_DATA) $(BENCH_SEARCH_ARGS)

## bench-finetune: the nightly run fine-tuning from production vs from scratch on grown data (ratios printed)
bench-finetune: venv
	$(PY) scripts/bench_finetune.py --data $(BENCH_DATA) --epochs $(BENCH_FT_EPOCHS) --fraction $(BENCH_FT_FRACTION)

## bench-inbox: `inbox collect` vs a plain SELECT + json.loads loop over the same 200k and 1M tracker-store
## events (SQLite and PostgreSQL): events/s, peak memory, the production parse timed apart; JSON in bench-results/
bench-inbox: venv
	$(PY) scripts/bench_inbox.py

ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns.db --port 5000

clean:
	rm -rf mlruns.db mlartifacts mlruns optuna.db .pytest_cache

## bench-replay: the replay's parse of 10,000 live messages with two models vs Rasa's Agent.parse_message per
## message, in the same run, loading timed apart (ratios printed; JSON in bench-results/)
bench-replay: venv
	$(PY) scripts/bench_replay.py --data $(BENCH_DATA) --epochs $(BENCH_EPOCHS)
