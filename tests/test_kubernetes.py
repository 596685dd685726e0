"""deploy/kubernetes/ as MLflow's Kubernetes backend reads it (no cluster and no docker engine here).

The job template is rendered with MLflow's own ``_get_kubernetes_job_definition`` and ``_get_run_command``
(private functions of ``mlflow.projects.kubernetes``: using them pins MLflow 3.5.1's behaviour, so an upgrade
that changes how jobs are filled in fails here first). The MLproject variant is parsed by MLflow's project
loader; the Dockerfile is checked by reading it.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import mlflow.projects
import pytest
import typer.main
import yaml
from mlflow.projects import _project_spec
from mlflow.projects.docker import validate_docker_env
from mlflow.projects.utils import MLFLOW_DOCKER_WORKDIR_PATH, get_entry_point_command

from nlu_mlflow.cli import app
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"
IMAGE_TAG = "registry.example.com/nlu/nlu-mlflow-runs:0123abc"
IMAGE_DIGEST = "sha256:" + "ab" * 32
IN_CLUSTER_URI = "http://mlflow.nlu-mlflow.svc.cluster.local:5000"
PATH_OPTIONS = ("--data", "--test-data", "--critical", "--configs")


@pytest.fixture(scope="module")
def mlflow_kubernetes() -> ModuleType:
    """``mlflow.projects.kubernetes``, loaded under a private name.

    It imports the ``kubernetes`` client at the top, which only the machine that submits jobs needs and
    the lock does not hold; when it is missing a stub stands in (the rendering functions never use it).
    """
    origin = importlib.util.find_spec("mlflow.projects.kubernetes").origin
    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("kubernetes") is None:
            client, config, errors = (
                ModuleType(name)
                for name in ("kubernetes", "kubernetes.config", "kubernetes.config.config_exception")
            )
            errors.ConfigException = type("ConfigException", (Exception,), {})
            client.config, config.config_exception = config, errors
            for module in (client, config, errors):
                patch.setitem(sys.modules, module.__name__, module)
        spec = importlib.util.spec_from_file_location("_pinned_mlflow_kubernetes", origin)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project():
    return _project_spec.load_project(str(DEPLOY))


def render(mlflow_kubernetes, project, entry_point: str, parameters: dict[str, str], storage: Path) -> dict:
    """The Job MLflow submits for this entry point, as `mlflow.projects._run` builds it."""
    config = json.loads((DEPLOY / "kubernetes_config.json").read_text())
    template = yaml.safe_load((ROOT / config["kube-job-template-path"]).read_text())
    command = get_entry_point_command(project, entry_point, parameters, str(storage))
    env_vars = {
        "MLFLOW_RUN_ID": "r" * 32,
        "MLFLOW_TRACKING_URI": "http://laptop:5000",
        "MLFLOW_EXPERIMENT_ID": "7",
    }
    return mlflow_kubernetes._get_kubernetes_job_definition(
        project.name, IMAGE_TAG, IMAGE_DIGEST, mlflow_kubernetes._get_run_command(command), env_vars, template
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/kubernetes/Dockerfile, continuation lines joined, comments dropped."""
    lines = [
        line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def dockerignore_allows(path: str) -> bool:
    """Docker's rule, simplified: the last pattern that matches the path or one of its parent folders wins."""
    patterns = [
        line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if line.strip()
    ]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    allowed = True
    for pattern in patterns:
        if pattern.startswith("#"):
            continue
        negated, glob = pattern.startswith("!"), pattern.lstrip("!")
        if any(fnmatch.fnmatch(prefix, glob) for prefix in prefixes):
            allowed = negated
    return allowed


def test_kubernetes_config_names_context_registry_and_template(monkeypatch):
    config = json.loads((DEPLOY / "kubernetes_config.json").read_text())
    assert set(config) == {"kube-context", "repository-uri", "kube-job-template-path"}
    # MLflow tags the image it builds as <repository-uri>:<git sha>: the URI itself carries no tag
    assert ":" not in config["repository-uri"].rsplit("/", 1)[-1]
    monkeypatch.chdir(ROOT)  # the template path is read relative to where `mlflow run` is started
    parsed = mlflow.projects._parse_kubernetes_config(config)
    assert parsed["kube-job-template"]["kind"] == "Job"
    assert parsed["kube-job-template"]["metadata"]["namespace"]


def test_mlproject_variant_is_a_docker_project_mirroring_the_main_one(project):
    assert project.name == "nlu-mlflow"
    assert project.docker_env["image"] == "nlu-mlflow:latest"
    validate_docker_env(project)  # what `mlflow run` checks before building
    main = _project_spec.load_project(str(ROOT))
    assert set(project._entry_points) == set(main._entry_points) == {"main", "train", "candidate"}
    for name, ours in project._entry_points.items():
        theirs = main._entry_points[name]
        assert ours.command == theirs.command, name
        assert {k: p.default for k, p in ours.parameters.items()} == {
            k: p.default for k, p in theirs.parameters.items()
        }, name
        # `path` parameters are resolved on the submitting machine; inside the image they must stay relative
        assert all(p.type != "path" for p in ours.parameters.values()), name


@pytest.mark.parametrize(
    ("entry_point", "parameters"), [("main", {"epochs": "40"}), ("train", {"config": "configs/diet.yml"})]
)
def test_job_renders_with_image_command_and_environment(
    mlflow_kubernetes, project, monkeypatch, tmp_path, entry_point, parameters
):
    monkeypatch.setenv("KUBE_MLFLOW_TRACKING_URI", IN_CLUSTER_URI)
    job = render(mlflow_kubernetes, project, entry_point, parameters, tmp_path)

    assert re.fullmatch(r"nlu-mlflow-\d{4}(-\d{2}){5}-\d{6}", job["metadata"]["name"])
    assert len(job["metadata"]["name"]) <= 63  # a DNS-1123 label
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["name"] == "nlu-mlflow"
    assert container["image"] == f"{IMAGE_TAG}@{IMAGE_DIGEST}"

    command = container["command"]
    assert command[:4] == ["python", "-m", "nlu_mlflow.cli", "run"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    for key, value in parameters.items():
        option = "--configs" if key == "config" else f"--{key}"
        assert options[option] == value
    context = typer.main.get_command(app).commands["run"].make_context("run", command[4:])
    given = {"main": ("project", "data/pizza-assistant"), "train": ("data", "data/pizza/train.yml")}
    name, value = given[entry_point]
    assert str(context.params[name]) == value
    for option in PATH_OPTIONS:  # relative to the image's project folder, and shipped in the image
        if option in options:
            if options[option] in ("''", ""):  # left at its default: not given
                continue
            assert not Path(options[option]).is_absolute()
            assert (ROOT / options[option]).exists(), options[option]

    env = container["env"]
    assert all(isinstance(entry, dict) and "name" in entry for entry in env)  # no placeholder strings left
    names = [entry["name"] for entry in env]
    assert len(names) == len(set(names))
    values = {entry["name"]: entry.get("value") for entry in env}
    assert values["MLFLOW_TRACKING_URI"] == IN_CLUSTER_URI  # KUBE_MLFLOW_TRACKING_URI wins in the cluster
    assert values["MLFLOW_RUN_ID"] == "r" * 32
    assert values["MLFLOW_EXPERIMENT_ID"] == "7"
    assert values["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert values["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0


def test_job_without_in_cluster_uri_keeps_the_submitters_uri(
    mlflow_kubernetes, project, monkeypatch, tmp_path
):
    monkeypatch.delenv("KUBE_MLFLOW_TRACKING_URI", raising=False)
    job = render(mlflow_kubernetes, project, "train", {}, tmp_path)
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://laptop:5000"


def test_dockerfile_installs_the_lock_then_the_package():
    instructions = dockerfile_instructions()
    froms = [args for name, args in instructions if name == "FROM"]
    args = dict(a.split("=", 1) for name, a in instructions if name == "ARG" and "=" in a)
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    copies = {
        source: args.split()[-1]
        for name, args in instructions
        if name == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    }
    lock_in_image = copies["requirements/lock.txt"]
    runs = [args for name, args in instructions if name == "RUN"]
    [lock_install] = [r for r in runs if f"-r {lock_in_image}" in r]
    assert "pip install --no-deps --ignore-requires-python" in lock_install  # as scripts/bootstrap.sh
    package = copies["nlu_mlflow"].rsplit("/nlu_mlflow", 1)[0]
    assert copies["pyproject.toml"].rstrip("/") == package  # the package is built from its pyproject
    [package_install] = [r for r in runs if re.search(rf"pip install --no-deps .*{re.escape(package)}$", r)]
    # the lock layer comes first, so code changes do not reinstall 2.7 GB of dependencies
    assert runs.index(lock_install) < runs.index(package_install)


def test_image_runs_entry_points_where_mlflow_puts_the_project():
    stage = final_stage()
    workdirs = [args for name, args in stage if name == "WORKDIR"]
    assert workdirs[-1] == MLFLOW_DOCKER_WORKDIR_PATH.rstrip("/")
    copied = {args.split()[-2] for name, args in stage if name == "COPY" and "--from" not in args}
    assert {"configs", "data", "nlu-mlflow.yml"} <= copied
    assert not [args for name, args in stage if name == "ENTRYPOINT"]  # MLflow's docker backend appends args
    template = yaml.safe_load((DEPLOY / "kubernetes_job_template.yaml").read_text())
    user = [args for name, args in stage if name == "USER"][-1]
    assert user.split(":")[0] == str(template["spec"]["template"]["spec"]["securityContext"]["runAsUser"])


def test_build_context_sends_what_the_dockerfile_copies_and_not_the_venv():
    sources = [
        source
        for name, args in dockerfile_instructions()
        if name == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    ]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_allows(source), source
    for heavy in (".venv", "mlruns", "mlruns.db", "mlartifacts", ".git"):
        assert not dockerignore_allows(heavy), heavy


def test_candidate_job_runs_the_candidate_command_in_the_image(mlflow_kubernetes, project, tmp_path):
    job = render(
        mlflow_kubernetes, project, "candidate", {"parent_run_id": "p" * 32, "config": "diet"}, tmp_path
    )
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "python", "-m", "nlu_mlflow.cli", "candidate", "--parent-run-id", "p" * 32, "--config", "diet",
    ]  # fmt: skip
    context = (
        typer.main.get_command(app).commands["candidate"].make_context("candidate", container["command"][4:])
    )
    assert context.params == {"parent_run_id": "p" * 32, "config": "diet", "verbose": False}


def test_tune_workers_job_runs_the_tune_worker_command_with_its_storage_from_a_secret():
    job = yaml.safe_load((DEPLOY / "tune-workers-job.yaml").read_text())
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["parallelism"] > 1 and "completions" not in spec  # a work queue
    (container,) = spec["template"]["spec"]["containers"]
    program, command, *args = container["command"]
    assert (program, command) == ("nlu-mlflow", "tune-worker")
    options = {
        opt for param in typer.main.get_command(app).commands["tune-worker"].params for opt in param.opts
    }
    assert {a for a in args if a.startswith("--")} <= options
    env = {e["name"]: e for e in container["env"]}
    assert env["NLU_MLFLOW_STUDY_STORAGE"]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert env["MLFLOW_TRACKING_URI"]["value"] == IN_CLUSTER_URI
