"""The hand-off (workflow/handoff.py): what the parent run writes is what every candidate reads back, the
annotated live part of the training data and the live test data included, under their own sources."""

from __future__ import annotations

import dataclasses

from nlu_mlflow.rasa.data import load_nlu
from nlu_mlflow.workflow import handoff, settings
from nlu_mlflow.workflow.inputs import Inputs
from tests.helpers import PIZZA


def test_the_live_parts_travel_with_their_sources(tmp_path):
    train, test = load_nlu(PIZZA / "train.yml"), load_nlu(PIZZA / "test.yml")
    live = dataclasses.replace(load_nlu(PIZZA / "test.yml"), source="live traffic: 1 pull(s), 40 message(s)")
    live_test = dataclasses.replace(load_nlu(PIZZA / "test.yml"), source="live tests")
    inputs = Inputs(train, test, [], None, [], live=live, live_test=live_test)
    built = settings.build({"data": PIZZA / "train.yml"})
    folder = handoff.write(inputs, built, tmp_path / "inputs", {})
    read = handoff.read(folder, tmp_path / "work").inputs
    assert read.live is not None and read.live_test is not None
    assert (read.live.source, read.live_test.source) == (live.source, "live tests")
    assert [m.get("text") for m in read.live.examples] == [m.get("text") for m in live.examples]
    assert read.train.source == train.source


def test_without_live_data_nothing_live_is_read_back(tmp_path):
    inputs = Inputs(load_nlu(PIZZA / "train.yml"), load_nlu(PIZZA / "test.yml"), [], None, [])
    folder = handoff.write(inputs, settings.build({"data": PIZZA / "train.yml"}), tmp_path / "inputs", {})
    read = handoff.read(folder, tmp_path / "work").inputs
    assert read.live is None and read.live_test is None
