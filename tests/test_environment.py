"""The environment files stay in step: lock, conda.yaml, MLproject, the Python version gate."""

import subprocess
import sys

import yaml

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import conda_env


def test_conda_yaml_has_python_310_and_exactly_the_lock_pins():
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    assert "python=3.10" in conda["dependencies"]
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip == conda_env.lock_pins(ROOT / "requirements" / "lock.txt")


def test_lock_pins_the_measured_stack():
    pins = set(conda_env.lock_pins(ROOT / "requirements" / "lock.txt"))
    assert {
        "rasa==3.6.21",
        "mlflow==3.5.1",
        "tensorflow==2.12.0",
        "uvicorn==0.34.3",
        "matplotlib==3.7.5",
    } <= pins


def test_mlproject_entry_points_are_typed():
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    assert project["conda_env"] == "conda.yaml"
    assert set(project["entry_points"]) == {"main", "train", "candidate"}
    for entry in project["entry_points"].values():
        assert all("type" in p for p in entry["parameters"].values())


def test_bootstrap_refuses_other_pythons_in_one_sentence(tmp_path):
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap.sh")],
        env={"PYTHON": str(fake), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("nlu-mlflow needs Python 3.10 or 3.11 (found 3.12")
    assert not (tmp_path / ".venv").exists()


def test_every_make_target_the_docs_name_exists():
    """A target lost in a merge (bench-finetune once was) must not leave the README promising it."""
    import re

    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {m for doc in docs for m in re.findall(r"(?:`|^)make ([a-z][\w-]*)", doc.read_text(), re.M)}
    assert named, "the docs name no make target: the pattern is wrong"
    assert named - targets == set(), f"the docs name make targets the Makefile lacks: {named - targets}"
