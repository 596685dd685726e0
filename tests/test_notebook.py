"""notebooks/compare_runs.ipynb: committed without outputs, and executed headless against a store made
by two small workflow runs (the second registers a candidate without promoting it, so production and
the latest candidate differ, and one of its pipelines fails critical utterances)."""

import re
import shutil
import subprocess
import sys

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from nlu_mlflow import constants as c
from nlu_mlflow.workflow import run as workflow
from nlu_mlflow.workflow import settings
from tests.helpers import CONFIGS, PIZZA, ROOT

NOTEBOOK = ROOT / "notebooks" / "compare_runs.ipynb"
STRIP = ROOT / "scripts" / "strip_notebook.py"
FIXTURES = ROOT / "tests" / "data"
MODEL = "notebook-nlu"
MLFLOW_RUN_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


def test_committed_notebook_has_no_outputs_and_a_parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and not any(cell.outputs or cell.execution_count for cell in code)
    check = subprocess.run(
        [sys.executable, str(STRIP), "--check", str(NOTEBOOK)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "MLFLOW_TRACKING_URI" in code[0].source and "NLU_MLFLOW_EXPERIMENT" in code[0].source


def test_strip_check_reports_a_notebook_with_outputs(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    notebook.cells[1].execution_count = 1
    dirty = tmp_path / "dirty.ipynb"
    nbformat.write(notebook, dirty)
    check = subprocess.run(
        [sys.executable, str(STRIP), "--check", str(dirty)], capture_output=True, text=True
    )
    assert check.returncode == 1 and "dirty.ipynb: has outputs" in check.stdout
    subprocess.run([sys.executable, str(STRIP), str(dirty)], check=True, capture_output=True)
    assert nbformat.read(dirty, as_version=4) == nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture()
def kernel(tmp_path, monkeypatch):
    """A `python3` kernelspec running this interpreter (the project's venv), found first via JUPYTER_PATH."""
    prefix = tmp_path / "jupyter"
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "python3"],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable


def run_workflow(home, configs, **extra):
    values = {
        "data": PIZZA / "train.yml",
        "test_data": PIZZA / "test.yml",
        "configs": configs,
        "epochs": 1,
        "model_name": MODEL,
        "project_dir": home,  # store: home/mlruns.db, artifacts: home/mlartifacts
        **extra,
    }
    return workflow.run(settings.build(values))


def execute(home, tracking_uri, model_name, monkeypatch):
    """Run the notebook headless; returns the text each cell printed or displayed, by cell."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("NLU_MLFLOW_EXPERIMENT", c.DEFAULT_EXPERIMENT)
    monkeypatch.setenv("NLU_MLFLOW_MODEL_NAME", model_name)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(home)}}
    )
    client.execute()  # raises CellExecutionError when a cell fails
    return notebook


def cell_text(cell) -> str:
    parts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
    parts += [o.data.get("text/plain", "") for o in cell.outputs if "data" in o]
    return "\n".join(parts)


def cell_with(notebook, snippet: str):
    return next(cell for cell in notebook.cells if cell.cell_type == "code" and snippet in cell.source)


@pytest.mark.slow
@pytest.mark.usefixtures("kernel")
def test_notebook_compares_the_runs_of_a_store(tmp_path, monkeypatch, pizza_train):
    for name in MLFLOW_RUN_ENV:
        monkeypatch.delenv(name, raising=False)
    three, weak = tmp_path / "configs", tmp_path / "weak"
    three.mkdir(), weak.mkdir()
    shutil.copy(CONFIGS / "logreg_crf.yml", three)
    shutil.copy(FIXTURES / "configs" / "intents_only.yml", three)  # fails the suite's entity checks
    for folder in (three, weak):
        shutil.copy(FIXTURES / "configs" / "weak_crf.yml", folder)

    first = run_workflow(tmp_path, weak)  # weak_crf becomes production version 1; no critical suite
    assert first.outcome.promoted
    early = execute(tmp_path, first.tracking_uri, "no-such-model", monkeypatch)
    assert "No production version of 'no-such-model'" in cell_text(
        cell_with(early, "get_model_version_by_alias")
    )
    assert "has a critical.json table" in cell_text(cell_with(early, "mlflow.load_table("))

    for name in MLFLOW_RUN_ENV:
        monkeypatch.delenv(name, raising=False)
    second = run_workflow(tmp_path, three, critical=PIZZA / "critical.yml", promote=False)
    assert second.best.name == "logreg_crf" and not second.outcome.promoted

    notebook = execute(tmp_path, second.tracking_uri, MODEL, monkeypatch)
    listing = cell_text(cell_with(notebook, "drop_duplicates"))
    assert "4 candidate runs" in listing and "the latest of each of 3 configs" in listing
    assert all(f"{name}: run" in listing for name in ("intents_only", "logreg_crf", "weak_crf"))
    heatmap = cell_with(notebook, "imshow")
    assert any("image/png" in o.get("data", {}) for o in heatmap.outputs)
    assert any("image/png" in o.get("data", {}) for o in cell_with(notebook, "metric_table(scores)").outputs)

    moves = cell_text(cell_with(notebook, "get_model_version_by_alias"))
    assert "Production version 1 (weak_crf) vs the latest candidate (logreg_crf)" in moves
    intents = {m.get("intent") for m in pizza_train.examples}
    listed = {intent for intent in intents if re.search(rf"^{intent}\s", moves, re.MULTILINE)}
    assert len(listed) == min(10, len(intents)), moves

    critical = cell_text(cell_with(notebook, "mlflow.load_table("))
    assert "critical checks failed" in critical
    failing = re.findall(r"^  (\w+): \d+ of \d+ failed$", critical, re.MULTILINE)
    assert failing == ["intents_only"], critical  # no entity extractor: the entity checks fail
    assert "missing entity" in critical
