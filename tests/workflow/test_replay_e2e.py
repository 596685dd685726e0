"""End to end with real parts: a real `rasa run` (the pizza assistant) writes its conversations into an SQL
tracker store; production in the registry is one trained model and the workflow's candidate another, which
disagree on some of those messages. `nlu-mlflow run --live-traffic endpoints.yml` replays the window through
both before deciding: with the flip gate on, the promotion stops and the decision says why; with it off, the
promotion goes through and the flips are still logged (a masked table) and queued in the inbox.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import mlflow
import pytest

from nlu_mlflow import constants as c
from nlu_mlflow.decide import inbox as rules_of
from nlu_mlflow.tracking import models as pyfunc_model
from nlu_mlflow.tracking import registry
from nlu_mlflow.workflow.inbox import open_inbox
from tests.helpers import servers
from tests.helpers.cli import invoke, run_args

pytestmark = pytest.mark.slow

MODEL = "replay-e2e"
SAID = [
    "hi", "I want two large pepperoni pizzas", "yes", "what's the weather like in Paris tomorrow",
    "do you sell running shoes", "my email is carol.smith@example.org, where is my order",
    "call me on +49 151 2345 6789", "can you book me a flight to Rome", "bye", "hi",
]  # fmt: skip
RAW_PERSONAL = ("carol.smith@example.org", "2345 6789")


@pytest.fixture(scope="module")
def live(assistant_model, tmp_path_factory):
    """The tracker store a real `rasa run` wrote while users talked to it (SQLite, from endpoints.yml)."""
    root = tmp_path_factory.mktemp("replay_live")
    endpoints = root / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {root / 'tracker.db'}\n")
    token = "rasa-token-" + secrets.token_hex(8)
    with servers.rasa_server(
        assistant_model.archive, token, root / "rasa.log", rest_channel=True, endpoints=endpoints
    ) as api:
        for n, text in enumerate(SAID):
            api.say(text, f"user-{n % 3}")
    return endpoints


@pytest.fixture
def store(tmp_path, diet_model, monkeypatch):
    """A registry whose production is the DIET model; the inbox beside it."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("replay-prod", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        model_uri = pyfunc_model.log_model(diet_model.archive).model_uri
    version = registry.register(model_uri, MODEL, {}).version
    registry.move_production(MODEL, version)
    monkeypatch.setenv("NLU_MLFLOW_INBOX_URL", f"sqlite:///{tmp_path / 'inbox.db'}")
    return uri


def _run(tmp_path, uri, live, *extra):
    args = run_args(tmp_path, uri) + ["--model-name", MODEL, "--live-traffic", str(live)]
    args += ["--min-live-messages", "1", "--summary-json", str(tmp_path / "summary.json"), *map(str, extra)]
    done = invoke(args)
    assert done.exit_code == 0, done.output
    return done, json.loads((tmp_path / "summary.json").read_text())


def test_the_flip_gate_stops_the_promotion_and_says_why(tmp_path, store, live):
    done, summary = _run(tmp_path, store, live, "--max-live-flip-rate", 0.0)
    assert registry.alias_holder(MODEL).version == "1"  # production stayed
    assert "not promoted: max_live_flip_rate: " in done.output and "(over by " in done.output
    assert "live messages flip, may be at most 0.0000" in json.dumps(summary)


def test_with_the_gate_off_it_promotes_and_still_logs_and_queues_the_flips(tmp_path, store, live):
    done, _ = _run(tmp_path, store, live)
    assert registry.alias_holder(MODEL).version == "2", done.output
    parent = next(
        r
        for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
        if c.LIVE_FLIP_RATE in r.data.metrics
    )
    metrics = parent.data.metrics
    assert metrics[c.LIVE_MESSAGES] == len(SAID) and metrics[c.LIVE_UNIQUE_MESSAGES] == len(set(SAID))
    assert metrics[c.LIVE_FLIP_RATE] > 0, "the two models agree on every message: the test shows nothing"
    path = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path=c.LIVE_FLIPS_TABLE, dst_path=str(tmp_path / "dl")
    )
    table = json.loads(Path(path).read_text())
    flipped = sum(row[2] for row in table["data"])
    assert flipped == round(metrics[c.LIVE_FLIP_RATE] * len(SAID))
    tags = registry.get_version(MODEL, "2").tags
    assert float(tags[c.TAG_LIVE_PREFIX + c.LIVE_FLIP_RATE]) == pytest.approx(
        metrics[c.LIVE_FLIP_RATE], abs=1e-5
    )
    queued = [i for i in open_inbox().items() if rules_of.FLIP in i.reasons]
    assert sum(i.count for i in queued) == flipped
    everything = json.dumps(
        [
            table,
            {
                r.info.run_id: [r.data.params, r.data.tags]
                for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
            },
            tags,
            done.output,
        ]
    )
    everything += str([i.text for i in open_inbox().items()])
    assert not any(raw in everything for raw in RAW_PERSONAL)
